# SPDX-License-Identifier: Apache-2.0
# Small-file and sync-wait timings for bench_fs.sh: prints elapsed seconds.
#   bench_small.py create DIR N | read DIR N | synced DIR N
import os
import sys
import time

act, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
block = os.urandom(4096)
t = time.monotonic()
if act == "create":
    for i in range(n):
        fd = os.open(os.path.join(d, "s%05d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, block)
        os.close(fd)
elif act == "read":
    for i in range(n):
        fd = os.open(os.path.join(d, "s%05d" % i), os.O_RDONLY)
        assert len(os.read(fd, 8192)) == 4096
        os.close(fd)
elif act == "synced":
    # until every file reads user.onem2m.state == synced (atrestfs only)
    left = ["s%05d" % i for i in range(n)] + [x for x in os.listdir(d) if not x.startswith("s")]
    while left:
        left = [x for x in left if os.getxattr(os.path.join(d, x), "user.onem2m.state") != b"synced"]
        if left:
            time.sleep(0.05)
print("%.3f" % (time.monotonic() - t))
