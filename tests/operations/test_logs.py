"""Log lines an operator reads: JSON outside dev with the trace id, never a token or a password."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from workers.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_trace_id_and_no_secrets(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json_lines=True)
    log = logging.getLogger("huddle.test")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("booking") as span:
        log.info(
            "calling %s with Authorization: Bearer %s",
            "https://pds.example",
            "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJkaWQ6cGxjOngifQ.c2lnbmF0dXJl",
            extra={"booking_id": "b-123"},
        )
        log.warning("smtp failed for smtp://mailer:hunter2@mail.example:587 password=hunter2")
        trace_id = format(span.get_span_context().trace_id, "032x")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [line["level"] for line in lines] == ["INFO", "WARNING"]
    assert all(line["trace_id"] == trace_id for line in lines)
    assert lines[0]["booking_id"] == "b-123" and lines[0]["logger"] == "huddle.test"
    assert "Bearer [redacted]" in lines[0]["message"] and "eyJ" not in lines[0]["message"]
    assert "hunter2" not in lines[1]["message"] and "mail.example" in lines[1]["message"]


def test_dev_lines_are_readable(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json_lines=False)
    logging.getLogger("huddle.test").info("hold placed")
    err = capsys.readouterr().err
    assert "INFO  huddle.test: hold placed" in err and not err.lstrip().startswith("{")


def test_lines_inside_a_booking_workflow_span_name_the_booking(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json_lines=True)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span(
        "RunActivity:match_and_hold", attributes={"temporalWorkflowID": "booking-b-456"}
    ):
        logging.getLogger("huddle.test").info("hold placed")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["booking_id"] == "b-456" and line["message"] == "hold placed"
