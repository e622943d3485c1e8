"""BookingWorkflow: one per booking, walking it pending → held → confirmed (DESIGN.md §4).

Commands arrive as updates whose validators reject bad ones before anything is written to history.
Every state change goes to the bookings table (the API's projection) through an activity; matching
and the hold happen in one activity so the large inputs (busy times) never enter the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from kernel.booking import states as st
    from kernel.booking.commands import Command, refusal, role_of
    from kernel.booking.messages import (
        BookingRequest,
        CommandInput,
        HoldResult,
        MatchHoldInput,
        RecheckInput,
        RecheckResult,
        RescheduleInput,
        RescheduleJob,
        RespondInput,
        Screening,
        SideEffect,
        Transition,
    )
    from kernel.lexicon.views import BookingView
    from workflows import patches
    from workflows.connector_messages import CALENDAR_CHANGED_SIGNAL, CalendarChanged

HUDDLE_STATE = SearchAttributeKey.for_keyword("HuddleState")

# Database work: quick, retried until it succeeds (a DB outage delays the booking, never loses it).
DB_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
# Provider and mail work: slower back-off; a transient provider failure must not block confirmation.
SIDE_EFFECT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
MATCH_DEADLINE = timedelta(minutes=2)

R = TypeVar("R")


@dataclass
class BookingState:
    """Everything the workflow knows; the view and the projection are derived from it."""

    request: BookingRequest
    state: str = st.PENDING
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    hold_expires_at: datetime | None = None
    reason: str | None = None
    explanation: str | None = None
    requires_approval: bool = False
    guest_finalized: bool = False
    host_approved: bool = False
    side_effects: list[str] = field(default_factory=list)

    def awaiting(self) -> list[str]:
        return st.awaiting(
            self.state,
            guest_finalized=self.guest_finalized,
            host_approved=self.host_approved,
            requires_approval=self.requires_approval,
        )


@workflow.defn(name="BookingWorkflow")
class BookingWorkflow:
    @workflow.init
    def __init__(self, request: BookingRequest) -> None:
        self._s = BookingState(request=request, created_at=workflow.now(), updated_at=workflow.now())
        self._lock = asyncio.Lock()
        self._effects: list[asyncio.Future[None]] = []
        self._hold_seconds = 0
        self._recheck_due = False  # a calendar_changed signal arrived; the held loop re-checks
        self._rescheduled = False

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, request: BookingRequest) -> BookingView:
        s = self._s
        await self._db("open_booking", request)
        s.version = 1  # the pending row and its "requested" audit entry

        screening = await self._db("screen_request", request, result_type=Screening)
        assert isinstance(screening, Screening)
        s.requires_approval = screening.requires_approval
        if not screening.allowed:
            terminal = st.DENIED if (screening.reason or "").startswith("policy") else st.UNAVAILABLE
            await self._move(terminal, "screened", reason=screening.message or screening.reason)
            return self._view()

        hold_seconds = self._hold_seconds = request.hold_seconds or screening.hold_minutes * 60
        try:
            hold = await self._matching(
                "match_and_hold",
                MatchHoldInput(request=request, version=s.version + 1, hold_seconds=hold_seconds),
                HoldResult,
            )
        except ActivityError as err:
            # Availability could not be checked (a calendar or the database kept failing): say so,
            # rather than pretending there was no free slot.
            reason = "availability could not be checked"
            if isinstance(err.cause, ApplicationError) and err.cause.type == "CalendarUnavailable":
                reason = f"the host's calendar could not be read: {err.cause.message}"
            await self._move(st.UNAVAILABLE, "match_failed", reason=reason)
            return self._view()
        if not hold.placed:
            await self._move(st.UNAVAILABLE, "no_slot", reason=hold.explanation or hold.reason)
            return self._view()

        # The activity wrote the held row itself, atomically with the overlap check.
        s.version += 1
        s.state = st.HELD
        s.start, s.end, s.hold_expires_at = hold.start, hold.end, hold.hold_expires_at
        s.explanation = hold.explanation
        s.updated_at = workflow.now()
        self._upsert_state()
        self._notify("held")
        if s.requires_approval:
            self._notify("request_received")

        await self._wait_for_confirmations()
        await self._attend()
        await workflow.wait_condition(workflow.all_handlers_finished)
        # Side effects started by this booking finish (or exhaust their retries) before it closes.
        await asyncio.gather(*self._effects)
        return self._view()

    async def _wait_for_confirmations(self) -> None:
        s = self._s
        while True:
            assert s.hold_expires_at is not None  # a moved hold may have a later expiry
            await self._wait_until(lambda: s.state != st.HELD or self._recheck_due, s.hold_expires_at)
            if not (self._recheck_due and s.state == st.HELD and workflow.now() < s.hold_expires_at):
                break
            self._recheck_due = False  # changes arriving during the re-check ask for another
            async with self._lock:
                if s.state == st.HELD:
                    await self._recheck_hold()
        async with self._lock:
            if s.state == st.HELD:
                await self._move(
                    st.EXPIRED, "hold_expired", reason="the hold expired before it was confirmed"
                )
                if workflow.patched(patches.EXPIRED_NOTICE_SENT_AT_ONCE):
                    self._notify("expired")
                else:  # holds that expired before the patch: the notice was only enqueued
                    await self._side_effect("notify", "enqueue_notifications", "expired")

    async def _attend(self) -> None:
        """Confirmed: remind both people before the meeting, and stay reachable for a cancel or a
        reschedule until it is over (a reschedule starts the wait again from the new time)."""
        s = self._s
        before = timedelta(minutes=s.request.reminder_minutes_before)
        reminded: datetime | None = None
        while s.state == st.CONFIRMED and s.start is not None and s.end is not None:
            start = s.start

            def changed(start: datetime = start) -> bool:
                return s.state != st.CONFIRMED or s.start != start

            reminder_at = start - before
            if before > timedelta(0) and reminded != start and reminder_at > workflow.now():
                await self._wait_until(changed, reminder_at)
                if changed():
                    continue
                reminded = start
                self._notify("reminder", occurrence=s.version if self._rescheduled else None)
            await self._wait_until(changed, s.end)
            if not changed():
                return

    async def _recheck_hold(self) -> None:
        """The host's or guest's calendar changed over the held slot: keep it, move it, or end it."""
        s = self._s
        moved_awaiting = st.awaiting(
            st.HELD,
            guest_finalized=False,  # the guest agreed to the old time, not the new one
            host_approved=s.host_approved,
            requires_approval=s.requires_approval,
        )
        try:
            result = await self._matching(
                "recheck_hold",
                RecheckInput(
                    request=s.request,
                    version=s.version + 1,
                    hold_seconds=self._hold_seconds,
                    awaiting=moved_awaiting,
                ),
                RecheckResult,
            )
        except ActivityError as err:
            # Could not re-check: the hold stands as it was (it still expires on time).
            workflow.logger.warning("re-check of held booking %s failed: %s", s.request.booking_id, err)
            return
        if result.outcome == "moved" and result.start and result.end and result.hold_expires_at:
            s.version += 1  # the activity wrote the moved row and its audit entry
            s.start, s.end, s.hold_expires_at = result.start, result.end, result.hold_expires_at
            s.explanation = result.explanation
            s.guest_finalized = False
            s.updated_at = workflow.now()
            self._notify("hold_moved", occurrence=s.version)
        elif result.outcome == "lost":
            await self._move(st.UNAVAILABLE, "hold_lost", reason=result.reason)
            self._notify("hold_lost")

    async def _wait_until(self, done: Callable[[], bool], deadline: datetime) -> None:
        remaining = (deadline - workflow.now()).total_seconds()
        if remaining <= 0:
            return
        try:
            await workflow.wait_condition(done, timeout=remaining)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ commands

    @workflow.update
    async def finalize(self, cmd: CommandInput) -> BookingView:
        seen = self._s.start  # the time the guest is agreeing to
        async with self._lock:
            self._refuse_now("finalize", cmd.caller_did)
            if self._s.start != seen:  # a calendar re-check moved the hold while this waited
                raise ApplicationError(
                    "the held time changed before this finalize arrived: look at the new time and "
                    "finalize again",
                    type="InvalidState",
                    non_retryable=True,
                )
            self._s.guest_finalized = True
            await self._progress("finalized", cmd.caller_did)
        return self._view()

    @finalize.validator
    def _validate_finalize(self, cmd: CommandInput) -> None:
        self._refuse_now("finalize", cmd.caller_did)

    @workflow.update
    async def respond(self, cmd: RespondInput) -> BookingView:
        command: Command = "approve" if cmd.decision == "approve" else "decline"
        async with self._lock:
            self._refuse_now(command, cmd.caller_did)
            if command == "approve":
                self._s.host_approved = True
                await self._progress("approved", cmd.caller_did)
            else:
                await self._move(st.DECLINED, "declined", actor=cmd.caller_did, reason=cmd.reason)
                self._notify("declined")
        return self._view()

    @respond.validator
    def _validate_respond(self, cmd: RespondInput) -> None:
        if cmd.decision not in ("approve", "decline"):
            raise ApplicationError(
                f"decision must be approve or decline, not {cmd.decision!r}", type="InvalidRequest"
            )
        self._refuse_now("approve" if cmd.decision == "approve" else "decline", cmd.caller_did)

    @workflow.update
    async def cancel(self, cmd: CommandInput) -> BookingView:
        async with self._lock:
            self._refuse_now("cancel", cmd.caller_did)
            was_confirmed = self._s.state == st.CONFIRMED
            await self._move(st.CANCELLED, "cancelled", actor=cmd.caller_did, reason=cmd.reason)
            if was_confirmed:
                self._start_effect(self._side_effect("calendar", "remove_calendar_events", "cancelled"))
            self._notify("cancelled")
        return self._view()

    @cancel.validator
    def _validate_cancel(self, cmd: CommandInput) -> None:
        self._refuse_now("cancel", cmd.caller_did)

    @workflow.signal(name=CALENDAR_CHANGED_SIGNAL)
    def calendar_changed(self, change: CalendarChanged) -> None:
        """Sent by calendar webhooks for changes over this booking's time (or unknown changes)."""
        if self._s.state == st.HELD:
            self._recheck_due = True

    @workflow.update
    async def reschedule(self, cmd: RescheduleInput) -> BookingView:
        async with self._lock:
            self._refuse_now("reschedule", cmd.caller_did)
            s = self._s
            asked = replace(
                s.request,
                earliest=cmd.earliest,
                latest=cmd.latest,
                preferences=s.request.preferences if cmd.preferences is None else cmd.preferences,
            )
            try:
                result = await self._matching(
                    "reschedule_booking",
                    RescheduleJob(asked, s.version + 1, caller_did=cmd.caller_did, reason=cmd.reason),
                    RecheckResult,
                )
            except ActivityError as err:
                raise ApplicationError(
                    "the calendars could not be read to find a new time; the booking keeps its time",
                    type="CalendarUnavailable",
                    non_retryable=True,
                ) from err
            if result.outcome != "moved" or result.start is None or result.end is None:
                raise ApplicationError(
                    f"{result.reason or 'no other slot is free'}: the booking keeps its time",
                    type="NoSlotAvailable",
                    non_retryable=True,
                )
            s.version += 1  # the activity wrote the moved row and its audit entry
            s.start, s.end, s.explanation = result.start, result.end, result.explanation
            s.updated_at = workflow.now()
            self._rescheduled = True
            step = f"rescheduled:{s.version}"
            self._start_effect(self._side_effect("calendar", "update_calendar_events", step))
            actor = role_of(cmd.caller_did, host_did=s.request.host_did, guest_did=s.request.guest_did)
            self._notify("rescheduled", occurrence=s.version, actor=actor, reason=cmd.reason)
        return self._view()

    @reschedule.validator
    def _validate_reschedule(self, cmd: RescheduleInput) -> None:
        self._refuse_now("reschedule", cmd.caller_did)

    @workflow.update
    async def matched(self) -> BookingView:
        """Answers once matching is over: held, or a terminal state with its reason."""
        await workflow.wait_condition(lambda: self._s.state != st.PENDING)
        return self._view()

    @workflow.query
    def view(self) -> BookingView:
        return self._view()

    def _refuse_now(self, command: Command, caller_did: str) -> None:
        s = self._s
        role = role_of(caller_did, host_did=s.request.host_did, guest_did=s.request.guest_did)
        why = refusal(
            command,
            state=s.state,
            role=role,
            guest_finalized=s.guest_finalized,
            host_approved=s.host_approved,
            requires_approval=s.requires_approval,
        )
        kind = "Forbidden" if role is None else "InvalidState"
        if why is None and s.state == st.HELD and s.hold_expires_at and workflow.now() >= s.hold_expires_at:
            why, kind = "the hold has expired", "HoldExpired"
        if s.state == st.EXPIRED and role is not None:
            kind = "HoldExpired"
        if why is None and command == "reschedule" and s.start is not None and workflow.now() >= s.start:
            why = "the meeting has already started"
        if why is not None:
            raise ApplicationError(why, type=kind, non_retryable=True)

    async def _progress(self, action: str, actor: str) -> None:
        """After a finalize or an approval: confirm if nobody else must act, else record who must."""
        s = self._s
        if s.awaiting():
            await self._record(action, actor=actor)
            return
        await self._move(st.CONFIRMED, action, actor=actor)
        self._start_effect(self._side_effect("calendar", "create_calendar_events", "confirmed"))
        self._notify("confirmed")

    # ------------------------------------------------------------------ effects

    async def _move(
        self, state: str, action: str, *, actor: str | None = None, reason: str | None = None
    ) -> None:
        """Write the new state to the projection first, so nobody is told of a state reads can't see."""
        s = self._s
        if reason is not None:
            s.reason = reason
        await self._record(action, actor=actor, state=state)
        s.state = state
        self._upsert_state()

    async def _record(self, action: str, *, actor: str | None = None, state: str | None = None) -> None:
        s = self._s
        state = state or s.state
        awaiting = st.awaiting(
            state,
            guest_finalized=s.guest_finalized,
            host_approved=s.host_approved,
            requires_approval=s.requires_approval,
        )
        s.version += 1
        s.updated_at = workflow.now()
        await self._db(
            "record_transition",
            Transition(
                booking_id=s.request.booking_id,
                version=s.version,
                state=state,
                action=action,
                actor_did=actor,
                awaiting=awaiting,
                reason=s.reason,
                hold_expires_at=s.hold_expires_at if state == st.HELD else None,
                at=s.updated_at,
            ),
        )

    def _start_effect(self, effect: Coroutine[Any, Any, None]) -> None:
        """Run a side effect beside the booking: commands answer once the state changed, not once a
        slow calendar provider or mail server has caught up."""
        self._effects.append(asyncio.ensure_future(effect))

    def _notify(self, step: str, occurrence: int | None = None, **about: Any) -> None:
        self._start_effect(self._mail(step, occurrence, about))

    async def _mail(self, step: str, occurrence: int | None, about: dict[str, Any]) -> None:
        """Write the step's outbox rows, then send them (each SMTP exchange may take up to 20 s).
        A step that can repeat (a hold moved twice) names its `occurrence`, so each one is sent;
        `about` (actor, reason) overrides what the messages would otherwise say."""
        prefs = self._s.request.preferences or {}
        detail: dict[str, Any] = {"guestTimezone": prefs.get("timezone"), **about}
        if occurrence is not None:
            detail["occurrence"] = occurrence
        await self._side_effect("notify", "enqueue_notifications", step, detail=detail)
        await self._side_effect(
            "notify", "send_notifications", step, detail=detail, start_to_close=timedelta(minutes=2)
        )

    async def _side_effect(
        self,
        role: str,
        activity: str,
        step: str,
        *,
        detail: dict[str, Any] | None = None,
        start_to_close: timedelta = timedelta(seconds=30),
    ) -> None:
        """Calendar events and notifications: keyed by booking and step, so retries never duplicate."""
        s = self._s
        key = f"{s.request.booking_id}:{step}"
        effect = SideEffect(booking_id=s.request.booking_id, step=step, key=key, detail=detail or {})
        await workflow.execute_activity(
            activity,
            effect,
            task_queue=self._queue(role),
            start_to_close_timeout=start_to_close,
            schedule_to_close_timeout=timedelta(days=1),
            retry_policy=SIDE_EFFECT_RETRY,
        )
        s.side_effects.append(f"{activity}:{step}")

    async def _matching(self, activity: str, arg: object, result_type: type[R]) -> R:
        """Calendar reads, then a hold placed or moved: retried until the guest's wait is over."""
        result: R = await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            task_queue=self._queue("bookings"),
            start_to_close_timeout=timedelta(seconds=15),
            schedule_to_close_timeout=MATCH_DEADLINE,
            retry_policy=DB_RETRY,
        )
        return result

    async def _db(self, activity: str, arg: object, result_type: type | None = None) -> object:
        return await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            task_queue=self._queue("bookings"),
            # Database writes take milliseconds; a short timeout re-runs them fast after a worker dies.
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=DB_RETRY,
        )

    def _queue(self, role: str) -> str:
        return f"{self._s.request.queue_prefix}-{role}"

    def _upsert_state(self) -> None:
        workflow.upsert_search_attributes([HUDDLE_STATE.value_set(self._s.state)])

    def _view(self) -> BookingView:
        s = self._s
        r = s.request
        assert s.created_at is not None and s.updated_at is not None
        return BookingView(
            id=r.booking_id,
            state=s.state,
            host=r.host_did,
            guest=r.guest_did,
            offer=r.offer_uri,
            duration_minutes=r.duration_minutes,
            created_at=s.created_at,
            updated_at=s.updated_at,
            start=s.start,
            end=s.end,
            hold_expires_at=s.hold_expires_at if s.state == st.HELD else None,
            awaiting=tuple(s.awaiting()),
            reason=s.reason,
            explanation=s.explanation,
        )
