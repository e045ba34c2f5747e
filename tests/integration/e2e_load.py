# SPDX-License-Identifier: Apache-2.0
# e2e_load.sh's load: writers that log every version they write, readers that check every read against those logs, the final verifier and the report.
#
# Every version of a file is a prefix of a stream fixed by (writer, file, generation):
# a create or a rewrite starts a new generation, an append extends the current one.
# So a reader can tell the bytes of any version, complete or half-written, from any
# other bytes, and corrupt data cannot pass for a version in progress.
#
# Writer log lines (one file per writer, outside the mount, readable by the readers):
#   S seq name gen len t_start phase   before open()
#   E seq result t_end phase           after close(): "ok" (acknowledged) or an errno name
#   G name t                           after user.onem2m.targets granted the readers
# t_* are CLOCK_MONOTONIC, comparable across processes.
import errno
import hashlib
import json
import os
import random
import sys
import time

XATTR_TARGETS = "user.onem2m.targets"
XATTR_STATE = "user.onem2m.state"
BLOCK = 4096


def stream(canary, wid, name, gen, n):
    hdr = ("%s %s %s g%06d\n" % (canary, wid, name, gen)).encode()
    if n <= len(hdr):
        return hdr[:n]
    return hdr + hashlib.shake_256(hdr).digest(n - len(hdr))


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def phase(path):
    try:
        with open(path) as f:
            return f.read().strip() or "?"
    except OSError:
        return "?"


# never outlive the test: its shell (E2E_TEST_PID) gone, or 10 minutes
TEST_PID = int(os.environ.get("E2E_TEST_PID", "0"))
T_END = time.monotonic() + 600


def orphaned():
    if time.monotonic() > T_END:
        return True
    try:
        os.kill(TEST_PID, 0)
    except PermissionError:
        pass  # alive, as another uid
    except OSError:
        return True
    return False


def bump(d, key, n=1):
    d[key] = d.get(key, 0) + n


# ---------------------------------------------------------------- writer
def write_file(path, data, append):
    flags = os.O_WRONLY | (os.O_APPEND if append else os.O_CREAT | os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        off = 0
        while off < len(view):
            off += os.write(fd, view[off:])
    except OSError:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    os.close(fd)  # raises if close() returns -1: then the version is not acknowledged


def new_size(rnd):
    x = rnd.random()
    if x < 0.75:
        return rnd.randint(64, 4096)
    if x < 0.97:
        return rnd.randint(4097, 65536)
    return rnd.randint(65537, 400000)


def writer(a):
    wid, d, nfiles, targets, logp, manp, phasep, canary, duration = (
        a[0], a[1], int(a[2]), a[3], a[4], a[5], a[6], a[7], float(a[8]))
    rnd = random.Random(wid)
    log = open(logp, "a", buffering=1)
    files = {}  # name -> {"gen", "len", "acked"}
    order = []
    st = {"acked": {}, "failed": {}, "errors": {}, "bytes_acked": 0, "xattr_failed": 0,
          "ops": {"create": 0, "append": 0, "rewrite": 0}}
    seq = 0
    start = time.monotonic()
    stop_at = None

    def out_of_time():
        return stop_at is not None and time.monotonic() > stop_at

    # performs one logical operation, retrying as full rewrites until a close() returns 0
    def perform(name, gen, length, append_from):
        nonlocal seq
        path = os.path.join(d, name)
        first = True
        while True:
            seq += 1
            ph = phase(phasep)
            log.write("S %d %s %d %d %.6f %s\n" % (seq, name, gen, length, time.monotonic(), ph))
            try:
                if first and append_from is not None:
                    data = stream(canary, wid, name, gen, length)[append_from:]
                    write_file(path, data, True)
                else:
                    data = stream(canary, wid, name, gen, length)
                    write_file(path, data, False)
            except OSError as e:
                en = errname(e)
                ph = phase(phasep)  # results count in the window where they completed
                log.write("E %d %s %.6f %s\n" % (seq, en, time.monotonic(), ph))
                bump(st["failed"], ph)
                bump(st["errors"], "%s:%s" % (ph, en))
                first = False
                if out_of_time() or orphaned():
                    return False
                time.sleep(0.1)
                continue
            ph = phase(phasep)
            log.write("E %d ok %.6f %s\n" % (seq, time.monotonic(), ph))
            bump(st["acked"], ph)
            st["bytes_acked"] += len(data)
            return True

    def grant(name):
        while targets:
            try:
                os.setxattr(os.path.join(d, name), XATTR_TARGETS, targets.encode())
                log.write("G %s %.6f\n" % (name, time.monotonic()))
                return
            except OSError as e:
                st["xattr_failed"] += 1
                bump(st["errors"], "%s:setxattr:%s" % (phase(phasep), errname(e)))
                if out_of_time() or orphaned():
                    return
                time.sleep(0.1)

    while True:
        ph = phase(phasep)
        if ph == "stop" and stop_at is None:
            stop_at = time.monotonic() + 60
        if (ph == "stop" and len(order) >= nfiles) or out_of_time() or orphaned():
            break
        due = nfiles * min(1.0, (time.monotonic() - start) / duration)
        if len(order) < nfiles and (not order or ph == "stop" or
                                    (len(order) < due + 1 and rnd.random() < 0.8)):
            name = "f%04d" % len(order)
            order.append(name)
            f = files[name] = {"gen": 1, "len": new_size(rnd), "acked": False}
            st["ops"]["create"] += 1
            f["acked"] = perform(name, 1, f["len"], None)
            if f["acked"]:
                grant(name)
            continue
        name = rnd.choice(order)
        f = files[name]
        if rnd.random() < 0.6:
            old = f["len"]
            f["len"] += rnd.randint(1, 4096) if rnd.random() < 0.95 else rnd.randint(4097, 150000)
            st["ops"]["append"] += 1
            f["acked"] = perform(name, f["gen"], f["len"], old if f["acked"] else None)
        else:
            f["gen"] += 1
            f["len"] = new_size(rnd)
            st["ops"]["rewrite"] += 1
            f["acked"] = perform(name, f["gen"], f["len"], None)
        time.sleep(0.002)

    man = {}
    for name in order:
        f = files[name]
        data = stream(canary, wid, name, f["gen"], f["len"])
        man[name] = {"sha256": hashlib.sha256(data).hexdigest(), "len": f["len"],
                     "acked": f["acked"]}
    tmp = manp + ".tmp"
    with open(tmp, "w") as m:
        json.dump({"writer": wid, "dir": d, "files": man, "stats": st}, m)
    os.rename(tmp, manp)


# ---------------------------------------------------------------- reader
class WLog:
    """A writer's log, parsed incrementally."""

    def __init__(self, wid, logp, d, need_grant):
        self.wid, self.logp, self.d, self.need_grant = wid, logp, d, need_grant
        self.off = 0
        self.rest = b""
        self.ops = {}  # name -> [[seq, gen, len, t_start, t_end or None, ok]]
        self.byseq = {}
        self.acked = set()
        self.granted = {}  # name -> t
        self.names = []  # files with an acknowledged version

    def refresh(self):
        with open(self.logp, "rb") as f:
            f.seek(self.off)
            chunk = f.read()
        self.off += len(chunk)
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        for ln in lines:
            p = ln.decode().split()
            if p[0] == "S":
                op = [int(p[1]), int(p[3]), int(p[4]), float(p[5]), None, False]
                self.ops.setdefault(p[2], []).append(op)
                self.byseq[op[0]] = (p[2], op)
            elif p[0] == "E":
                name, op = self.byseq.pop(int(p[1]))
                op[4], op[5] = float(p[3]), p[2] == "ok"
                if op[5] and name not in self.acked:
                    self.acked.add(name)
                    self.names.append(name)
            elif p[0] == "G":
                self.granted[p[1]] = float(p[2])

    def readable(self, now):
        if not self.need_grant:
            return self.names
        return [n for n, t in self.granted.items() if t < now]


def classify(canary, w, name, t0, t1, data, cuts=()):
    """exact | partial | stale | corrupt, from the writer's record of the file.

    exact: a version no older than the last one acknowledged before the read began.
    partial: while a later write was unfinished (or failed), what POSIX allows a reader
    racing an in-place writer: every 4 KiB block is that block of one of those versions
    (a truncated tail, a half-done append, old blocks then new ones). Bytes that are no
    version's bytes at their offset are corrupt, whatever was in flight.
    cuts: where one read() call ended and the next began. Each call sees the file as it
    is then, so a block may be split there: a call that stopped at the old end of the
    file, then a rewrite, then a call that read on from that offset, return the old
    version's head and the new one's tail, as on any POSIX filesystem.
    """
    ops = w.ops[name]
    base = None
    for op in ops:
        if op[5] and op[4] is not None and op[4] < t0:
            base = op  # acknowledged before this read began: it or newer must be served
    cands = [op for op in ops if (base is None or op[0] >= base[0]) and op[3] <= t1]
    n = len(data)
    gens = {}
    for op in cands:
        gens.setdefault(op[1], set()).add(op[2])
    for gen, lens in gens.items():
        if n in lens and stream(canary, w.wid, name, gen, n) == data:
            return "exact"
    if any(base is None or op[0] > base[0] for op in cands):
        versions = [stream(canary, w.wid, name, gen, min(n, max(lens)))
                    for gen, lens in gens.items()]
        edges = sorted(set(range(0, n, BLOCK)) | {c for c in cuts if 0 < c < n}) + [n]
        if all(any(v[a:b] == data[a:b] for v in versions) for a, b in zip(edges, edges[1:])):
            return "partial"
        # A truncating open (a rewrite) racing the read: the kernel may have asked for a
        # range past the new end before it learned of the truncation; the short answer is
        # zero-filled in its page cache and, if another reply moved the inode's attribute
        # version meanwhile, served up to the old size; and a read() that took the old
        # version's pages before the truncation copies them up to the new size, zeros
        # past the old end included (FUSE's and the kernel's page cache, not atrestfs's
        # data: docs/FS.md "Concurrent readers and writers"). So a block may also be a
        # version's bytes up to one of its lengths, then zeros; never other bytes.
        if truncating(ops, t0, t1):
            padded = [stream(canary, w.wid, name, gen, min(n, ln)) + bytes(n - min(n, ln))
                      for gen, lens in gens.items() for ln in lens]
            if all(any(v[a:b] == data[a:b] for v in versions + padded) or
                   data[a:b].count(0) == b - a for a, b in zip(edges, edges[1:])):
                return "truncrace"
    for op in ops:
        if op[2] >= n and stream(canary, w.wid, name, op[1], n) == data:
            return "stale"
    return "corrupt"


def truncating(ops, t0, t1):
    """Whether an open with O_TRUNC (a create or a rewrite: it starts a generation) was
    in flight while [t0, t1]."""
    prev = None
    for op in ops:
        if op[1] != prev and op[3] <= t1 and (op[4] is None or op[4] >= t0):
            return True
        prev = op[1]
    return False


def diagnose(canary, w, name, t0, t1, data):
    """What a bad read looked like: the writer's operations around it, and where the
    bytes first differ from each generation's stream (with the bytes found there)."""
    ops = [op for op in w.ops[name] if op[3] <= t1 + 1 and (op[4] is None or op[4] >= t0 - 1)]
    gens = sorted({op[1] for op in w.ops[name]})
    diff = {}
    for gen in gens[-4:]:
        want = stream(canary, w.wid, name, gen, len(data))
        off = next((i for i in range(min(len(want), len(data))) if want[i] != data[i]),
                   min(len(want), len(data)))
        rest = data[off:]
        diff["g%d" % gen] = {"first_diff": off, "got": data[off:off + 24].hex(),
                             "want": want[off:off + 24].hex(),
                             "rest_zero": rest.count(0) == len(rest),
                             "rest_distinct": len(set(rest))}
    return {"ops": [[op[0], op[1], op[2], round(op[3] - t0, 6),
                     None if op[4] is None else round(op[4] - t0, 6), op[5]] for op in ops],
            "t1": round(t1 - t0, 6), "diff": diff}


def read_file(path):
    """The file's bytes and the offsets where one read() call ended and the next began."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts, cuts, off = [], [], 0
        while True:
            b = os.read(fd, 1 << 17)
            if not b:
                break
            parts.append(b)
            off += len(b)
            cuts.append(off)
    finally:
        os.close(fd)
    return b"".join(parts), cuts[:-1]


def reader(a):
    rid, canary, phasep, stopp, outp = a[0], a[1], a[2], a[3], a[4]
    logs = []
    for spec in a[5:]:
        wid, logp, d, need = spec.split(":")
        logs.append(WLog(wid, logp, d, need == "granted"))
    rnd = random.Random(rid)
    st = {"verified": {}, "partial": {}, "truncrace": {}, "errors": {}, "bad": [], "bytes": 0}
    while not os.path.exists(stopp) and not orphaned():
        w = rnd.choice(logs)
        w.refresh()
        names = w.readable(time.monotonic())
        if not names:
            time.sleep(0.05)
            continue
        name = rnd.choice(names)
        t0 = time.monotonic()
        try:
            data, cuts = read_file(os.path.join(w.d, name))
        except OSError as e:
            bump(st["errors"], "%s:%s" % (phase(phasep), errname(e)))
            time.sleep(0.02)
            continue
        t1 = time.monotonic()
        ph = phase(phasep)
        w.refresh()
        c = classify(canary, w, name, t0, t1, data, cuts)
        if c == "exact":
            bump(st["verified"], ph)
            st["bytes"] += len(data)
        elif c == "partial":
            bump(st["partial"], ph)
        elif c == "truncrace":
            bump(st["truncrace"], ph)
        else:
            st["bad"].append({"kind": c, "writer": w.wid, "file": name, "len": len(data),
                              "phase": ph, "t0": t0, "t1": t1, "head": data[:80].hex(),
                              "cuts": cuts[:8],
                              "where": diagnose(canary, w, name, t0, t1, data)})
        time.sleep(0.005)
    with open(outp, "w") as f:
        json.dump({"reader": rid, "stats": st}, f)


# ---------------------------------------------------------------- after the run
def verify(a):
    """Every acknowledged file of a manifest, byte for byte, under directory a[1]."""
    man = json.load(open(a[0]))
    d = a[1]
    limit = int(a[2]) if len(a) > 2 else None
    res = {"ok": 0, "bad": [], "skipped_unacked": 0}
    names = sorted(man["files"])
    if limit is not None:
        names = names[:limit]
    for name in names:
        f = man["files"][name]
        if not f["acked"]:
            res["skipped_unacked"] += 1
            continue
        try:
            data, _ = read_file(os.path.join(d, name))
        except OSError as e:
            res["bad"].append("%s: %s" % (name, errname(e)))
            continue
        if len(data) != f["len"] or hashlib.sha256(data).hexdigest() != f["sha256"]:
            res["bad"].append("%s: %d bytes, expected %d, sha256 differs" % (name, len(data), f["len"]))
            continue
        res["ok"] += 1
    print(json.dumps(res))
    return 1 if res["bad"] else 0


def drain(a):
    """Waits until every file under the directories reads user.onem2m.state = synced."""
    timeout = float(a[0])
    dirs = a[1:]
    t0 = time.monotonic()
    first = None
    while True:
        pending, total = [], 0
        for d in dirs:
            for name in sorted(os.listdir(d)):
                total += 1
                try:
                    s = os.getxattr(os.path.join(d, name), XATTR_STATE).decode()
                except OSError as e:
                    s = errname(e)
                if s != "synced":
                    pending.append("%s/%s=%s" % (d, name, s))
        el = time.monotonic() - t0
        if first is None:
            first = len(pending)
        if not pending:
            print("%d %d %.1f" % (total, first, el))
            return 0
        if el > timeout:
            print("%d files still not synced after %.0f s, e.g. %s" % (len(pending), el, pending[:5]),
                  file=sys.stderr)
            return 1
        time.sleep(0.5)


def report(a):
    """Prints the figures; fails on any corrupt or stale read."""
    phases = a[0].split(",")
    mans = [json.load(open(p)) for p in a[1].split(",")]
    rds = [json.load(open(p)) for p in a[2].split(",")]
    files = sum(len(m["files"]) for m in mans)
    acked_files = sum(1 for m in mans for f in m["files"].values() if f["acked"])
    final_bytes = sum(f["len"] for m in mans for f in m["files"].values())
    ops = {}
    for m in mans:
        for k, v in m["stats"]["ops"].items():
            bump(ops, k, v)
    print("files written: %d (%d acknowledged at the end), %d bytes in their last versions"
          % (files, acked_files, final_bytes))
    print("operations: %s; bytes acknowledged: %d" % (
        ", ".join("%d %ss" % (v, k) for k, v in sorted(ops.items())),
        sum(m["stats"]["bytes_acked"] for m in mans)))
    print("%-15s %9s %7s %9s %8s  %s" % ("window", "acked", "failed", "reads ok", "partial",
                                          "errors (writers | readers)"))
    tot = [0, 0, 0, 0]
    for ph in phases:
        ak = sum(m["stats"]["acked"].get(ph, 0) for m in mans)
        fl = sum(m["stats"]["failed"].get(ph, 0) for m in mans)
        rv = sum(r["stats"]["verified"].get(ph, 0) for r in rds)
        rp = sum(r["stats"]["partial"].get(ph, 0) for r in rds)
        we, re_ = {}, {}
        for m in mans:
            for k, v in m["stats"]["errors"].items():
                if k.split(":", 1)[0] == ph:
                    bump(we, k.split(":", 1)[1], v)
        for r in rds:
            for k, v in r["stats"]["errors"].items():
                if k.split(":", 1)[0] == ph:
                    bump(re_, k.split(":", 1)[1], v)
        fmt = lambda e: ",".join("%s=%d" % kv for kv in sorted(e.items())) or "-"
        print("%-15s %9d %7d %9d %8d  %s | %s" % (ph, ak, fl, rv, rp, fmt(we), fmt(re_)))
        for i, v in enumerate((ak, fl, rv, rp)):
            tot[i] += v
    print("%-15s %9d %7d %9d %8d" % ("total", *tot))
    print("reads verified: %d (%d bytes), partial while a write was in flight: %d"
          % (tot[2], sum(r["stats"]["bytes"] for r in rds), tot[3]))
    tr = sum(sum(r["stats"].get("truncrace", {}).values()) for r in rds)
    if tr:
        print("zero-filled past a truncating open that raced the read (docs/FS.md): %d" % tr)
    bad = [b for r in rds for b in r["stats"]["bad"]]
    for b in bad[:20]:
        print("BAD READ: %s" % json.dumps(b), file=sys.stderr)
    if bad:
        print("%d reads returned bytes that are no acknowledged or in-flight version" % len(bad),
              file=sys.stderr)
        return 1
    if tot[2] == 0:
        print("no read was verified", file=sys.stderr)
        return 1
    return 0


def scan(a):
    """Fails if a secret appears under the paths: the canary, a file key (base64url), the master key file's bytes.

    Each secret is looked for raw and as hex, base64 and base64url."""
    import base64
    canary, key_b64u, master = a[0].encode(), a[1], open(a[2], "rb").read()
    key = base64.urlsafe_b64decode(key_b64u + "=" * (-len(key_b64u) % 4))
    needles = {"plaintext canary": [canary]}
    for what, raw in (("file key", key), ("master key", master)):
        needles[what] = [raw, raw.hex().encode(), raw.hex().upper().encode(),
                         base64.b64encode(raw).rstrip(b"="),
                         base64.urlsafe_b64encode(raw).rstrip(b"=")]
    files = []
    for p in a[3:]:
        if os.path.isdir(p):
            files += [os.path.join(r, f) for r, _, fs in os.walk(p) for f in fs]
        elif os.path.exists(p):
            files.append(p)
    hits = []
    for f in files:
        data = open(f, "rb").read()
        hits += ["%s in %s" % (w, f) for w, ns in needles.items() if any(n in data for n in ns)]
    for h in hits:
        print("FOUND: " + h, file=sys.stderr)
    print(len(files))
    return 1 if hits else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    fn = {"writer": writer, "reader": reader, "verify": verify, "drain": drain,
          "report": report, "scan": scan}[cmd]
    sys.exit(fn(sys.argv[2:]) or 0)
