"""ATProto string formats (https://atproto.com/specs/lexicon#string-formats)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

# Character classes are spelled out: in Python's re, \d also matches non-ASCII digits.
_DID = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_HANDLE = re.compile(
    r"([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
_NSID = re.compile(
    r"[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"\.[a-zA-Z][a-zA-Z0-9]{0,62}"
)
_TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
_RECORD_KEY = re.compile(r"[a-zA-Z0-9._:~-]{1,512}")
_URI = re.compile(r"[a-z][a-z0-9+.-]*:[^\s]+")
_CID = re.compile(r"[a-zA-Z0-9+=]{8,256}")
_LANGUAGE = re.compile(r"(i|[a-z]{2,3})(-[a-zA-Z0-9]+)*")
_DATETIME = re.compile(
    r"(?P<head>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(\.(?P<fraction>[0-9]{1,20}))?(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})"
)


def is_did(text: str) -> bool:
    return len(text) <= 2048 and _DID.fullmatch(text) is not None


def is_handle(text: str) -> bool:
    return len(text) <= 253 and _HANDLE.fullmatch(text) is not None


def is_at_identifier(text: str) -> bool:
    return is_did(text) if text.startswith("did:") else is_handle(text)


def is_nsid(text: str) -> bool:
    return len(text) <= 317 and _NSID.fullmatch(text) is not None


def is_tid(text: str) -> bool:
    return _TID.fullmatch(text) is not None


def is_record_key(text: str) -> bool:
    return text not in (".", "..") and _RECORD_KEY.fullmatch(text) is not None


def is_at_uri(text: str) -> bool:
    """``at://authority[/collection[/rkey]]``, the form records and views use."""
    if len(text) > 8192 or not text.startswith("at://"):
        return False
    parts = text[len("at://") :].split("/")
    if len(parts) > 3 or not is_at_identifier(parts[0]):
        return False
    if len(parts) >= 2 and not is_nsid(parts[1]):
        return False
    return len(parts) < 3 or is_record_key(parts[2])


def is_uri(text: str) -> bool:
    return len(text) <= 8192 and _URI.fullmatch(text) is not None


def is_cid(text: str) -> bool:
    # A syntax check only, as ATProto's own validators do; decoding needs multiformats.
    return _CID.fullmatch(text) is not None


def is_language(text: str) -> bool:
    return len(text) <= 128 and _LANGUAGE.fullmatch(text) is not None


def parse_datetime(text: str) -> datetime:
    """The UTC instant of an ATProto datetime (RFC 3339 with an offset); ValueError otherwise."""
    match = _DATETIME.fullmatch(text) if len(text) <= 64 else None
    if match is None or match["offset"] == "-00:00":
        raise ValueError(f"not an RFC 3339 datetime with a timezone: {text!r}")
    # datetime keeps microseconds; ATProto allows more digits, which carry nothing we keep.
    fraction = f".{match['fraction'][:6]}" if match["fraction"] else ""
    normalized = f"{match['head']}{fraction}{match['offset']}"
    try:
        return datetime.fromisoformat(normalized).astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise ValueError(f"not a valid datetime: {text!r}") from error


def is_datetime(text: str) -> bool:
    try:
        parse_datetime(text)
    except ValueError:
        return False
    return True


def format_datetime(moment: datetime) -> str:
    """The ATProto spelling of an aware datetime: UTC, ``Z``, milliseconds unless finer is needed."""
    utc = moment.astimezone(UTC)
    timespec = "milliseconds" if utc.microsecond % 1000 == 0 else "microseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


FORMATS: dict[str, Callable[[str], bool]] = {
    "at-identifier": is_at_identifier,
    "at-uri": is_at_uri,
    "cid": is_cid,
    "datetime": is_datetime,
    "did": is_did,
    "handle": is_handle,
    "language": is_language,
    "nsid": is_nsid,
    "record-key": is_record_key,
    "tid": is_tid,
    "uri": is_uri,
}
