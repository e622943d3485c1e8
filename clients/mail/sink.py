"""The dev mail sink: a Maildir under `var/mail/` (each message also a plain `.eml` file), and its reader.

Used when `HUDDLE_SMTP_URL` is empty. Files are named by Message-ID, so delivering a message twice
writes it once, and "was it delivered?" has an exact answer. Any mail client that reads Maildir
(mutt -f var/mail) shows them; the admin pages use `MailSink.messages` and `MailSink.read`;
`python -m clients.mail.sink [NAME]` lists the newest messages, or prints one.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from clients.mail.transport import Envelope, TransientMailError

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")
_NAME = re.compile(r"[A-Za-z0-9._@+=-]{1,200}\.eml")


@dataclass(frozen=True)
class SinkEntry:
    """One message in the sink, as a list shows it."""

    name: str  # the file name: pass it to MailSink.read
    message_id: str
    delivered_at: datetime
    sender: str
    recipient: str
    subject: str
    kind: str | None  # X-Huddle-Kind: held, confirmed, ...
    booking_id: str | None


@dataclass(frozen=True)
class SinkMessage:
    entry: SinkEntry
    text: str | None
    html: str | None
    calendar: bytes | None  # the text/calendar part, if the message carries an invitation
    raw: bytes


class MailSink:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    # ---------------------------------------------------------------- delivery

    @contextmanager
    def session(self) -> Iterator[MailSink]:
        yield self

    def delivered(self, message_id: str) -> bool:
        name = file_name(message_id)
        return (self.directory / "new" / name).exists() or (self.directory / "cur" / name).exists()

    def send(self, envelope: Envelope, commit: Callable[[], bool]) -> bool:
        if not commit():
            return False
        if self.delivered(envelope.message_id):
            return True
        try:
            self._write(envelope)
        except OSError as exc:
            raise TransientMailError(f"cannot write to the mail sink {self.directory}: {exc}") from exc
        return True

    def _write(self, envelope: Envelope) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        trace = f"Return-Path: <{envelope.sender}>\r\nDelivered-To: {envelope.recipient}\r\n".encode()
        tmp = self.directory / "tmp" / f"{uuid.uuid4().hex}.eml"
        with open(tmp, "wb") as handle:
            handle.write(trace + envelope.data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link, unlike rename, never replaces: of two concurrent writers exactly one file wins.
            os.link(tmp, self.directory / "new" / file_name(envelope.message_id))
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    # ---------------------------------------------------------------- reading

    def messages(self, limit: int = 50, *, booking_id: str | None = None) -> list[SinkEntry]:
        """The newest messages first (optionally only one booking's)."""
        files = [p for sub in ("new", "cur") for p in (self.directory / sub).glob("*.eml")]
        files.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
        entries = []
        for path in files:
            entry = _entry(path, _parse(path.read_bytes()))
            if booking_id is None or entry.booking_id == booking_id:
                entries.append(entry)
            if len(entries) >= limit:
                break
        return entries

    def read(self, name: str) -> SinkMessage | None:
        """One message by its file name; None if there is no such message (or the name is not one)."""
        if not _NAME.fullmatch(name):
            return None
        for sub in ("new", "cur"):
            path = self.directory / sub / name
            if path.is_file():
                raw = path.read_bytes()
                message = _parse(raw)
                return SinkMessage(
                    entry=_entry(path, message),
                    text=_body(message, "plain"),
                    html=_body(message, "html"),
                    calendar=_calendar(message),
                    raw=raw,
                )
        return None


def file_name(message_id: str) -> str:
    return _UNSAFE.sub("_", message_id.strip("<>"))[:196] + ".eml"


def _parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _entry(path: Path, message: EmailMessage) -> SinkEntry:
    return SinkEntry(
        name=path.name,
        message_id=str(message.get("Message-ID", "")),
        delivered_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
        sender=str(message.get("From", "")),
        recipient=str(message.get("Delivered-To") or message.get("To", "")),
        subject=str(message.get("Subject", "")),
        kind=message.get("X-Huddle-Kind"),
        booking_id=message.get("X-Huddle-Booking"),
    )


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or not isinstance(part, EmailMessage):
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None


def _calendar(message: EmailMessage) -> bytes | None:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


def main(argv: list[str] | None = None) -> int:
    """List the sink's newest messages, or print one as text (its name as the argument)."""
    import sys

    from models.settings import get_settings

    args = sys.argv[1:] if argv is None else argv
    sink = MailSink(get_settings().mail_sink_dir)
    if args:
        message = sink.read(args[0])
        if message is None:
            print(f"no message {args[0]!r} in {sink.directory}", file=sys.stderr)
            return 1
        entry = message.entry
        print(
            f"From: {entry.sender}\nTo: {entry.recipient}\nSubject: {entry.subject}\n\n{message.text or ''}"
        )
        if message.calendar:
            print(message.calendar.decode("utf-8", "replace"))
        return 0
    for entry in sink.messages():
        when = f"{entry.delivered_at:%Y-%m-%d %H:%M:%S}"
        print(f"{when}  {entry.recipient:<32}  {entry.subject}\n    {entry.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
