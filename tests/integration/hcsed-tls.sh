#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# hcsed over real TLS: TLS without a client CA is refused at start, every request needs a client certificate whose CN/SAN names X-M2M-Origin (4106), and only then may HTTPS serve a non-loopback address.
. "$ATREST_SRC/tests/integration/lib.sh"
enter_netns
. "$ATREST_SRC/tests/integration/client_lib.sh"
command -v openssl >/dev/null || skip "openssl is not installed"

make_pki CAdmin Capp Cother

# expect_refused WHAT HCSED-ARGS...: hcsed must exit non-zero at once, before
# serving or creating its database (a daemon still running after 5 s fails).
expect_refused() {
	local what=$1 rc=0
	shift
	rm -f "$T/refused.db"
	timeout 5 "$HCSED" --db "$T/refused.db" -d "$@" 2>>"$T/hcsed.log" || rc=$?
	[ $rc != 0 ] && [ $rc != 124 ] || fail "$what: hcsed started (exit $rc)"
	[ ! -e "$T/refused.db" ] || fail "$what: a database was created"
	ok "$what: refused at start (exit $rc)"
}

# 1. Issue 4: TLS means client certificates. Without --tls-ca none are asked
# for, so any X-M2M-Origin (even the admin's) would be taken on trust.
tls_noca=(--tls-cert "$PKI/hcsed.crt" --tls-key "$PKI/hcsed.key")
expect_refused "--tls-cert/--tls-key without --tls-ca on loopback" --listen 127.0.0.1:8443 "${tls_noca[@]}"
expect_refused "--tls-cert/--tls-key without --tls-ca off loopback" --listen 0.0.0.0:8443 "${tls_noca[@]}"
printf 'listen = 0.0.0.0:8443\ntls-cert = %s\ntls-key = %s\n' "$PKI/hcsed.crt" "$PKI/hcsed.key" >"$T/noca.conf"
expect_refused "tls-cert/tls-key without tls-ca in hcsed.conf" -c "$T/noca.conf"
expect_refused "--tls-ca without a certificate" --listen 127.0.0.1:8443 --tls-ca "$PKI/ca.crt"

# 2. Mutual TLS on every address (not loopback: allowed because it is TLS).
"$HCSED" --listen 0.0.0.0:8443 --db "$T/hcse.db" -d --tls-cert "$PKI/hcsed.crt" \
	--tls-key "$PKI/hcsed.key" --tls-ca "$PKI/ca.crt" 2>>"$T/hcsed.log" &
HCSED_PID=$!
at_exit "kill $HCSED_PID; wait $HCSED_PID"
HCSE_URL=https://127.0.0.1:8443/cse-in
for ((i = 0; i < 100; i++)); do
	(exec 3<>/dev/tcp/127.0.0.1/8443) 2>/dev/null && break
	kill -0 $HCSED_PID 2>/dev/null || fail "hcsed with --tls-ca on 0.0.0.0 did not start"
	sleep 0.1
done
ok "HTTPS with --tls-ca may listen on 0.0.0.0"

AE='{"m2m:ae":{"rn":"app","api":"Napp","rr":true,"srv":["3"]}}'
# nocert ORIGIN CURL-ARGS...: a request with the CA but no client certificate;
# prints "HTTP-STATUS RSC" ("000 -" when the handshake itself failed).
nocert() {
	local who=$1 code
	shift
	code=$(curl -s -o "$T/nocert.body" -D "$T/nocert.h" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H "X-M2M-Origin: $who" -H 'X-M2M-RI: n' -H 'X-M2M-RVI: 3' "$@") || true
	echo "$code $(tr -d '\r' <"$T/nocert.h" 2>/dev/null | sed -n 's/^X-M2M-RSC: //Ip' | grep . || echo -)"
}
for who in CAdmin Capp; do
	got=$(nocert "$who" -H 'Content-Type: application/json;ty=2' -d "$AE" "$HCSE_URL")
	case "$got" in
	"403 4106" | "000 -") ;;
	*) fail "HTTPS without a client certificate as $who: $got (body $(cat "$T/nocert.body" 2>/dev/null))" ;;
	esac
	ok "HTTPS without a client certificate, X-M2M-Origin $who: not served ($got)"
done
got=$(nocert CAdmin "$HCSE_URL")
case "$got" in "403 4106" | "000 -") ;; *) fail "certificate-less Retrieve of the CSEBase: $got" ;; esac
ok "certificate-less Retrieve of the CSEBase not served either ($got)"

# cert_as CERT ORIGIN CURL-ARGS...: a request with CERT's client certificate
# claiming X-M2M-Origin ORIGIN; the RSC goes to $T/rsc.
cert_as() {
	local cert=$1 who=$2
	shift 2
	curl -s -D "$T/headers" -o "$T/out" --cacert "$PKI/ca.crt" --cert "$PKI/$cert.crt" \
		--key "$PKI/$cert.key" -H "X-M2M-Origin: $who" -H 'X-M2M-RI: c' -H 'X-M2M-RVI: 3' "$@"
	tr -d '\r' <"$T/headers" | sed -n 's/^X-M2M-RSC: //Ip' >"$T/rsc"
}
# A certificate names one originator only, the admin's included.
cert_as Capp CAdmin "$HCSE_URL"
[ "$(cat "$T/rsc")" = 4106 ] || fail "Capp's certificate claiming CAdmin: RSC $(cat "$T/rsc")"
cert_as Capp CAdmin -H 'Content-Type: application/json;ty=2' -d "$AE" "$HCSE_URL"
[ "$(cat "$T/rsc")" = 4106 ] || fail "Capp's certificate registering as CAdmin: RSC $(cat "$T/rsc")"
ok "Capp's certificate with X-M2M-Origin CAdmin: 4106"
cert_as Capp Capp -H 'Content-Type: application/json;ty=2' -d "$AE" "$HCSE_URL"
[ "$(cat "$T/rsc")" = 2001 ] || fail "Capp registering as itself: RSC $(cat "$T/rsc") $(cat "$T/out")"
ok "Capp's certificate with X-M2M-Origin Capp: AE registered (2001)"
cert_as Cother Capp -X DELETE "$HCSE_URL/app"
[ "$(cat "$T/rsc")" = 4106 ] || fail "Cother's certificate deleting as Capp: RSC $(cat "$T/rsc")"
cert_as CAdmin CAdmin "$HCSE_URL/app"
[ "$(cat "$T/rsc")" = 2000 ] || fail "the admin with its own certificate: RSC $(cat "$T/rsc")"
ok "Cother's certificate cannot act as Capp (4106); the app is still there for CAdmin's own certificate"

# The originator named by a URI subjectAltName only (TS-0003 10.1.1.5
# "oneM2M://<domain>/<AE-ID>"), with a CN that is no AE-ID; a URI merely
# ending in the name ("/xCdev") names nobody.
# san_cert NAME CN URI: a client certificate from the test CA.
san_cert() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$1.key" 2>/dev/null
	openssl req -new -key "$PKI/$1.key" -subj "/O=atrest/CN=$2" -out "$T/$1.csr" 2>/dev/null
	printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:%s\n' "$3" >"$T/$1.ext"
	openssl x509 -req -in "$T/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
		-days 2 -sha256 -extfile "$T/$1.ext" -out "$PKI/$1.crt" 2>/dev/null || fail "cannot issue $1"
}
san_cert dev device-42 oneM2M://atrest.example/Cdev
san_cert suffix device-43 oneM2M://atrest.example/xCdev
cert_as dev Cdev -H 'Content-Type: application/json;ty=2' -d '{"m2m:ae":{"rn":"dev","api":"Ndev","rr":true,"srv":["3"]}}' "$HCSE_URL"
[ "$(cat "$T/rsc")" = 2001 ] || fail "URI SAN .../Cdev registering as Cdev: RSC $(cat "$T/rsc") $(cat "$T/out")"
cert_as dev device-42 "$HCSE_URL"
[ "$(cat "$T/rsc")" = 2000 ] || fail "the CN device-42 as originator: RSC $(cat "$T/rsc")"
cert_as dev Capp "$HCSE_URL/app"
[ "$(cat "$T/rsc")" = 4106 ] || fail "URI SAN .../Cdev claiming Capp: RSC $(cat "$T/rsc")"
cert_as suffix Cdev "$HCSE_URL/dev"
[ "$(cat "$T/rsc")" = 4106 ] || fail "URI SAN .../xCdev claiming Cdev: RSC $(cat "$T/rsc")"
ok "a URI SAN oneM2M://domain/Cdev authenticates Cdev (or the CN); .../xCdev does not (4106)"

# A certificate for Capp from another CA is refused at the handshake.
"$ATREST_SRC/examples/pki.sh" "$T/rogue" Capp >/dev/null
rc=0
curl -s -o /dev/null --cacert "$PKI/ca.crt" --cert "$T/rogue/Capp.crt" --key "$T/rogue/Capp.key" \
	-H 'X-M2M-Origin: Capp' -H 'X-M2M-RI: r' "$HCSE_URL/app" -D "$T/rogue.h" || rc=$?
grep -qi '^X-M2M-RSC: 2000' "$T/rogue.h" 2>/dev/null && fail "a rogue CA's Capp certificate was served"
ok "a Capp certificate from another CA is not served (curl exit $rc)"

# Plain HTTP to the TLS port gets no oneM2M answer.
rc=0
curl -s -m 5 -o /dev/null -D "$T/plain.h" -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: p' \
	"http://127.0.0.1:8443/cse-in" || rc=$?
grep -qi '^X-M2M-RSC' "$T/plain.h" 2>/dev/null && fail "plain HTTP on the TLS port was answered"
ok "plain HTTP on the TLS port is not served (curl exit $rc)"

kill -0 $HCSED_PID || fail "hcsed died"
# a clean stop, so that a sanitizer's exit-time report (leaks) lands in the log
kill $HCSED_PID
wait $HCSED_PID || fail "hcsed exited with $? on SIGTERM"
check_sanitizer_logs "$T/hcsed.log"
ok "hcsed TLS"
