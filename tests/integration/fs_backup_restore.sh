#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Backup and restore (issue 6 section 4) as an operator lives it: files written
# through atrestfs, tefctl backup, tefd's database lost, tefctl restore onto a
# fresh tefd, and the old files read back byte for byte through a fresh mount
# as their owners. restore refuses to overwrite a database without --force.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
TEFCTL=$ATREST_BUILD/tefd/tefctl

A=2611
B=2612
C=2613
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache" "segment_size=64k"
chmod 1777 "$M"
head -c 300000 /dev/urandom >"$T/big"
echo "a's notes" >"$T/small"
head -c 5000 /dev/urandom >"$T/b"
as_user $A $A cp "$T/big" "$M/big"
as_user $A $A cp "$T/small" "$M/small"
as_user $B $B cp "$T/b" "$M/b"
wait_synced "$M/big" "$M/small" "$M/b"

"$TEFCTL" --socket "$TEF_SOCK" backup "$T/tef.bak" >/dev/null || fail "tefctl backup"
# written after the backup by a uid that wrote nothing before it, so that no
# key of its was registered ahead (atrestfs's key pool) before the backup:
# its key is not in it
echo late | as_user $C $C tee "$M/late" >/dev/null
wait_synced "$M/late"
umount_atrestfs "$M"
ok "three files of two uids written and uploaded, tefd backed up"

stop_daemon "$TEFD_PID"
"$TEFCTL" restore "$T/tef.bak" --db "$T/tef.db" --master-key "$T/master.key" 2>"$T/refuse" &&
	fail "restore overwrote tefd's database without --force"
grep -q -- "--force" "$T/refuse" || fail "the refusal does not say how to overwrite: $(cat "$T/refuse")"
[ -s "$T/tef.db" ] || fail "the refused restore damaged the database"
ok "restore without --force refuses to overwrite the database"

# the disaster: tefd's database is gone (the master key is kept apart)
rm -f "$T/tef.db" "$T/tef.db-wal" "$T/tef.db-shm"
"$TEFCTL" restore "$T/tef.bak" --db "$T/tef.db" --master-key "$T/master.key" >/dev/null ||
	fail "restore onto an empty place"
start_tefd
mount_atrestfs "$M" "$T/fresh-cache" "segment_size=64k"
as_user $A $A cmp "$M/big" "$T/big" || fail "big differs after the restore"
as_user $A $A cmp "$M/small" "$T/small" || fail "small differs after the restore"
as_user $B $B cmp "$M/b" "$T/b" || fail "b differs after the restore"
as_user $B $B cat "$M/big" >/dev/null 2>&1 && fail "the restore gave uid $B uid $A's file"
if out=$(as_user $C $C cat "$M/late" 2>&1); then
	fail "a file whose key postdates the backup was served: '$out'"
fi
[[ $out == *"Permission denied"* ]] || fail "expected EACCES for a key tefd no longer has, got: $out"
ok "after the restore the old files read back byte for byte through a fresh mount"
umount_atrestfs "$M"
check_sanitizer_logs "$T/atrestfs.log" "$T/tefd.log" "$T/hcsed.log"
