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
with open("/proc/%s/mem" % pid, "rb", 0) as mem:
    for (lo, hi), f in sorted(flags.items()):
        if "rd" not in f:
            continue
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except OSError:
            continue
        n = data.count(marker)
        if n:
            print("%x-%x hits=%d locked=%s dontdump=%s" % (lo, hi, n, "lo" in f, "dd" in f))
