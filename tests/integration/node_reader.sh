#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A third party reads atrest data from docs/FORMAT.md alone: examples/node/atrest-get.mjs (jose + fetch) decrypts what libatrest sealed and hcsed hosts, byte for byte.
. "$ATREST_SRC/tests/integration/lib.sh"
. "$ATREST_SRC/tests/integration/client_lib.sh"

NODE_DIR=$ATREST_SRC/examples/node
MJS=$NODE_DIR/atrest-get.mjs

# No silent pass without the real thing: tests/run.sh installs nodejs and
# runs `npm ci` in examples/node; if that could not reach the registry, this
# test fails here (it is not a machine limitation, so no skip).
command -v node >/dev/null || fail "node is not installed (tests/run.sh installs nodejs npm)"
[ -f "$NODE_DIR/node_modules/jose/package.json" ] ||
	fail "jose is not installed in $NODE_DIR: run 'npm ci' there (tests/run.sh does; the npm registry must be reachable)"
want=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dependencies"]["jose"])' "$NODE_DIR/package.json")
have=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$NODE_DIR/node_modules/jose/package.json")
[ "$want" = "$have" ] || fail "jose $have installed, package.json pins $want: run 'npm ci' in $NODE_DIR"

# "only jose and the built-in fetch": one dependency, and no other import
[ "$(/usr/bin/python3 -c 'import json,sys; print(",".join(sorted(json.load(open(sys.argv[1]))["dependencies"])))' "$NODE_DIR/package.json")" = jose ] ||
	fail "package.json depends on more than jose"
bad=$(grep -o "^import .* from '[^']*'" "$MJS" | sed "s/.* from '\(.*\)'/\1/" | grep -v '^jose$\|^node:' || true)
[ -z "$bad" ] || fail "atrest-get.mjs imports $bad"
grep -q '\bfetch(' "$MJS" || fail "atrest-get.mjs does not use fetch"

start_tefd
start_hcsed

# The reader is this uid (targets uid:N); the owner is uid A (or this uid too when not root).
me=$(id -u)
run_node() { # run_node ARGS...: the node reader as this uid; stderr to $T/node.log
	local rc=0
	node "$MJS" --hcse "$HCSE_URL" --origin Cnode "$@" 2>"$T/node.log" || rc=$?
	return $rc
}
expect_node() { # expect_node WANT WHAT ARGS...
	local want=$1 what=$2 rc=0
	shift 2
	run_node "$@" >"$T/node.out" || rc=$?
	[ $rc = "$want" ] || fail "$what: exit $rc, expected $want ($(cat "$T/node.log"))"
	ok "$what (exit $rc)"
}

# jose implements A256GCM, not XC20P: seal with A256GCM, which needs AES-NI in libsodium.
head -c 200003 /dev/urandom >"$T/plain"
if ! put_as_owner -a writer -i 3 -n data.bin -s 16384 -e A256GCM -t "uid:$me" \
	<"$T/plain" >"$T/put.out" 2>"$T/put.log"; then
	grep -q 'not supported' "$T/put.log" &&
		skip "this CPU has no AES-GCM in libsodium, and jose cannot open XC20P"
	fail "the owner could not upload: $(cat "$T/put.log")"
fi
res=$(field resource "$T/put.out")
cred=$(field credential-id "$T/put.out")
grant_retrieve Cwriter writer Cnode

# 1. Key from tefd over its Unix socket (node:http socketPath), data from hcsed (fetch).
run_node -v --tef "$TEF_SOCK" "/cse-in/$res" >"$T/out" || fail "node reader: $(cat "$T/node.log")"
cmp "$T/plain" "$T/out" || fail "node decrypted different bytes"
grep -q '^step 19: every segment verified' "$T/node.log" || fail "no verification reported"
ok "node + jose reads a 13-segment libatrest file through hcsed and tefd, byte-exact"

# 2. The key given as base64url instead (fetched by the owner, as any holder could).
key=$(as_user "$OWNER_UID" "$OWNER_GID" curl -s --unix-socket "$TEF_SOCK" "http://tef/keys/${cred%%@*}" |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["keyValue"])')
[ "$(id -u)" = 0 ] || key=$(curl -s --unix-socket "$TEF_SOCK" "http://tef/keys/${cred%%@*}" |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["keyValue"])')
run_node --key="$key" -o "$T/out2" "$res" || fail "node --key: $(cat "$T/node.log")"
cmp "$T/plain" "$T/out2" || fail "node --key -o decrypted different bytes"
ok "node + jose with the key as base64url, -o FILE"

# 3. Integrity only (JWS HS256) and a standalone ESData contentInstance.
printf 'signed, not secret\n' >"$T/plain3"
put_as_owner -a writer -i 4 -n signed.txt --integrity -t "uid:$me" <"$T/plain3" >"$T/put3.out"
run_node --tef "$TEF_SOCK" "$(field resource "$T/put3.out")" >"$T/out3" || fail "JWS: $(cat "$T/node.log")"
cmp "$T/plain3" "$T/out3" || fail "JWS content differs"
printf 'temperature=21.5\n' >"$T/plain4"
put_as_owner -a writer -c sensor --esdata r1 -e A256GCM -t "uid:$me" <"$T/plain4" >"$T/put4.out"
run_node --tef "$TEF_SOCK" "$(field resource "$T/put4.out")" >"$T/out4" || fail "ESData: $(cat "$T/node.log")"
cmp "$T/plain4" "$T/out4" || fail "ESData content differs"
ok "node + jose verifies a JWS HS256 file and opens a standalone ESData contentInstance"

# 4. What must fail does: no key for this uid, tampering, rollback.
put_as_owner -a writer -i 5 -n private.bin -e A256GCM <"$T/plain3" >"$T/put5.out"
expect_node 5 "tefd refuses a key not targeted at this uid" --tef "$TEF_SOCK" "$(field resource "$T/put5.out")"
hcse_as Cwriter "$HCSE_URL/$res/s4g1" |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["m2m:cin"]["con"], end="")' >"$T/s4"
hcse_as Cwriter -X DELETE "$HCSE_URL/$res/s3g1" >/dev/null
hcse_as Cwriter -H 'Content-Type: application/json;ty=4' \
	-d "{\"m2m:cin\":{\"rn\":\"s3g1\",\"cnf\":\"application/octet-stream:0:1\",\"con\":\"$(cat "$T/s4")\"}}" \
	"$HCSE_URL/$res" >/dev/null
expect_node 7 "a segment swapped by the HCSE is refused" --tef "$TEF_SOCK" -o "$T/out5" "$res"
grep -q 'atrest.idx is 4, expected 3' "$T/node.log" || fail "not reported as reordering: $(cat "$T/node.log")"
[ ! -e "$T/out5" ] || fail "a refused read left its output"
as_owner_or_me() { if [ "$(id -u)" = 0 ]; then as_user "$OWNER_UID" "$OWNER_GID" "$@"; else "$@"; fi; }
cred3=$(field credential-id "$T/put3.out")
as_owner_or_me curl -s --unix-socket "$TEF_SOCK" -X PUT -H 'Content-Type: application/json' \
	-d '{"atrestVersion":5}' "http://tef/keys/${cred3%%@*}" >/dev/null
expect_node 7 "a manifest older than the TEF's recorded version is refused" --tef "$TEF_SOCK" \
	"$(field resource "$T/put3.out")"
grep -q 'rolled back' "$T/node.log" || fail "not reported as a rollback: $(cat "$T/node.log")"

check_sanitizer_logs "$T/tefd.log" "$T/hcsed.log"
