#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Remote TEF and HCSE over mutual TLS: uid A's data targeted at ae:Creader is read back by atrest-get as Creader; Cother and certificate-less clients are refused.
. "$ATREST_SRC/tests/integration/lib.sh"
. "$ATREST_SRC/tests/integration/client_lib.sh"

# The owner's side: atrestfs when it is built and can mount (uid A writes
# through the mount and sets user.onem2m.targets), else tests/tools/atrest-put
# (libatrest directly: the key registered at tefd by uid A over the Unix
# socket, the file sealed and laid out as atrestfs lays it out). Either way
# the data reaches hcsed as Cwriter over mutual TLS.

make_pki Cwriter Creader Cother
start_tefd tls --delegate 0
start_hcsed tls

head -c 307217 /dev/urandom >"$T/plain"
if can_mount; then
	owner=atrestfs
	# uid A writes a 300 KiB file in 64 KiB segments, readable by ae:Creader
	fs_write_as_owner "$T/plain" report.bin ae:Creader 65536
	cred=$CRED res=$RES listdir=$LISTDIR
else
	owner=atrest-put
	put_as_owner -a writer -i 5 -n report.bin -s 65536 -t ae:Creader <"$T/plain" >"$T/put.out" ||
		fail "the owner could not upload"
	cred=$(field credential-id "$T/put.out")
	res=$(field resource "$T/put.out")
	listdir=writer
fi
[[ "$res" =~ ^writer/i[0-9]+$ ]] || fail "unexpected resource '$res'"
grant_retrieve Cwriter writer Creader
ok "uid $OWNER_UID ($owner) registered $cred at tefd and hosted $res on hcsed over TLS"

# What hcsed holds is ciphertext only.
cin_names "$res" >"$T/cins"
man=$(grep '^m[0-9]*$' "$T/cins" | sort -t m -k2 -n | tail -1)
seg1=$(grep '^s1g' "$T/cins")
seg2=$(grep '^s2g' "$T/cins")
[ -n "$man" ] && [ -n "$seg1" ] && [ -n "$seg2" ] || fail "contentInstances: $(tr '\n' ' ' <"$T/cins")"
hcse_as Cwriter "$HCSE_URL/$res/$man" >"$T/m1.json"
grep -q '"cnf":"application/octet-stream:0:1"' "$T/m1.json" || fail "manifest cnf: $(cat "$T/m1.json")"
grep -q "\"con\":\"eyJ" "$T/m1.json" || fail "manifest is not compact JOSE"
ok "hcsed stores compact JWE with cnf application/octet-stream:0:1"

# 1. Creader reads it back over TLS from hcsed and tefd, byte for byte.
get_as Creader "/cse-in/$res" >"$T/out" || fail "Creader could not read: $(cat "$T/get.log")"
cmp "$T/plain" "$T/out" || fail "Creader read different bytes"
ok "atrest-get as Creader reads uid A's file over mutual TLS, byte-exact"
get_as Creader -o "$T/out2" "$res" || fail "-o: $(cat "$T/get.log")"
cmp "$T/plain" "$T/out2" || fail "-o wrote different bytes"
[ "$(stat -c %a "$T/out2")" = 600 ] || fail "-o output is not 0600"
ok "atrest-get -o FILE writes the same bytes, mode 0600"

# The owner itself, on the gateway: tefd on its Unix socket knows uid A by SO_PEERCRED.
if [ "$(id -u)" = 0 ]; then
	as_user "$OWNER_UID" "$OWNER_GID" "$GET" -H "$HCSE_URL" -O Cwriter -T "$TEF_SOCK" --ca "$PKI/ca.crt" \
		--cert "$PKI/Cwriter.crt" --key "$PKI/Cwriter.key" "$res" >"$T/out-owner" 2>>"$T/get-all.log" ||
		fail "the owner could not read its own file through the Unix socket"
	cmp "$T/plain" "$T/out-owner" || fail "the owner read different bytes"
	ok "uid $OWNER_UID reads its own file with the key from tefd's Unix socket"
fi

get_as Creader --list "$listdir" >"$T/list" || fail "--list: $(cat "$T/get.log")"
grep -q "^file	307217	$res	report.bin$" "$T/list" || fail "--list $listdir: $(cat "$T/list")"
ok "atrest-get --list shows report.bin with its size"

# 2. Cother: refused by hcsed (no ACP names it) and by tefd (not a target).
expect_rc 3 "Cother is refused by hcsed" get_as Cother "$res"
grep -q 'RSC 4103' "$T/get.log" || fail "hcsed denial without RSC 4103: $(cat "$T/get.log")"
expect_rc 5 "Cother's certificate is refused by tefd" \
	get_as Creader --tef-cert "$PKI/Cother.crt" --tef-key "$PKI/Cother.key" -o "$T/out3" "$res"
[ ! -e "$T/out3" ] || fail "a refused read left an output file"
code=$(curl -s -o "$T/tef-cother.json" -w '%{http_code}' --cacert "$PKI/ca.crt" \
	--cert "$PKI/Cother.crt" --key "$PKI/Cother.key" "$TEF_URL/keys/${cred%%@*}")
# forbidden and unknown look the same by design (DESIGN.md 2): 403 or 404
[ "$code" = 403 ] || [ "$code" = 404 ] || fail "tefd answered Cother with HTTP $code"
grep -q keyValue "$T/tef-cother.json" && fail "tefd released a key to Cother"
ok "tefd answers Cother's direct request with HTTP $code and no key"

# 3. No certificate: refused by both.
rc=0
# (the TEF given as its local socket: over TLS atrest-get refuses to try without one)
"$GET" -H "$HCSE_URL" -O Creader -T "$TEF_SOCK" --ca "$PKI/ca.crt" "$res" >"$T/out4" \
	2>"$T/get.log" || rc=$?
cat "$T/get.log" >>"$T/get-all.log"
[ $rc = 3 ] || fail "no certificate: atrest-get exit $rc, expected 3 ($(cat "$T/get.log"))"
[ ! -s "$T/out4" ] || fail "no certificate: some output"
ok "hcsed refuses atrest-get without a client certificate (exit 3)"
hcse_as Creader "$HCSE_URL/$res" >/dev/null # sanity: with the certificate it works
[ "$(cat "$T/rsc")" = 2000 ] || fail "Creader's own curl retrieve answered $(cat "$T/rsc")"
if curl -s --cacert "$PKI/ca.crt" -H 'X-M2M-Origin: Creader' -H 'X-M2M-RI: x' -H 'X-M2M-RVI: 3' \
	"$HCSE_URL/$res" -o "$T/nocert-hcse" -w '%{http_code}' >"$T/nocert-code" 2>/dev/null; then
	[ "$(cat "$T/nocert-code")" = 403 ] || fail "hcsed served a certificate-less client: $(cat "$T/nocert-code")"
fi
grep -q '"con"' "$T/nocert-hcse" 2>/dev/null && fail "hcsed returned content without a certificate"
if curl -s --cacert "$PKI/ca.crt" "$TEF_URL/keys/${cred%%@*}" -o "$T/nocert-tef" \
	-w '%{http_code}' >"$T/nocert-code" 2>/dev/null; then
	case "$(cat "$T/nocert-code")" in
	401 | 403) ;;
	*) fail "tefd served a certificate-less client: HTTP $(cat "$T/nocert-code")" ;;
	esac
fi
grep -q keyValue "$T/nocert-tef" 2>/dev/null && fail "tefd released a key without a certificate"
ok "tefd refuses a client without a certificate (no key released)"

# 4. A certificate from another CA is refused at the TLS handshake.
"$ATREST_SRC/examples/pki.sh" "$T/rogue" Creader >/dev/null
rc=0
"$GET" -H "$HCSE_URL" -O Creader -T "$TEF_URL" --ca "$PKI/ca.crt" --cert "$T/rogue/Creader.crt" \
	--key "$T/rogue/Creader.key" "$res" >/dev/null 2>"$T/get.log" || rc=$?
[ $rc = 3 ] || [ $rc = 8 ] || fail "a rogue Creader certificate: exit $rc ($(cat "$T/get.log"))"
ok "a certificate for Creader from another CA is refused (exit $rc)"

# 5. Tampering by the HCSE: segment 1 replaced by segment 2 (a valid JWE of the same file).
hcse_as Cwriter "$HCSE_URL/$res/$seg2" | /usr/bin/python3 -c '
import json, sys; print(json.load(sys.stdin)["m2m:cin"]["con"], end="")' >"$T/s2.con"
hcse_as Cwriter -X DELETE "$HCSE_URL/$res/$seg1" >/dev/null
[ "$(cat "$T/rsc")" = 2002 ] || fail "deleting $seg1 answered $(cat "$T/rsc")"
expect_rc 7 "a missing segment is reported as a verification failure" \
	get_as Creader -o "$T/out5" "$res"
grep -q truncated "$T/get.log" || fail "not reported as truncation: $(cat "$T/get.log")"
hcse_as Cwriter -H 'Content-Type: application/json;ty=4' \
	-d "{\"m2m:cin\":{\"rn\":\"$seg1\",\"cnf\":\"application/octet-stream:0:1\",\"con\":\"$(cat "$T/s2.con")\"}}" \
	"$HCSE_URL/$res" >/dev/null
[ "$(cat "$T/rsc")" = 2001 ] || fail "re-creating $seg1 answered $(cat "$T/rsc")"
expect_rc 7 "a segment swapped for another is detected" get_as Creader -o "$T/out5" "$res"
grep -q reordered "$T/get.log" || fail "not reported as reordering: $(cat "$T/get.log")"
[ ! -e "$T/out5" ] || fail "a tampered read left an output file"

# 6. Unreachable and missing.
port=$(free_port)
expect_rc 8 "an unreachable HCSE" "$GET" -H "https://127.0.0.1:$port/cse-in" -O Creader \
	-T "$TEF_URL" --ca "$PKI/ca.crt" --cert "$PKI/Creader.crt" --key "$PKI/Creader.key" "$res"
expect_rc 4 "a missing resource" get_as Creader writer/i999

check_sanitizer_logs "$T/tefd.log" "$T/hcsed.log" "$T/get-all.log" "$T/atrestfs.log"
