"""A receive-only WebSocket client (RFC 6455) built for the firehose: messages arrive in batches.

Why not the `websockets` package: its per-message machinery (a parser coroutine, a future per
`recv`) costs more than everything else Huddle does with an event it does not need. Here the
protocol splits whatever bytes arrived into messages in one loop and hands them over as a list.

Scope: no extensions are offered (so the server sends no compressed frames), text and binary
messages, fragmentation, ping/pong, close. Client frames (pong, ping, close) are masked as the RFC
requires. Reading pauses while the consumer is behind (TCP backpressure reaches the relay).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct
from collections import deque
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HANDSHAKE = 64 * 1024
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class StreamClosed(ConnectionError):
    """The connection ended; `code` and `reason` come from the server's close frame, if it sent one."""

    def __init__(self, message: str, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class HandshakeError(ConnectionError):
    """The server did not upgrade the connection (status, or a bad Sec-WebSocket-Accept)."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A masked frame, as every client-to-server frame must be."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    if n:
        key = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + payload


class _Protocol(asyncio.Protocol):
    def __init__(self, request: bytes, key: bytes, max_message: int, high_water: int) -> None:
        self._request = request
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 (the RFC's hash)
        self._max_message = max_message
        self._high_water = high_water
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._upgraded = False
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.messages: deque[bytes] = deque()
        self._fragments: list[bytes] | None = None
        self._fragments_size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.closed: StreamClosed | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_received = 0.0

    # ------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self.last_received = asyncio.get_running_loop().time()
        self._buf += data
        try:
            if not self._upgraded and not self._read_handshake():
                return
            self._read_frames()
        except (HandshakeError, StreamClosed) as exc:
            self._fail(exc)
            return
        if self.messages:
            self._wake()
            if len(self.messages) >= self._high_water and not self._paused and self._transport:
                self._paused = True
                self._transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed is None:
            if self.close_code is not None:
                self.closed = StreamClosed(
                    f"closed by the server ({self.close_code} {self.close_reason})".strip(),
                    self.close_code,
                    self.close_reason,
                )
            else:
                detail = f": {exc}" if exc else ""
                self.closed = StreamClosed(f"connection lost{detail}")
        if not self.handshake.done():
            self.handshake.set_exception(self.closed)
        self._wake()

    # ------------------------------------------------------------ parsing

    def _read_handshake(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_HANDSHAKE:
                raise HandshakeError("handshake response too large")
            return False
        head = bytes(self._buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if status != 101:
            raise HandshakeError(f"the server answered {lines[0]!r}", status, bytes(self._buf[end + 4 :]))
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept", "").encode() != self._accept:
            raise HandshakeError("bad Sec-WebSocket-Accept", status)
        if headers.get("sec-websocket-extensions"):
            raise HandshakeError("the server enabled an extension that was not offered", status)
        del self._buf[: end + 4]
        self._upgraded = True
        if not self.handshake.done():
            self.handshake.set_result(None)
        return True

    def _read_frames(self) -> None:
        buf = self._buf
        n = len(buf)
        pos = 0
        view = memoryview(buf)
        append = self.messages.append
        fast_ok = self._max_message >= 0xFFFF  # no message on the short path can be over the limit
        try:
            while n - pos >= 2:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                if b0 == 0x82 and b1 <= 126 and self._fragments is None and fast_ok:
                    # The common case, kept short: one whole binary message, unmasked, under 64 KiB.
                    if b1 == 126:
                        if n - pos < 4:
                            break
                        start = pos + 4
                        end = start + ((buf[pos + 2] << 8) | buf[pos + 3])
                    else:
                        start = pos + 2
                        end = start + b1
                    if end > n:
                        break
                    append(bytes(view[start:end]))
                    pos = end
                    continue
                length = b1 & 0x7F
                start = pos + 2
                if length == 126:
                    if n - pos < 4:
                        break
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    start = pos + 4
                elif length == 127:
                    if n - pos < 10:
                        break
                    length = int.from_bytes(view[pos + 2 : pos + 10], "big")
                    start = pos + 10
                if b1 & 0x80:
                    raise StreamClosed("the server sent a masked frame")
                if b0 & 0x70:
                    raise StreamClosed("the server set reserved bits (no extension was negotiated)")
                if length > self._max_message:
                    raise StreamClosed(f"a frame of {length} bytes is over the {self._max_message} limit")
                end = start + length
                if end > n:
                    break
                payload = bytes(view[start:end])
                pos = end
                opcode = b0 & 0x0F
                if opcode == OP_BINARY or opcode == OP_TEXT:
                    if self._fragments is not None:
                        raise StreamClosed("a new message started inside a fragmented one")
                    if b0 & 0x80:
                        self.messages.append(payload)
                    else:
                        self._fragments = [payload]
                        self._fragments_size = length
                elif opcode == OP_CONT:
                    if self._fragments is None:
                        raise StreamClosed("a continuation frame without a message")
                    self._fragments.append(payload)
                    self._fragments_size += length
                    if self._fragments_size > self._max_message:
                        raise StreamClosed(f"a message over the {self._max_message} byte limit")
                    if b0 & 0x80:
                        self.messages.append(b"".join(self._fragments))
                        self._fragments = None
                elif opcode == OP_PING:
                    self._send(OP_PONG, payload)
                elif opcode == OP_PONG:
                    pass
                elif opcode == OP_CLOSE:
                    self._on_close(payload)
                    break
                else:
                    raise StreamClosed(f"unknown opcode {opcode}")
        finally:
            view.release()
        del buf[:pos]

    def _on_close(self, payload: bytes) -> None:
        if len(payload) >= 2:
            self.close_code = int.from_bytes(payload[:2], "big")
            self.close_reason = payload[2:].decode("utf-8", "replace")
        else:
            self.close_code = 1005
        self._send(OP_CLOSE, payload[:2])
        if self._transport is not None:
            self._transport.close()

    # ------------------------------------------------------------ helpers

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_client_frame(opcode, payload))

    def _fail(self, exc: HandshakeError | StreamClosed) -> None:
        self.closed = exc if isinstance(exc, StreamClosed) else StreamClosed(str(exc))
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        if self._transport is not None:
            self._transport.abort()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> list[bytes]:
        batch = list(self.messages)
        self.messages.clear()
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return batch

    async def wait(self, max_wait: float) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._waiter, max_wait)
        except TimeoutError:
            pass
        finally:
            self._waiter = None

    def ping(self) -> None:
        self._send(OP_PING, b"huddle")

    def close(self, code: int = 1000) -> None:
        self._send(OP_CLOSE, code.to_bytes(2, "big"))
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class MessageStream:
    """An open WebSocket; `receive()` returns every message that has arrived (waiting for one)."""

    def __init__(self, protocol: _Protocol, *, ping_after: float) -> None:
        self._protocol = protocol
        self._ping_after = ping_after
        self._pinged_at: float | None = None

    async def receive(self, max_wait: float) -> list[bytes]:
        """Messages received so far, waiting up to `max_wait` for the first; StreamClosed once it ends.

        A connection silent for `ping_after` seconds gets a ping; silent for as long again, it is dead.
        """
        proto = self._protocol
        if not proto.messages and proto.closed is None:
            await proto.wait(max_wait)
        if proto.messages:
            self._pinged_at = None
            return proto.take()
        if proto.closed is not None:
            raise proto.closed
        self._check_alive()
        return []

    def _check_alive(self) -> None:
        now = asyncio.get_running_loop().time()
        proto = self._protocol
        silent = now - proto.last_received
        if silent < self._ping_after:
            self._pinged_at = None
            return
        if self._pinged_at is None:
            self._pinged_at = now
            proto.ping()
        elif now - self._pinged_at >= self._ping_after:
            proto.abort()
            raise StreamClosed(f"no answer from the server for {silent:.0f} s")

    def close(self, code: int = 1000) -> None:
        self._protocol.close(code)

    def abort(self) -> None:
        self._protocol.abort()


async def open_stream(
    url: str,
    *,
    max_message: int = 5 * 1024 * 1024,
    connect_timeout: float = 10.0,
    ping_after: float = 20.0,
    high_water: int = 10_000,
    ssl_context: ssl.SSLContext | None = None,
) -> MessageStream:
    """Connect to a `ws://` or `wss://` URL and complete the opening handshake."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("ws", "wss") or not host:
        raise ValueError(f"not a WebSocket URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    key = base64.b64encode(os.urandom(16))
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
        "User-Agent: huddle-appview\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    protocol = _Protocol(request, key, max_message, high_water)
    context = (ssl_context or ssl.create_default_context()) if secure else None

    async def connect() -> None:
        await loop.create_connection(
            lambda: protocol,
            host,
            port,
            ssl=context,
            server_hostname=host if secure else None,
        )
        await protocol.handshake

    try:
        await asyncio.wait_for(connect(), connect_timeout)
    except BaseException:
        protocol.abort()
        raise
    protocol.last_received = loop.time()
    return MessageStream(protocol, ping_after=ping_after)
