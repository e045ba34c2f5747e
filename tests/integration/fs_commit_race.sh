#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Closes that commit while another handle's write waits for the sealer threads:
# large sequential writers rewrite files while other opens of the same files close
# in a loop. atrestfs must stay up, every close succeed, and the last version
# written read back whole, before and after a remount.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

PY=/usr/bin/python3
SECS=8
[ "${ATREST_SANITIZE:-none}" = none ] || SECS=5
start_tefd
start_hcsed
M=$T/mnt
# 64 KiB segments: each 1 MiB write hands many to the two sealers and hits their backpressure
mount_atrestfs "$M" "$T/cache" "segment_size=64k"

# writers write 4 MiB per version; closers open and close the same files meanwhile
$PY - "$M" "$SECS" "$T/sums" <<'PYEOF' || fail "a writer or a closer failed"
import hashlib, os, sys, time, multiprocessing as mp
m, secs, sums = sys.argv[1], float(sys.argv[2]), sys.argv[3]
N = 4
def writer(i):
    p, h = os.path.join(m, "big%d" % i), None
    end = time.monotonic() + secs
    while time.monotonic() < end:
        data = os.urandom(4 << 20)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, len(data), 1 << 20):
            os.write(fd, data[off:off + (1 << 20)])
        os.close(fd)
        h = hashlib.sha256(data).hexdigest()
    with open("%s.%d" % (sums, i), "w") as f:
        f.write(h)
def closer(i):
    p = os.path.join(m, "big%d" % i)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            os.close(os.open(p, os.O_RDONLY))
        except FileNotFoundError:
            time.sleep(0.01)
ps = [mp.Process(target=writer, args=(i,)) for i in range(N)] + \
     [mp.Process(target=closer, args=(i % N,)) for i in range(2 * N)]
for p in ps: p.start()
for p in ps: p.join()
sys.exit(max(p.exitcode for p in ps))
PYEOF
kill -0 "$ATRESTFS_PID" 2>/dev/null || fail "atrestfs died under the load"
ok "atrestfs up and every close succeeded after $SECS s of rewrites and concurrent closes"

check_sums() {
	local i
	for i in 0 1 2 3; do
		[ "$(sha256sum <"$M/big$i" | cut -d' ' -f1)" = "$(cat "$T/sums.$i")" ] ||
			fail "big$i is not the last version written ($1)"
	done
}
check_sums "same mount"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache" "segment_size=64k"
check_sums "after a remount"
ok "the last version of each file reads back whole, before and after a remount"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
