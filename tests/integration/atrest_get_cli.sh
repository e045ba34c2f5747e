#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# atrest-get's command line: usage errors exit 2, --help matches the man page, pki.sh is idempotent.
. "$ATREST_SRC/tests/integration/lib.sh"

GET=$ATREST_BUILD/examples/atrest-get
MAN=$ATREST_SRC/man/atrest-get.1

expect_usage() { # expect_usage WHAT ARGS...
	local what=$1 rc=0
	shift
	"$GET" "$@" >/dev/null 2>"$T/err.log" || rc=$?
	[ $rc = 2 ] || fail "$what: exit $rc, expected 2"
	grep -q '^atrest-get: \|^usage: ' "$T/err.log" || fail "$what: no message ($(cat "$T/err.log"))"
	ok "$what (exit 2): $(head -1 "$T/err.log")"
}
expect_usage "no PATH"
expect_usage "two PATHs" a b
expect_usage "an unknown option" --frobnicate x
expect_usage "--cert without --key" --cert /dev/null x
expect_usage "an http:// TEF" -T http://127.0.0.1:1 x
expect_usage "a TLS TEF without a client certificate" -T https://127.0.0.1:1 --ca /dev/null x
expect_usage "a bad HCSE URL" -H ftp://x/cse-in x
expect_usage "a bad timeout" -t 0 x
expect_usage "--list with -o" --list -o f x

"$GET" --help >"$T/help" || fail "--help exits non-zero"
grep -q '^usage: atrest-get' "$T/help" || fail "--help has no usage line"
"$GET" --version | grep -q '^atrest-get [0-9]' || fail "--version"
# every option --help names is in the man page's SYNOPSIS and OPTIONS, and back
for o in $(grep -o -- '--[a-z][a-z-]*' "$T/help" | sort -u); do
	grep -q "^\.It Fl .*-\{0,1\}${o#--}\b\|Fl ${o#-}\b\|Fl -${o#--}\b" "$MAN" || fail "--help lists $o, the man page does not"
done
for o in $(sed -n 's/^\.It Fl \([a-z]\) , -\([a-z-]*\).*/--\2/p; s/^\.It Fl -\([a-z-]*\).*/--\1/p' "$MAN" | sort -u); do
	grep -q -- "$o" "$T/help" || fail "the man page documents $o, --help does not"
done
# the two usage forms match the SYNOPSIS's two forms
[ "$(grep -c '^\.Nm$' <(sed -n '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/p' "$MAN"))" = 2 ] ||
	fail "the SYNOPSIS should have two forms"
[ "$(grep -c '^ *\(usage: \)\{0,1\}atrest-get \[' "$T/help")" = 2 ] || fail "--help should have two forms"
# exit statuses: the ones --help lists are the man page's
for c in 0 1 2 3 4 5 6 7 8; do
	grep -q "^\.It $c$" "$MAN" || fail "exit status $c is not in the man page"
	grep -q "\b$c [a-zA-Z]" <(sed -n '/^exit:/,$p' "$T/help") || fail "exit status $c is not in --help"
done
ok "--help and atrest-get(1) list the same options, forms and exit statuses"

# examples/pki.sh: idempotent, and adding an AE-ID later adds just that one
"$ATREST_SRC/examples/pki.sh" "$T/pki" Ca >/dev/null
sum1=$(cat "$T/pki"/*.crt | sha256sum)
"$ATREST_SRC/examples/pki.sh" "$T/pki" Ca >"$T/pki2.log"
[ ! -s "$T/pki2.log" ] || fail "pki.sh re-issued something: $(cat "$T/pki2.log")"
[ "$(cat "$T/pki"/*.crt | sha256sum)" = "$sum1" ] || fail "pki.sh changed certificates on a rerun"
"$ATREST_SRC/examples/pki.sh" "$T/pki" Ca Cb >"$T/pki3.log"
[ "$(grep -c issued "$T/pki3.log")" = 1 ] || fail "adding Cb: $(cat "$T/pki3.log")"
openssl verify -CAfile "$T/pki/ca.crt" "$T/pki/Cb.crt" "$T/pki/tefd.crt" "$T/pki/hcsed.crt" >/dev/null ||
	fail "certificates do not chain to the CA"
openssl x509 -in "$T/pki/Cb.crt" -noout -subject | grep -q 'CN *= *Cb' || fail "client CN"
openssl x509 -in "$T/pki/Cb.crt" -noout -ext subjectAltName | grep -q 'URI:oneM2M://atrest.example/Cb' ||
	fail "client URI SAN"
openssl x509 -in "$T/pki/hcsed.crt" -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1' ||
	fail "server SAN"
[ "$(stat -c %a "$T/pki/ca.key")" = 600 ] || fail "the CA key is not 0600"
rc=0
"$ATREST_SRC/examples/pki.sh" "$T/pki" 'bad id' 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "pki.sh accepted a bad AE-ID (exit $rc)"
ok "pki.sh: CA, server and AE-ID certificates, idempotent, refuses bad ids"
