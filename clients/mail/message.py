"""One outbox row → one MIME message, the way calendar-aware mail clients expect it.

    multipart/mixed
      multipart/alternative
        text/plain
        text/html
        text/calendar; method=REQUEST|CANCEL   (iMIP, RFC 6047: what makes accept/decline appear)
      application/ics; name=invite.ics         (the same calendar, for clients that only import)

Messages without an invitation are just the alternative of text and HTML. The Message-ID comes from
the row's dedupe key, and every header comes from the row, so the same row always yields the same
bytes: a resend is recognisably the same message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from clients.mail.invitation import invitation_ics
from clients.mail.notices import render_notice
from clients.mail.render import Links, Rendered, render
from clients.mail.transport import Envelope
from models.settings import Settings
from models.tables import OutboxMessage

_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]")


@dataclass(frozen=True)
class MailIdentity:
    """Who Huddle's mail is from, and the names it uses in Message-IDs, UIDs and links."""

    sender: str  # "Huddle <no-reply@example.org>"
    domain: str
    public_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> MailIdentity:
        sender = settings.mail_from or f"Huddle <no-reply@{settings.hostname}>"
        return cls(sender=sender, domain=settings.hostname, public_url=settings.public_url)

    @property
    def address(self) -> str:
        """The bare address of `sender` (the envelope sender, the organizer of last resort)."""
        return parseaddr(self.sender)[1]


def message_id(dedupe_key: str, domain: str) -> str:
    """`<bk.confirmed.guest@domain>` for the key `bk:confirmed:guest` (RFC 5322 msg-id)."""
    left = ".".join(_NOT_ATEXT.sub("_", part) or "_" for part in dedupe_key.split(":"))
    return f"<{left}@{domain}>"


def thread_id(booking_id: str, domain: str) -> str:
    """A Message-ID no message has: every message of one booking refers to it, so clients thread them."""
    return f"<booking.{_NOT_ATEXT.sub('_', booking_id)}@{domain}>"


def connector_thread_id(connector_id: int, domain: str) -> str:
    """Like `thread_id`, for the messages about one calendar connector."""
    return f"<connector.{connector_id}@{domain}>"


def compose(row: OutboxMessage, identity: MailIdentity) -> Envelope:
    payload = row.payload
    if row.booking_id is None:
        # About an account, not a booking: no booking links, no invitation.
        rendered = render_notice(row.kind, payload, identity.public_url)
        connector = payload["connectorId"]
        thread = connector_thread_id(connector, identity.domain)
        msg = _message(row, identity, rendered, thread, {"X-Huddle-Connector": str(connector)})
        return _envelope(row, identity, msg)

    links = Links.for_booking(identity.public_url, payload["bookingId"])
    rendered = render(payload, links, identity.public_url)
    thread = thread_id(payload["bookingId"], identity.domain)
    msg = _message(row, identity, rendered, thread, {"X-Huddle-Booking": payload["bookingId"]})

    method = payload.get("ics")
    calendar = None
    if method:
        calendar = invitation_ics(
            payload,
            method,
            domain=identity.domain,
            organizer_fallback=identity.address,
            dtstamp=row.created_at,
            booking_url=links.booking,
        )
    if calendar is not None:
        msg.add_alternative(
            calendar,
            maintype="text",
            subtype="calendar",
            cte="base64",
            params={"method": method, "charset": "UTF-8"},
        )
        msg.add_attachment(
            calendar,
            maintype="application",
            subtype="ics",
            filename="invite.ics" if method == "REQUEST" else "cancel.ics",
        )
    return _envelope(row, identity, msg)


def _message(
    row: OutboxMessage, identity: MailIdentity, rendered: Rendered, thread: str, about: dict[str, str]
) -> EmailMessage:
    """The headers every Huddle message has (`about`: what it is about), and its text and HTML."""
    msg = EmailMessage()
    msg["From"] = identity.sender
    msg["To"] = Address(addr_spec=row.recipient)
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(row.created_at)
    msg["Message-ID"] = message_id(row.dedupe_key, identity.domain)
    msg["References"] = thread
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to Huddle
    msg["X-Huddle-Kind"] = row.kind
    for name, value in about.items():
        msg[name] = value
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


def _envelope(row: OutboxMessage, identity: MailIdentity, msg: EmailMessage) -> Envelope:
    # Headers unfolded up to RFC 5322's hard limit: Python folds a long Subject right after its colon.
    wire_policy = (policy.SMTP if row.recipient.isascii() else policy.SMTPUTF8).clone(max_line_length=998)
    return Envelope(
        message_id=str(msg["Message-ID"]),
        sender=identity.address,
        recipient=row.recipient,
        data=msg.as_bytes(policy=wire_policy),
    )
