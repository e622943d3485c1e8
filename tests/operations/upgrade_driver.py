"""Run as a script under an older checkout's code (PYTHONPATH=<its work tree>): the bookings to upgrade.

It seeds one offer and makes three bookings through that version's own `request_booking` and
`send_command`: one held (a 15-minute hold), one held then finalized (confirmed), and one held for
`UPGRADE_SHORT_HOLD_SECONDS`. It prints one line, `UPGRADE-DRIVER <json>`, with the bookings and the
files its modules came from, so the test can check that the old code is what ran.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import api.booking_commands
import workflows.booking
from api.booking_commands import send_command
from kernel.booking.messages import CommandInput
from kernel.lexicon.views import BookingView
from models.db import make_engine
from models.settings import Settings
from tests.bookings.helpers import book, make_request, offer_record, seed_offer
from workers.temporal_client import connect_temporal

MARKER = "UPGRADE-DRIVER "


def _booking(view: BookingView) -> dict[str, Any]:
    return {
        "id": view.id,
        "guest": view.guest,
        "host": view.host,
        "state": view.state,
        "start": view.start.isoformat() if view.start else None,
        "hold_expires_at": view.hold_expires_at.isoformat() if view.hold_expires_at else None,
    }


async def main() -> dict[str, Any]:
    settings = Settings()
    engine = make_engine(settings.database_url)
    client = await connect_temporal(settings)
    uri = seed_offer(engine, offer_record())
    # The short hold first: its clock runs through the whole upgrade, so it expires under the new code.
    short_seconds = int(os.environ["UPGRADE_SHORT_HOLD_SECONDS"])
    short = await book(client, settings, engine, make_request(settings, uri, hold_seconds=short_seconds))
    # hold_seconds=None: the offer's own holdMinutes (15), which outlasts the test.
    held = await book(client, settings, engine, make_request(settings, uri, hold_seconds=None))
    to_confirm = await book(client, settings, engine, make_request(settings, uri, hold_seconds=None))
    confirmed = await send_command(client, engine, to_confirm.id, "finalize", CommandInput(to_confirm.guest))
    engine.dispose()
    return {
        "modules": [api.booking_commands.__file__, workflows.booking.__file__],
        "offer": uri,
        "held": _booking(held),
        "confirmed": _booking(confirmed),
        "short": _booking(short),
    }


if __name__ == "__main__":
    print(MARKER + json.dumps(asyncio.run(main())), flush=True)
