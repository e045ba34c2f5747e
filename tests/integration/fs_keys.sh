#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A file's key at tefd, seen from tefd itself (tefctl as admin): de-registered
# once nothing references the file (unlink, last close of an unlinked open file,
# rename over it) and not before; share=group and share=all give the targets
# issue 5 names and the access they imply for uids in and out of the group.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2601 B=2602 G=2650
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
chmod 1777 "$M"


for f in gone open replaced keeper; do
	as_user $A $A sh -c "echo $f > '$M/$f'"
done
declare -A C
for f in gone open replaced keeper; do
	C[$f]=$(cred_of "$M/$f")
	registered "${C[$f]}" || fail "$f: ${C[$f]} is not registered at tefd"
done
[ "$(targets_of "${C[gone]}")" = "uid:$A" ] || fail "share=owner targets: $(targets_of "${C[gone]}")"
ok "every file's key is registered at tefd, share=owner targets uid:$A"

# 1. plain unlink
as_user $A $A rm "$M/gone"
wait_deregistered "${C[gone]}" "unlink"
ok "unlink de-registers the key"

# 2. unlink while open: the key stays until the last close
# hold FILE: uid A keeps FILE open on fd 3 in the background; sets holder
hold() {
	local i secs="61.$$$RANDOM" # a duration of its own: another test's sleep is not the holder
	as_user $A $A sh -c "exec 3<'$1'; exec sleep $secs" >/dev/null 2>&1 &
	for ((i = 0; i < 100; i++)); do
		holder=$(pgrep -u $A -x -f "sleep $secs" || true)
		[ -n "$holder" ] && [ -e "/proc/$holder/fd/3" ] && break
		sleep 0.1
	done
	[ -n "$holder" ] || fail "the holder did not open $1"
	at_exit "kill $holder"
}
# release: ends the holder, closing its descriptor
release() {
	local i
	kill $holder
	for ((i = 0; i < 50; i++)); do kill -0 $holder 2>/dev/null || break; sleep 0.1; done
}
hold "$M/open"
as_user $A $A rm "$M/open"
[ -e "$M/open" ] && fail "unlinked file still listed"
sleep 3
registered "${C[open]}" || fail "the key of an unlinked but open file was de-registered"
[ "$(as_user $A $A cat "/proc/$holder/fd/3")" = open ] ||
	fail "the open descriptor no longer reads the unlinked file"
ok "unlinked but still open: key kept, the descriptor still reads"
release
wait_deregistered "${C[open]}" "last close of an unlinked file"
ok "the last close of the unlinked file de-registers the key"

# 2b. atrestfs killed while an unlinked file is open: the next mount reaps it
as_user $A $A sh -c "echo crash > '$M/crash'"
cc=$(cred_of "$M/crash")
wait_synced "$M/crash"
hold "$M/crash"
as_user $A $A rm "$M/crash"
sleep 1 # the unlink is committed to the cache index
kill -KILL "$ATRESTFS_PID"
wait "$ATRESTFS_PID" 2>/dev/null || true
release
fusermount3 -uz "$M"
registered "$cc" || fail "the key went with the crash, before any reaping"
mount_atrestfs "$M" "$T/cache"
wait_deregistered "$cc" "remount after a crash with an unlinked open file"
ok "killed with an unlinked file open: the next mount de-registers its key"

# 3. hard links are refused (atrestfs(1)), so no second name can keep a key;
#    rename over a file drops the replaced file's key, keeps the moved one
if as_user $A $A ln "$M/keeper" "$M/hl" 2>"$T/err"; then fail "hard link accepted"; fi
grep -q "Operation not permitted" "$T/err" || fail "hard link: expected EPERM, got $(cat "$T/err")"
as_user $A $A mv "$M/keeper" "$M/replaced"
wait_deregistered "${C[replaced]}" "rename over a file"
registered "${C[keeper]}" || fail "the key of the renamed file was de-registered"
[ "$(cred_of "$M/replaced")" = "${C[keeper]}" ] || fail "renamed file changed its Credential-Id"
[ "$(as_user $A $A cat "$M/replaced")" = keeper ] || fail "renamed file unreadable"
ok "rename over a file de-registers the replaced key only (hard links: EPERM)"

# 4. an unmount keeps the keys of files that still exist, and a remount
#    does not de-register them either
wait_synced "$M/replaced"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache"
sleep 2
registered "${C[keeper]}" || fail "remount de-registered a live file's key"
[ "$(as_user $A $A cat "$M/replaced")" = keeper ] || fail "read after remount"
ok "unmount and remount leave live files' keys registered"
umount_atrestfs "$M"

# ---- share=group: targets uid:OWNER,gid:FILE-GROUP ----
mount_atrestfs "$M" "$T/cache-g" "ae=grp,share=group"
chmod 1777 "$M"
as_user $A $G sh -c "echo grouped > '$M/g'"
[ "$(stat -c %g "$M/g")" = $G ] || fail "file group is $(stat -c %g "$M/g")"
cg=$(cred_of "$M/g")
[ "$(targets_of "$cg")" = "uid:$A,gid:$G" ] || fail "share=group targets: $(targets_of "$cg")"
[ "$(getfattr --only-values -n user.onem2m.targets "$M/g")" = "uid:$A,gid:$G" ] ||
	fail "share=group user.onem2m.targets: $(getfattr --only-values -n user.onem2m.targets "$M/g")"
[ "$(as_user $B $B,$G cat "$M/g")" = grouped ] || fail "share=group: a member of $G is denied"
[ "$(as_user $B $G cat "$M/g")" = grouped ] || fail "share=group: primary group $G is denied"
if as_user $B $B cat "$M/g" >/dev/null 2>"$T/err"; then fail "share=group: a non-member read"; fi
grep -q "Permission denied" "$T/err" || fail "share=group non-member: $(cat "$T/err")"
if cat "$M/g" >/dev/null 2>&1; then fail "share=group: root (not in $G) read"; fi
ok "share=group: targets uid:$A,gid:$G; members read, others and root get EACCES"

# chgrp: the group target follows the file's group; the old group loses access
G2=2651
chgrp $G2 "$M/g" || fail "chgrp of a share=group file"
[ "$(targets_of "$cg")" = "uid:$A,gid:$G2" ] || fail "after chgrp, targets: $(targets_of "$cg")"
[ "$(as_user $B $B,$G2 cat "$M/g")" = grouped ] || fail "after chgrp: a member of the new group is denied"
if as_user $B $B,$G cat "$M/g" >/dev/null 2>&1; then fail "after chgrp: the old group still reads"; fi
[ "$(as_user $A $A cat "$M/g")" = grouped ] || fail "after chgrp: the owner is denied"
ok "chgrp moves the group target gid:$G to gid:$G2 at tefd"
umount_atrestfs "$M"

# ---- share=all ----
mount_atrestfs "$M" "$T/cache-a" "ae=all,share=all"
chmod 1777 "$M"
as_user $A $A sh -c "echo everyone > '$M/e'"
ca=$(cred_of "$M/e")
[ "$(targets_of "$ca")" = all ] || fail "share=all targets: $(targets_of "$ca")"
[ "$(as_user $B $B cat "$M/e")" = everyone ] || fail "share=all: uid $B denied"
[ "$(cat "$M/e")" = everyone ] || fail "share=all: root denied"
# the owner may still narrow it
as_user $A $A setfattr -n user.onem2m.targets -v "uid:$A" "$M/e"
[ "$(targets_of "$ca")" = "uid:$A" ] || fail "narrowed targets at tefd: $(targets_of "$ca")"
if as_user $B $B cat "$M/e" >/dev/null 2>&1; then fail "share=all narrowed: uid $B still reads"; fi
ok "share=all: target all, any uid and root read; the owner can narrow it"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
