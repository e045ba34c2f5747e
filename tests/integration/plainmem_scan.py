# SPDX-License-Identifier: Apache-2.0
# Scans a process's memory for a marker (fs_plainmem.sh): prints one line per
# mapping holding it, with whether the mapping is locked ("lo") and left out
# of core dumps ("dd") according to /proc/PID/smaps.
#   plainmem_scan.py PID MARKER-HEX
import re
import sys

pid, marker = sys.argv[1], bytes.fromhex(sys.argv[2])
flags, cur = {}, None
for line in open("/proc/%s/smaps" % pid):
    m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
    if m:
        cur = (int(m.group(1), 16), int(m.group(2), 16))
    elif line.startswith("VmFlags:") and cur:
        flags[cur] = line.split()[1:]
CHUNK = 1 << 20
HUGE = 1 << 30  # address-space reservations (AddressSanitizer's shadow and heap)
with open("/proc/%s/mem" % pid, "rb", 0) as mem:
    for (lo, hi), f in sorted(flags.items()):
        if "rd" not in f:
            continue
        if hi - lo > HUGE:
            print("not scanned: %x-%x (%d MiB)" % (lo, hi, (hi - lo) >> 20), file=sys.stderr)
            continue
        n, tail = 0, b""
        for off in range(lo, hi, CHUNK):
            try:
                mem.seek(off)
                data = tail + mem.read(min(CHUNK, hi - off))
            except OSError:
                break
            n += data.count(marker)
            tail = data[-(len(marker) - 1):]
        if n:
            print("%x-%x hits=%d locked=%s dontdump=%s" % (lo, hi, n, "lo" in f, "dd" in f))
