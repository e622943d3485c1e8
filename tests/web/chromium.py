"""Debian's Chromium for the browser tests: found, or installed with apt-get when missing.

`python -m tests.web.chromium` installs it ahead of a run (what `make test` should call before
pytest); the `browser` fixture calls the same function, so a run without it still works as root.
Playwright's own browser download cannot reach its CDN from these machines (PEERS.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path(os.environ.get("HUDDLE_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class ChromiumMissing(RuntimeError):
    pass


def ensure_chromium() -> Path:
    """The Chromium binary, installing Debian's package first if it is not there."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ChromiumMissing(f"{CHROMIUM} is missing; install it with: sudo apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run([apt, "install", "-y", "-q", "chromium"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        # A fresh machine may not have the package lists yet.
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(
            [apt, "install", "-y", "-q", "chromium"], env=env, capture_output=True, text=True
        )
    if done.returncode != 0 or not CHROMIUM.exists():
        raise ChromiumMissing(f"apt-get install chromium failed:\n{done.stderr[-2000:]}")
    return CHROMIUM


if __name__ == "__main__":
    print(ensure_chromium())
    sys.exit(0)
