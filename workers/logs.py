"""Log set-up: readable lines in development, JSON lines otherwise; trace ids on every record, no secrets."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# What a secret looks like in a log line: a bearer token, a JWT, a password in a URL or a key=value.
_SECRET_PATTERNS = [
    (re.compile(r"(?i)(bearer|dpop)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*):[^@\s/]+@"), r"\1:[redacted]@"),
    (
        re.compile(
            r"(?i)((?:password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|api_key)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\"'\s,&}]+"
        ),
        r"\1[redacted]",
    ),
]

# Fields of a LogRecord that are not `extra=` values.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """`text` with anything that looks like a bearer token, JWT or password replaced."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites the message (arguments merged in) and any exception text with `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class TraceIds(logging.Filter):
    """Adds `trace_id` and `span_id` of the current span, and `booking_id` inside a booking's workflow."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span()
        ctx = span.get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else ""
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else ""
        # Temporal's interceptor names the workflow on its spans; a booking's is `booking-<id>`.
        workflow_id = (getattr(span, "attributes", None) or {}).get("temporalWorkflowID")
        if (
            isinstance(workflow_id, str)
            and workflow_id.startswith("booking-")
            and not hasattr(record, "booking_id")
        ):
            record.booking_id = workflow_id.removeprefix("booking-")
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, trace ids, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else redact(str(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str)


class ReadableLines(logging.Formatter):
    """Development lines; the trace id (short) when the record has one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        return f"{line} [trace {trace_id[:16]}]" if trace_id else line


def configure_logging(level: str = "INFO", *, json_lines: bool | None = None) -> None:
    """Root logging for a Huddle process; `json_lines` None: from HUDDLE_LOG_FORMAT / HUDDLE_DEV_MODE."""
    if json_lines is None:
        json_lines = _json_by_settings()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceIds())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonLines() if json_lines else ReadableLines())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_huddle", False)]:
        root.removeHandler(old)
    handler._huddle = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The Temporal SDK's core logs every poll failure while the server boots; keep warnings only.
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _json_by_settings() -> bool:
    from models.settings import get_settings

    try:
        settings = get_settings()
    except Exception:  # settings that refuse to load are reported by the command itself
        return True
    if settings.log_format:
        return settings.log_format.lower() == "json"
    return not settings.dev_mode
