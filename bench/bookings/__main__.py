"""`python -m bench.bookings [count] [clients] [postgres-url]`: print the bookings benchmark table."""

from __future__ import annotations

import sys

from bench.bookings import run
from bench.table import header, markdown

if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    rows = run(count=count, clients=clients, database_url=sys.argv[3] if len(sys.argv) > 3 else None)
    print(markdown(rows))
    print(f"\n{header()}")
