"""The booking workflow's database activities: open, screen, match-and-hold, record transitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from clients.calendar.ports import BusySource, CalendarUnavailable
from clients.graph import FollowGraph
from kernel.booking.messages import BookingRequest, HoldResult, MatchHoldInput, Screening, Transition
from kernel.calendar.intervals import Interval
from kernel.lexicon import LexiconValidationError, Preferences, SlotOffer
from kernel.matching import (
    BookedBlock,
    FollowFact,
    MatchRequest,
    evaluate_policy,
    pick_slot,
    required_follow_facts,
)
from models import booking_store as store
from models.tables import Booking, OfferIndex, User
from models.types import utcnow


class BookingActivities:
    def __init__(
        self,
        engine: Engine,
        busy: BusySource,
        graph: FollowGraph,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._busy = busy
        self._graph = graph
        self._clock = clock

    @activity.defn(name="open_booking")
    def open_booking(self, request: BookingRequest) -> None:
        """Create the pending projection row and its first audit entry."""
        store.open_booking(self._engine, request)
        store.audit(
            self._engine,
            booking_id=request.booking_id,
            action="requested",
            detail={"state": "pending", "version": 1},
            key=f"{request.booking_id}:1",
        )

    @activity.defn(name="screen_request")
    def screen_request(self, request: BookingRequest) -> Screening:
        """Is the offer still there, and may this guest book it? No calendar is read here."""
        offer = self._load_offer(request.offer_uri)
        if offer is None:
            return Screening(allowed=False, reason="offer_gone", message="the offer no longer exists")
        if request.duration_minutes not in offer.durations:
            return Screening(
                allowed=False,
                reason="duration_not_offered",
                message=f"the offer no longer has {request.duration_minutes}-minute meetings",
            )
        needed = required_follow_facts(offer.policy)
        facts: dict[str, bool] = {}
        if FollowFact.GUEST_FOLLOWS_HOST in needed:
            facts["guest_follows_host"] = self._graph.follows(request.guest_did, request.host_did)
        if FollowFact.HOST_FOLLOWS_GUEST in needed:
            facts["host_follows_guest"] = self._graph.follows(request.host_did, request.guest_did)
        decision = evaluate_policy(offer.policy, **facts)
        if not decision.allowed:
            return Screening(allowed=False, reason=f"policy_{decision.reason}", message=decision.explanation)
        return Screening(
            allowed=True,
            hold_minutes=offer.hold_minutes,
            requires_approval=offer.requires_approval,
            title=offer.title,
        )

    @activity.defn(name="match_and_hold")
    def match_and_hold(self, params: MatchHoldInput) -> HoldResult:
        """Pick the best slot and hold it atomically; a lost race re-runs matching without that slot."""
        request = params.request
        with Session(self._engine) as session:
            existing = store.held_placement(session, request.booking_id)
        if existing is not None:  # this activity already succeeded once (a retry after a lost reply)
            return _hold_result(existing)

        offer = self._load_offer(request.offer_uri)
        if offer is None:
            return HoldResult(placed=False, reason="offer_gone", explanation="the offer no longer exists")
        now = request.requested_at
        horizon_end = now + timedelta(days=offer.horizon_days + 1)
        try:
            host_busy = self._busy.busy(request.host_did, now, horizon_end)
            guest_busy = self._busy.busy(request.guest_did, now, horizon_end)
        except CalendarUnavailable as exc:
            raise ApplicationError(str(exc), type="CalendarUnavailable", non_retryable=True) from exc

        preferences = Preferences.from_json(request.preferences) if request.preferences else None
        lost: list[Interval] = []
        last = None

        def choose(bookings: list[Booking]) -> store.Placement | None:
            nonlocal last
            last = pick_slot(
                MatchRequest(
                    offer=offer,
                    offer_uri=request.offer_uri,
                    duration_minutes=request.duration_minutes,
                    now=now,
                    host_busy=tuple(host_busy),
                    host_bookings=tuple(_blocks(bookings)),
                    guest_busy=tuple(guest_busy) if guest_busy else None,
                    earliest=request.earliest,
                    latest=request.latest,
                    preferences=preferences,
                    excluded=tuple(lost),
                )
            )
            slot = last.slot
            if slot is None:
                return None
            return store.Placement(slot.start, slot.end, slot.block_start, slot.block_end, last.explanation)

        for _attempt in range(max(1, request.max_match_attempts)):
            try:
                placement = store.place_hold(
                    self._engine,
                    booking_id=request.booking_id,
                    host_did=request.host_did,
                    search_start=now,
                    search_end=horizon_end,
                    choose=choose,
                    version=params.version,
                    buffers=(offer.buffer_before_minutes, offer.buffer_after_minutes),
                    hold_expires_at=lambda: self._clock() + timedelta(seconds=params.hold_seconds),
                )
            except store.LostRace as race:
                lost.append(Interval(race.placement.start, race.placement.end))
                continue
            if placement is None:
                assert last is not None
                return HoldResult(
                    placed=False, reason=last.reason, explanation=last.explanation, lost_races=len(lost)
                )
            with Session(self._engine) as session:
                held = store.held_placement(session, request.booking_id)
            assert held is not None
            return replace(_hold_result(held), lost_races=len(lost))
        return HoldResult(
            placed=False,
            reason="contention",
            explanation=f"every slot we picked was taken by someone else first ({len(lost)} tries)",
            lost_races=len(lost),
        )

    @activity.defn(name="record_transition")
    def record_transition(self, transition: Transition) -> None:
        store.apply_transition(self._engine, transition)

    def _load_offer(self, uri: str) -> SlotOffer | None:
        with Session(self._engine) as session:
            row = session.get(OfferIndex, uri)
            if row is None or row.deleted:
                return None
            host = session.get(User, row.did)
            if host is not None and not host.active:
                return None
            record = row.record
        try:
            return SlotOffer.from_record(record)
        except LexiconValidationError:
            return None


def _blocks(bookings: list[Booking]) -> list[BookedBlock]:
    return [
        BookedBlock(
            start=b.start_at,
            end=b.end_at,
            block_start=b.block_start,
            block_end=b.block_end,
            offer_uri=b.offer_uri,
        )
        for b in bookings
        if b.start_at and b.end_at and b.block_start and b.block_end
    ]


def _hold_result(booking: Booking) -> HoldResult:
    return HoldResult(
        placed=True,
        start=booking.start_at,
        end=booking.end_at,
        hold_expires_at=booking.hold_expires_at,
        explanation=booking.explanation or "",
    )
