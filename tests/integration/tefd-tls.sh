#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tefd over TCP: mutual TLS is mandatory, the client certificate's CN is the AE-ID.
. "$ATREST_SRC/tests/integration/lib.sh"
. "$ATREST_SRC/tests/integration/tefd.sh"
command -v openssl >/dev/null || skip "openssl is not installed"

# A CA, a server certificate for localhost, two AEs it signed, one rogue AE.
(
	cd "$T"
	ec() { echo "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"; }
	openssl req -x509 $(ec) -keyout ca.key -out ca.pem -subj /CN=tefd-test-ca -days 2
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
	openssl req $(ec) -keyout server.key -out server.csr -subj /CN=localhost
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-extfile server.ext -out server.pem -days 2
	for n in Cmeter Creader; do
		openssl req $(ec) -keyout $n.key -out $n.csr -subj /CN=$n
		openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out $n.pem -days 2
	done
	openssl req -x509 $(ec) -keyout rogue.key -out rogue.pem -subj /CN=Creader -days 2
) >"$T/pki.log" 2>&1 || fail "cannot make the test PKI"
chmod 0600 "$T"/*.key

make_master_key
# --listen without a CA is refused: no TCP service without client certificates
"$TEFD" --socket "$SOCK" --db "$T/tef.db" --master-key "$T/master.key" -d \
	--listen 127.0.0.1:0 --tls-cert "$T/server.pem" --tls-key "$T/server.key" 2>"$T/refuse.log" &&
	fail "tefd listened on TCP without --tls-ca"
grep -q "mutual TLS is mandatory" "$T/refuse.log" || fail "no reason for refusing --listen"

start_tefd --listen 127.0.0.1:0 --tls-cert "$T/server.pem" --tls-key "$T/server.key" \
	--tls-ca "$T/ca.pem"
port=$(sed -n 's/.*TLS listener on port \([0-9]*\).*/\1/p' "$T/tefd.log" | tail -n1)
[ -n "$port" ] || fail "no TLS port in the log"
URL=https://localhost:$port

# tls_req NAME METHOD PATH [BODY] [EXTRA CURL ARGS...]: sets HTTP, RSC, BODY; CURL_RC
tls_req() {
	local name=$1 method=$2 path=$3 body=${4:-}
	shift 4 || shift $#
	local args=(-s -i -X "$method" --cacert "$T/ca.pem")
	[ -n "$name" ] && args+=(--cert "$T/$name.pem" --key "$T/$name.key")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	CURL_RC=0
	curl "${args[@]}" "$@" "$URL$path" >"$T/resp.raw" 2>/dev/null || CURL_RC=$?
	tr -d '\r' <"$T/resp.raw" | grep -v '^Date:' >"$T/resp"
	HTTP=$(head -n1 "$T/resp" | awk '{print $2}')
	RSC=$(sed -n 's/^X-M2M-RSC: //Ip' "$T/resp" | head -n1)
	BODY=$(sed '1,/^$/d' "$T/resp")
}

# The C client over TLS: registered under the certificate's AE-ID.
id=$("$ATREST_BUILD/tests/integration/tef_client_check" tls "$URL" "$T/Cmeter.pem" \
	"$T/Cmeter.key" "$T/ca.pem" ae:Cmeter) || fail "tef_client over TLS"
ok "tef_client over mutual TLS: owner is ae:Cmeter"

tls_req Creader GET "/keys/$id" ""
expect_answer 404 4004 "another AE retrieving a key not targeted at it"
tls_req Cmeter POST /keys '{"suid":34,"targetIDs":["ae:Creader"]}'
expect_answer 201 2001 "registration over TLS"
shared=$(jq -r .relativeKeyID <<<"$BODY")
key=$(jq -r .keyValue <<<"$BODY")
tls_req Creader GET "/keys/$shared" ""
expect_answer 200 2000 "a targeted AE retrieving"
[ "$(jq -r .keyValue <<<"$BODY")" = "$key" ] || fail "targeted AE got another key"
tls_req Creader GET "/keys/$shared" "" -H "X-Atrest-On-Behalf-Of: uid=0;gid=0"
expect_answer 403 4103 "on-behalf-of from a remote AE"
ok "AE-ID principals from client certificates"

# No certificate, an untrusted one, or plain HTTP: no service at all.
tls_req "" GET "/keys/$shared" ""
{ [ "$CURL_RC" != 0 ] || [ "$HTTP" = 403 ]; } || fail "served without a client certificate: $HTTP"
grep -q keyValue "$T/resp" && fail "a key went to a client without a certificate"
tls_req rogue GET "/keys/$shared" ""
[ "$CURL_RC" != 0 ] || [ "$HTTP" = 403 ] || fail "served an untrusted certificate: $HTTP"
grep -q keyValue "$T/resp" && fail "a key went to an untrusted certificate"
"$ATREST_BUILD/tests/integration/tef_client_check" tls "$URL" "$T/rogue.pem" "$T/rogue.key" \
	"$T/ca.pem" >/dev/null || fail "tef_client was not refused with an untrusted certificate"
curl -s -o /dev/null "http://127.0.0.1:$port/keys" && fail "plain HTTP was served"
ok "no client certificate, an untrusted one, or plain HTTP: refused"

stop_tefd
