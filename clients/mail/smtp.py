"""Delivery over SMTP with stdlib smtplib: implicit TLS (`smtps://`) or STARTTLS, auth, and a commit point.

`HUDDLE_SMTP_URL` is `smtp://user:pass@host:port` or `smtps://…`, with query options:
`starttls=auto|always|never` (auto: upgrade whenever the relay offers it), `cafile=/path.pem` (a CA
bundle for a private relay), `timeout=SECONDS` (per socket operation).

Replies are sorted by who can fix them. A 5xx to a message's RCPT TO or to its content is permanent
for that message. Anything wrong with the session itself (connect, TLS, authentication, or a relay
that wants authentication) is transient: an operator can fix it, and the mail should then flow.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from clients.calltrace import provider_call
from clients.mail.transport import (
    DeliveryUnconfirmed,
    Envelope,
    MailError,
    PermanentMailError,
    TransientMailError,
)

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
STARTTLS_MODES = ("auto", "always", "never")
# Replies to MAIL FROM that mean "this session is not authorized", not "this message is bad".
_SESSION_REFUSALS = frozenset({530, 535, 538})


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: str = "auto"
    username: str | None = None
    password: str | None = None
    timeout: float = 20.0
    cafile: str | None = None
    local_hostname: str | None = None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 20.0, local_hostname: str | None = None) -> SmtpConfig:
        """Parse `smtp[s]://[user[:pass]@]host[:port][?starttls=…&cafile=…&timeout=…]`."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError(f"SMTP URL must start with smtp:// or smtps://, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(options) - {"starttls", "cafile", "timeout"}
        if unknown:
            raise ValueError(f"unknown SMTP URL options: {', '.join(sorted(unknown))}")
        starttls = options.get("starttls", "auto")
        if starttls not in STARTTLS_MODES:
            raise ValueError(f"starttls must be one of {', '.join(STARTTLS_MODES)}, not {starttls!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            implicit_tls=parts.scheme == "smtps",
            starttls=starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=float(options.get("timeout", timeout)),
            cafile=options.get("cafile") or None,
            local_hostname=local_hostname,
        )

    @property
    def relay(self) -> str:
        """host:port, for messages and logs (never the credentials)."""
        return f"{self.host}:{self.port}"


class SmtpTransport:
    """Delivers to one relay; each session is one connection, opened when the first message needs it."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @contextmanager
    def session(self) -> Iterator[SmtpSession]:
        session = SmtpSession(self.config)
        try:
            yield session
        finally:
            session.close()

    def delivered(self, message_id: str) -> bool | None:
        return None  # a relay cannot be asked; the outbox row's commit point answers instead


class SmtpSession:
    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._conn: smtplib.SMTP | None = None

    def send(self, envelope: Envelope, commit: Callable[[], bool]) -> bool:
        # One traced, counted call per message: status is the relay's reply code, or what failed.
        with provider_call("smtp", "send", server=(self._config.host, self._config.port)) as call:
            sent = self._send(envelope, commit)
            call.answered(250 if sent else "withdrawn")
            return sent

    def _send(self, envelope: Envelope, commit: Callable[[], bool]) -> bool:
        conn = self._connection()
        try:
            return self._transact(conn, envelope, commit)
        except MailError:
            raise
        except OSError as exc:  # smtplib's exceptions are OSErrors too; all of these are before the commit
            self._drop()
            raise TransientMailError(
                f"connection to {self._config.relay} lost: {exc}", connection=True
            ) from exc

    def _transact(self, conn: smtplib.SMTP, envelope: Envelope, commit: Callable[[], bool]) -> bool:
        options: list[str] = []
        if not (envelope.recipient.isascii() and envelope.sender.isascii()):
            if not conn.has_extn("smtputf8"):
                raise PermanentMailError("the address is internationalized and the relay lacks SMTPUTF8")
            options.append("SMTPUTF8")
        code, reply = conn.mail(envelope.sender, options)
        if code != 250:
            self._reset(conn)
            raise _refusal("MAIL FROM", code, reply, session=code in _SESSION_REFUSALS)
        code, reply = conn.rcpt(envelope.recipient)
        if code not in (250, 251):
            self._reset(conn)
            raise _refusal("RCPT TO", code, reply)
        conn.putcmd("data")
        code, reply = conn.getreply()
        if code != 354:
            self._reset(conn)
            raise _refusal("DATA", code, reply)
        conn.send(_dot_stuffed(envelope.data))
        if not commit():
            # Someone else is sending this message: hanging up before the final "." makes the
            # relay discard ours (RFC 5321 §3.8).
            self._drop()
            return False
        try:
            conn.send(b".\r\n")
            code, reply = conn.getreply()
        except OSError as exc:
            self._drop()
            raise DeliveryUnconfirmed(
                f"{self._config.relay} did not answer after taking the message: {exc}"
            ) from exc
        if code == 250:
            return True
        raise _refusal("end of DATA", code, reply)

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        c = self._config
        conn: smtplib.SMTP | None = None
        try:
            if c.implicit_tls:
                conn = smtplib.SMTP_SSL(
                    c.host, c.port, local_hostname=c.local_hostname, timeout=c.timeout, context=self._tls()
                )
            else:
                conn = smtplib.SMTP(c.host, c.port, local_hostname=c.local_hostname, timeout=c.timeout)
            conn.ehlo_or_helo_if_needed()
            secure = c.implicit_tls
            if not secure and c.starttls != "never":
                if conn.has_extn("starttls"):
                    conn.starttls(context=self._tls())
                    conn.ehlo()
                    secure = True
                elif c.starttls == "always":
                    raise TransientMailError(f"{c.relay} does not offer STARTTLS", connection=True)
            if c.username is not None:
                if not secure and c.starttls != "never" and not _is_loopback(c.host):
                    raise TransientMailError(
                        f"{c.relay} offers no TLS: not sending the password in the clear "
                        "(add ?starttls=never to the SMTP URL to allow it)",
                        connection=True,
                    )
                conn.login(c.username, c.password or "")
        except MailError:
            _close(conn)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _close(conn)
            raise TransientMailError(
                f"{c.relay} refused the credentials: {exc.smtp_code} {_text(exc.smtp_error)}", connection=True
            ) from exc
        except (ssl.SSLError, ssl.CertificateError) as exc:
            _close(conn)
            raise TransientMailError(f"TLS with {c.relay} failed: {exc}", connection=True) from exc
        except smtplib.SMTPException as exc:
            _close(conn)
            raise TransientMailError(f"SMTP session with {c.relay} failed: {exc}", connection=True) from exc
        except OSError as exc:
            _close(conn)
            raise TransientMailError(f"cannot reach {c.relay}: {exc}", connection=True) from exc
        self._conn = conn
        return conn

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._config.cafile)

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except OSError:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        _close(conn)


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()


def _refusal(stage: str, code: int, reply: bytes, *, session: bool = False) -> MailError:
    message = f"{stage}: {code} {_text(reply)}"
    error: MailError
    if 500 <= code < 600 and not session:
        error = PermanentMailError(message)
    else:
        error = TransientMailError(message, connection=session)
    error.smtp_code = code
    return error


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:500]


def _dot_stuffed(data: bytes) -> bytes:
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
