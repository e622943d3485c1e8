"""The next free slots of an offer, as the next guests would get them (the same engine, the same inputs).

Slot n+1 is what the next guest would get once slot n is booked: each pick is added as a booking
(buffers included) before the next one, so the list never shows two slots that could not both be had.
A calendar that cannot be read is reported as such, never shown as free time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from clients.calendar.ports import BusySource, CalendarUnavailable
from kernel.lexicon import SlotOffer
from kernel.matching import BookedBlock, MatchRequest, Slot, pick_slot
from models import booking_store


@dataclass
class Preview:
    slots: list[tuple[Slot, str]] = field(default_factory=list)  # the slot and why it won
    stopped: str | None = None  # why the list ends (no more free time…) in words
    calendar_problem: str | None = None


def next_free_slots(
    engine: Engine,
    busy: BusySource | None,
    *,
    host_did: str,
    offer_uri: str,
    offer: SlotOffer,
    duration: int,
    now: datetime,
    count: int = 5,
) -> Preview:
    out = Preview()
    horizon_end = now + timedelta(days=offer.horizon_days + 1)
    try:
        host_busy = busy.busy(host_did, now, horizon_end) if busy is not None else []
    except CalendarUnavailable as exc:
        out.calendar_problem = str(exc)
        return out
    with Session(engine) as session:
        booked = [
            BookedBlock(b.start_at, b.end_at, b.block_start, b.block_end, b.offer_uri)
            for b in booking_store.host_bookings(session, host_did, now, horizon_end)
            if b.start_at and b.end_at and b.block_start and b.block_end
        ]
    for _ in range(count):
        result = pick_slot(
            MatchRequest(
                offer=offer,
                offer_uri=offer_uri,
                duration_minutes=duration,
                now=now,
                host_busy=tuple(host_busy),
                host_bookings=tuple(booked),
            )
        )
        if result.slot is None:
            out.stopped = result.explanation
            break
        slot = result.slot
        out.slots.append((slot, result.explanation))
        booked.append(BookedBlock(slot.start, slot.end, slot.block_start, slot.block_end, offer_uri))
    return out
