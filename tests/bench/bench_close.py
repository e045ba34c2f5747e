# SPDX-License-Identifier: Apache-2.0
# Durable close() cost for bench_close.sh: WRITERS threads create N files of
# 4 KiB in DIR between them; prints files/s and the median close() in ms.
#   bench_close.py DIR WRITERS N
import os
import statistics
import sys
import threading
import time

d, writers, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = os.urandom(4096)
closes = []
lock = threading.Lock()
go = threading.Barrier(writers + 1)


def writer(w):
    mine = []
    go.wait()
    for i in range(w, n, writers):
        fd = os.open(os.path.join(d, "c%05d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, block)
        t = time.monotonic()
        os.close(fd)
        mine.append(time.monotonic() - t)
    with lock:
        closes.extend(mine)


ts = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
for t in ts:
    t.start()
go.wait()
t0 = time.monotonic()
for t in ts:
    t.join()
elapsed = time.monotonic() - t0
print("%.0f %.2f" % (n / elapsed, statistics.median(closes) * 1000))
