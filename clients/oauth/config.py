"""Which OAuth client Huddle is, from its settings; and a command to make production keys.

Development (dev mode, public URL on http://127.0.0.1): a loopback client, nothing to configure.
Production: a confidential client; HUDDLE_OAUTH_CLIENT_KEYS holds its private ES256 JWKs, made with
`python -m clients.oauth.config` (the first key signs; keep retired keys listed until their
sessions are gone, since authorization servers check assertions against the served JWKS).
"""

from __future__ import annotations

import json
import sys
from urllib.parse import urlsplit

from clients.oauth.client import CALLBACK_PATH, ClientConfig
from clients.oauth.jwt import SigningKey, random_token
from models.settings import Settings


class OAuthNotConfigured(Exception):
    """Sign-in cannot work with these settings (the message says what to set)."""


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def load_keys(text: str) -> tuple[SigningKey, ...]:
    """Private JWKs: one JWK object, a list of them, or a JWK set `{"keys": [...]}`."""
    if not text.strip():
        return ()
    value = json.loads(text)
    if isinstance(value, dict) and "keys" in value:
        value = value["keys"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("HUDDLE_OAUTH_CLIENT_KEYS: expected a JWK, a list of JWKs or a JWK set")
    return tuple(SigningKey.from_jwk(jwk) for jwk in value)


def client_config(settings: Settings) -> ClientConfig:
    """The loopback client in development on a loopback URL; the confidential client otherwise."""
    base = settings.public_url.rstrip("/")
    keys = load_keys(settings.oauth_client_keys)
    if keys:
        return ClientConfig.web(base, settings.oauth_scope, keys)
    if settings.dev_mode and is_loopback_url(base):
        # Loopback redirect URIs must name the IP, not "localhost" (RFC 8252 §7.3).
        parts = urlsplit(base)
        port = f":{parts.port}" if parts.port else ""
        return ClientConfig.loopback(f"http://127.0.0.1{port}{CALLBACK_PATH}", settings.oauth_scope)
    raise OAuthNotConfigured(
        "sign-in needs HUDDLE_OAUTH_CLIENT_KEYS (make one with `python -m clients.oauth.config`)"
    )


def main() -> int:
    """Print a fresh private JWK set for HUDDLE_OAUTH_CLIENT_KEYS."""
    key = SigningKey.generate(kid=f"huddle-{random_token(6)}")
    print(json.dumps({"keys": [key.private_jwk()]}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
