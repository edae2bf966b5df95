#!/usr/bin/env python3
"""Keys and tokens for bench/security-cost.sh: an ES256 (P-256) and an RS256
(2048-bit) key pair, their public keys as PEM, and one token for each
(exp a day ahead). Uses the `cryptography` package (Debian python3-cryptography
or PyPI), signing only; nothing here touches the network.

Usage: bench/jwt-fixture.py DIR   → DIR/{es256,rs256}.pub.pem, DIR/{es256,rs256}.jwt
"""
import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(alg: str, kid: str, sign) -> str:
    header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
    now = int(time.time())
    claims = {"sub": "bench-user", "iss": "https://issuer.bench", "aud": "ringway",
              "iat": now, "exp": now + 86400, "scope": "read write"}
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    return f"{header}.{payload}.{b64(sign(signing_input))}"


def main(out: str) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())

    def es256(data: bytes) -> bytes:
        r, s = decode_dss_signature(ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def rs256(data: bytes) -> bytes:
        return rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    for name, key, sign, alg in (("es256", ec_key, es256, "ES256"), ("rs256", rsa_key, rs256, "RS256")):
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        open(f"{out}/{name}.pub.pem", "wb").write(pem)
        open(f"{out}/{name}.jwt", "w").write(token(alg, name, sign))


if __name__ == "__main__":
    main(sys.argv[1])
