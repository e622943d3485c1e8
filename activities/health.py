"""The activity the health workflow calls on every task queue."""

from __future__ import annotations

import os
import socket

from temporalio import activity


@activity.defn(name="ping")
def ping(task_queue: str) -> str:
    """Answer from whichever worker polls `task_queue`, naming the process."""
    return f"{task_queue} served by {socket.gethostname()}:{os.getpid()}"
