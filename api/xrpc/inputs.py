"""Reading XRPC inputs: auth first, then rate limit, then the body — each failure a clear XRPC error."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import Request

from api.auth import Caller, XrpcError
from kernel.lexicon import LexiconValidationError, validate_input, validate_params


def invalid(exc: LexiconValidationError) -> XrpcError:
    return XrpcError(400, "InvalidRequest", str(exc))


def procedure_input(nsid: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A dependency giving the validated JSON body; it depends on the caller, so auth is checked first."""

    async def read(request: Request, caller: Caller) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            raise XrpcError(400, "InvalidRequest", "the body is not valid JSON") from exc
        try:
            return validate_input(nsid, body)
        except LexiconValidationError as exc:
            raise invalid(exc) from exc

    return read


def query_params(nsid: str) -> Callable[[Request], dict[str, Any]]:
    def read(request: Request) -> dict[str, Any]:
        params: dict[str, str | list[str]] = {}
        for key in request.query_params:
            values = request.query_params.getlist(key)
            params[key] = values if len(values) > 1 else values[0]
        try:
            return validate_params(nsid, params)
        except LexiconValidationError as exc:
            raise invalid(exc) from exc

    return read


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[str] | None:
    if not cursor:
        return None
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise XrpcError(400, "InvalidRequest", "cursor: not a cursor this server gave out") from exc
    if not isinstance(parts, list) or len(parts) != size or not all(isinstance(p, str) for p in parts):
        raise XrpcError(400, "InvalidRequest", "cursor: not a cursor this server gave out")
    return parts


def parse_cursor_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise XrpcError(400, "InvalidRequest", "cursor: not a cursor this server gave out") from exc
    if moment.tzinfo is None:
        raise XrpcError(400, "InvalidRequest", "cursor: not a cursor this server gave out")
    return moment
