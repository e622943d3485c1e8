"""The booking state machine on the real Temporal dev server, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from api.booking_commands import BookingCommandError, read_booking, send_command
from kernel.booking.ids import workflow_id
from kernel.booking.messages import BookingRequest, CommandInput, RespondInput
from models.settings import Settings
from tests.bookings.helpers import (
    HOST,
    audit_actions,
    book,
    eventually_outbox,
    final_view,
    five_slot_record,
    follow,
    make_request,
    offer_record,
    outbox,
    projection,
    seed_offer,
)
from tests.replay.recorder import keep_history


async def _accepted_updates(client: Client, booking: str) -> int:
    """Updates the workflow accepted into its history (a validator's refusal adds none)."""
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    handle = client.get_workflow_handle(workflow_id(booking))
    return len([e async for e in handle.fetch_history_events() if e.event_type == accepted])


@pytest.mark.history
async def test_held_then_finalized_is_confirmed(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, offer_record())
    req = make_request(worker, uri)
    held = await book(temporal_client, worker, engine, req)

    assert held.state == "held" and held.awaiting == ("guest",)
    assert held.start is not None and held.end == held.start + timedelta(minutes=30)
    assert held.hold_expires_at is not None and held.start >= req.requested_at
    assert held.explanation
    row = projection(engine, req.booking_id)
    assert (row.state, row.start_at, row.hold_expires_at) == ("held", held.start, held.hold_expires_at)

    confirmed = await send_command(
        temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did)
    )
    assert confirmed.state == "confirmed" and confirmed.awaiting == () and confirmed.hold_expires_at is None
    assert projection(engine, req.booking_id).state == "confirmed"
    await eventually_outbox(
        engine,
        req.booking_id,
        [
            ("confirmed", "guest"),
            ("confirmed", "host"),
            ("held", "guest"),
        ],
    )
    assert audit_actions(engine, req.booking_id) == ["requested", "held", "finalized"]
    await keep_history(temporal_client, workflow_id(req.booking_id), "booking-held-confirmed")


@pytest.mark.history
async def test_approval_required_waits_for_the_host(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, offer_record(requiresApproval=True))
    req = make_request(worker, uri)
    held = await book(temporal_client, worker, engine, req)
    assert held.state == "held" and held.awaiting == ("guest", "host")

    finalized = await send_command(
        temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did)
    )
    assert finalized.state == "held" and finalized.awaiting == ("host",)
    assert projection(engine, req.booking_id).awaiting == ["host"]

    approved = await send_command(
        temporal_client, engine, req.booking_id, "respond", RespondInput(HOST, "approve")
    )
    assert approved.state == "confirmed"
    await eventually_outbox(
        engine,
        req.booking_id,
        [("confirmed", "guest"), ("confirmed", "host"), ("held", "guest"), ("request_received", "host")],
    )
    await keep_history(temporal_client, workflow_id(req.booking_id), "booking-approval-approved")


@pytest.mark.history
async def test_declined_releases_the_slot(worker: Settings, engine: Engine, temporal_client: Client) -> None:
    uri = seed_offer(engine, five_slot_record(requiresApproval=True))
    first = make_request(worker, uri)
    held = await book(temporal_client, worker, engine, first)
    declined = await send_command(
        temporal_client, engine, first.booking_id, "respond", RespondInput(HOST, "decline", "busy that day")
    )
    assert declined.state == "declined" and declined.reason == "busy that day"
    await eventually_outbox(
        engine, first.booking_id, [("declined", "guest"), ("held", "guest"), ("request_received", "host")]
    )
    # The time is free again: the next guest gets the very same slot.
    second = await book(temporal_client, worker, engine, make_request(worker, uri))
    assert second.state == "held" and second.start == held.start
    await keep_history(temporal_client, workflow_id(first.booking_id), "booking-approval-declined")


@pytest.mark.history
async def test_hold_expires_and_the_slot_is_released(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, five_slot_record())
    req = make_request(worker, uri, hold_seconds=2)
    held = await book(temporal_client, worker, engine, req)
    assert held.state == "held"
    result = await final_view(temporal_client, req.booking_id)
    assert result.state == "expired"
    row = projection(engine, req.booking_id)
    assert row.state == "expired" and row.hold_expires_at is None
    assert ("expired", "guest") in outbox(engine, req.booking_id)
    # Finalizing now is refused, and the slot went back to the pool.
    with pytest.raises(BookingCommandError) as refused:
        await send_command(temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did))
    assert refused.value.status == 409 and "expired" in refused.value.message
    again = await book(temporal_client, worker, engine, make_request(worker, uri))
    assert again.start == held.start
    await keep_history(temporal_client, workflow_id(req.booking_id), "booking-hold-expired")


async def test_cancel_after_confirmation(worker: Settings, engine: Engine, temporal_client: Client) -> None:
    uri = seed_offer(engine, offer_record())
    req = make_request(worker, uri)
    await book(temporal_client, worker, engine, req)
    await send_command(temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did))
    cancelled = await send_command(
        temporal_client, engine, req.booking_id, "cancel", CommandInput(HOST, reason="sick")
    )
    assert cancelled.state == "cancelled" and cancelled.reason == "sick"
    result = await final_view(temporal_client, req.booking_id)
    assert result.state == "cancelled"
    assert ("cancelled", "guest") in outbox(engine, req.booking_id)
    assert audit_actions(engine, req.booking_id)[-1] == "cancelled"


@pytest.mark.history
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_either_person_cancels_before_or_after_confirmation(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, offer_record())
    cases = {
        (who, when): make_request(worker, uri) for who in ("guest", "host") for when in ("held", "confirmed")
    }

    async def cancel(who: str, when: str, req: BookingRequest) -> None:
        await book(temporal_client, worker, engine, req)
        if when == "confirmed":
            await send_command(
                temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did)
            )
        caller = req.guest_did if who == "guest" else HOST
        view = await send_command(temporal_client, engine, req.booking_id, "cancel", CommandInput(caller))
        assert view.state == "cancelled"
        assert (await final_view(temporal_client, req.booking_id)).state == "cancelled"
        assert audit_actions(engine, req.booking_id)[-1] == "cancelled"
        # Whoever cancelled, the other person hears of it.
        told = "host" if who == "guest" else "guest"
        await eventually_outbox(
            engine,
            req.booking_id,
            [*_mail_before_cancel(when), ("cancelled", "guest"), ("cancelled", "host")],
        )
        assert ("cancelled", told) in outbox(engine, req.booking_id)
        await keep_history(temporal_client, workflow_id(req.booking_id), f"booking-{when}-{who}-cancelled")

    await asyncio.gather(*(cancel(who, when, req) for (who, when), req in cases.items()))


def _mail_before_cancel(when: str) -> list[tuple[str, str]]:
    held = [("held", "guest")]
    return held if when == "held" else [*held, ("confirmed", "guest"), ("confirmed", "host")]


async def test_refused_commands_say_why_and_write_nothing(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, offer_record())
    req = make_request(worker, uri)
    await book(temporal_client, worker, engine, req)
    stranger = "did:plc:strangerstrangerstranger"
    assert await _accepted_updates(temporal_client, req.booking_id) == 1  # the match itself

    cases = [
        ("respond", RespondInput(req.guest_did, "approve"), 409, "only the host can approve"),
        ("respond", RespondInput(HOST, "approve"), 409, "does not require the host's approval"),
        ("finalize", CommandInput(HOST), 409, "only the guest can finalize"),
        ("cancel", CommandInput(stranger), 403, "host or guest"),
        ("respond", RespondInput(HOST, "maybe"), 400, "approve or decline"),
    ]
    for update, command, status, message in cases:
        with pytest.raises(BookingCommandError) as refused:
            await send_command(temporal_client, engine, req.booking_id, update, command)
        assert (refused.value.status, message in refused.value.message) == (status, True), (
            refused.value.message
        )
    assert await _accepted_updates(temporal_client, req.booking_id) == 1  # validators wrote nothing
    assert audit_actions(engine, req.booking_id) == ["requested", "held"]

    await send_command(temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did))
    with pytest.raises(BookingCommandError, match="only a held booking can be finalized"):
        await send_command(temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did))


@pytest.mark.history
async def test_policy_denies_before_reading_calendars(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, offer_record(policy="followers"))
    req = make_request(worker, uri)
    denied = await book(temporal_client, worker, engine, req)
    assert denied.state == "denied" and denied.start is None
    assert denied.reason and "follow" in denied.reason
    assert read_booking(engine, req.booking_id).state == "denied"  # type: ignore[union-attr]

    follow(engine, req.guest_did, HOST)
    allowed = await book(temporal_client, worker, engine, make_request(worker, uri, guest=req.guest_did))
    assert allowed.state == "held"
    await keep_history(temporal_client, workflow_id(req.booking_id), "booking-denied-by-policy")


@pytest.mark.history
async def test_no_free_slot_is_unavailable_with_a_reason(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, five_slot_record())
    requests = [make_request(worker, uri) for _ in range(6)]
    views = [await book(temporal_client, worker, engine, r) for r in requests]
    assert [v.state for v in views] == ["held"] * 5 + ["unavailable"]
    assert views[-1].reason and views[-1].start is None
    assert len({v.start for v in views[:5]}) == 5
    await keep_history(temporal_client, workflow_id(requests[-1].booking_id), "booking-no-free-slot")


async def test_same_request_twice_is_the_same_booking(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, offer_record(policy="mutuals"))
    req = make_request(worker, uri, key="same-key")
    first, second = await asyncio.gather(
        book(temporal_client, worker, engine, req), book(temporal_client, worker, engine, req)
    )
    assert first.id == second.id and first.state == second.state == "denied"
    # After the workflow has finished, the same key still answers with the same booking.
    (await final_view(temporal_client, req.booking_id))
    third = await book(temporal_client, worker, engine, req)
    assert third.id == first.id and third.state == "denied"


async def test_workflows_are_searchable_by_host_guest_and_state(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, offer_record())
    req = make_request(worker, uri)
    await book(temporal_client, worker, engine, req)
    query = f'HuddleGuest = "{req.guest_did}" AND HuddleHost = "{HOST}" AND HuddleState = "held"'
    for _ in range(50):  # visibility is eventually consistent
        found = [wf.id async for wf in temporal_client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.2)
    assert found == [workflow_id(req.booking_id)]
