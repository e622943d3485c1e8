"""The booking workflow's database activities: open, screen, match-and-hold, record transitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from clients.calendar.errors import ProviderRateLimited
from clients.calendar.ports import BusySource, CalendarUnavailable
from clients.graph import FollowGraph
from kernel.booking.messages import (
    BookingRequest,
    HoldResult,
    MatchHoldInput,
    RecheckInput,
    RecheckResult,
    RescheduleJob,
    Screening,
    Transition,
)
from kernel.calendar.intervals import Interval
from kernel.lexicon import LexiconValidationError, Preferences, SlotOffer
from kernel.matching import (
    BookedBlock,
    FollowFact,
    MatchRequest,
    MatchResult,
    evaluate_policy,
    pick_slot,
    required_follow_facts,
)
from kernel.matching.recheck import HeldSlot, slot_conflict
from models import booking_store as store
from models.tables import Booking, OfferIndex, User
from models.types import utcnow
from workers import telemetry


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
        host_busy, guest_busy = self._read_busy(request, now, horizon_end)
        chooser = _Chooser(request, offer, now, host_busy, guest_busy)
        for _attempt in range(max(1, request.max_match_attempts)):
            try:
                placement = store.place_hold(
                    self._engine,
                    booking_id=request.booking_id,
                    host_did=request.host_did,
                    search_start=now,
                    search_end=horizon_end,
                    choose=chooser.choose,
                    version=params.version,
                    buffers=(offer.buffer_before_minutes, offer.buffer_after_minutes),
                    hold_expires_at=lambda: self._clock() + timedelta(seconds=params.hold_seconds),
                )
            except store.LostRace as race:
                chooser.lost.append(Interval(race.placement.start, race.placement.end))
                continue
            if placement is None:
                reason, explanation = chooser.why_none()
                return HoldResult(
                    placed=False, reason=reason, explanation=explanation, lost_races=len(chooser.lost)
                )
            with Session(self._engine) as session:
                held = store.held_placement(session, request.booking_id)
            assert held is not None
            return replace(_hold_result(held), lost_races=len(chooser.lost))
        return HoldResult(
            placed=False,
            reason="contention",
            explanation=_contention(len(chooser.lost)),
            lost_races=len(chooser.lost),
        )

    @activity.defn(name="recheck_hold")
    def recheck_hold(self, params: RecheckInput) -> RecheckResult:
        """A calendar of the host or guest changed: keep the held slot if it is still free, else move
        the hold to the best slot now free, else say it is lost. Reads calendars fresh (the webhook
        that caused this invalidated the busy cache)."""
        request = params.request
        with Session(self._engine) as session:
            row = session.get(Booking, request.booking_id)
        if row is None or row.state != "held" or not (row.start_at and row.end_at):
            return RecheckResult(outcome="kept", reason="the booking is not held")
        if row.version >= params.version:  # moved by an earlier attempt whose reply was lost
            return _moved(row)
        assert row.block_start is not None and row.block_end is not None
        offer = self._load_offer(request.offer_uri)
        if offer is None:  # the offer is gone: the hold stays until it is confirmed or expires
            return RecheckResult(outcome="kept", reason="the offer no longer exists")
        now = self._clock()
        horizon_end = request.requested_at + timedelta(days=offer.horizon_days + 1)
        try:
            host_busy, guest_busy = self._read_busy(request, now, horizon_end)
        except ApplicationError as exc:
            if exc.type != "CalendarUnavailable":
                raise  # transient: Temporal retries the re-check
            # Not knowing is no reason to take the guest's slot away; the hold still expires.
            return RecheckResult(outcome="kept", reason=f"calendars could not be read: {exc.message}")
        held = HeldSlot(row.start_at, row.end_at, row.block_start, row.block_end)
        conflict = slot_conflict(held, host_busy, guest_busy)
        if conflict is None:
            return RecheckResult(outcome="kept")

        def new_expiry(current: datetime | None) -> datetime:
            # The guest gets at least a full hold period to look at the new time.
            fresh = self._clock() + timedelta(seconds=params.hold_seconds)
            return max(current, fresh) if current is not None else fresh

        chooser = _Chooser(request, offer, now, host_busy, guest_busy)
        result = self._move_to_best(
            request,
            chooser,
            state="held",
            action="hold_moved",
            version=params.version,
            search=(now, horizon_end),
            hold_expires_at=new_expiry,
            awaiting=list(params.awaiting),
        )
        if result.outcome == "lost":
            return replace(result, reason=f"{conflict}, and {result.reason}")
        return replace(result, reason=conflict) if result.outcome == "moved" else result

    @activity.defn(name="reschedule_booking")
    def reschedule_booking(self, job: RescheduleJob) -> RecheckResult:
        """Move a confirmed booking to the best other free slot (`moved`), or change nothing (`lost`)."""
        request = job.request
        with Session(self._engine) as session:
            row = session.get(Booking, request.booking_id)
        if row is None or row.state != "confirmed" or not (row.start_at and row.end_at):
            return RecheckResult(outcome="lost", reason="the booking is not confirmed")
        if row.version >= job.version:  # moved by an earlier attempt whose reply was lost
            return _moved(row)
        offer = self._load_offer(request.offer_uri)
        if offer is None:
            return RecheckResult(outcome="lost", reason="the offer no longer exists")
        now = self._clock()
        horizon_end = now + timedelta(days=offer.horizon_days + 1)
        host_busy, guest_busy = self._read_busy(request, now, horizon_end)
        chooser = _Chooser(request, offer, now, host_busy, guest_busy)
        # "Another time": the current meeting is off the table, as if lost to someone else.
        chooser.lost.append(Interval(row.start_at, row.end_at))
        return self._move_to_best(
            request,
            chooser,
            state="confirmed",
            action="rescheduled",
            version=job.version,
            search=(now, horizon_end),
            note={"actor": job.caller_did, "reason": job.reason},
        )

    def _move_to_best(
        self,
        request: BookingRequest,
        chooser: _Chooser,
        *,
        state: str,
        action: str,
        version: int,
        search: tuple[datetime, datetime],
        hold_expires_at: Callable[[datetime | None], datetime] | None = None,
        awaiting: list[str] | None = None,
        note: dict[str, Any] | None = None,
    ) -> RecheckResult:
        """Move the booking to the best slot `chooser` finds, re-choosing after a lost race."""
        taken_before = len(chooser.lost)
        for _attempt in range(max(1, request.max_match_attempts)):
            try:
                placement = store.move_booking(
                    self._engine,
                    booking_id=request.booking_id,
                    host_did=request.host_did,
                    state=state,
                    search_start=search[0],
                    search_end=search[1],
                    choose=chooser.choose,
                    version=version,
                    action=action,
                    hold_expires_at=hold_expires_at,
                    awaiting=awaiting,
                    note=note,
                )
            except store.LostRace as race:
                chooser.lost.append(Interval(race.placement.start, race.placement.end))
                continue
            except LookupError:  # its state changed meanwhile: nothing to move
                return RecheckResult(outcome="kept", reason=f"the booking is no longer {state}")
            if placement is None:
                _reason, explanation = chooser.why_none()
                return RecheckResult(outcome="lost", reason="no other slot is free", explanation=explanation)
            telemetry.booking_transition(state, action)
            with Session(self._engine) as session:
                moved = session.get(Booking, request.booking_id)
            assert moved is not None
            return _moved(moved)
        return RecheckResult(outcome="lost", reason=_contention(len(chooser.lost) - taken_before))

    def _read_busy(
        self, request: BookingRequest, start: datetime, end: datetime
    ) -> tuple[list[Interval], list[Interval]]:
        try:
            host_busy = self._busy.busy(request.host_did, start, end)
            guest_busy = self._busy.busy(request.guest_did, start, end)
        except CalendarUnavailable as exc:
            raise ApplicationError(str(exc), type="CalendarUnavailable", non_retryable=True) from exc
        except ProviderRateLimited as exc:
            # The next attempt waits as long as the provider asked, not the database back-off.
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
            raise ApplicationError(str(exc), type="ProviderRateLimited", next_retry_delay=delay) from exc
        return list(host_busy), list(guest_busy)

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


class _Chooser:
    """Runs the matching engine inside the hold transaction, against the host's bookings as they
    are at that moment; `lost` collects slots the database refused, so the next run avoids them."""

    def __init__(
        self,
        request: BookingRequest,
        offer: SlotOffer,
        now: datetime,
        host_busy: list[Interval],
        guest_busy: list[Interval],
    ) -> None:
        self._request, self._offer, self._now = request, offer, now
        self._host_busy, self._guest_busy = tuple(host_busy), tuple(guest_busy) if guest_busy else None
        self._preferences = Preferences.from_json(request.preferences) if request.preferences else None
        self.lost: list[Interval] = []
        self.last: MatchResult | None = None

    def choose(self, bookings: list[Booking]) -> store.Placement | None:
        r = self._request
        self.last = pick_slot(
            MatchRequest(
                offer=self._offer,
                offer_uri=r.offer_uri,
                duration_minutes=r.duration_minutes,
                now=self._now,
                host_busy=self._host_busy,
                host_bookings=tuple(_blocks(bookings)),
                guest_busy=self._guest_busy,
                earliest=r.earliest,
                latest=r.latest,
                preferences=self._preferences,
                excluded=tuple(self.lost),
            )
        )
        slot = self.last.slot
        if slot is None:
            return None
        return store.Placement(slot.start, slot.end, slot.block_start, slot.block_end, self.last.explanation)

    def why_none(self) -> tuple[str | None, str]:
        assert self.last is not None
        return self.last.reason, self.last.explanation


def _contention(lost: int) -> str:
    return f"every slot we picked was taken by someone else first ({lost} tries)"


def _moved(row: Booking) -> RecheckResult:
    return RecheckResult(
        outcome="moved",
        start=row.start_at,
        end=row.end_at,
        hold_expires_at=row.hold_expires_at,
        explanation=row.explanation or "",
    )


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
