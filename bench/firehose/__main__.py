"""Print the firehose benchmark as a markdown table: ``python -m bench.firehose [events]``."""

from __future__ import annotations

import sys

from bench.firehose import EVENTS, TARGET_EVENTS_PER_SECOND, TARGET_RATIO, run
from bench.table import header, markdown


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else EVENTS
    rows = run(events)
    print(markdown(rows))
    speed = rows[0]
    met = speed["value"] >= TARGET_EVENTS_PER_SECOND and speed["ratio"] >= TARGET_RATIO
    print(
        f"\nTargets: ≥ {TARGET_EVENTS_PER_SECOND:,} events/s in one process and ≥ {TARGET_RATIO:.0f}× the "
        f"reference: {'met' if met else 'NOT met'} ({speed['value']:,.0f} events/s, {speed['ratio']:.1f}×)."
    )
    print(header())


if __name__ == "__main__":
    main()
