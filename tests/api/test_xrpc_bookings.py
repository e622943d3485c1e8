"""com.huddle.* over HTTP as an ATProto client calls them: service auth from a real PDS."""

from __future__ import annotations

import asyncio

from api.ratelimit import BucketPolicy
from tests.api.conftest import Api


async def test_guest_lists_matches_finalizes_and_reads_back(api: Api) -> None:
    host, offer = api.host()
    guest = api.pds.create_account("guest")
    other = api.pds.create_account("other")

    listed = (await api.call(None, "com.huddle.listOffers", host=host.handle)).json()
    assert [o["uri"] for o in listed["offers"]] == [offer]
    assert (
        listed["offers"][0]["handle"] == host.handle
        and listed["offers"][0]["record"]["title"] == "Office hours"
    )

    resp = await api.call(guest, "com.huddle.match", {"host": host.handle, "durationMinutes": 30})
    held = resp.json()
    assert resp.status_code == 200, held
    assert held["state"] == "held" and held["host"] == host.did and held["guest"] == guest.did
    assert held["offer"] == offer and held["awaiting"] == ["guest"] and "holdExpiresAt" in held
    assert held["explanation"]

    done = (await api.call(guest, "com.huddle.finalize", {"booking": held["id"]})).json()
    assert done["state"] == "confirmed" and done["start"] == held["start"]

    mine = await api.call(guest, "com.huddle.getBooking", booking=held["id"])
    assert mine.status_code == 200 and mine.json()["state"] == "confirmed"
    theirs = await api.call(host, "com.huddle.listBookings", role="host")
    assert [b["id"] for b in theirs.json()["bookings"]] == [held["id"]]

    # A stranger learns nothing: not even that the booking exists.
    for nsid, body in [
        ("com.huddle.finalize", {"booking": held["id"]}),
        ("com.huddle.cancel", {"booking": held["id"]}),
        ("com.huddle.respond", {"booking": held["id"], "decision": "decline"}),
    ]:
        refused = await api.call(other, nsid, body)
        assert (refused.status_code, refused.json()["error"]) == (404, "BookingNotFound"), nsid
    hidden = await api.call(other, "com.huddle.getBooking", booking=held["id"])
    assert hidden.status_code == 404
    assert (await api.call(other, "com.huddle.listBookings", role="guest")).json()["bookings"] == []


async def test_commands_in_the_wrong_state_are_409_with_the_lexicon_name(api: Api) -> None:
    host, _ = api.host(requiresApproval=True)
    guest = api.pds.create_account("guest")
    held = (await api.call(guest, "com.huddle.match", {"host": host.did, "durationMinutes": 30})).json()
    guest_approves = await api.call(
        guest, "com.huddle.respond", {"booking": held["id"], "decision": "approve"}
    )
    assert guest_approves.status_code == 409 and guest_approves.json()["error"] == "InvalidState"
    assert "only the host" in guest_approves.json()["message"]

    waiting = (await api.call(guest, "com.huddle.finalize", {"booking": held["id"]})).json()
    assert waiting["state"] == "held" and waiting["awaiting"] == ["host"]
    approved = (
        await api.call(host, "com.huddle.respond", {"booking": held["id"], "decision": "approve"})
    ).json()
    assert approved["state"] == "confirmed"
    again = await api.call(guest, "com.huddle.finalize", {"booking": held["id"]})
    assert again.status_code == 409 and again.json()["error"] == "InvalidState"


async def test_bad_input_is_400_naming_the_field(api: Api) -> None:
    host, offer = api.host(durations=[30, 60])
    guest = api.pds.create_account("guest")
    nobody = api.pds.create_account("nobody")
    cases = [
        ({"host": host.did, "durationMinutes": 45}, "DurationNotOffered", "durationMinutes"),
        ({"host": host.did, "durationMinutes": 30, "offer": offer + "x"}, "OfferNotFound", "offer"),
        (
            {
                "host": host.did,
                "durationMinutes": 30,
                "earliest": "2027-01-02T00:00:00Z",
                "latest": "2027-01-01T00:00:00Z",
            },
            "InvalidTimeRange",
            "latest",
        ),
        ({"host": host.did, "durationMinutes": 30, "note": "é" * 1001}, "InvalidRequest", "note"),
        (
            {"host": host.did, "durationMinutes": 30, "guestEmail": "a" * 250 + "@x.io"},
            "InvalidRequest",
            "guestEmail",
        ),
        (
            {"host": host.did, "durationMinutes": 30, "idempotencyKey": "k" * 129},
            "InvalidRequest",
            "idempotencyKey",
        ),
        ({"host": host.did}, "InvalidRequest", "durationMinutes"),
        ({"host": "not a handle!", "durationMinutes": 30}, "InvalidRequest", "host"),
        ({"host": nobody.did, "durationMinutes": 30}, "OfferNotFound", "host"),
        ({"host": guest.did, "durationMinutes": 30}, "InvalidRequest", "your own"),
    ]
    for body, error, field in cases:
        resp = await api.call(guest, "com.huddle.match", body)
        answer = resp.json()
        assert (resp.status_code, answer["error"]) == (400, error), (body, answer)
        assert field in answer["message"], answer
    not_json = await api.http.post(
        "/xrpc/com.huddle.match", content=b"{nope", headers=api.token(guest, "com.huddle.match")
    )
    assert not_json.status_code == 400 and "JSON" in not_json.json()["message"]


async def test_auth_is_checked_before_the_body(api: Api) -> None:
    host, _ = api.host()
    guest = api.pds.create_account("guest")
    body = {"host": host.did, "durationMinutes": 30}
    missing = await api.http.post("/xrpc/com.huddle.match", content=b"{nope")
    assert (missing.status_code, missing.json()["error"]) == (401, "AuthMissing")
    wrong_aud = await api.http.post(
        "/xrpc/com.huddle.match",
        json=body,
        headers=api.token(guest, "com.huddle.match", aud="did:web:elsewhere"),
    )
    assert (wrong_aud.status_code, wrong_aud.json()["error"]) == (401, "BadJwtAudience")
    wrong_method = await api.http.post(
        "/xrpc/com.huddle.match", json=body, headers=api.token(guest, "com.huddle.cancel")
    )
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (401, "BadJwtLexiconMethod")
    reads = await api.http.get("/xrpc/com.huddle.listBookings")
    assert reads.status_code == 401


async def test_idempotency_key_same_body_same_booking_other_body_409(api: Api) -> None:
    host, _ = api.host(durations=[30, 60])
    guest = api.pds.create_account("guest")
    body = {"host": host.did, "durationMinutes": 30, "idempotencyKey": "book-once"}
    first, second = await asyncio.gather(
        api.call(guest, "com.huddle.match", body), api.call(guest, "com.huddle.match", body)
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    changed = await api.call(guest, "com.huddle.match", {**body, "durationMinutes": 60})
    assert (changed.status_code, changed.json()["error"]) == (409, "IdempotencyConflict")
    header_key = await api.http.post(
        "/xrpc/com.huddle.match",
        json={"host": host.did, "durationMinutes": 30},
        headers={**api.token(guest, "com.huddle.match"), "Idempotency-Key": "book-once"},
    )
    assert header_key.json()["id"] == first.json()["id"]


async def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    host, _ = api.host()
    guest = api.pds.create_account("guest")
    limiter = api.http._transport.app.state.rate_limiter  # type: ignore[attr-defined]
    limiter.per_caller = BucketPolicy(capacity=2, refill_per_second=0.01)
    statuses = []
    for _ in range(3):
        resp = await api.call(guest, "com.huddle.match", {"host": host.did, "durationMinutes": 30})
        statuses.append(resp.status_code)
    assert statuses == [200, 200, 429]
    assert int(resp.headers["Retry-After"]) >= 1 and resp.json()["error"] == "RateLimitExceeded"
