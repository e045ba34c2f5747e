#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ESData interoperability: python3-jwcrypto opens what libatrest seals, and libatrest opens what jwcrypto seals (JWE dir/A256GCM and JWS HS256).
. "$ATREST_SRC/tests/integration/lib.sh"

JOSE=$ATREST_BUILD/tests/tools/atrest-jose
PEER=$ATREST_SRC/tests/integration/jwcrypto_peer.py
KID=5f2c0e8a9b7d4c3e1a0f6b8d2e4c6a80@tef.atrest.example

/usr/bin/python3 -c 'import jwcrypto' || fail "python3-jwcrypto is not installed (tests/run.sh installs it)"

head -c 32 /dev/urandom >"$T/key"
head -c 32 /dev/urandom >"$T/other-key"
head -c 100003 /dev/urandom >"$T/plain"

# A256GCM needs AES-NI in libsodium; without it only the XC20P and JWS parts
# can run here (and say so).
have_gcm=1
if ! "$JOSE" -k "$T/key" -K "$KID" -e A256GCM -f probe seal </dev/null >/dev/null 2>"$T/probe.log"; then
	grep -q 'not supported' "$T/probe.log" || fail "atrest-jose cannot seal: $(cat "$T/probe.log")"
	have_gcm=0
	echo "note: this CPU has no AES-GCM in libsodium: A256GCM parts not run"
fi

if [ $have_gcm = 1 ]; then

# 1. libatrest seals a segment, jwcrypto decrypts it given the key.
"$JOSE" -k "$T/key" -K "$KID" -e A256GCM -f "file-7" -n 3 -g 9 seal <"$T/plain" >"$T/seg.jwe"
[ "$(tr -cd . <"$T/seg.jwe" | wc -c)" = 4 ] || fail "not a compact JWE"
/usr/bin/python3 "$PEER" decrypt "$T/key" "$KID" file-7 3 9 <"$T/seg.jwe" >"$T/out1"
cmp "$T/plain" "$T/out1" || fail "jwcrypto decrypted something else"
ok "jwcrypto decrypts a libatrest segment (dir, A256GCM, kid, atrest member)"

# ... and a one-byte one. (Not an empty one: jwcrypto 1.1 refuses every
# empty JWE plaintext, its own included, though RFC 7516 allows it.)
printf x | "$JOSE" -k "$T/key" -K "$KID" -e A256GCM -f "file-7" -n 0 -g 1 seal >"$T/one.jwe"
[ "$(/usr/bin/python3 "$PEER" decrypt "$T/key" "$KID" file-7 0 1 <"$T/one.jwe")" = x ] ||
	fail "one-byte segment"
ok "jwcrypto decrypts a one-byte libatrest segment"

fi

# XC20P (the fallback where the CPU lacks AES-GCM): jwcrypto has no XC20P,
# so the peer follows docs/FORMAT.md 10 by hand with python3-cryptography.
"$JOSE" -k "$T/key" -K "$KID" -e XC20P -f "file-7" -n 5 -g 9 seal <"$T/plain" >"$T/seg-xc.jwe"
/usr/bin/python3 "$PEER" decrypt-xc20p "$T/key" "$KID" file-7 5 9 <"$T/seg-xc.jwe" >"$T/out-xc"
cmp "$T/plain" "$T/out-xc" || fail "XC20P segment decrypted to something else"
/usr/bin/python3 "$PEER" decrypt-xc20p "$T/other-key" "$KID" <"$T/seg-xc.jwe" >/dev/null 2>&1 &&
	fail "XC20P segment decrypted under the wrong key"
ok "python3-cryptography decrypts a libatrest XC20P segment following FORMAT.md"

if [ $have_gcm = 1 ]; then
# jwcrypto rejects the segment under another key (a real check, not a pass-through).
if /usr/bin/python3 "$PEER" decrypt "$T/other-key" "$KID" <"$T/seg.jwe" >/dev/null 2>&1; then
	fail "jwcrypto accepted a segment under the wrong key"
fi

# 2. jwcrypto seals a JWE (dir, A256GCM, kid), libatrest opens it.
/usr/bin/python3 "$PEER" encrypt "$T/key" "$KID" <"$T/plain" >"$T/peer.jwe"
"$JOSE" -k "$T/key" -K "$KID" open <"$T/peer.jwe" >"$T/out2"
cmp "$T/plain" "$T/out2" || fail "libatrest opened jwcrypto's JWE to something else"
[ "$("$JOSE" peek-kid <"$T/peer.jwe")" = "$KID" ] || fail "peek-kid"
ok "libatrest opens a jwcrypto JWE and reads its kid"

# libatrest refuses it with another expected kid, and after a flipped bit.
"$JOSE" -k "$T/key" -K "other@tef" open <"$T/peer.jwe" >/dev/null 2>"$T/kid.log" &&
	fail "libatrest accepted a JWE with another kid"
grep -q 'Key was rejected' "$T/kid.log" || fail "kid mismatch not reported as such: $(cat "$T/kid.log")"
/usr/bin/python3 - "$T/peer.jwe" "$T/flipped.jwe" <<'PY'
import sys
s = open(sys.argv[1]).read().strip()
parts = s.split(".")
ct = parts[3]
# swap one ciphertext character for another valid one in the middle
i = len(ct) // 2
parts[3] = ct[:i] + ("A" if ct[i] != "A" else "B") + ct[i + 1:]
open(sys.argv[2], "w").write(".".join(parts))
PY
"$JOSE" -k "$T/key" -K "$KID" open <"$T/flipped.jwe" >"$T/out-flipped" 2>"$T/flip.log" &&
	fail "libatrest accepted a tampered JWE"
[ ! -s "$T/out-flipped" ] || fail "libatrest wrote plaintext of a tampered JWE"
grep -q 'Bad message' "$T/flip.log" || fail "tampering not reported as such: $(cat "$T/flip.log")"
ok "libatrest refuses jwcrypto's JWE under another kid or with a changed byte"
fi

# 3. JWS HS256 both ways.
"$JOSE" -k "$T/key" -K "$KID" -i -f "file-7" -n 4 -g 9 seal <"$T/plain" >"$T/seg.jws"
[ "$(tr -cd . <"$T/seg.jws" | wc -c)" = 2 ] || fail "not a compact JWS"
/usr/bin/python3 "$PEER" verify "$T/key" "$KID" file-7 4 9 <"$T/seg.jws" >"$T/out3"
cmp "$T/plain" "$T/out3" || fail "jwcrypto verified something else"
if /usr/bin/python3 "$PEER" verify "$T/other-key" "$KID" <"$T/seg.jws" >/dev/null 2>&1; then
	fail "jwcrypto verified a JWS under the wrong key"
fi
ok "jwcrypto verifies a libatrest JWS HS256"

/usr/bin/python3 "$PEER" sign "$T/key" "$KID" <"$T/plain" >"$T/peer.jws"
"$JOSE" -k "$T/key" -K "$KID" open <"$T/peer.jws" >"$T/out4"
cmp "$T/plain" "$T/out4" || fail "libatrest verified jwcrypto's JWS to something else"
"$JOSE" -k "$T/other-key" -K "$KID" open <"$T/peer.jws" >/dev/null 2>"$T/jws-key.log" &&
	fail "libatrest verified a JWS under the wrong key"
grep -q 'Bad message' "$T/jws-key.log" || fail "wrong JWS key not reported as such"
ok "libatrest verifies a jwcrypto JWS HS256"

check_sanitizer_logs "$T"/*.log
