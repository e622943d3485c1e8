"""DID and handle syntax (atproto.com/specs/did, /specs/handle), checked before any network call."""

from __future__ import annotations

import re
from urllib.parse import unquote

from clients.identity.errors import InvalidIdentifier

DID_MAX_LENGTH = 2048
HANDLE_MAX_LENGTH = 253

_DID_RE = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_PLC_RE = re.compile(r"did:plc:[a-z2-7]{24}")
_HANDLE_RE = re.compile(
    r"([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
# The handle spec's reserved TLDs; `.test` is allowed only in dev mode (the local PDS uses it).
_DISALLOWED_TLDS = frozenset({"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"})
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})


def is_did(value: str) -> bool:
    return len(value) <= DID_MAX_LENGTH and _DID_RE.fullmatch(value) is not None


def check_did(did: str) -> str:
    """`did` if it is a did:plc or did:web Huddle can resolve; InvalidIdentifier otherwise."""
    if not is_did(did):
        raise InvalidIdentifier(f"not a valid DID: {did[:100]!r}")
    if did.startswith("did:plc:"):
        if _PLC_RE.fullmatch(did) is None:
            raise InvalidIdentifier(f"not a valid did:plc: {did[:100]!r}")
        return did
    if did.startswith("did:web:"):
        web_host(did, allow_loopback=True)
        return did
    raise InvalidIdentifier(f"unsupported DID method (only did:plc and did:web): {did[:100]!r}")


def web_host(did: str, *, allow_loopback: bool) -> str:
    """The host (with port, for loopback hosts only) a did:web document is fetched from."""
    ident = did.removeprefix("did:web:")
    if ":" in ident:
        raise InvalidIdentifier(f"did:web with a path is not an ATProto DID: {did[:100]!r}")
    host = unquote(ident).lower()
    name, _, port = host.partition(":")
    if port:
        if name not in _LOOPBACK_HOSTS or not port.isdigit():
            raise InvalidIdentifier(f"did:web with a port is allowed for localhost only: {did[:100]!r}")
        if not allow_loopback:
            raise InvalidIdentifier(f"loopback did:web refused outside dev mode: {did[:100]!r}")
    elif name in _LOOPBACK_HOSTS and not allow_loopback:
        raise InvalidIdentifier(f"loopback did:web refused outside dev mode: {did[:100]!r}")
    elif not _HANDLE_RE.fullmatch(name) and name not in _LOOPBACK_HOSTS:
        raise InvalidIdentifier(f"did:web host is not a domain name: {did[:100]!r}")
    return host


def is_loopback_host(host: str) -> bool:
    return host.partition(":")[0] in _LOOPBACK_HOSTS


def normalize_handle(handle: str, *, allow_test_tld: bool) -> str:
    """The handle lower-cased, without a leading `@` or `at://`; InvalidIdentifier if not a handle."""
    value = handle.strip().removeprefix("at://").removeprefix("@").lower()
    if len(value) > HANDLE_MAX_LENGTH or _HANDLE_RE.fullmatch(value) is None:
        raise InvalidIdentifier(f"not a valid handle: {handle[:100]!r}")
    tld = value.rsplit(".", 1)[-1]
    if tld in _DISALLOWED_TLDS or (tld == "test" and not allow_test_tld):
        raise InvalidIdentifier(f"handles under .{tld} cannot be resolved: {value!r}")
    return value
