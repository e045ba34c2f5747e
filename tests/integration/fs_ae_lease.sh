#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One mount at a time per AE (fs/lease.c): a second mount under the same AE,
# with another cache, is refused while the first holds the lease; a clean
# unmount gives it back at once; after a kill -9 the lease ends by itself
# (ae_lease seconds); a mount that finds its lease taken stops uploading,
# keeps everything queued, and resumes when the lease is free again.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

U=2911
LEASE=4
start_tefd
start_hcsed
M=$T/mnt
opts="ae=shared,ae_lease=$LEASE"

# lease_label: the AE's lease label, or nothing
lease_label() { hcse_get shared | /usr/bin/python3 -c '
import json, sys
print("\n".join(l for l in json.load(sys.stdin)["m2m:ae"].get("lbl", []) if l.startswith("atrest:lease=")))'; }
# set_lease VALUE: the admin rewrites the AE's lease label (another gateway, as far as we know)
set_lease() {
	curl -sf -o /dev/null -X PUT -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' -H 'X-M2M-RVI: 3' \
		-H 'Content-Type: application/json' --data "{\"m2m:ae\":{\"lbl\":[\"atrest:lease=$1\"]}}" \
		"$HCSE_URL/shared" || fail "cannot rewrite the AE's labels"
}
# second_mount CACHE: a mount that must be refused; its messages in $T/second.err
second_mount() {
	mkdir -p "$T/mnt2"
	if timeout 20 "$ATREST_BUILD/fs/atrestfs" "$HCSE_URL" "$T/mnt2" -f \
		-o "tef=$TEF_SOCK,cache=$1,$opts" 2>"$T/second.err"; then
		fusermount3 -uz "$T/mnt2" 2>/dev/null
		fail "a second mount under the AE was not refused"
	fi
	! mountpoint -q "$T/mnt2" || fail "the refused mount is mounted"
	grep -q "AE 'shared' on the HCSE is in use by another atrestfs" "$T/second.err" ||
		fail "the refusal does not say why: $(cat "$T/second.err")"
}

mount_atrestfs "$M" "$T/c1" "$opts"
chmod 1777 "$M"
as_user $U $U sh -c "echo one >'$M/one'"
wait_synced "$M/one"
[ -n "$(lease_label)" ] || fail "the mount holds no lease label on its AE"
second_mount "$T/c2"
ok "a second mount under the same AE is refused while the first runs: $(tail -n1 "$T/second.err" | cut -c1-160)"

# the lease taken behind our back (a gateway that found it expired): uploads stop
off=$(stat -c %s "$T/atrestfs.log")
set_lease "ffffffffffffffffffffffffffffffff:$(($(date +%s) + 60))"
for ((i = 0; i < 100; i++)); do
	tail -c +$((off + 1)) "$T/atrestfs.log" | grep -q "was taken by another atrestfs" && break
	sleep 0.1
done
[ $i -lt 100 ] || fail "the mount did not notice its lease was taken"
as_user $U $U sh -c "echo two >'$M/two'"
sleep 2
[ "$(getfattr --only-values -n user.onem2m.state "$M/two")" = pending ] ||
	fail "a file was uploaded under a lease another instance holds"
ok "a mount that finds its lease taken stops uploading (the new file stays pending)"
set_lease "ffffffffffffffffffffffffffffffff:$(($(date +%s) - 1))"
wait_synced "$M/two"
grep -q "AE 'shared' on the HCSE is ours again: uploads resume" "$T/atrestfs.log" ||
	fail "no line says the uploads resumed"
ok "once the other lease has ended, the mount takes it back and uploads"

umount_atrestfs "$M"
[ -z "$(lease_label)" ] || fail "a clean unmount kept its lease: $(lease_label)"
mount_atrestfs "$M" "$T/c2" "$opts"
[ "$(as_user $U $U cat "$M/one" "$M/two")" = "one
two" ] || fail "the second cache does not read what the first uploaded"
ok "after a clean unmount another cache mounts the AE at once and reads its files"

kill -9 "$ATRESTFS_PID"
wait "$ATRESTFS_PID" 2>/dev/null || true
fusermount3 -uz "$M"
second_mount "$T/c3"
sleep $((LEASE + 1))
mount_atrestfs "$M" "$T/c3" "$opts"
[ "$(as_user $U $U cat "$M/one")" = one ] || fail "the third cache does not read the files"
ok "after a kill -9 the lease ends by itself after ae_lease seconds"
umount_atrestfs "$M"

# ae_lease=0: no lease at all (one mount per AE is then the operator's promise)
mount_atrestfs "$M" "$T/c4" "ae=other,ae_lease=0"
[ -z "$(hcse_get other | grep -o 'atrest:lease=' || true)" ] || fail "ae_lease=0 took a lease"
ok "ae_lease=0 takes no lease"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
