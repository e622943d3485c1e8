"""The shared shape of benchmark rows and the one table `make bench` prints."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]


def row(bench: str, case: str, metric: str, value: float, baseline: float | None) -> Row:
    ratio = (value / baseline) if baseline else None
    return {
        "bench": bench,
        "case": case,
        "metric": metric,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
    }


def percentile(samples: Sequence[float], pct: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, -(-int(pct * len(ordered)) // 100) - 1))
    return ordered[index]


def header() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f} at the end"
    )


def markdown(rows: Iterable[Row]) -> str:
    lines = [
        "| bench | case | metric | value | baseline (same run) | ratio |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        base = "" if r.get("baseline") is None else f"{r['baseline']:.4g}"
        ratio = "" if r.get("ratio") is None else f"{r['ratio']:.2f}×"
        lines.append(f"| {r['bench']} | {r['case']} | {r['metric']} | {r['value']:.4g} | {base} | {ratio} |")
    return "\n".join(lines)
