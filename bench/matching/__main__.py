"""Print the matching benchmark as a markdown table: ``python -m bench.matching [repeats]``."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime

from bench.matching import cases, run
from kernel.matching import pick_slot


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rows = run(repeats=repeats)
    outcome = {}
    for case in cases():
        result = pick_slot(case.request)
        outcome[case.name] = (
            f"slot {result.slot.start:%d %b %H:%M} UTC" if result.slot else str(result.reason)
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Matching benchmark, {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f}"
    )
    print(f"{repeats} runs of pick_slot per case; the naive matcher on the same inputs in the same run.\n")
    print("| case | outcome | metric | pick_slot (ms) | naive (ms) | speed-up |")
    print("|---|---|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['case']} | {outcome[str(row['case'])]} | {row['metric']} | {row['value']:.2f} | "
            f"{row['baseline']:.1f} | {row['ratio']:.0f}× |"
        )
    print()
    for case in cases():
        print(f"- {case.name}: {case.description}")


if __name__ == "__main__":
    main()
