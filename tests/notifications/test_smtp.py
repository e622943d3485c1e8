"""The SMTP transport against a real server: TLS both ways, authentication, and how replies are sorted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.mail.smtp import SmtpConfig, SmtpTransport
from clients.mail.transport import Envelope, PermanentMailError, TransientMailError
from tests.notifications.smtp_peer import SmtpPeer, self_signed

MESSAGE = (
    b"From: no-reply@huddle.test\r\nTo: ann@example.test\r\nSubject: hi\r\n"
    b"Message-ID: <k.confirmed.guest@huddle.test>\r\n\r\n.leading dot survives\r\nbye\r\n"
)


def envelope(to: str = "ann@example.test") -> Envelope:
    return Envelope("<k.confirmed.guest@huddle.test>", "no-reply@huddle.test", to, MESSAGE)


@pytest.fixture
def certs(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
def peers() -> Iterator[list[SmtpPeer]]:
    started: list[SmtpPeer] = []
    yield started
    for peer in started:
        peer.stop()


def _start(peers: list[SmtpPeer], **kwargs: object) -> SmtpPeer:
    peer = SmtpPeer(**kwargs)  # type: ignore[arg-type]
    peer.start()
    peers.append(peer)
    return peer


def _send(url: str, env: Envelope | None = None) -> bool:
    with SmtpTransport(SmtpConfig.from_url(url, timeout=5)).session() as session:
        return session.send(env or envelope(), lambda: True)


def test_urls_and_their_options() -> None:
    plain = SmtpConfig.from_url("smtp://relay.example")
    assert (plain.host, plain.port, plain.implicit_tls, plain.starttls, plain.username) == (
        "relay.example",
        25,
        False,
        "auto",
        None,
    )
    tls = SmtpConfig.from_url("smtps://me%40x.org:p%40ss%25@relay.example?timeout=7&cafile=/ca.pem")
    assert (tls.port, tls.implicit_tls, tls.username, tls.password, tls.timeout, tls.cafile) == (
        465,
        True,
        "me@x.org",
        "p@ss%",
        7.0,
        "/ca.pem",
    )
    assert SmtpConfig.from_url("smtp://relay.example:587?starttls=always").starttls == "always"
    for bad in ("http://relay.example", "smtp://", "smtp://r?starttls=maybe", "smtp://r?verify=no"):
        with pytest.raises(ValueError):
            SmtpConfig.from_url(bad)


def test_starttls_and_login(peers: list[SmtpPeer], certs: tuple[Path, Path]) -> None:
    peer = _start(peers, tls="starttls", certs=certs, credentials=("huddle", "s3cret"))
    assert _send(peer.url)
    [got] = peer.received
    assert peer.logins == ["huddle"] and got.rcpt_tos == ["ann@example.test"]
    assert got.data.endswith(b".leading dot survives\r\nbye\r\n")  # dot-stuffing undone by the server


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(peers: list[SmtpPeer], certs: tuple[Path, Path]) -> None:
    peer = _start(peers, tls="implicit", certs=certs, credentials=("huddle", "s3cret"))
    assert peer.url.startswith("smtps://")
    assert _send(peer.url)
    assert len(peer.received) == 1


def test_an_untrusted_certificate_is_refused(peers: list[SmtpPeer], certs: tuple[Path, Path]) -> None:
    peer = _start(peers, tls="starttls", certs=certs)
    with pytest.raises(TransientMailError, match="CERTIFICATE_VERIFY_FAILED") as refused:
        _send(peer.url.split("?")[0])  # without the cafile option
    assert refused.value.connection and peer.received == []


def test_wrong_credentials_are_a_relay_problem_not_the_message(
    peers: list[SmtpPeer], certs: tuple[Path, Path]
) -> None:
    peer = _start(peers, tls="starttls", certs=certs, credentials=("huddle", "s3cret"))
    with pytest.raises(TransientMailError, match="refused the credentials") as refused:
        _send(peer.url.replace("s3cret", "wrong"))
    assert refused.value.connection


def test_starttls_always_needs_a_relay_that_offers_it(peers: list[SmtpPeer]) -> None:
    peer = _start(peers)
    with pytest.raises(TransientMailError, match="does not offer STARTTLS"):
        _send(f"{peer.url}?starttls=always")
    assert _send(f"{peer.url}?starttls=never")


def test_replies_sorted_into_permanent_and_transient(peers: list[SmtpPeer]) -> None:
    peer = _start(peers)
    peer.recorder.refuse_rcpt["gone@example.test"] = "550 5.1.1 user unknown"
    peer.recorder.refuse_rcpt["full@example.test"] = "452 4.2.2 mailbox full"
    transport = SmtpTransport(SmtpConfig.from_url(peer.url, timeout=5))
    with transport.session() as session:
        with pytest.raises(PermanentMailError, match=r"RCPT TO: 550 5\.1\.1 user unknown"):
            session.send(envelope("gone@example.test"), lambda: True)
        with pytest.raises(TransientMailError, match="452") as busy:
            session.send(envelope("full@example.test"), lambda: True)
        assert not busy.value.connection
        # The session is still good for the next message after a refusal (RSET).
        assert session.send(envelope(), lambda: True)
        # A commit the outbox refuses (someone else claimed the row) abandons the message mid-DATA.
        assert session.send(envelope(), lambda: False) is False
        assert session.send(envelope(), lambda: True)  # reconnects
    assert len(peer.wait_for(3, timeout=1)) == 2
    peer.stop()
    with pytest.raises(TransientMailError, match="cannot reach") as down:
        _send(peer.url)
    assert down.value.connection
