#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The contribution's 19 steps (shared/contribution, figure 8.x.2-1), one by one, each with an assertion that can fail.
. "$ATREST_SRC/tests/integration/lib.sh"
. "$ATREST_SRC/tests/integration/client_lib.sh"

# Originator AE: atrestfs, as uid A writes a file through the mount and sets
# its targets (or, where nothing can be mounted, tests/tools/atrest-put as
# uid A doing the same with libatrest); Client AE: examples/atrest-get as
# Creader (steps 11-19). The TEF is tefd, reached by the originator on its
# Unix socket and by the client over mutual TLS, i.e. as a centralised
# entity (the contribution's closing note); the HCSE is hcsed over mutual TLS.
# Each "step N:" line below names the step; the checks after it assert it.

make_pki Cwriter Creader Cother
start_tefd tls --sweep-interval 3600 --delegate 0
start_hcsed tls
AUDIT=$T/tef.db-audit.log

b64url_json() { # the protected header of a compact JOSE string on stdin, as JSON
	/usr/bin/python3 -c '
import base64, sys
h = sys.stdin.read().split(".")[0]
print(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)).decode())'
}
con_of() { /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["m2m:cin"]["con"], end="")'; }
owner_tef() { # owner_tef CURL-ARGS...: the owner's own request on tefd's Unix socket
	local who=()
	[ "$(id -u)" = 0 ] && who=(setpriv --reuid="$OWNER_UID" --regid="$OWNER_GID" --clear-groups --)
	"${who[@]}" curl -s --unix-socket "$TEF_SOCK" "$@"
}
step_line() { # step_line N LOG: a tool's own report of step N
	grep -q "^step $1: " "$2" || fail "no 'step $1' line in $2"
	grep "^step $1: " "$2" | head -1 | sed 's/^/    /'
}
originator_says() { # the Originator's own report of step N, when it makes one
	[ "$originator" = atrest-put ] && step_line "$1" "$T/put.log"
	return 0
}

head -c 150001 /dev/urandom >"$T/plain"
segsize=32768
if can_mount; then
	originator=atrestfs
	fs_write_as_owner "$T/plain" steps.bin ae:Creader $segsize
	cred=$CRED res=$RES
else
	originator=atrest-put
	put_as_owner -v -a writer -i 7 -n steps.bin -s $segsize -t ae:Creader <"$T/plain" \
		>"$T/put.out" 2>"$T/put.log" || fail "the originator failed: $(cat "$T/put.log")"
	cred=$(field credential-id "$T/put.out")
	res=$(field resource "$T/put.out")
fi
rkid=${cred%%@*}
echo "Originator AE: $originator as uid $OWNER_UID; Client AE: atrest-get as Creader"

echo "step 1: the Originator generates data and a credential to protect it, and access rules"
originator_says 1
[ -s "$T/plain" ] || fail "no data"
# a) the data; b) the credential, made by the originator or requested from
# the registry (atrestfs asks tefd to generate it); d) the access rules
grep -q "op=register rsc=2001 .*uid=$OWNER_UID,.*reason=\(generated\|-\)" "$AUDIT" ||
	fail "no credential registered for uid $OWNER_UID"
if [ $originator = atrestfs ]; then
	[ "$(getfattr --absolute-names --only-values -n user.onem2m.targets "$T/mnt/a/steps.bin")" = ae:Creader ] ||
		fail "the access rule is not on the file"
	echo "    uid $OWNER_UID wrote steps.bin and set user.onem2m.targets=ae:Creader"
fi

echo "step 2: the Originator establishes a secure channel with the TEF"
originator_says 2
# the Unix socket: tefd knows the caller from SO_PEERCRED (atrestfs: as a
# delegate, on behalf of uid A)
grep -q "op=register .*\(caller=uid=$OWNER_UID,\|onbehalf=uid=$OWNER_UID,\)" "$AUDIT" ||
	fail "tefd did not identify the originator as uid $OWNER_UID"
grep "op=register " "$AUDIT" | head -1 | sed 's/.*\(caller=[^ ]* onbehalf=[^ ]*\).*/    tefd saw \1/'

echo "step 3: the Originator requests to register the credential with access control rules"
originator_says 3
# the audit log names a key by an HMAC tag of its id, never the id itself
tag=$(sed -n 's/.*op=register rsc=2001 .*cred=\([0-9a-f]\{32\}\) .*/\1/p' "$AUDIT" | head -1)
[ -n "$tag" ] || fail "no registration in the audit log"
grep -q "$rkid" "$AUDIT" && fail "the audit log names the relativeKeyID in clear"
grep "op=register rsc=2001 .*cred=$tag" "$AUDIT" | head -1 | sed 's/^[^ ]* /    tefd audit: /'

echo "step 4: the TEF registers it: a) unique Credential-Id b) stored securely c) expiration d) rules"
originator_says 4
[[ "$cred" =~ ^[0-9a-f]{32}@tef\.atrest\.test$ ]] || fail "a) Credential-Id '$cred' is not <relativeKeyID>@<fqdn>"
owner_tef "http://tef/keys/$rkid" >"$T/reg.json"
/usr/bin/python3 - "$T/reg.json" "$T/tef.db" <<'PY' || fail "b-d) the registration as the owner sees it"
import base64, json, sys, time
r = json.load(open(sys.argv[1]))
key = base64.urlsafe_b64decode(r["keyValue"] + "=" * (-len(r["keyValue"]) % 4))
assert len(key) == 32, "key length"
db = open(sys.argv[2], "rb").read()
assert key not in db, "b) the key is stored in clear in tefd's database"
exp = r["expirationTime"]
assert time.mktime(time.strptime(exp, "%Y%m%dT%H%M%S")) > time.time(), "c) expiration not in the future"
assert r["targetIDs"] == ["ae:Creader"], "d) access rules: %r" % r["targetIDs"]
print("    a) %s  b) wrapped in tef.db  c) expires %s  d) targetIDs %s" % (r["credentialID"], exp, r["targetIDs"]))
PY

echo "step 5: the TEF answers with the Credential-Id"
originator_says 5
if [ $originator = atrestfs ]; then
	echo "    user.onem2m.credential-id = $cred"
else
	grep -q "RSC 2001 with Credential-Id $cred" "$T/put.log" || fail "no 2001 response carrying $cred"
fi

echo "step 6: the Originator associates the Credential-Id with the protected data"
originator_says 6
cin_names "$res" >"$T/cins"
man=$(grep '^m[0-9]*$' "$T/cins" | sort -t m -k2 -n | tail -1)
seg0=$(grep '^s0g' "$T/cins")
hcse_as Cwriter "$HCSE_URL/$res/$man" | con_of >"$T/m1"
hcse_as Cwriter "$HCSE_URL/$res/$seg0" | con_of >"$T/s0"
for o in m1 s0; do
	b64url_json <"$T/$o" >"$T/$o.hdr"
	grep -q "\"kid\":\"$cred\"" "$T/$o.hdr" || fail "$o does not carry kid $cred: $(cat "$T/$o.hdr")"
done
grep -q '"alg":"dir"' "$T/s0.hdr" || fail "segment is not a JWE dir: $(cat "$T/s0.hdr")"
echo "    segment header: $(cat "$T/s0.hdr")"

echo "step 7: the Originator establishes a secure channel with the HCSE"
originator_says 7
case "$HCSE_URL" in https:*) ;; *) fail "the HCSE is not behind TLS" ;; esac
curl -s --cacert "$PKI/ca.crt" -H 'X-M2M-Origin: Cwriter' -H 'X-M2M-RI: 7' -H 'X-M2M-RVI: 3' \
	"$HCSE_URL/$res" -o "$T/nocert" 2>/dev/null || true
grep -q '"m2m:cnt"' "$T/nocert" 2>/dev/null && fail "hcsed answered Cwriter's request without its certificate"
echo "    mutual TLS: without its client certificate Cwriter gets nothing"

echo "step 8: the Originator requests the HCSE to register and host the data with the Credential-Id"
originator_says 8
n_seg=$(( (150001 + segsize - 1) / segsize ))
[ "$(grep -c '^s' "$T/cins")" = $n_seg ] && [ -n "$man" ] ||
	fail "expected $n_seg segments + a manifest, found: $(tr '\n' ' ' <"$T/cins")"
hcse_as Cwriter "$HCSE_URL/$res" | grep -q "atrest:cred=$cred" || fail "the container does not name $cred"
echo "    $res holds $(tr '\n' ' ' <"$T/cins")and is labelled atrest:cred=$cred"

echo "step 9: the HCSE checks the Originator is authorised before it stores anything"
originator_says 9
hcse_as Cother -H 'Content-Type: application/json;ty=4' \
	-d '{"m2m:cin":{"rn":"intruder","cnf":"application/octet-stream:0:1","con":"x"}}' \
	"$HCSE_URL/$res" >/dev/null
[ "$(cat "$T/rsc")" = 4103 ] || fail "Cother could create under $res: RSC $(cat "$T/rsc")"
hcse_as Cwriter "$HCSE_URL/$res/intruder" >/dev/null
[ "$(cat "$T/rsc")" = 4004 ] || fail "Cother's contentInstance was stored"
echo "    Cother's create under $res: 4103, nothing stored"

echo "step 10: the HCSE answers success"
originator_says 10
if [ $originator = atrestfs ]; then
	[ "$(getfattr --absolute-names --only-values -n user.onem2m.state "$T/mnt/a/steps.bin")" = synced ] ||
		fail "atrestfs did not get the HCSE's success"
	echo "    user.onem2m.state = synced (every create acknowledged)"
else
	grep -q '^step 10: .*RSC 200[14]' "$T/put.log" || fail "no success RSC reported"
fi

grant_retrieve Cwriter writer Creader
get_as Creader -v -o "$T/out" "/cse-in/$res" || fail "the client failed: $(cat "$T/get.log")"
cp "$T/get.log" "$T/client.log"

echo "step 11: the Client AE establishes a security association with the HCSE"
step_line 11 "$T/client.log"
grep -q "^step 11: .*as 'Creader' (mutual TLS)" "$T/client.log" || fail "not mutual TLS as Creader"

echo "step 12: the Client AE sends a retrieve request to the HCSE"
step_line 12 "$T/client.log"

echo "step 13: the HCSE checks the Client AE is authorised to retrieve"
step_line 13 "$T/client.log"
expect_rc 3 "    Cother (no ACP grants it) is refused by the HCSE" get_as Cother -v "$res"
grep -q 'RSC 4103' "$T/get.log" || fail "Cother's refusal is not 4103"

echo "step 14: the HCSE sends the protected data with its Credential-Id"
step_line 14 "$T/client.log"
grep -q "^step 14: .*Credential-Id '$cred'" "$T/client.log" || fail "the client did not get $cred"

echo "step 15: the Client AE establishes a secure channel with the TEF"
step_line 15 "$T/client.log"
grep -q "^step 15: .*mutual TLS" "$T/client.log" || fail "not mutual TLS to the TEF"

echo "step 16: the Client AE requests the credential by its Credential-Id"
step_line 16 "$T/client.log"
grep -q "op=retrieve .*caller=ae:Creader .*cred=$tag" "$AUDIT" || fail "tefd saw no retrieval by ae:Creader"

echo "step 17: the TEF checks the Client AE is authorised to retrieve the credential"
step_line 17 "$T/client.log"
expect_rc 5 "    Creader's read with Cother's certificate at the TEF is refused" \
	get_as Creader --tef-cert "$PKI/Cother.crt" --tef-key "$PKI/Cother.key" "$res"
grep -q "op=retrieve .*caller=ae:Cother .*cred=$tag reason=forbidden" "$AUDIT" ||
	fail "tefd did not record Cother's refusal"

echo "step 18: the TEF responds with the credential over the secure channel"
step_line 18 "$T/client.log"
grep -q "op=retrieve rsc=2000 .*caller=ae:Creader .*cred=$tag reason=released" "$AUDIT" ||
	fail "tefd did not record the release to ae:Creader"

echo "step 19: the Client AE verifies and decrypts the data with the credential"
step_line 19 "$T/client.log"
cmp "$T/plain" "$T/out" || fail "decrypted data differs"
grep -q "every segment verified and decrypted" "$T/client.log" || fail "no verification reported"
# ... and refuses what does not verify: a byte of the manifest's ciphertext changed
/usr/bin/python3 - "$T/m1" "$T/m1.bad" <<'PY'
import sys
p = open(sys.argv[1]).read().split(".")
ct = p[3]
i = len(ct) // 2
p[3] = ct[:i] + ("A" if ct[i] != "A" else "B") + ct[i + 1:]
open(sys.argv[2], "w").write(".".join(p))
PY
hcse_as Cwriter -X DELETE "$HCSE_URL/$res/$man" >/dev/null
hcse_as Cwriter -H 'Content-Type: application/json;ty=4' \
	-d "{\"m2m:cin\":{\"rn\":\"$man\",\"cnf\":\"application/octet-stream:0:1\",\"con\":\"$(cat "$T/m1.bad")\"}}" \
	"$HCSE_URL/$res" >/dev/null
expect_rc 7 "    a manifest modified on the HCSE is refused" get_as Creader -o "$T/bad" "$res"
grep -q 'tag mismatch' "$T/get.log" || fail "not reported as an authentication failure"
# ... and an integrity-only (JWS HS256) object verifies too
printf 'integrity only, readable by anyone, forgeable by no one\n' >"$T/plain2"
put_as_owner -a writer -i 1008 -n signed.txt -t ae:Creader --integrity <"$T/plain2" >"$T/put2.out"
get_as Creader -v "$(field resource "$T/put2.out")" >"$T/out2" || fail "JWS: $(cat "$T/get.log")"
cmp "$T/plain2" "$T/out2" || fail "JWS content differs"
grep -q 'integrity only\|every segment verified in order' "$T/get.log" || fail "JWS not reported as verified"
echo "    JWS HS256 file verified"

echo "note: the TEF may be part of the CSE or a centralised entity: here tefd is a separate daemon reached over TCP + mutual TLS"

# The same 19 steps for a standalone ESData contentInstance of another AE, and
# an expired registration (step 4c enforced at step 17).
printf 'one sealed reading: 21.5 C\n' >"$T/plain3"
put_as_owner -a writer -c sensor --esdata reading1 -t ae:Creader <"$T/plain3" >"$T/put3.out"
get_as Creader "$(field resource "$T/put3.out")" >"$T/out3" || fail "ESData: $(cat "$T/get.log")"
cmp "$T/plain3" "$T/out3" || fail "ESData content differs"
get_as Creader writer/sensor >"$T/out3b" || fail "container/la: $(cat "$T/get.log")"
cmp "$T/plain3" "$T/out3b" || fail "the container's latest ESData differs"
get_as Creader --list writer/sensor >"$T/list" || fail "--list: $(cat "$T/get.log")"
grep -q "^esdata	[0-9]*	writer/sensor/reading1	reading1$" "$T/list" || fail "--list: $(cat "$T/list")"
ok "a standalone ESData contentInstance (and its container's latest) is read the same way"

put_as_owner -a writer -i 1009 -n short-lived -t ae:Creader --ttl 2 <"$T/plain2" >"$T/put4.out"
sleep 3
expect_rc 6 "an expired registration is refused as expired" get_as Creader "$(field resource "$T/put4.out")"

# Rollback: the TEF recorded version 2, the HCSE still serves manifest 1.
cred2=$(field credential-id "$T/put2.out")
owner_tef -X PUT -H 'Content-Type: application/json' -d '{"atrestVersion":2}' \
	"http://tef/keys/${cred2%%@*}" >"$T/upd.json"
grep -q '"atrestVersion":2' "$T/upd.json" || fail "could not record version 2: $(cat "$T/upd.json")"
expect_rc 7 "a manifest older than the TEF's recorded version is a rollback" \
	get_as Creader "$(field resource "$T/put2.out")"
grep -q 'rolled back' "$T/get.log" || fail "not reported as a rollback: $(cat "$T/get.log")"

check_sanitizer_logs "$T/tefd.log" "$T/hcsed.log" "$T/get-all.log" "$T/put.log" "$T/atrestfs.log"
