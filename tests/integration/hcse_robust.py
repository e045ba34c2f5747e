#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# hcsed beyond the fixtures: 10 and 60 MiB contentInstances byte-exact,
# --max-body, broken and slow HTTP clients, 1,000 parallel connections,
# concurrent writers then a crash (SIGKILL) losing nothing acknowledged,
# HTTP notifications, TLS client certificates bound to X-M2M-Origin,
# la/ol order under simultaneous creates, the bound on listed children,
# the WAL cut back to 64 MiB once the big contents are checkpointed.
# Everything on 127.0.0.1; each part bounded in time.
import json
import os
import random
import re
import signal
import socket
import sqlite3
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hcse_runner import Daemon, receiver, request  # noqa: E402

H = {"X-M2M-RI": "r", "X-M2M-RVI": "3"}


def hdr(origin, ty=None):
    h = dict(H, **{"X-M2M-Origin": origin})
    if ty:
        h["Content-Type"] = "application/json;ty=%d" % ty
    return h


def must(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok - " + what, flush=True)


def setup_ae_cnt(port, cnt_attrs=None):
    st, h, b = request(port, "POST", "/cse-in", hdr("Capp", 2),
                       json.dumps({"m2m:ae": {"rn": "app", "api": "Napp", "rr": True, "srv": ["3"]}}))
    assert h["x-m2m-rsc"] == "2001", b
    cnt = {"rn": "c"}
    cnt.update(cnt_attrs or {})
    st, h, b = request(port, "POST", "/cse-in/app", hdr("Capp", 3), json.dumps({"m2m:cnt": cnt}))
    assert h["x-m2m-rsc"] == "2001", b


def alive(port):
    st, h, _ = request(port, "GET", "/cse-in", hdr("CAdmin"), timeout=10)
    return st == 200 and h.get("x-m2m-rsc") == "2000"


def big_content(d):
    for mib in (10, 60):
        n = mib * 1024 * 1024
        con = "".join(random.choices(string.ascii_letters + string.digits + "-_", k=4096)) * (n // 4096)
        body = '{"m2m:cin": {"rn": "big%d", "cnf": "application/octet-stream:0:1", "con": "%s"}}' % (mib, con)
        t0 = time.time()
        st, h, b = request(d.port, "POST", "/cse-in/app/c?rcn=0", hdr("Capp", 4), body.encode(), timeout=120)
        must(h["x-m2m-rsc"] == "2001", "%d MiB contentInstance created (%.1fs)" % (mib, time.time() - t0))
        st, h, b = request(d.port, "GET", "/cse-in/app/c/la", hdr("Capp"), timeout=120)
        j = json.loads(b)
        must(j["m2m:cin"]["con"] == con and j["m2m:cin"]["cs"] == len(con),
             "%d MiB contentInstance read back byte-exact with cs" % mib)
        # the raw bytes, not only the parsed value
        must(('"con":"%s"' % con).encode() in b, "%d MiB con returned without re-encoding" % mib)
        del con, body, b, j
    st, h, b = request(d.port, "DELETE", "/cse-in/app/c/la", hdr("Capp"))
    must(h["x-m2m-rsc"] == "2002", "60 MiB contentInstance deleted")


def wal_bounded(workdir):
    """A checkpoint every 4,096 new frames; a WAL grown past 64 MiB goes back to it."""
    d = Daemon(workdir, ["-v"])  # -v: the checkpointer's debug lines
    db = os.path.join(workdir, "wal.db")
    d.start(db=db)
    try:
        setup_ae_cnt(d.port)
        wal = db + "-wal"
        limit = 64 * 1024 * 1024
        # a reader's snapshot keeps the WAL from starting over while it grows
        reader = sqlite3.connect(db)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM sqlite_master").fetchall()
        con = "w" * (30 * 1024 * 1024)
        for i in range(3):
            st, h, b = request(d.port, "POST", "/cse-in/app/c?rcn=0", hdr("Capp", 4),
                               ('{"m2m:cin": {"rn": "wal%d", "con": "%s"}}' % (i, con)).encode(),
                               timeout=120)
            assert h["x-m2m-rsc"] == "2001", b
        del con
        must(os.path.getsize(wal) > limit,
             "90 MiB of contents under a reader grew the WAL past 64 MiB (%d bytes)" % os.path.getsize(wal))
        # woken by the frames, not only by its once-a-second timer
        deadline = time.time() + 10
        while ("sqlite checkpoint (4096 more frames)" not in open(d.log, errors="replace").read()
               and time.time() < deadline):
            time.sleep(0.1)
        must("sqlite checkpoint (4096 more frames)" in open(d.log, errors="replace").read(),
             "a checkpoint asked for by 4,096 new frames")
        reader.rollback()
        reader.close()
        # the WAL starts over at a write once the checkpointer copied all of
        # it (a second at most), and that commit cuts it back
        deadline = time.time() + 30
        i = 0
        while os.path.getsize(wal) > limit and time.time() < deadline:
            i += 1
            st, h, b = request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 4),
                               ('{"m2m:cin": {"rn": "w%d", "con": "x"}}' % i).encode())
            assert h["x-m2m-rsc"] == "2001", b
            time.sleep(0.2)
        must(os.path.getsize(wal) <= limit, "the WAL is back to at most 64 MiB after %d small writes (%d bytes)"
             % (i, os.path.getsize(wal)))
    finally:
        d.stop()


def max_body(workdir):
    d = Daemon(workdir, ["--max-body", "1048576"])
    d.start(db=os.path.join(workdir, "maxbody.db"))
    try:
        setup_ae_cnt(d.port)
        con = "x" * (2 * 1024 * 1024)
        st, h, b = request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 4),
                           ('{"m2m:cin": {"con": "%s"}}' % con).encode())
        must(st == 413 and h.get("x-m2m-rsc") == "5207", "body over --max-body: 413 / 5207")
        st, h, b = request(d.port, "GET", "/cse-in/app/c/la", hdr("Capp"))
        must(h.get("x-m2m-rsc") == "4004", "nothing stored from the refused body")
        must(alive(d.port), "daemon answers after the refused body")
    finally:
        d.stop()


def raw(port, data, read=True, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if read:
            try:
                return s.recv(65536)
            except socket.timeout:
                return b""
        return b""
    finally:
        s.close()


def count_cins(d):
    st, h, b = request(d.port, "GET", "/cse-in/app/c?fu=1&ty=4", hdr("Capp"))
    return len(json.loads(b)["m2m:uril"])


def broken_clients(d):
    before = count_cins(d)
    req = (b"POST /cse-in/app/c HTTP/1.1\r\nHost: x\r\nX-M2M-Origin: Capp\r\nX-M2M-RI: t\r\n"
           b"Content-Type: application/json;ty=4\r\nContent-Length: 1000\r\n\r\n{\"m2m:cin\": {\"con\": \"trunc")
    raw(d.port, req, read=False)  # truncated body, then the client goes away
    body = b'{"m2m:cin": {"rn": "short", "con": "0123456789"}}'
    req = (b"POST /cse-in/app/c HTTP/1.1\r\nHost: x\r\nX-M2M-Origin: Capp\r\nX-M2M-RI: t\r\n"
           b"Content-Type: application/json;ty=4\r\nContent-Length: 20\r\n\r\n" + body)
    resp = raw(d.port, req)  # Content-Length shorter than the body
    must(resp.startswith(b"HTTP/1.1 400"), "Content-Length shorter than the body: 400 (malformed JSON)")
    raw(d.port, b"GARBAGE / HTTP/9.9\r\n\r\n")
    raw(d.port, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    raw(d.port, b"\x00\xff\x16\x03\x01" * 100)
    must(count_cins(d) == before, "nothing stored from truncated or mislabelled bodies")
    must(alive(d.port), "daemon answers after broken requests")

    # slow clients: a header dribbled byte by byte does not hold others up
    stop = threading.Event()

    def dribble():
        s = socket.create_connection(("127.0.0.1", d.port))
        for ch in b"GET /cse-in HTTP/1.1\r\nX-M2M-Origin: CAdmin\r\nX-M2M-RI: s\r\n":
            if stop.is_set():
                break
            s.send(bytes([ch]))
            time.sleep(0.05)
        s.close()
    slow = [threading.Thread(target=dribble) for _ in range(20)]
    for t in slow:
        t.start()
    time.sleep(0.3)
    t0 = time.time()
    ok = alive(d.port)
    must(ok and time.time() - t0 < 1.0, "served in %.3fs while 20 slow clients dribble" % (time.time() - t0))
    stop.set()
    for t in slow:
        t.join()


def parallel(d, n=1000):
    # n connections open at once: half idle/partial, half complete requests
    idle = []
    for i in range(n // 2):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        if i % 2:
            s.send(b"GET /cse-in HTTP/1.1\r\n")
        idle.append(s)
    results = []
    lock = threading.Lock()

    def one(i):
        try:
            st, h, _ = request(d.port, "GET", "/cse-in/app/c", hdr("Capp"), timeout=30)
            r = h.get("x-m2m-rsc")
        except Exception as e:  # refused or reset connections are failures here
            r = repr(e)
        with lock:
            results.append(r)
    t0 = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n - len(idle))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    good = results.count("2000")
    must(good == len(threads), "%d/%d parallel requests answered with %d other connections open (%.1fs)"
         % (good, len(threads), len(idle), time.time() - t0))
    for s in idle:
        s.close()
    must(alive(d.port), "daemon answers after 1,000 connections")


def same_instant(d, n=16):
    """la/ol and child order follow the creation sequence, never a clock nor a
    name: n creates released at once (same second, mostly the same
    millisecond), named so that name order differs from creation order."""
    st, h, b = request(d.port, "POST", "/cse-in/app", hdr("Capp", 3), json.dumps({"m2m:cnt": {"rn": "order"}}))
    assert h["x-m2m-rsc"] == "2001", b
    go = threading.Barrier(n)
    made = []
    lock = threading.Lock()

    def one(i):
        rn = "n%02d-%s" % ((i * 7) % n, "".join(random.choices(string.ascii_lowercase, k=6)))
        go.wait()
        st, h, b = request(d.port, "POST", "/cse-in/app/order", hdr("Capp", 4),
                           json.dumps({"m2m:cin": {"rn": rn, "con": i}}), timeout=30)
        with lock:
            made.append((h.get("x-m2m-rsc"), json.loads(b).get("m2m:cin", {})))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    must([m[0] for m in made] == ["2001"] * n, "%d simultaneous contentInstance creates" % n)
    # st (stateTag) is the container's counter copied at creation: the order
    # in which the creates took effect
    by_st = sorted((c["st"], c["rn"]) for _, c in made)
    must([s for s, _ in by_st] == list(range(1, n + 1)), "stateTags 1..%d, each once" % n)
    cts = {c["ct"] for _, c in made}
    names = [rn for _, rn in by_st]
    must(names != sorted(names), "creation order differs from name order (%d distinct ct)" % len(cts))
    st, h, b = request(d.port, "GET", "/cse-in/app/order/la", hdr("Capp"))
    must(json.loads(b)["m2m:cin"]["rn"] == names[-1], "la is the last create to take effect")
    st, h, b = request(d.port, "GET", "/cse-in/app/order/ol", hdr("Capp"))
    must(json.loads(b)["m2m:cin"]["rn"] == names[0], "ol is the first create to take effect")
    st, h, b = request(d.port, "GET", "/cse-in/app/order?rcn=4&ty=4", hdr("Capp"))
    must([c["rn"] for c in json.loads(b)["m2m:cnt"]["m2m:cin"]] == names, "rcn=4 children in creation order")
    request(d.port, "DELETE", "/cse-in/app/order/la", hdr("Capp"))
    st, h, b = request(d.port, "GET", "/cse-in/app/order/la", hdr("Capp"))
    must(json.loads(b)["m2m:cin"]["rn"] == names[-2], "after Delete of la, la is the one before")


def children_bound(d, n=1005, workers=8):
    """rcn 4/5/6/8 return at most 1,000 children without lim, oldest first;
    lim and ofst page through the rest (HCSE.md, Result content)."""
    st, h, b = request(d.port, "POST", "/cse-in/app", hdr("Capp", 3), json.dumps({"m2m:cnt": {"rn": "many"}}))
    assert h["x-m2m-rsc"] == "2001", b
    bad = []

    def some(w):
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        for i in range(w, n, workers):
            c.request("POST", "/cse-in/app/many?rcn=0", body=json.dumps({"m2m:cin": {"rn": "i%04d" % i, "con": i}}),
                      headers=hdr("Capp", 4))
            r = c.getresponse()
            r.read()
            if r.getheader("X-M2M-RSC") != "2001":
                bad.append(r.getheader("X-M2M-RSC"))
        c.close()
    t0 = time.time()
    ts = [threading.Thread(target=some, args=(w,)) for w in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    must(not bad, "%d contentInstances created (%.1fs)" % (n, time.time() - t0))

    def refs(q):
        st, h, b = request(d.port, "GET", "/cse-in/app/many?rcn=6" + q, hdr("Capp"))
        return [r["nm"] for r in json.loads(b)["m2m:rrl"]["rrf"]]
    first = refs("")
    st, h, b = request(d.port, "GET", "/cse-in/app/many/ol", hdr("Capp"))
    must(len(first) == 1000 and first[0] == json.loads(b)["m2m:cin"]["rn"],
         "rcn=6 without lim: 1,000 children, the oldest first")
    rest = refs("&ofst=1000")
    must(len(rest) == n - 1000 and not set(rest) & set(first), "ofst=1000 returns the other %d" % (n - 1000))
    must(refs("&lim=3") == first[:3], "lim=3: the 3 oldest")
    st, h, b = request(d.port, "GET", "/cse-in/app/many?rcn=4&lim=1005", hdr("Capp"))
    must(len(json.loads(b)["m2m:cnt"]["m2m:cin"]) == n, "rcn=4 with lim above 1,000 returns all %d" % n)
    request(d.port, "DELETE", "/cse-in/app/many", hdr("Capp"))


def crash_safety(workdir):
    db = os.path.join(workdir, "crash.db")
    d = Daemon(workdir)
    d.start(db=db)
    setup_ae_cnt(d.port)
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        i = 0
        while not stop.is_set():
            rn = "w%d-%d" % (w, i)
            try:
                st, h, _ = request(d.port, "POST", "/cse-in/app/c?rcn=0", hdr("Capp", 4),
                                   json.dumps({"m2m:cin": {"rn": rn, "con": rn}}), timeout=5)
            except OSError:
                return
            if h.get("x-m2m-rsc") == "2001":
                with lock:
                    acked.append(rn)
            i += 1
    ws = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in ws:
        t.start()
    time.sleep(1.5)
    d.proc.send_signal(signal.SIGKILL)  # a crash, not a clean stop
    d.proc.wait()
    stop.set()
    for t in ws:
        t.join()
    d.proc = None
    d.start(db=db)
    try:
        st, h, b = request(d.port, "GET", "/cse-in/app/c?fu=1&ty=4", hdr("Capp"), timeout=30)
        have = set(u.rsplit("/", 1)[1] for u in json.loads(b)["m2m:uril"])
        lost = [rn for rn in acked if rn not in have]
        must(len(acked) > 50 and not lost, "SIGKILL under 8 writers: all %d acknowledged creates survive" % len(acked))
        st, h, b = request(d.port, "GET", "/cse-in/app/c", hdr("Capp"))
        must(json.loads(b)["m2m:cnt"]["cni"] == len(have), "cni matches the stored instances after the crash")
    finally:
        d.stop()


class Got(list):
    """What hcse_runner's receiver has got so far, as (headers, JSON body)."""

    def __init__(self, srv):
        super().__init__()
        self.srv = srv

    def pull(self):
        while not self.srv.got.empty():
            _, h, data = self.srv.got.get()
            self.append((h, json.loads(data)))
        return self


def one_log_line(d, off, needle, what):
    """Exactly one line of hcsed's log since off has needle, and none is a per-notification one."""
    with open(d.log, errors="replace") as f:
        lines = f.read()[off:].splitlines()
    hits = [ln for ln in lines if needle in ln]
    must(len(hits) == 1 and not [ln for ln in lines if "notification to" in ln],
         "%s (%d lines)" % (what, len(lines)))


def notifications(d):
    srv = receiver()
    got = Got(srv)
    url = "http://127.0.0.1:%d/notify" % srv.server_address[1]
    try:
        st, h, b = request(d.port, "POST", "/cse-in", hdr("Cwatcher", 2),
                           json.dumps({"m2m:ae": {"rn": "watcher", "api": "Nw", "rr": True, "srv": ["3"], "poa": [url]}}))
        assert h["x-m2m-rsc"] == "2001", b
        # a URL that is not the subscriber: verified first (TS-0004 7.3.8.2.3)
        st, h, b = request(d.port, "POST", "/~/id-in/cse-in/app/c", hdr("Capp", 23),
                           json.dumps({"m2m:sub": {"rn": "s1", "nu": [url], "enc": {"net": [3, 4]}}}))
        must(h["x-m2m-rsc"] == "2001", "subscription with an HTTP nu created")
        vrq = [g for g in got.pull() if g[1].get("m2m:sgn", {}).get("vrq")]
        must(len(vrq) == 1 and vrq[0][1]["m2m:sgn"]["cr"] == "Capp" and vrq[0][1]["m2m:sgn"]["sur"] == "cse-in/app/c/s1",
             "verification request received before 201")
        # an AE-ID as nu: Capp needs NOTIFY (acop 16) on that AE, checked
        # before anything is sent to its poa (TS-0004 7.5.1.2.3)
        got.pull().clear()
        st, h, b = request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 23),
                           json.dumps({"m2m:sub": {"rn": "s2", "nu": ["Cwatcher"], "enc": {"net": [3]}}}))
        must(h["x-m2m-rsc"] == "5204" and not got.pull(),
             "AE-ID nu without NOTIFY privilege: 5204, nothing sent to its poa")
        st, h, b = request(d.port, "POST", "/cse-in/watcher", hdr("Cwatcher", 1),
                           json.dumps({"m2m:acp": {"rn": "n", "pv": {"acr": [{"acor": ["Capp"], "acop": 16}]},
                                                   "pvs": {"acr": [{"acor": ["Cwatcher"], "acop": 63}]}}}))
        assert h["x-m2m-rsc"] == "2001", b
        st, h, b = request(d.port, "PUT", "/cse-in/watcher", dict(hdr("Cwatcher"), **{"Content-Type": "application/json"}),
                           json.dumps({"m2m:ae": {"acpi": ["cse-in/watcher/n"]}}))
        assert h["x-m2m-rsc"] == "2004", b
        # with it: delivered to the AE's poa
        st, h, b = request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 23),
                           json.dumps({"m2m:sub": {"rn": "s2", "nu": ["Cwatcher"], "enc": {"net": [3]}}}))
        must(h["x-m2m-rsc"] == "2001", "subscription with an AE-ID nu created")
        time.sleep(0.5)  # s1 hears of s2's creation, asynchronously
        must(any(g[1]["m2m:sgn"].get("nev", {}).get("rep", {}).get("m2m:sub", {}).get("rn") == "s2"
                 for g in got.pull()), "s1 notified of the new subscription s2 (net 3)")
        got.pull().clear()
        request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 4), json.dumps({"m2m:cin": {"rn": "n1", "con": "hello"}}))
        request(d.port, "DELETE", "/cse-in/app/c/n1", hdr("Capp"))
        deadline = time.time() + 5
        while time.time() < deadline and len(got.pull()) < 3:
            time.sleep(0.05)
        time.sleep(0.3)
        nets = sorted(g[1]["m2m:sgn"]["nev"]["net"] for g in got.pull())
        must(nets == [3, 3, 4], "notifications: child created (x2 subscriptions), child deleted: %s" % nets)
        rep = [g[1]["m2m:sgn"]["nev"]["rep"] for g in got.pull() if g[1]["m2m:sgn"]["nev"]["net"] == 3][0]
        must(rep["m2m:cin"]["con"] == "hello", "the notification carries the created contentInstance")
        must(all(g[0].get("x-m2m-origin") == "/id-in" for g in got.pull()), "notifications come from the CSE-ID")
        # default event type: update of the subscribed-to resource (net 1)
        st, h, b = request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 23),
                           json.dumps({"m2m:sub": {"rn": "s3", "nu": ["Cwatcher"]}}))
        must(h["x-m2m-rsc"] == "2001", "subscription with the default enc created")
        time.sleep(0.3)
        got.pull().clear()
        request(d.port, "PUT", "/cse-in/app/c", dict(hdr("Capp"), **{"Content-Type": "application/json"}),
                json.dumps({"m2m:cnt": {"lbl": ["changed"]}}))
        deadline = time.time() + 5
        while time.time() < deadline and not got.pull():
            time.sleep(0.05)
        time.sleep(0.3)
        nets = [g[1]["m2m:sgn"]["nev"]["net"] for g in got.pull()]
        must(nets == [1] and got.pull()[0][1]["m2m:sgn"]["nev"]["rep"]["m2m:cnt"]["lbl"] == ["changed"],
             "update of the subscribed-to container notified once with net 1")
        # expirationCounter: two notifications, then the subscription is gone (with sud)
        st, h, b = request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 23),
                           json.dumps({"m2m:sub": {"rn": "s4", "nu": ["Cwatcher"], "exc": 2, "enc": {"net": [3]}}}))
        must(h["x-m2m-rsc"] == "2001", "subscription with exc 2 created")
        for i in range(2):
            request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 4), json.dumps({"m2m:cin": {"con": i}}))
        st, h, b = request(d.port, "GET", "/cse-in/app/c/s4", hdr("Capp"))
        must(h["x-m2m-rsc"] == "4004", "subscription deleted after exc notifications")
        deadline = time.time() + 5
        while time.time() < deadline and not any(g[1]["m2m:sgn"].get("sud") and g[1]["m2m:sgn"]["sur"].endswith("/s4")
                                                 for g in got.pull()):
            time.sleep(0.05)
        must(len([g for g in got.pull() if g[1]["m2m:sgn"].get("sur", "").endswith("/s4")
                  and g[1]["m2m:sgn"].get("nev")]) == 2, "exactly exc notifications sent")
        request(d.port, "DELETE", "/cse-in/app/c/s3", hdr("Capp"))
        deadline = time.time() + 5
        while time.time() < deadline and not any(g[1]["m2m:sgn"].get("sud") and g[1]["m2m:sgn"]["sur"].endswith("/s3")
                                                 for g in got.pull()):
            time.sleep(0.05)
        must(any(g[1]["m2m:sgn"].get("sud") and g[1]["m2m:sgn"]["sur"] == "cse-in/app/c/s3" for g in got.pull()),
             "deleting a subscription sends sud")
        # the receiver stops answering: one log line for the outage, not one
        # per lost notification (issue 6), and one when it answers again
        port = srv.server_address[1]
        time.sleep(0.5)  # the sud above is delivered
        off = os.path.getsize(d.log)
        srv.shutdown()
        srv.server_close()
        for i in range(5):  # s1 and s2 both notify url: 10 notifications lost
            request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 4), json.dumps({"m2m:cin": {"con": "lost%d" % i}}))
        time.sleep(1.5)
        one_log_line(d, off, "notification target at '%s' is unreachable" % url,
                     "a receiver that stops answering: one log line for 10 lost notifications")
        srv = receiver(port)
        got = Got(srv)
        request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 4), json.dumps({"m2m:cin": {"con": "back"}}))
        deadline = time.time() + 5
        back = []
        while time.time() < deadline and not back:
            time.sleep(0.1)
            with open(d.log, errors="replace") as f:
                back = [ln for ln in f.read()[off:].splitlines()
                        if "notification target at '%s' answers again" % url in ln]
        counted = [int(x) for x in re.findall(r"(\d+) requests? and (\d+) operations? failed", back[0])[0]] \
            if back else []
        must(len(back) == 1 and counted and min(counted) >= 10 and got.pull(),
             "the receiver answers again: one recovery line counting the lost ones: %s" % back)
        # it answers, but refuses: one line when that begins, one when it accepts again
        time.sleep(0.5)
        off = os.path.getsize(d.log)
        srv.refuse = True
        for i in range(5):  # s1 and s2: 10 notifications refused
            request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 4), json.dumps({"m2m:cin": {"con": "no%d" % i}}))
        deadline = time.time() + 5
        while time.time() < deadline and len(got.pull()) < 11:
            time.sleep(0.05)
        time.sleep(0.3)
        one_log_line(d, off, "notification target '%s' refuses notifications: HTTP 403, RSC 4103" % url,
                     "a receiver that refuses: one log line for 10 refused notifications")
        srv.refuse = False
        request(d.port, "POST", "/cse-in/app/c", hdr("Capp", 4), json.dumps({"m2m:cin": {"con": "yes"}}))
        again = []
        deadline = time.time() + 5
        while time.time() < deadline and not again:
            time.sleep(0.1)
            with open(d.log, errors="replace") as f:
                again = [ln for ln in f.read()[off:].splitlines()
                         if "notification target '%s' accepts notifications again" % url in ln]
        must(len(again) == 1 and re.search(r": 10 notifications refused meanwhile", again[0]),
             "the receiver accepts again: one line counting the 10 refused: %s" % again)
    finally:
        srv.shutdown()


def tls(workdir):
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=workdir,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=test-ca")
    for name, cn in (("server", "127.0.0.1"), ("client", "Ctls")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
             "-subj", "/CN=" + cn)
        with open(os.path.join(workdir, name + ".ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n" if name == "server" else "subjectAltName=URI:urn:onem2m:Ctls\n")
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")
    p = lambda f: os.path.join(workdir, f)  # noqa: E731
    d = Daemon(workdir, ["--tls-cert", p("server.pem"), "--tls-key", p("server.key"), "--tls-ca", p("ca.pem")])
    d.port = None
    logf = open(d.log, "ab")
    offset = logf.tell()
    d.proc = subprocess.Popen(["%s" % __import__("hcse_runner").HCSED, "--listen", "127.0.0.1:0",
                               "--db", p("tls.db"), "-d"] + d.extra, stdout=logf, stderr=logf)
    logf.close()
    port = started_port(d.log, d.proc, offset)
    ctx = ssl.create_default_context(cafile=p("ca.pem"))
    ctx.load_cert_chain(p("client.pem"), p("client.key"))

    def get(origin):
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        try:
            c.request("GET", "/cse-in", headers=hdr(origin))
            r = c.getresponse()
            r.read()
            return r.getheader("X-M2M-RSC")
        finally:
            c.close()
    try:
        for _ in range(100):
            try:
                get("Ctls")
                break
            except OSError:
                time.sleep(0.05)
        must(get("Ctls") == "2000", "TLS: certificate CN = X-M2M-Origin is served")
        must(get("Cimpostor") == "4106", "TLS: X-M2M-Origin not named by the certificate: 4106")
        noc = ssl.create_default_context(cafile=p("ca.pem"))
        try:
            c = http.client.HTTPSConnection("127.0.0.1", port, context=noc, timeout=10)
            c.request("GET", "/cse-in", headers=hdr("Ctls"))
            rsc = c.getresponse().getheader("X-M2M-RSC")
        except (OSError, ssl.SSLError):
            rsc = "refused"
        must(rsc in ("4106", "refused"), "TLS: no client certificate, not served (%s)" % rsc)
    finally:
        d.stop()
    # plain HTTP off loopback is refused unless asked for
    r = subprocess.run([__import__("hcse_runner").HCSED, "--listen", "0.0.0.0:1", "--db", p("x.db"), "-d"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    must(r.returncode != 0, "plain HTTP on a non-loopback address refused")


def config_file(workdir):
    conf = os.path.join(workdir, "hcsed.conf")
    with open(conf, "w") as f:
        f.write("# hcsed.conf(5)\ncse-rn = mycse\ncse-ri = myri\ncsi = /mycsi\nadmin = CBoss\n"
                "max-resources = 4\nmax-labels = 1\n")
    d = Daemon(workdir, ["-c", conf])
    logf = open(d.log, "ab")
    offset = logf.tell()
    d.proc = subprocess.Popen([__import__("hcse_runner").HCSED, "-c", conf, "--listen", "127.0.0.1:0",
                               "--db", os.path.join(workdir, "conf.db"), "-d"], stdout=logf, stderr=logf)
    logf.close()
    d.port = started_port(d.log, d.proc, offset)
    try:
        for _ in range(100):
            try:
                st, h, b = request(d.port, "GET", "/mycse", hdr("CBoss"))
                break
            except OSError:
                time.sleep(0.05)
        j = json.loads(b)["m2m:cb"]
        must(j["csi"] == "/mycsi" and j["ri"] == "myri", "config file: CSEBase names and CSE-ID")
        st, h, b = request(d.port, "GET", "/~/mycsi/mycse", hdr("CBoss"))
        must(h["x-m2m-rsc"] == "2000", "config file: SP-relative address with the configured CSE-ID")
        st, h, b = request(d.port, "POST", "/mycse", hdr("Cx", 2),
                           json.dumps({"m2m:ae": {"rn": "x", "api": "Nx", "rr": True, "srv": ["3"], "lbl": ["a", "b"]}}))
        must(h["x-m2m-rsc"] == "4000", "config file: max-labels")
        rscs = []
        for i in range(4):
            st, h, b = request(d.port, "POST", "/mycse", hdr("Cx%d" % i, 2),
                               json.dumps({"m2m:ae": {"api": "Nx", "rr": True, "srv": ["3"]}}))
            rscs.append(h["x-m2m-rsc"])
        must(rscs == ["2001", "2001", "2001", "5207"], "config file: max-resources (CSEBase + 3 AEs): %s" % rscs)
        request(d.port, "DELETE", "/~/mycsi/Cx0", hdr("Cx0"))
        st, h, b = request(d.port, "POST", "/mycse", hdr("Cx9", 2),
                           json.dumps({"m2m:ae": {"api": "Nx", "rr": True, "srv": ["3"]}}))
        must(h["x-m2m-rsc"] == "2001", "config file: a delete makes room again")
    finally:
        d.stop()
    r = subprocess.run([__import__("hcse_runner").HCSED, "-c", "/nonexistent.conf", "-d"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    must(r.returncode != 0, "a missing config file is an error")


def service_manager(workdir):
    path = os.path.join(workdir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    log = os.path.join(workdir, "sd.log")
    logf = open(log, "ab")
    p = subprocess.Popen([__import__("hcse_runner").HCSED, "--listen", "127.0.0.1:0",
                          "--db", os.path.join(workdir, "notify.db"), "-d"], env=env,
                         stdout=logf, stderr=logf)
    logf.close()
    try:
        msg = sock.recv(256)
        port = started_port(log, p)
        must(msg == b"READY=1" and alive(port), "READY=1 to $NOTIFY_SOCKET once serving")
        p.send_signal(signal.SIGTERM)
        must(sock.recv(256) == b"STOPPING=1", "STOPPING=1 on SIGTERM")
        must(p.wait(timeout=10) == 0, "clean exit on SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        sock.close()


def started_port(log, proc, offset=0, timeout=10):
    """The port an hcsed started with --listen 127.0.0.1:0 logs."""
    import re
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("hcsed exited: see %s" % log)
        with open(log, errors="replace") as f:
            f.seek(offset)
            m = re.search(r"serving .* on https?://[^\s]*:(\d+)\s*$", f.read(), re.M)
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError("hcsed did not start")


def main():
    parts = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="hcse-robust.") as tmp:
        d = Daemon(tmp)
        d.start()
        failed = False
        try:
            setup_ae_cnt(d.port)
            for name, fn in (("big", big_content), ("broken", broken_clients),
                             ("parallel", parallel), ("notify", notifications), ("order", same_instant),
                             ("bounds", children_bound)):
                if not parts or name in parts:
                    fn(d)
            if not parts or "maxbody" in parts:
                max_body(tmp)
            if not parts or "wal" in parts:
                wal_bounded(tmp)
            if not parts or "crash" in parts:
                crash_safety(tmp)
            if not parts or "tls" in parts:
                tls(tmp)
            if not parts or "config" in parts:
                config_file(tmp)
            if not parts or "sd" in parts:
                service_manager(tmp)
        except AssertionError as e:
            print("not ok - %s" % e)
            failed = True
        finally:
            rc = d.stop()
        rep = d.sanitizer_report()
        if rep:
            print("not ok - sanitizer report:\n" + rep)
            failed = True
        if rc != 0:
            print("not ok - hcsed exited with %d" % rc)
            failed = True
        if failed:
            print(open(d.log, errors="replace").read()[-3000:])
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
