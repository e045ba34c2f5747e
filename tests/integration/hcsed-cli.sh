#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# hcsed's command line as documented in hcsed(8): the default listen address, --cse-rn/--cse-ri/--csi/--admin, --allow-plain off loopback, and --max-body on a chunked body.
. "$ATREST_SRC/tests/integration/lib.sh"
# a private network namespace: port 8080 (the default) is ours, and
# 10.77.0.1 is an address that is not loopback
enter_netns
HCSED=$ATREST_BUILD/hcsed/hcsed
PIDS=()

# run_hcsed NAME ARGS...: hcsed -d in the background with its log in $T/NAME.log.
run_hcsed() {
	local name=$1
	shift
	"$HCSED" -d "$@" 2>>"$T/$name.log" &
	PIDS+=($!)
	at_exit "kill $!; wait $!"
}

# req URL ORIGIN [CURL-ARGS...]: a oneM2M request; the body goes to $T/out, the RSC to $T/rsc.
req() {
	local url=$1 who=$2
	shift 2
	curl -s -m 10 -D "$T/headers" -o "$T/out" -H "X-M2M-Origin: $who" -H 'X-M2M-RI: c' \
		-H 'X-M2M-RVI: 3' "$@" "$url" || true
	tr -d '\r' <"$T/headers" 2>/dev/null | sed -n 's/^X-M2M-RSC: //Ip' >"$T/rsc"
}

# wait_up URL: until the CSEBase (of any name) answers, or fail.
wait_up() {
	local i
	for ((i = 0; i < 100; i++)); do
		curl -s -m 2 -o /dev/null -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: w' "$1" && return 0
		sleep 0.1
	done
	fail "nothing answers on $1"
}

rsc_is() { [ "$(cat "$T/rsc")" = "$1" ] || fail "$2: RSC $(cat "$T/rsc"), expected $1 ($(head -c 300 "$T/out"))"; }

AE='{"m2m:ae":{"rn":"app","api":"Napp","rr":true,"srv":["3"]}}'

# 1. Without --listen: 127.0.0.1:8080, and only there.
run_hcsed default --db "$T/default.db"
wait_up http://127.0.0.1:8080/cse-in
req http://127.0.0.1:8080/cse-in CAdmin
rsc_is 2000 "default listen"
grep -q '"csi":"/id-in"' "$T/out" || fail "default CSE-ID: $(cat "$T/out")"
rc=0
curl -s -m 3 -o /dev/null http://10.77.0.1:8080/cse-in || rc=$?
[ $rc = 7 ] || fail "the default listen address also answers on 10.77.0.1 (curl exit $rc)"
ok "without --listen hcsed serves 127.0.0.1:8080 (and not 10.77.0.1:8080)"
stop_pid "${PIDS[-1]}"

# 2. --cse-rn, --cse-ri, --csi, --admin on the command line (config keys:
# hcse_robust.py config); the command line wins over the file.
printf 'cse-rn = fromfile\nadmin = CFile\n' >"$T/names.conf"
run_hcsed names -c "$T/names.conf" --listen 127.0.0.1:8081 --db "$T/names.db" \
	--cse-rn mycse --cse-ri myri --csi /mycsi --admin CBoss
wait_up http://127.0.0.1:8081/mycse
req http://127.0.0.1:8081/mycse CBoss
rsc_is 2000 "--cse-rn"
/usr/bin/python3 -c '
import json, sys
cb = json.load(open(sys.argv[1]))["m2m:cb"]
assert cb["rn"] == "mycse" and cb["ri"] == "myri" and cb["csi"] == "/mycsi" and cb["ty"] == 5, cb' "$T/out" ||
	fail "CSEBase names: $(cat "$T/out")"
req http://127.0.0.1:8081/fromfile CBoss
rsc_is 4004 "the config file's cse-rn overridden"
req http://127.0.0.1:8081/~/mycsi/mycse CBoss
rsc_is 2000 "SP-relative address with --csi"
req http://127.0.0.1:8081/myri CBoss
rsc_is 2000 "unstructured address with --cse-ri"
req http://127.0.0.1:8081/~/id-in/mycse CBoss
rsc_is 4004 "the default CSE-ID is another CSE now"
ok "--cse-rn/--cse-ri/--csi name the CSEBase (and win over the config file)"
# the admin (--admin) may update the CSEBase; CAdmin and CFile are nobody special now
for who in CAdmin CFile; do
	req http://127.0.0.1:8081/mycse $who -X PUT -H 'Content-Type: application/json' -d '{"m2m:cb":{"lbl":["x"]}}'
	rsc_is 4103 "$who updating the CSEBase"
done
req http://127.0.0.1:8081/mycse CBoss -X PUT -H 'Content-Type: application/json' -d '{"m2m:cb":{"lbl":["boss"]}}'
rsc_is 2004 "--admin updating the CSEBase"
req http://127.0.0.1:8081/mycse Capp -H 'Content-Type: application/json;ty=2' -d "$AE"
rsc_is 2001 "AE registration"
req http://127.0.0.1:8081/mycse/app CBoss
rsc_is 2000 "--admin retrieving another's AE"
req http://127.0.0.1:8081/mycse/app CAdmin
rsc_is 4103 "CAdmin retrieving another's AE"
ok "--admin CBoss has every privilege, CAdmin none"
stop_pid "${PIDS[-1]}"

# 3. Plain HTTP off loopback: refused unless --allow-plain (or allow-plain = yes).
rc=0
timeout 5 "$HCSED" -d --listen 10.77.0.1:8082 --db "$T/plain0.db" 2>>"$T/plain.log" || rc=$?
[ $rc != 0 ] && [ $rc != 124 ] || fail "plain HTTP on 10.77.0.1 without --allow-plain started (exit $rc)"
ok "plain HTTP on 10.77.0.1 without --allow-plain: refused at start (exit $rc)"
run_hcsed plain --listen 10.77.0.1:8082 --db "$T/plain.db" --allow-plain
wait_up http://10.77.0.1:8082/cse-in
req http://10.77.0.1:8082/cse-in Capp -H 'Content-Type: application/json;ty=2' -d "$AE"
rsc_is 2001 "AE registration over plain HTTP on 10.77.0.1"
ok "--allow-plain serves plain HTTP on 10.77.0.1"
stop_pid "${PIDS[-1]}"
printf 'listen = 10.77.0.1:8083\nallow-plain = yes\n' >"$T/plain.conf"
run_hcsed plainconf -c "$T/plain.conf" --db "$T/plainconf.db"
wait_up http://10.77.0.1:8083/cse-in
ok "allow-plain = yes in hcsed.conf does the same"
stop_pid "${PIDS[-1]}"

# 4. --max-body against a chunked body (no Content-Length: the cap must hold
# while the body streams in), nothing stored.
run_hcsed maxbody --listen 127.0.0.1:8084 --db "$T/maxbody.db" --max-body 1024
wait_up http://127.0.0.1:8084/cse-in
B=http://127.0.0.1:8084/cse-in
req $B Capp -H 'Content-Type: application/json;ty=2' -d "$AE"
rsc_is 2001 "setup AE"
req $B/app Capp -H 'Content-Type: application/json;ty=3' -d '{"m2m:cnt":{"rn":"c"}}'
rsc_is 2001 "setup container"
# printf "%0Ns": N spaces, turned into as many x
printf '{"m2m:cin":{"rn":"small","con":"%s"}}' "$(printf '%0900s' '' | tr ' ' x)" >"$T/small.json"
printf '{"m2m:cin":{"rn":"big","con":"%s"}}' "$(printf '%0200000s' '' | tr ' ' x)" >"$T/big.json"
req $B/app/c Capp -H 'Content-Type: application/json;ty=4' -H 'Transfer-Encoding: chunked' --data-binary @"$T/small.json"
rsc_is 2001 "a chunked body under --max-body"
code=$(curl -s -m 10 -o "$T/out" -D "$T/headers" -w '%{http_code}' -H 'X-M2M-Origin: Capp' -H 'X-M2M-RI: big' \
	-H 'Content-Type: application/json;ty=4' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json" \
	--trace-ascii "$T/trace" "$B/app/c") || true
# the premise: the request went out chunked, without a Content-Length
grep -qi '^0000: POST' "$T/trace" && grep -qi 'Transfer-Encoding: chunked' "$T/trace" &&
	! grep -qi 'Content-Length:.*[0-9]' <(sed -n '/=> Send header/,/=> Send data/p' "$T/trace") ||
	fail "curl did not send the body chunked"
tr -d '\r' <"$T/headers" | sed -n 's/^X-M2M-RSC: //Ip' >"$T/rsc"
[ "$code" = 413 ] || fail "a chunked body over --max-body: HTTP $code ($(head -c 200 "$T/out"))"
rsc_is 5207 "a chunked body over --max-body"
req $B/app/c/big Capp
rsc_is 4004 "the refused chunked body"
req $B/app/c Capp
grep -q '"cni":1' "$T/out" || fail "cni after the refused chunked body: $(cat "$T/out")"
req $B/app/c/la Capp
grep -q '"rn":"small"' "$T/out" || fail "la after the refused chunked body: $(cat "$T/out")"
ok "a chunked body over --max-body: 413 / 5207, nothing stored, the daemon serves on"
stop_pid "${PIDS[-1]}"

check_sanitizer_logs "$T"/*.log
ok "hcsed command line"
