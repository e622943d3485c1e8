"""`make bench`: every benchmark, one table, each figure beside its baseline from the same run."""

from __future__ import annotations

import importlib
import sys

from bench.table import Row, header, markdown

BENCHES = ["bench.matching", "bench.bookings", "bench.api", "bench.firehose"]


def main(names: list[str]) -> None:
    rows: list[Row] = []
    for name in names or BENCHES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            print(f"({name} is not built yet)", file=sys.stderr)
            continue
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows += module.run()
    print(markdown(rows))
    print(f"\n{header()}")


if __name__ == "__main__":
    main(sys.argv[1:])
