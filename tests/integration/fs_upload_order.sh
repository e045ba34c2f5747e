#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The uploader's order per file (issue 5, FS.md "The uploader"), seen from
# hcsed: a version's segments are created before its manifest, the superseded
# segments and manifest are deleted only after the new manifest; stopped in the
# middle of an upload, the HCSE still holds a complete older version that a
# fresh cache reads back.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
command -v sqlite3 >/dev/null || skip "sqlite3 (the CLI) is not installed"

A=2701
start_tefd
start_hcsed -v # logs every request, in order
M=$T/mnt
# ae_lease=0: the test mounts a fresh cache on the AE while this one is stopped
mount_atrestfs "$M" "$T/cache" "segment_size=64k,ae=ord,ae_lease=0"
chmod 1777 "$M"

# objs CONTAINER: the contentInstances under it as "rn seq", creation order
objs() { hcse_sql "SELECT rn, seq FROM res WHERE ty = 4 AND pi = (SELECT ri FROM res WHERE path LIKE '%/$1') ORDER BY seq"; }
# wait_objs CONTAINER NSEG OUT: waits until hcsed holds NSEG segments and one manifest there
wait_objs() {
	local i
	for ((i = 0; i < 300; i++)); do
		objs "$1" >"$3"
		[ "$(grep -c '^s' "$3")" = "$2" ] && [ "$(grep -c '^m' "$3")" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}

head -c $((4 * 65536)) /dev/urandom >"$T/v1"
as_user $A $A cp "$T/v1" "$M/f"
wait_synced "$M/f"
res=$(getfattr --only-values -n user.onem2m.resource "$M/f")
cnt=${res##*/}
objs "$cnt" >"$T/v1.objs"
[ "$(grep -c '^s' "$T/v1.objs")" = 4 ] || fail "expected 4 segments: $(cat "$T/v1.objs")"
[ "$(grep -c '^m' "$T/v1.objs")" = 1 ] || fail "expected one manifest: $(cat "$T/v1.objs")"
man1=$(awk '/^m/ { print $1 }' "$T/v1.objs")
[ "$(tail -n1 "$T/v1.objs" | cut -d' ' -f1)" = "$man1" ] ||
	fail "a segment was created after the manifest: $(cat "$T/v1.objs")"
ok "version 1: 4 segments, then the manifest $man1"

# rewrite segments 1 and 3 in place: version 2 supersedes s1, s3 and m1
as_user $A $A dd if=/dev/urandom of="$M/f" bs=65536 seek=1 count=1 conv=notrunc status=none
as_user $A $A dd if=/dev/urandom of="$M/f" bs=65536 seek=3 count=1 conv=notrunc status=none
as_user $A $A cat "$M/f" >"$T/v2.plain"
log_from=$(wc -l <"$T/hcsed.log")
wait_synced "$M/f"
# the deletions run after the manifest: wait for them
wait_objs "$cnt" 4 "$T/v2.objs" || fail "superseded objects not deleted: $(cat "$T/v2.objs")"
man2=$(awk '/^m/ { print $1 }' "$T/v2.objs")
[ "$man2" != "$man1" ] || fail "no new manifest"
# unchanged segments stay (same resource), rewritten ones are new and older than the manifest
for s in 0 2; do
	grep "^s${s}g" "$T/v1.objs" | cmp -s - <(grep "^s${s}g" "$T/v2.objs") ||
		fail "unchanged segment $s was re-uploaded"
done
mseq=$(awk '/^m/ { print $2 }' "$T/v2.objs")
for s in 1 3; do
	new=$(grep "^s${s}g" "$T/v2.objs")
	[ "$new" != "$(grep "^s${s}g" "$T/v1.objs")" ] || fail "segment $s was not replaced"
	[ "${new#* }" -lt "$mseq" ] || fail "segment $s ($new) created after the manifest ($man2 $mseq)"
done
ok "version 2: new s1 and s3, then $man2; s0 and s2 kept"

# the order of the requests as hcsed logged them: every deletion of this
# version after its manifest's creation
tail -n +"$((log_from + 1))" "$T/hcsed.log" | grep -E '^.*(POST|DELETE) "' >"$T/req.log" || true
mline=$(grep -n "POST \"[^\"]*/$cnt\" .*: 2001" "$T/req.log" | tail -n1 | cut -d: -f1)
first_del=$(grep -n "DELETE \"[^\"]*/$cnt/" "$T/req.log" | head -n1 | cut -d: -f1)
[ -n "$mline" ] && [ -n "$first_del" ] || { cat "$T/req.log" >&2; fail "hcsed logged no manifest or no deletion"; }
[ "$first_del" -gt "$mline" ] || { cat "$T/req.log" >&2; fail "a deletion came before the manifest"; }
n_del=$(grep -c "DELETE \"[^\"]*/$cnt/" "$T/req.log" || true)
[ "$n_del" -ge 3 ] || { cat "$T/req.log" >&2; fail "expected 3 deletions (s1, s3, $man1), hcsed saw $n_del"; }
ok "hcsed saw the deletions after the creations ($n_del deleted)"

# ---- stopped in the middle of an upload ----
# NS segments: enough that the upload outlasts the polling below under load
NS=160
head -c $(($NS * 65536)) /dev/urandom >"$T/v3"
before=$(objs "$cnt")
as_user $A $A cp "$T/v3" "$M/f"
# stop_mid_upload HOW...: once some, not all, of the new segments reached
# hcsed, runs HOW; then hcsed must still hold only the old manifest ($before)
new_segs() { # new_segs: how many segments hcsed holds that were not in $before
	comm -13 <(grep '^s' <<<"$before" | cut -d' ' -f1 | sort) \
		<(objs "$cnt" | grep '^s' | cut -d' ' -f1 | sort) | wc -l
}
stop_mid_upload() {
	local i n
	for ((i = 0; i < 600; i++)); do
		n=$(new_segs)
		[ "$n" -ge 10 ] && break
		sleep 0.02
	done
	"$@"
	objs "$cnt" >"$T/mid.objs"
	n=$(new_segs)
	[ "$n" -lt $NS ] || skip "the upload finished before it could be stopped (machine too fast?)"
	[ "$(grep '^m' "$T/mid.objs")" = "$(grep '^m' <<<"$before")" ] ||
		fail "a manifest went up before all its segments: $(grep '^m' "$T/mid.objs")"
	ok "stopped mid-upload ($1 $2) with $n of $NS new segments at hcsed: still only the old manifest"
}
at_exit "kill -CONT $ATRESTFS_PID"
stop_mid_upload kill -STOP "$ATRESTFS_PID"

# a fresh cache elsewhere reads the complete older version meanwhile
pid1=$ATRESTFS_PID
mount_atrestfs "$T/mnt2" "$T/cache2" "segment_size=64k,ae=ord,ae_lease=0"
as_user $A $A cmp "$T/v2.plain" "$T/mnt2/f" || fail "a fresh cache read something else than version 2"
ok "a fresh cache meanwhile reads version 2 complete"
umount_atrestfs "$T/mnt2"
ATRESTFS_PID=$pid1
kill -CONT "$ATRESTFS_PID"
wait_synced "$M/f"
wait_objs "$cnt" $NS "$T/v3.objs" || fail "after the upload, not $NS segments and a manifest: $(cat "$T/v3.objs")"
mseq=$(awk '/^m/ { print $2 }' "$T/v3.objs")
[ "$(awk -v m="$mseq" '/^s/ && $2 > m' "$T/v3.objs")" = "" ] || fail "a segment created after the manifest"
ok "resumed: $NS segments then the manifest, superseded ones gone"

# ---- hcsed killed in the middle of an upload, then restarted ----
head -c $(($NS * 65536 - 1000)) /dev/urandom >"$T/v4"
before=$(objs "$cnt")
as_user $A $A cp "$T/v4" "$M/f"
stop_mid_upload kill -KILL "$HCSED_PID"
wait "$HCSED_PID" 2>/dev/null || true
start_hcsed -v
wait_synced "$M/f"
wait_objs "$cnt" $NS "$T/v4.objs" || fail "after hcsed's restart, not $NS segments and a manifest: $(cat "$T/v4.objs")"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache3" "segment_size=64k,ae=ord"
as_user $A $A cmp "$T/v4" "$M/f" || fail "version 4 through a fresh cache"
ok "hcsed back: the upload completes, superseded objects gone, version 4 reads through a fresh cache"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
