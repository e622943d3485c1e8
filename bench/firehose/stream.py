"""Building `subscribeRepos` frames and serving them over a WebSocket: for the benchmark and the tests.

`ReplayServer` speaks just enough RFC 6455 to be a relay: it reads the `cursor` query parameter,
asks its `script` what to send, writes the frames as unmasked binary messages (already framed, in
large writes, so the server is never the bottleneck), and closes with a code and reason if told to.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from libipld import encode_dag_cbor

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---------------------------------------------------------------- frames


def message(kind: str, body: dict[str, Any]) -> bytes:
    return encode_dag_cbor({"t": kind, "op": 1}) + encode_dag_cbor(body)


def error_frame(error: str, text: str | None = None) -> bytes:
    body: dict[str, Any] = {"error": error}
    if text is not None:
        body["message"] = text
    return encode_dag_cbor({"op": -1}) + encode_dag_cbor(body)


def cid_of(block: bytes) -> bytes:
    """The CIDv1 (dag-cbor, sha2-256) of a block, in binary."""
    return b"\x01\x71\x12\x20" + hashlib.sha256(block).digest()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def car(blocks: Sequence[bytes]) -> bytes:
    """A CAR v1 file holding `blocks` (its root is the first)."""
    header = encode_dag_cbor({"roots": [cid_of(blocks[0])] if blocks else [], "version": 1})
    parts = [_varint(len(header)), header]
    for block in blocks:
        cid = cid_of(block)
        parts += [_varint(len(cid) + len(block)), cid, block]
    return b"".join(parts)


@dataclass
class Op:
    action: str  # create | update | delete
    path: str  # collection/rkey
    record: dict[str, Any] | None = None


def commit(
    seq: int,
    repo: str,
    rev: str,
    since: str | None,
    ops: Iterable[Op],
    *,
    time: str = "2026-11-25T10:00:00.000Z",
    omit_blocks: bool = False,
) -> bytes:
    """A #commit frame whose blocks hold the ops' records (and a stand-in commit block)."""
    ops = list(ops)
    records = [encode_dag_cbor(op.record) for op in ops if op.record is not None]
    commit_block = encode_dag_cbor({"did": repo, "rev": rev, "version": 3})
    blocks = [commit_block] + ([] if omit_blocks else records)
    cids = iter(cid_of(r) for r in records)
    body = {
        "ops": [
            {"action": op.action, "path": op.path, "cid": next(cids) if op.record is not None else None}
            for op in ops
        ],
        "rev": rev,
        "seq": seq,
        "repo": repo,
        "time": time,
        "blobs": [],
        "since": since,
        "blocks": car(blocks),
        "commit": cid_of(commit_block),
        "rebase": False,
        "tooBig": False,
    }
    return message("#commit", body)


def patched(frame: bytes, **changes: Any) -> bytes:
    """A recorded frame with body fields replaced (seq, repo, time...); records and blocks untouched."""
    from libipld import decode_dag_cbor_multi

    header, body = decode_dag_cbor_multi(frame)
    body.update(changes)
    return encode_dag_cbor(header) + encode_dag_cbor(body)


def ws_frame(payload: bytes, opcode: int = 2) -> bytes:
    """One unmasked (server-to-client) WebSocket frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


# ---------------------------------------------------------------- the server


@dataclass
class Reply:
    """What the server does for one connection: send `frames` and `raw`, then close if `close_code`
    (the connection otherwise stays open until the client leaves)."""

    frames: Sequence[bytes] = ()
    raw: bytes | memoryview = b""  # written as is after the frames (already WebSocket frames)
    close_code: int | None = None
    close_reason: str = ""


Script = Callable[[int | None], Reply | Awaitable[Reply]]


@dataclass
class ReplayServer:
    """A WebSocket server on 127.0.0.1 that answers each connection with `script(cursor)`."""

    script: Script
    chunk: int = 256 * 1024
    port: int = 0
    cursors: list[int | None] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)  # what clients sent after the handshake
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> ReplayServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def close(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            lines = request.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + _GUID).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            values = parse_qs(urlsplit(target).query).get("cursor")
            cursor = int(values[0]) if values else None
            self.cursors.append(cursor)
            reply = self.script(cursor)
            if not isinstance(reply, Reply):
                reply = await reply
            await self._send(writer, reply.frames)
            raw = memoryview(reply.raw)
            for i in range(0, len(raw), self.chunk):
                writer.write(raw[i : i + self.chunk])
                await writer.drain()
            if reply.close_code is not None:
                payload = reply.close_code.to_bytes(2, "big") + reply.close_reason.encode()
                writer.write(ws_frame(payload, opcode=8))
                await writer.drain()
            await self._drain_client(reader)  # answer nothing; keep what the client sends until it goes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _send(self, writer: asyncio.StreamWriter, frames: Sequence[bytes]) -> None:
        buffer: list[bytes] = []
        size = 0
        for frame in frames:
            wire = ws_frame(frame)
            buffer.append(wire)
            size += len(wire)
            if size >= self.chunk:
                writer.write(b"".join(buffer))
                await writer.drain()
                buffer, size = [], 0
        if buffer:
            writer.write(b"".join(buffer))
            await writer.drain()

    async def _drain_client(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            self.received += data
