"""What the API tells operators about itself: `GET /metrics` and a server span per HTTP request.

Besides the process's own instruments, `/metrics` reads a few gauges from the database at scrape
time (bookings and outbox messages by state), so every replica reports the same totals.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import Counter
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import StateDep
from models.tables import Booking, OutboxMessage
from models.types import utcnow
from workers.telemetry import configure_telemetry

router = APIRouter(tags=["operations"])

# Scrapes and zPages would otherwise fill /debug/tracez with themselves.
_UNTRACED = ("/metrics", "/debug")


class BookingStates(Collector):
    """`huddle_bookings{state}` from the database, so every replica reports the same totals."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("huddle_bookings", "Bookings in the database, by state", labels=["state"])
        with self._engine.connect() as conn:
            rows = conn.execute(select(Booking.state, func.count()).group_by(Booking.state))  # type: ignore[call-overload]
            for state, count in rows:
                gauge.add_metric([state], count)
        yield gauge


class OutboxBacklog(Collector):
    """`huddle_outbox_messages{state}` and the age of the oldest message still waiting to go out."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        by_state = GaugeMetricFamily(
            "huddle_outbox_messages", "Outbox messages in the database, by state", labels=["state"]
        )
        oldest = GaugeMetricFamily(
            "huddle_outbox_oldest_waiting_seconds",
            "Age of the oldest pending or sending outbox message (0: none waiting)",
        )
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)  # type: ignore[call-overload]
            )
            for state, count in rows:
                by_state.add_metric([state], count)
            first = conn.execute(
                select(func.min(OutboxMessage.created_at)).where(
                    OutboxMessage.state.in_(("pending", "sending"))  # type: ignore[attr-defined]
                )
            ).scalar()
        oldest.add_metric([], max(0.0, (utcnow() - first).total_seconds()) if first else 0.0)
        yield by_state
        yield oldest


@functools.cache
def _webhook_deliveries() -> Counter:
    return metrics.get_meter("huddle").create_counter(
        "huddle_webhook_deliveries",
        description="Calendar push notifications received, by provider and outcome",
    )


def webhook_delivered(provider: str, outcome: str) -> None:
    """Count one webhook delivery: accepted, sync, validation, refused, unknown_channel, malformed, …"""
    _webhook_deliveries().add(1, {"provider": provider, "outcome": outcome})


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(state: StateDep) -> Response:
    """This process's metrics in the Prometheus text format."""
    registry = configure_telemetry(state.settings, "api").registry(
        BookingStates(state.engine), OutboxBacklog(state.engine)
    )
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class ServerSpans:
    """One SERVER span per HTTP request, continuing a caller's `traceparent`, named by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_UNTRACED):
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope["method"]
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        tracer = trace.get_tracer("huddle.api")
        with tracer.start_as_current_span(
            f"{method} (unmatched)",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
            record_exception=True,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
