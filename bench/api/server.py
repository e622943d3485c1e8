"""A benchmark API server process: `python -m bench.api.server PORT auth|open` (settings from HUDDLE_*).

`open` bypasses the caller dependency with a fixed identity (HUDDLE_BENCH_CALLER), so the same
endpoints can be measured without service auth. Only the benchmark starts this.
"""

from __future__ import annotations

import os
import sys

import uvicorn

from api.auth import CallerIdentity, require_caller
from api.main import create_app
from models.settings import get_settings

if __name__ == "__main__":
    port, mode = int(sys.argv[1]), sys.argv[2]
    app = create_app(get_settings())
    if mode == "open":
        caller = CallerIdentity(os.environ["HUDDLE_BENCH_CALLER"], "service-auth")
        app.dependency_overrides[require_caller] = lambda: caller
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
