"""What delivering one message can end in, and the interface SMTP and the dev sink share.

A message is handed to a transport together with a `commit` callback. The transport calls it at the
last moment the message can still be withdrawn (for SMTP: the body is sent, the final "." is not);
the callback records in the database that the message is being handed over, and may refuse (another
sender claimed the message first), in which case the transport abandons it. That commit point is what
makes a crash between "the relay took it" and "we marked it sent" not resend it: a later attempt
finds the row already handed over.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol


class MailError(Exception):
    """A delivery attempt that did not end with the message accepted."""

    smtp_code: int | None = None  # the relay's reply code, when a reply refused it


class TransientMailError(MailError):
    """Try again later: the relay is down or busy (4xx), or its configuration is wrong.

    `connection` is True when the session itself failed (connect, TLS, auth): every other message
    waiting for the same relay will fail the same way, so the caller stops trying for now.
    """

    def __init__(self, message: str, *, connection: bool = False) -> None:
        super().__init__(message)
        self.connection = connection


class PermanentMailError(MailError):
    """The relay refused this message for good (5xx to its recipient or content): never retried."""


class DeliveryUnconfirmed(MailError):
    """The message was handed over but the relay's answer was lost; assumed delivered, not resent."""


@dataclass(frozen=True)
class Envelope:
    """One message for one recipient, rendered to the bytes that go on the wire."""

    message_id: str  # with angle brackets, as in the header
    sender: str  # the envelope sender (bounces go there)
    recipient: str
    data: bytes


class MailSession(Protocol):
    def send(self, envelope: Envelope, commit: Callable[[], bool]) -> bool:
        """Deliver; False if `commit` refused. Raises a MailError subclass when not accepted."""
        ...


class Transport(Protocol):
    def session(self) -> AbstractContextManager[MailSession]:
        """A session for several messages (one SMTP connection, opened on first use)."""
        ...

    def delivered(self, message_id: str) -> bool | None:
        """Whether a message with this Message-ID was delivered already; None when it cannot tell."""
        ...
