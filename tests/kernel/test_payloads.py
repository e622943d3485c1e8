"""Kernel values cross Temporal boundaries (workflow and activity arguments) unchanged.

Temporal's default JSON converter knows ``datetime`` but not ``date``, so values holding a
``date`` (``DateOverride``, ``Slot.local_date``) need a custom converter; pass the offer
record or the slot's datetimes across instead, as ``activities/bookings.py`` does.
"""

from dataclasses import dataclass

import pytest

from kernel.lexicon.preferences import Preferences
from kernel.lexicon.slot_offer import SlotOffer, Window
from kernel.matching import BookedBlock, MatchRequest
from tests.kernel.factories import OFFER_URI, at, iv, offer, request

converter = pytest.importorskip("temporalio.converter")


def round_trip(value: object) -> object:
    data = converter.DataConverter.default.payload_converter
    [payload] = data.to_payloads([value])
    [back] = data.from_payloads([payload], [type(value)])
    return back


def test_slot_offer() -> None:
    o = offer(
        timezone="Australia/Lord_Howe", validFrom="2026-12-01T00:00:00Z", maxPerDay=2, policy="somethingNew"
    )
    assert round_trip(o) == o


def test_match_request() -> None:
    req = request(
        host_busy=(iv(at(2026, 11, 30, 9), at(2026, 11, 30, 10)),),
        host_bookings=(
            BookedBlock(
                at(2026, 11, 30, 11),
                at(2026, 11, 30, 12),
                at(2026, 11, 30, 11),
                at(2026, 11, 30, 12),
                OFFER_URI,
            ),
        ),
        guest_busy=(),
        preferences=Preferences("Asia/Kathmandu", (Window(("mon",), "16:00", "18:00"),), "balanced"),
    )
    assert round_trip(req) == req
    bare = MatchRequest(offer=offer(), offer_uri=OFFER_URI, duration_minutes=30, now=at(2026, 11, 30, 7))
    assert round_trip(bare) == bare


@dataclass
class _WorkflowInput:
    offer: SlotOffer
    preferences: Preferences | None


def test_nested_in_a_workflow_input() -> None:
    value = _WorkflowInput(offer(), Preferences(windows=(Window(("tue",), "09:00", "10:00"),)))
    assert round_trip(value) == value
