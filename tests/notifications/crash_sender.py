"""Send one booking step's mail and die with SIGKILL at a chosen point, as a crashed worker would.

    python -m tests.notifications.crash_sender DATABASE_URL SMTP_URL BOOKING_ID STEP claim|mark_sent

`claim`: killed at the commit point, before it is recorded (the body is sent, the final "." is not).
`mark_sent`: killed after the relay accepted the message, before the row is marked sent.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from clients.mail.outbox import sender_from_settings
from models.db import make_engine
from tests.conftest import make_settings


def main() -> None:
    database_url, smtp_url, booking_id, step, where = sys.argv[1:]
    engine = make_engine(database_url, pool_size=1)
    settings = make_settings(
        database_url, smtp_url=smtp_url, hostname="huddle.test", public_url="https://huddle.test"
    )
    sender = sender_from_settings(engine, settings)

    def die(*args: Any, **kwargs: Any) -> bool:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    setattr(sender.store, where, die)
    sender.send_step(booking_id, step)
    raise SystemExit("the crash point was never reached")


if __name__ == "__main__":
    main()
