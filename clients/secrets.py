"""Secrets at rest: a Fernet key ring (HUDDLE_TOKEN_KEYS) for provider tokens, passwords and caches.

New values are encrypted with the first key; every key in the ring still decrypts, so keys rotate by
putting a new one first, running `huddle rotate-keys`, then dropping the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from models.settings import Settings


class SecretUnreadable(Exception):
    """A stored secret no key in the ring can decrypt (a key was dropped too early, or the value is bad)."""


class KeyRing:
    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._fernets = [Fernet(k) for k in keys]
        self._ring = MultiFernet(self._fernets)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """HUDDLE_TOKEN_KEYS; in dev mode without keys, one derived from the secret key."""
        keys = [k.strip() for k in settings.token_keys.split(",") if k.strip()]
        if not keys:
            if not settings.dev_mode:
                raise ValueError("HUDDLE_TOKEN_KEYS must be set outside development mode")
            keys = [dev_key(settings.secret_key)]
        return cls(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._ring.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._ring.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("no key in HUDDLE_TOKEN_KEYS decrypts this value") from exc

    def encrypt_optional(self, plaintext: str | None) -> str | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_optional(self, token: str | None) -> str | None:
        return None if token is None else self.decrypt(token)

    def rotate(self, token: str) -> str:
        """The same secret, encrypted with the first key (a no-op in meaning, new bytes on disk)."""
        try:
            return self._ring.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("no key in HUDDLE_TOKEN_KEYS decrypts this value") from exc

    def is_current(self, token: str) -> bool:
        """Encrypted with the first key already?"""
        try:
            self._fernets[0].decrypt(token.encode())
        except InvalidToken:
            return False
        return True


def dev_key(secret_key: str) -> str:
    """A Fernet key derived from the secret key, for development only."""
    digest = hashlib.sha256(b"huddle-dev-token-key\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def digest(secret: str) -> str:
    """What we store of a secret we only ever compare (webhook channel tokens, OAuth states)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented secret with a stored digest."""
    return hmac.compare_digest(digest(secret).encode(), stored_digest.encode())
