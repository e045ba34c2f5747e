#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Runs the HCSE conformance fixtures (tests/data/hcse/*.case) against a real
# hcsed on 127.0.0.1, one fresh database per case.
#
# Python's standard library rather than a C/libcurl runner: the fixtures need
# JSON-aware matching (subsets, integer types, wildcards, captured ids), and
# the robustness part needs raw sockets to send broken HTTP; both are a few
# lines here and need no package beyond python3, already in tests/run.sh.
#
# A case file is a sequence of blocks (curl's test files keep request and
# expectation side by side the same way):
#   === request            METHOD PATH, headers, blank line, body
#   === expect             status N | rsc N | header NAME: VALUE |
#                          no-header NAME | json {subset} | save NAME a/b/c
#   === sleep SECONDS
#   === notification       the next notification hcsed POSTed to ${notify}
#                          (a receiver on 127.0.0.1, answering 2000), checked
#                          with the expectations above (header, json, save)
#   === quiet SECONDS      no notification arrives within SECONDS
#   === config             lines of hcsed.conf: written, and the daemon
#                          (re)started with -c on it (first block: started so)
#   === reload             new lines of hcsed.conf, then SIGHUP; waits for
#                          hcsed's "configuration reloaded" (or "... failed")
#   === log REGEX          a line of hcsed's log matches REGEX
# In requests and expectations ${NAME} is a saved value, ${now+N} a
# timestamp N seconds from now, ${body:N:C} N bytes of character C,
# ${notify} the receiver's URL.
# In json subsets: "$any", "$int" (a JSON integer), "$str", "$ts"
# (YYYYMMDDTHHMMSS), "$absent", "$re:REGEX".
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client
import http.server
import queue
import threading

BUILD = os.environ.get("ATREST_BUILD", "build")
HCSED = os.path.join(BUILD, "hcsed", "hcsed")


class Daemon:
    """One hcsed on a fresh port; state in `workdir`."""

    def __init__(self, workdir, extra=()):
        self.workdir = workdir
        self.extra = list(extra)
        self.proc = None
        self.port = None
        self.log = os.path.join(workdir, "hcsed.log")

    def start(self, db=None, port=None):
        db = db or os.path.join(self.workdir, "hcse.db")
        logf = open(self.log, "ab")
        offset = logf.tell()
        # port 0: the kernel picks a free port, hcsed logs which (no race
        # with other programs for a port chosen in advance)
        self.proc = subprocess.Popen(
            [HCSED, "--listen", "127.0.0.1:%d" % (port or 0), "--db", db, "-d"] + self.extra,
            stdout=logf, stderr=logf)
        logf.close()
        self.port = port
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("hcsed exited: see %s" % self.log)
            if not self.port:
                with open(self.log, errors="replace") as f:
                    f.seek(offset)
                    m = re.search(r"serving .* on https?://[^\s]*:(\d+)(?: \(.*\))?\s*$", f.read(), re.M)
                if not m:
                    time.sleep(0.02)
                    continue
                self.port = int(m.group(1))
            try:
                st, _, _ = request(self.port, "GET", "/cse-in", {"X-M2M-Origin": "CAdmin", "X-M2M-RI": "up"})
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("hcsed did not answer")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("hcsed did not stop on SIGTERM")
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    def sanitizer_report(self):
        try:
            text = open(self.log, errors="replace").read()
        except OSError:
            return None
        m = re.search(r"ERROR: (Address|Leak|Thread|Undefined)Sanitizer|runtime error:", text)
        return text[m.start():m.start() + 3000] if m else None


def request(port, method, path, headers, body=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


class Receiver(http.server.BaseHTTPRequestHandler):
    """Notification target: queues (headers, body) and answers 2000, or 4103
    (403) while the server's `refuse` is set."""

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n)
        self.server.got.put((200, {k.lower(): v for k, v in self.headers.items()}, data))
        refuse = getattr(self.server, "refuse", False)
        self.send_response(403 if refuse else 200)
        self.send_header("X-M2M-RSC", "4103" if refuse else "2000")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def receiver(port=0):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    srv.got = queue.Queue()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def wait_log(path, regex, offset=0, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, errors="replace") as f:
            f.seek(offset)
            if re.search(regex, f.read(), re.M):
                return True
        time.sleep(0.05)
    return False


def ts(t):
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t))


def expand(text, saved):
    def sub(m):
        key = m.group(1)
        if key.startswith("now"):
            off = int(key[3:] or 0)
            return ts(time.time() + off)
        if key.startswith("body:"):
            _, n, ch = key.split(":", 2)
            return ch * int(n)
        if key not in saved:
            raise KeyError("unknown variable ${%s}" % key)
        return str(saved[key])
    return re.sub(r"\$\{([^}]+)\}", sub, text)


def match(exp, act, where="$"):
    """Returns None when act matches the expected subset, else a reason."""
    if isinstance(exp, str) and exp.startswith("$"):
        if exp == "$any":
            return None
        if exp == "$int":
            return None if isinstance(act, int) and not isinstance(act, bool) else "%s: %r is not an integer" % (where, act)
        if exp == "$str":
            return None if isinstance(act, str) else "%s: %r is not a string" % (where, act)
        if exp == "$ts":
            return None if isinstance(act, str) and re.fullmatch(r"\d{8}T\d{6}(,\d+)?", act) else "%s: %r is not a timestamp" % (where, act)
        if exp.startswith("$re:"):
            return None if isinstance(act, str) and re.fullmatch(exp[4:], act) else "%s: %r does not match %s" % (where, act, exp[4:])
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return "%s: expected an object, got %r" % (where, act)
        for k, v in exp.items():
            if v == "$absent":
                if k in act:
                    return "%s/%s: should be absent, is %r" % (where, k, act[k])
                continue
            if k not in act:
                return "%s/%s: missing" % (where, k)
            why = match(v, act[k], where + "/" + k)
            if why:
                return why
        return None
    if isinstance(exp, list):
        if not isinstance(act, list) or len(act) != len(exp):
            return "%s: expected a list of %d, got %r" % (where, len(exp), act)
        for i, (e, a) in enumerate(zip(exp, act)):
            why = match(e, a, "%s[%d]" % (where, i))
            if why:
                return why
        return None
    if type(exp) is not type(act) or exp != act:
        return "%s: expected %r, got %r" % (where, exp, act)
    return None


def parse_case(text):
    blocks = []
    cur = None
    for line in text.split("\n"):
        if line.startswith("=== "):
            cur = [line[4:].strip(), []]
            blocks.append(cur)
        elif cur is not None:
            cur[1].append(line)
        elif line and not line.startswith("#"):
            raise ValueError("text before the first block: %r" % line)
    return blocks


def run_request(port, lines, saved):
    text = expand("\n".join(lines), saved)
    head, _, body = text.partition("\n\n")
    hl = head.split("\n")
    method, path = hl[0].split(" ", 1)
    headers = {}
    for h in hl[1:]:
        if h.strip():
            k, v = h.split(":", 1)
            headers[k.strip()] = v.strip()
    body = body.rstrip("\n")
    data = body.encode() if body else None
    return request(port, method, path.strip(), headers, data)


def check(resp, lines, saved):
    status, headers, data = resp
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        rest = expand(rest, saved)
        if word == "status":
            if status != int(rest):
                return "status %d, expected %s (body %s)" % (status, rest, data[:300])
        elif word == "rsc":
            if headers.get("x-m2m-rsc") != rest:
                return "X-M2M-RSC %s, expected %s (body %s)" % (headers.get("x-m2m-rsc"), rest, data[:300])
        elif word == "header":
            k, v = rest.split(":", 1)
            if headers.get(k.strip().lower()) != v.strip():
                return "header %s is %r, expected %r" % (k, headers.get(k.strip().lower()), v.strip())
        elif word == "no-header":
            if rest.strip().lower() in headers:
                return "header %s should be absent" % rest
        elif word == "json":
            try:
                act = json.loads(data)
            except ValueError:
                return "body is not JSON: %r" % data[:300]
            why = match(json.loads(rest), act)
            if why:
                return why + " (body %s)" % data[:400]
        elif word == "body-empty":
            if data:
                return "body should be empty, is %r" % data[:200]
        elif word == "save":
            name, path = rest.split(" ", 1)
            v = json.loads(data)
            for p in path.strip().split("/"):
                v = v[int(p)] if isinstance(v, list) else v[p]
            saved[name] = v
        elif word == "save-header":
            name, h = rest.split(" ", 1)
            saved[name] = headers.get(h.strip().lower())
        else:
            return "unknown expectation %r" % word
    return None


def run_case(path, workdir):
    blocks = parse_case(open(path).read())
    conf = os.path.join(workdir, "hcsed.conf")
    d = Daemon(workdir)
    if blocks and blocks[0][0] == "config":
        open(conf, "w").write("\n".join(blocks[0][1]) + "\n")
        d.extra = ["-c", conf]
        blocks = blocks[1:]
    d.start()
    recv = receiver()
    saved = {"notify": "http://127.0.0.1:%d/notify" % recv.server_address[1]}
    resp = None
    try:
        for n, (kind, lines) in enumerate(blocks):
            if kind == "notification":
                try:
                    note = recv.got.get(timeout=10)
                except queue.Empty:
                    return "block %d: no notification arrived" % (n + 1)
                why = check(note, lines, saved)
                if why:
                    return "block %d: notification: %s" % (n + 1, why)
            elif kind.startswith("quiet"):
                try:
                    note = recv.got.get(timeout=float(kind.split()[1]))
                    return "block %d: unexpected notification %s" % (n + 1, note[2][:300])
                except queue.Empty:
                    pass
            elif kind == "reload":
                offset = os.path.getsize(d.log)
                open(conf, "w").write(expand("\n".join(lines), saved) + "\n")
                d.proc.send_signal(signal.SIGHUP)
                if not wait_log(d.log, r"configuration reload(ed|\b.*failed)", offset):
                    return "block %d: hcsed did not log a reload after SIGHUP" % (n + 1)
            elif kind.startswith("log "):
                if not wait_log(d.log, kind[4:].strip()):
                    return "block %d: no log line matches %r" % (n + 1, kind[4:])
            elif kind == "request":
                resp = run_request(d.port, lines, saved)
            elif kind == "expect":
                why = check(resp, lines, saved)
                if why:
                    return "block %d: %s" % (n + 1, why)
            elif kind.startswith("sleep"):
                time.sleep(float(kind.split()[1]))
            elif kind == "restart":
                if d.stop() != 0:
                    return "hcsed exited non-zero on SIGTERM"
                d.start()
            else:
                return "unknown block %r" % kind
    finally:
        rc = d.stop()
        recv.shutdown()
        recv.server_close()
    rep = d.sanitizer_report()
    if rep:
        return "sanitizer report:\n" + rep
    if rc != 0:
        return "hcsed exited with %d" % rc
    return None


def main():
    cases = sys.argv[1:] or [os.path.join(os.environ["ATREST_SRC"], "tests", "data", "hcse")]
    files = []
    for c in cases:
        if os.path.isdir(c):
            files += sorted(os.path.join(c, f) for f in os.listdir(c) if f.endswith(".case"))
        else:
            files.append(c)
    if not files:
        print("no cases")
        return 1
    failed = 0
    with tempfile.TemporaryDirectory(prefix="hcse-conf.") as tmp:
        for i, f in enumerate(files):
            wd = os.path.join(tmp, str(i))
            os.mkdir(wd)
            name = os.path.basename(f)
            try:
                why = run_case(f, wd)
            except Exception as e:  # a broken fixture or a dead daemon fails the case
                why = "%s: %s" % (type(e).__name__, e)
            if why:
                failed += 1
                print("not ok %d - %s: %s" % (i + 1, name, why))
                try:
                    print("".join(open(os.path.join(wd, "hcsed.log"), errors="replace").readlines()[-20:]))
                except OSError:
                    pass
            else:
                print("ok %d - %s" % (i + 1, name))
    print("%d/%d cases passed" % (len(files) - failed, len(files)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
