"""200 guests at once for 5 free slots: exactly 5 holds, never an overlap (SQLite and Postgres)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from models.settings import Settings
from models.tables import Booking
from tests.bookings.helpers import book, five_slot_record, make_request, seed_offer


async def test_two_hundred_guests_five_slots(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, five_slot_record())
    requests = [make_request(worker, uri) for _ in range(200)]
    views = await asyncio.gather(*(book(temporal_client, worker, engine, r) for r in requests))

    assert Counter(v.state for v in views) == {"held": 5, "unavailable": 195}
    with Session(engine) as session:
        rows = session.exec(select(Booking).where(Booking.state == "held")).all()
    assert len(rows) == 5
    blocks = sorted((r.block_start, r.block_end) for r in rows)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(blocks))
    for view in views:
        if view.state == "unavailable":
            assert view.reason and view.start is None
