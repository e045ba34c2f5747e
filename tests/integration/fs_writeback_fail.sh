#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The sealer threads start the writeback of each segment file as soon as it is
# written; when that writeback fails (the cache's disk returns errors), the
# error still reaches the commit's fdatasync and the close fails (DESIGN.md 6:
# close() returns only once the version is durable), and what earlier closes
# acknowledged stays readable once the disk is back. The disk: ext4 on a loop
# device whose backing file sits on a small tmpfs; filling the tmpfs makes
# the device's writes fail.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null ||
	skip "losetup, mkfs.ext4 or e2fsck is not installed"

start_tefd
start_hcsed
D=$T/backing
mkdir "$D"
mount -t tmpfs -o size=48m tmpfs "$D" || skip "cannot mount a tmpfs for the loop device's backing file"
at_exit "umount -l '$D'"
truncate -s 96M "$D/disk.img"
LOOP=$(losetup -f --show "$D/disk.img" 2>/dev/null) || skip "no loop device available"
at_exit "losetup -d $LOOP"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$LOOP" || fail "mkfs.ext4 on $LOOP"
C=$T/cache
mkdir -m 0700 "$C"
mount -o errors=continue "$LOOP" "$C" || skip "cannot mount ext4 from $LOOP"
at_exit "umount -l '$C'"
chmod 0700 "$C"
M=$T/mnt
mount_atrestfs "$M" "$C/c" "segment_size=256k"

head -c $((3 << 20)) /dev/urandom >"$T/keep"
cp "$T/keep" "$M/keep" || fail "writing the file to keep"
sync
# the backing tmpfs full: every block the device has not written yet fails
head -c $((64 << 20)) /dev/zero >"$D/filler" 2>/dev/null || true

head -c $((8 << 20)) /dev/urandom >"$T/lost"
/usr/bin/python3 - "$M/lost" "$T/lost" <<'PYEOF' && fail "close() succeeded though the segments never reached the disk"
import errno, os, sys
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    for off in range(0, len(data), 1 << 20):
        os.write(fd, data[off:off + (1 << 20)])
except OSError as e:
    print("# write: %s" % errno.errorcode[e.errno])
try:
    os.close(fd)
except OSError as e:
    print("# close: %s" % errno.errorcode[e.errno])
    sys.exit(1)
PYEOF
ok "a failed writeback of the early-started segments fails the close"
# from the segments' own fdatasync: the index's WAL sync fails on this disk
# too, and would fail the close even if the segments' error had been lost
grep -q "cannot sync the segments of inode" "$T/atrestfs.log" &&
	grep -q "cache: cannot sync .a segment file.; every later commit fails until atrestfs restarts" "$T/atrestfs.log" ||
	fail "the segments' fdatasync did not see their failed writeback"

# the disk back: what the first close acknowledged is intact, from the disk
umount_atrestfs "$M"
umount "$C" || umount -l "$C"
rm -f "$D/filler"
e2fsck -fy "$LOOP" >/dev/null 2>&1 || true
mount -o errors=continue "$LOOP" "$C" || fail "cannot mount the repaired cache disk"
echo 3 >/proc/sys/vm/drop_caches
mount_atrestfs "$M" "$C/c" "segment_size=256k"
cmp "$M/keep" "$T/keep" || fail "the file acknowledged before the failure is not intact"
# the failed one: never bytes that are not what was written
if cat "$M/lost" >"$T/lost.read" 2>/dev/null; then
	[ ! -s "$T/lost.read" ] || cmp -s "$T/lost.read" "$T/lost" ||
		fail "the file whose close failed reads as bytes nobody wrote"
fi
ok "the acknowledged file survives the failed writeback; the failed one never reads wrong bytes"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
