"""`python -m bench.api [requests] [clients]`: print the API benchmark table."""

from __future__ import annotations

import sys

from bench.api import run
from bench.table import header, markdown

if __name__ == "__main__":
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    print(markdown(run(requests=requests, clients=clients)))
    print(f"\n{header()}")
