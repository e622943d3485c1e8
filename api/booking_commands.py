"""Starting and commanding booking workflows from the API (one Temporal client, held in app state)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from kernel.booking.ids import workflow_id
from kernel.booking.messages import BookingRequest, CommandInput, RespondInput
from kernel.lexicon.views import BookingView
from models.booking_store import to_view
from models.settings import Settings
from models.tables import Booking
from workflows.booking import BookingWorkflow

HOST = SearchAttributeKey.for_keyword("HuddleHost")
GUEST = SearchAttributeKey.for_keyword("HuddleGuest")
STATE = SearchAttributeKey.for_keyword("HuddleState")
# A booking workflow lives until its meeting ends; the horizon caps that at a year.
BOOKING_EXECUTION_TIMEOUT = timedelta(days=400)


class BookingCommandError(Exception):
    """A command the workflow refused, with the XRPC status and error name to answer with."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


# The workflow's refusal types, as XRPC statuses and the lexicons' error names.
_REFUSALS = {
    "Forbidden": (403, "Forbidden"),
    "InvalidState": (409, "InvalidState"),
    "HoldExpired": (409, "HoldExpired"),
    "InvalidRequest": (400, "InvalidRequest"),
    "NoSlotAvailable": (409, "NoSlotAvailable"),
    "CalendarUnavailable": (503, "CalendarUnavailable"),
}


async def request_booking(
    client: Client, settings: Settings, engine: Engine, request: BookingRequest
) -> BookingView:
    """Start (or join) the booking's workflow and return once it is held or terminal."""
    start = WithStartWorkflowOperation(
        BookingWorkflow.run,
        request,
        id=workflow_id(request.booking_id),
        task_queue=settings.task_queue("bookings"),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A finished booking is not restarted by a repeated request: the same key is the same booking.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        execution_timeout=BOOKING_EXECUTION_TIMEOUT,
        memo={"host": request.host_did, "guest": request.guest_did, "offer": request.offer_uri},
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(HOST, request.host_did),
                SearchAttributePair(GUEST, request.guest_did),
                SearchAttributePair(STATE, "pending"),
            ]
        ),
        static_summary=f"{request.duration_minutes} min: {request.guest_did} with {request.host_did}",
    )
    try:
        view: BookingView = await client.execute_update_with_start_workflow(
            BookingWorkflow.matched, start_workflow_operation=start
        )
        return view
    except (WorkflowAlreadyStartedError, RPCError) as exc:
        if isinstance(exc, RPCError) and exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        existing = read_booking(engine, request.booking_id)
        if existing is None:
            raise
        return existing


async def send_command(
    client: Client, engine: Engine, booking_id: str, update: str, command: CommandInput | RespondInput
) -> BookingView:
    """Send finalize / respond / cancel; a refusal becomes a BookingCommandError with its reason."""
    handle = client.get_workflow_handle(workflow_id(booking_id))
    try:
        view: BookingView = await handle.execute_update(update, command, result_type=BookingView)
        return view
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type in _REFUSALS:
            status, error = _REFUSALS[cause.type]
            raise BookingCommandError(status, error, cause.message) from exc
        raise
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        # The workflow has finished (the booking is final): nothing can change it any more.
        existing = read_booking(engine, booking_id)
        if existing is None:
            raise BookingCommandError(404, "BookingNotFound", "no such booking") from exc
        error = "HoldExpired" if existing.state == "expired" else "InvalidState"
        raise BookingCommandError(409, error, f"the booking is already {existing.state}") from exc


def read_booking(engine: Engine, booking_id: str) -> BookingView | None:
    """The projection's view of a booking (what reads are served from)."""
    with Session(engine) as session:
        row = session.get(Booking, booking_id)
        return to_view(row) if row is not None else None
