"""ES256 keys and compact JWTs, on `cryptography` alone: what DPoP proofs and client assertions need.

Only ES256 (P-256, SHA-256) is used: every ATProto authorization server must support it, and one
algorithm means one code path to get right.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

_COORD = 32  # bytes in a P-256 coordinate (and in each half of an ES256 signature)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string with `nbytes` of entropy."""
    return secrets.token_urlsafe(nbytes)


def sha256_b64url(text: str) -> str:
    """base64url(SHA-256(text)): PKCE S256 challenges and DPoP `ath` claims."""
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


class JwtError(Exception):
    """A JWT that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class SigningKey:
    """A P-256 private key with an optional `kid`; serializes to and from a private JWK."""

    private: ec.EllipticCurvePrivateKey
    kid: str | None = None

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), kid)

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> SigningKey:
        """A private EC P-256 JWK (`kty`, `crv`, `x`, `y`, `d`, optional `kid`)."""
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" not in jwk:
            raise ValueError("not a private EC P-256 JWK")
        d = int.from_bytes(b64url_decode(jwk["d"]), "big")
        private = ec.derive_private_key(d, ec.SECP256R1())
        key = cls(private, jwk.get("kid"))
        public = key.public_jwk()
        if public["x"] != jwk.get("x") or public["y"] != jwk.get("y"):
            raise ValueError("the JWK's public coordinates do not match its private key")
        return key

    @classmethod
    def from_json(cls, text: str) -> SigningKey:
        return cls.from_jwk(json.loads(text))

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(_COORD, "big")),
            "y": b64url(numbers.y.to_bytes(_COORD, "big")),
        }
        if self.kid is not None:
            jwk.update({"kid": self.kid, "alg": "ES256", "use": "sig"})
        return jwk

    def private_jwk(self) -> dict[str, str]:
        d = self.private.private_numbers().private_value
        return {**self.public_jwk(), "d": b64url(d.to_bytes(_COORD, "big"))}

    def to_json(self) -> str:
        return json.dumps(self.private_jwk(), separators=(",", ":"), sort_keys=True)

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key."""
        jwk = self.public_jwk()
        canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def sign_jwt(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        """A compact JWS with `alg: ES256` (set here) over the JSON header and claims."""
        head = {**header, "alg": "ES256"}
        signing_input = f"{_segment(head)}.{_segment(claims)}".encode("ascii")
        der = self.private.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input.decode()}.{b64url(r.to_bytes(_COORD, 'big') + s.to_bytes(_COORD, 'big'))}"


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWT, without checking anything."""
    try:
        head, body, _sig = token.split(".")
        return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JwtError("not a compact JWT") from exc


def verify_es256(token: str, public_jwk: dict[str, Any]) -> dict[str, Any]:
    """The claims of an ES256 JWT signed by the key `public_jwk`; JwtError otherwise."""
    header, claims = decode_unverified(token)
    if header.get("alg") != "ES256":
        raise JwtError(f"unexpected alg {header.get('alg')!r}")
    try:
        x = int.from_bytes(b64url_decode(public_jwk["x"]), "big")
        y = int.from_bytes(b64url_decode(public_jwk["y"]), "big")
        public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        head, body, sig = token.split(".")
        raw = b64url_decode(sig)
        if len(raw) != 2 * _COORD:
            raise JwtError("an ES256 signature is 64 bytes")
        der = encode_dss_signature(int.from_bytes(raw[:_COORD], "big"), int.from_bytes(raw[_COORD:], "big"))
        public.verify(der, f"{head}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, KeyError, ValueError) as exc:
        raise JwtError("the signature does not verify") from exc
    return claims
