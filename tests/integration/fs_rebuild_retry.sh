#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A mount with an empty cache rebuilds its namespace from the containers at the
# HCSE: one that fails to answer once (a 503 from a proxy in front of hcsed) is
# read again, not skipped; skipped, the directory and its files were missing
# from that cache for good and listing it gave ENOENT.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
mkdir "$M/d"
printf 'inside\n' >"$M/d/f"
wait_synced "$M/d/f" "$M/d"
dino=$(stat -c %i "$M/d")
umount_atrestfs "$M"

# a proxy that answers the first read of d's container with 503
PPORT=$((20000 + RANDOM % 20000))
/usr/bin/python3 - "$PPORT" "$HCSE_PORT" "/cse-in/atrestfs/i$dino" "$T/failed" <<'PYEOF' 2>>"$T/proxy.log" &
import http.client, http.server, os, sys
port, up, victim, flag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
class P(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def relay(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if self.command == "GET" and self.path == victim and not os.path.exists(flag):
            open(flag, "w").close()
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        c = http.client.HTTPConnection("127.0.0.1", up, timeout=30)
        c.request(self.command, self.path, body or None,
                  {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")})
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        c.close()
    do_GET = do_POST = do_PUT = do_DELETE = relay
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), P).serve_forever()
PYEOF
PROXY_PID=$!
at_exit "kill $PROXY_PID"
for ((i = 0; i < 50; i++)); do
	curl -s -o /dev/null -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' -H 'X-M2M-RVI: 3' \
		"http://127.0.0.1:$PPORT/cse-in" && break
	sleep 0.1
done

HCSE_URL=http://127.0.0.1:$PPORT/cse-in
mount_atrestfs "$M" "$T/fresh"
[ -e "$T/failed" ] || fail "the proxy never failed the read of d's container"
ls "$M/d" >"$T/ls.out" 2>&1 || fail "d is missing after a rebuild that met one failed read: $(cat "$T/ls.out")"
[ "$(cat "$M/d/f")" = inside ] || fail "d/f does not read back after the rebuild"
ok "a container read that failed once during the rebuild was retried: d and d/f are there"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
