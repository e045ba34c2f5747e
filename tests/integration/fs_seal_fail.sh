#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A sealer thread that cannot store a segment (the cache's disk is full) loses
# nothing and never lets the older segment stand in for bytes a write already
# accepted: the writes after it fail with ENOSPC, and once space is back the
# commit holds every accepted byte, also after a remount.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

start_tefd
start_hcsed
C=$T/cache
mkdir -m 0700 "$C"
# a 4 MiB disk for the cache, half of it taken by a file to free later
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$C" || skip "cannot mount a tmpfs for the cache"
at_exit "umount -l '$C'"
head -c $((2 << 20)) /dev/zero >"$C/filler"
M=$T/mnt
mount_atrestfs "$M" "$C" "segment_size=64k"

/usr/bin/python3 - "$M/f" "$C/filler" "$T/expect" <<'PYEOF' || fail "the writer failed"
import errno, os, sys
path, filler, expect = sys.argv[1:4]
SEG = 64 << 10
x = os.urandom(16 * SEG)
with open(path, "wb") as f:
    f.write(x)
y = os.urandom(48 * SEG)
fd = os.open(path, os.O_WRONLY)
m, err = 0, None
while m < len(y):
    try:
        os.write(fd, y[m:m + SEG])  # one whole segment: handed to a sealer
    except OSError as e:
        err = e.errno
        break
    m += SEG
if err != errno.ENOSPC:
    sys.exit("no ENOSPC from a full cache (written %d, error %s)" % (m, err))
print("# ENOSPC after %d segments accepted" % (m // SEG))
os.unlink(filler)  # space is back
try:
    os.close(fd)  # the sealer's failure is reported here if no write took it
except OSError as e:
    print("# close: %s" % errno.errorcode[e.errno])
# accepted bytes are y[:m]; the refused write changed nothing
want = y[:m] + x[m:] if m < len(x) else y[:m]
with open(expect, "wb") as f:
    f.write(want)
PYEOF

# the release may commit after close(): wait for the version to settle
for ((i = 0; i < 50; i++)); do cmp -s "$M/f" "$T/expect" && break; sleep 0.1; done
cmp "$M/f" "$T/expect" || fail "the file is not every accepted byte (an older segment stands in)"
ok "every byte a write accepted is in the file after the sealer's failure"
umount_atrestfs "$M"
mount_atrestfs "$M" "$C" "segment_size=64k"
cmp "$M/f" "$T/expect" || fail "after a remount the committed version lacks accepted bytes"
ok "and in the committed version after a remount"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
