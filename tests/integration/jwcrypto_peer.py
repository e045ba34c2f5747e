#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The independent JOSE peer for interop_jwcrypto.sh: python3-jwcrypto seals and opens ESData.
"""Usage: jwcrypto_peer.py decrypt|encrypt|verify|sign|decrypt-xc20p KEYFILE KID [FID IDX GEN] <in >out

decrypt/verify also check "kid" and, given FID IDX GEN, the "atrest" member
(docs/FORMAT.md), exactly as a third party following FORMAT.md would.
decrypt-xc20p follows docs/FORMAT.md 10 by hand for "enc":"XC20P", which
jwcrypto lacks: HChaCha20 here, ChaCha20-Poly1305 from python3-cryptography."""
import json
import struct
import sys

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import base64url_encode, json_encode


def hchacha20(key, nonce16):
    """HChaCha20 (draft-irtf-cfrg-xchacha 2.2): the XChaCha20 subkey."""
    def rotl(v, c):
        return ((v << c) & 0xffffffff) | (v >> (32 - c))

    def qr(x, a, b, c, d):
        x[a] = (x[a] + x[b]) & 0xffffffff; x[d] = rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xffffffff; x[b] = rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xffffffff; x[d] = rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xffffffff; x[b] = rotl(x[b] ^ x[c], 7)

    x = list(struct.unpack("<4I", b"expand 32-byte k") + struct.unpack("<8I", key)
             + struct.unpack("<4I", nonce16))
    for _ in range(10):
        qr(x, 0, 4, 8, 12); qr(x, 1, 5, 9, 13); qr(x, 2, 6, 10, 14); qr(x, 3, 7, 11, 15)
        qr(x, 0, 5, 10, 15); qr(x, 1, 6, 11, 12); qr(x, 2, 7, 8, 13); qr(x, 3, 4, 9, 14)
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def decrypt_xc20p(raw_key, text):
    """docs/FORMAT.md 10, steps 1-3, for a JWE with "enc":"XC20P"."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from jwcrypto.common import base64url_decode

    parts = text.split(".")
    if len(parts) != 5 or parts[1] != "":
        sys.exit("not a dir JWE")
    header = json.loads(base64url_decode(parts[0]))
    if header["alg"] != "dir" or header["enc"] != "XC20P":
        sys.exit("unexpected alg/enc %r" % header)
    iv, ct, tag = (base64url_decode(p) for p in parts[2:])
    if len(iv) != 24 or len(tag) != 16:
        sys.exit("bad IV or tag length")
    aead = ChaCha20Poly1305(hchacha20(raw_key, iv[:16]))
    plain = aead.decrypt(b"\0\0\0\0" + iv[16:], ct + tag, parts[0].encode("ascii"))
    return header, plain


def check_header(header, kid, bind):
    if header.get("kid") != kid:
        sys.exit("kid %r, expected %r" % (header.get("kid"), kid))
    if bind:
        a = header.get("atrest", {})
        want = {"v": 1, "t": "seg", "fid": bind[0], "idx": int(bind[1]), "gen": int(bind[2])}
        if a != want:
            sys.exit("atrest member %s, expected %s" % (json.dumps(a), json.dumps(want)))


def main():
    mode, keyfile, kid = sys.argv[1:4]
    bind = sys.argv[4:7]
    raw_key = open(keyfile, "rb").read()
    key = jwk.JWK(kty="oct", k=base64url_encode(raw_key))
    data = sys.stdin.buffer.read()
    out = sys.stdout.buffer

    if mode == "encrypt":
        tok = jwe.JWE(data, json_encode({"alg": "dir", "enc": "A256GCM", "kid": kid}))
        tok.add_recipient(key)
        out.write(tok.serialize(compact=True).encode())
    elif mode == "sign":
        tok = jws.JWS(data)
        tok.add_signature(key, None, json_encode({"alg": "HS256", "kid": kid}))
        out.write(tok.serialize(compact=True).encode())
    elif mode in ("decrypt", "verify"):
        text = data.decode().strip()
        if mode == "decrypt":
            tok = jwe.JWE()
            tok.deserialize(text, key=key)
            header = tok.jose_header
            if header["alg"] != "dir" or header["enc"] != "A256GCM":
                sys.exit("unexpected alg/enc %r" % header)
            payload = tok.payload
        else:
            tok = jws.JWS()
            tok.deserialize(text)
            tok.verify(key)
            header = tok.jose_header
            if header["alg"] != "HS256":
                sys.exit("unexpected alg %r" % header)
            payload = tok.payload
        check_header(header, kid, bind)
        out.write(payload)
    elif mode == "decrypt-xc20p":
        header, payload = decrypt_xc20p(raw_key, data.decode().strip())
        check_header(header, kid, bind)
        out.write(payload)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
