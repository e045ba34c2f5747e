#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The independent JOSE peer for interop_jwcrypto.sh: python3-jwcrypto seals and opens ESData.
"""Usage: jwcrypto_peer.py decrypt|encrypt|verify|sign KEYFILE KID [FID IDX GEN] <in >out

decrypt/verify also check "kid" and, given FID IDX GEN, the "atrest" member
(docs/FORMAT.md), exactly as a third party following FORMAT.md would."""
import json
import sys

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import base64url_encode, json_encode


def main():
    mode, keyfile, kid = sys.argv[1:4]
    bind = sys.argv[4:7]
    key = jwk.JWK(kty="oct", k=base64url_encode(open(keyfile, "rb").read()))
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
        if header.get("kid") != kid:
            sys.exit("kid %r, expected %r" % (header.get("kid"), kid))
        if bind:
            a = header.get("atrest", {})
            want = {"v": 1, "t": "seg", "fid": bind[0], "idx": int(bind[1]), "gen": int(bind[2])}
            if a != want:
                sys.exit("atrest member %s, expected %s" % (json.dumps(a), json.dumps(want)))
        out.write(payload)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
