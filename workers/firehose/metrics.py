"""The consumer's numbers: OpenTelemetry instruments (the SDK is set up by the process, if at all)
plus plain totals the process logs. The hot path counts into ints; these are fed once per flush."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation


class FirehoseMetrics:
    def __init__(self, source: str, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("huddle.firehose")
        self._attrs = {"source": source}
        self.totals: Counter[str] = Counter()
        self.lag_seconds = 0.0
        self.cursor = -1
        self.connected = False
        self._events = meter.create_counter(
            "huddle.firehose.events", unit="{event}", description="Frames received, by kind."
        )
        self._indexed = meter.create_counter(
            "huddle.firehose.index_writes", unit="{write}", description="Index writes, by kind."
        )
        self._rejected = meter.create_counter(
            "huddle.firehose.records_rejected",
            unit="{record}",
            description="slotOffer records that failed validation, by reason.",
        )
        self._reconnects = meter.create_counter(
            "huddle.firehose.reconnects", unit="{connection}", description="Connections lost, by cause."
        )
        self._resyncs = meter.create_counter(
            "huddle.firehose.repo_fetches", unit="{repo}", description="Repos read again, by reason."
        )
        meter.create_observable_gauge(
            "huddle.firehose.lag",
            callbacks=[self._observe_lag],
            unit="s",
            description="Age of the last event received.",
        )
        meter.create_observable_gauge(
            "huddle.firehose.cursor", callbacks=[self._observe_cursor], description="Last committed seq."
        )
        self._started = time.monotonic()

    def _observe_lag(self, _: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.lag_seconds, self._attrs)

    def _observe_cursor(self, _: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.cursor, self._attrs)

    def frames(self, counts: Mapping[str, int], total: int) -> None:
        self.totals["frames"] += total
        for kind, n in counts.items():
            if n:
                self.totals[f"frames.{kind}"] += n
                self._events.add(n, {**self._attrs, "kind": kind})

    def writes(self, counts: Mapping[str, int]) -> None:
        for kind, n in counts.items():
            if n:
                self.totals[f"writes.{kind}"] += n
                self._indexed.add(n, {**self._attrs, "kind": kind})

    def rejected(self, reasons: Mapping[str, int]) -> None:
        for reason, n in reasons.items():
            self.totals[f"rejected.{reason}"] += n
            self._rejected.add(n, {**self._attrs, "reason": reason})

    def reconnect(self, cause: str) -> None:
        self.totals["reconnects"] += 1
        self._reconnects.add(1, {**self._attrs, "cause": cause})

    def resync(self, reason: str) -> None:
        self.totals[f"repo_fetches.{reason}"] += 1
        self._resyncs.add(1, {**self._attrs, "reason": reason})

    def summary(self) -> str:
        """One log line: rates since start and the totals that matter."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        frames = self.totals["frames"]
        rest = ", ".join(f"{k} {v}" for k, v in sorted(self.totals.items()) if k != "frames" and v)
        return (
            f"{frames} frames ({frames / elapsed:.0f}/s), cursor {self.cursor}, lag {self.lag_seconds:.1f} s"
            + (f"; {rest}" if rest else "")
        )
