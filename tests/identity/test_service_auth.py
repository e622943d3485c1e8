"""Service-auth tokens from the real local PDS, accepted and refused as the reference verifier would."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import Engine

from clients.identity import IdentityResolver, ServiceAuthVerifier, StoredReplayGuard
from models.db import make_engine
from tests.conftest import make_settings
from tests.identity.helpers import (
    SERVICE_DID,
    DidWebHost,
    TestKey,
    b64url,
    bearer,
    build_app,
    client_for,
    make_identity,
)
from tests.peers.pds_peer import Account, PdsPeer

pytest_plugins = ["tests.peers.fixtures"]

HostFactory = Callable[..., DidWebHost]
GET_BOOKING = "com.huddle.getBooking"
MATCH = "com.huddle.match"


@asynccontextmanager
async def huddle(
    engine: Engine, plc_url: str, *, clock: Callable[[], float] = time.time, **identity_kwargs: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The test app on `engine`, resolving did:plc through `plc_url`."""
    settings = make_settings(str(engine.url), service_did=SERVICE_DID)
    async with make_identity(plc_url, **identity_kwargs) as identity:
        verifier = ServiceAuthVerifier(
            identity, service_did=SERVICE_DID, replay_guard=StoredReplayGuard(engine), clock=clock
        )
        async with client_for(build_app(settings, engine, identity, verifier=verifier)) as client:
            yield client


@pytest.fixture(scope="module")
def alice(pds_peer: PdsPeer) -> Account:
    return pds_peer.create_account("alice")


def assert_401(resp: httpx.Response, error: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == error, resp.json()
    assert resp.headers["WWW-Authenticate"] == "Bearer"


def with_claims(token: str, **claims: object) -> str:
    """`token` with claims rewritten and the original signature kept (a tampered token)."""
    head, payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(claims)
    return f"{head}.{b64url(json.dumps(body).encode())}.{sig}"


async def test_token_from_get_service_auth_is_accepted(
    pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine
) -> None:
    token = pds_peer.service_auth(alice, aud=SERVICE_DID, lxm=GET_BOOKING)
    async with huddle(sqlite_engine, pds_peer.plc_url) as client:
        resp = await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"did": alice.did, "via": "service-auth"}


async def test_wrong_audience_and_wrong_or_missing_method_are_refused(
    pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine
) -> None:
    other_aud = pds_peer.service_auth(alice, aud="did:web:elsewhere.example.com", lxm=GET_BOOKING)
    other_method = pds_peer.service_auth(alice, aud=SERVICE_DID, lxm="com.huddle.cancel")
    no_method = pds_peer.service_auth(alice, aud=SERVICE_DID, lxm=None)
    async with huddle(sqlite_engine, pds_peer.plc_url) as client:
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(other_aud)), "BadJwtAudience")
        resp = await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(other_method))
        assert_401(resp, "BadJwtLexiconMethod")
        assert "must match: com.huddle.getBooking" in resp.json()["message"]
        resp = await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(no_method))
        assert_401(resp, "BadJwtLexiconMethod")
        assert resp.json()["message"].startswith("missing")


async def test_expiry_is_honoured_with_ten_seconds_of_leeway(
    pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine
) -> None:
    now = int(time.time())
    expired = pds_peer.mint_service_jwt(alice, SERVICE_DID, GET_BOOKING, iat=now - 120, exp=now - 12)
    within_leeway = pds_peer.mint_service_jwt(alice, SERVICE_DID, GET_BOOKING, iat=now - 120, exp=now - 5)
    async with huddle(sqlite_engine, pds_peer.plc_url) as client:
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(expired)), "JwtExpired")
        assert (await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(within_leeway))).status_code == 200


async def test_short_lived_pds_token_expires(
    pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine
) -> None:
    token = pds_peer.service_auth(alice, aud=SERVICE_DID, lxm=GET_BOOKING, exp=int(time.time()) + 2)
    # Rather than sleep 12 s, Huddle's clock runs 15 s ahead of the PDS's.
    async with huddle(sqlite_engine, pds_peer.plc_url, clock=lambda: time.time() + 15) as client:
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token)), "JwtExpired")


async def test_issued_in_the_future_or_living_too_long_is_refused(
    pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine
) -> None:
    now = int(time.time())
    future = pds_peer.mint_service_jwt(alice, SERVICE_DID, GET_BOOKING, iat=now + 60, exp=now + 120)
    forever = pds_peer.mint_service_jwt(alice, SERVICE_DID, GET_BOOKING, exp=now + 7200)
    async with huddle(sqlite_engine, pds_peer.plc_url) as client:
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(future)), "BadJwt")
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(forever)), "BadJwt")


async def test_tampered_tokens_are_refused(pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine) -> None:
    token = pds_peer.service_auth(alice, aud=SERVICE_DID, lxm=GET_BOOKING)
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[10] ^= 0x01
    bad_signature = f"{head}.{payload}.{b64url(bytes(raw))}"
    # A token for another method, its lxm rewritten to the method called.
    rewritten = with_claims(
        pds_peer.service_auth(alice, aud=SERVICE_DID, lxm="com.huddle.cancel"), lxm=GET_BOOKING
    )
    # Someone else's DID put into alice's token.
    bob = pds_peer.create_account("bob")
    impersonation = with_claims(pds_peer.service_auth(alice, aud=SERVICE_DID, lxm=GET_BOOKING), iss=bob.did)
    async with huddle(sqlite_engine, pds_peer.plc_url) as client:
        for forged in (bad_signature, rewritten, impersonation):
            assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(forged)), "BadJwtSignature")
        # The genuine one still works: a refused forgery did not burn its jti.
        assert (await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token))).status_code == 200


async def test_unknown_did_is_refused(pds_peer: PdsPeer, sqlite_engine: Engine) -> None:
    stranger = "did:plc:" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(24))
    now = int(time.time())
    token = TestKey().sign_jwt(
        {"iss": stranger, "aud": SERVICE_DID, "lxm": GET_BOOKING, "iat": now, "exp": now + 60}
    )
    async with huddle(sqlite_engine, pds_peer.plc_url) as client:
        resp = await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token))
    assert_401(resp, "AuthenticationRequired")
    assert "could not resolve iss did" in resp.json()["message"]


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "AuthMissing"),
        ({"Authorization": "Basic YWRtaW46cGFzcw=="}, "InvalidToken"),
        ({"Authorization": "Bearer"}, "MissingJwt"),
        ({"Authorization": "Bearer not-a-jwt"}, "BadJwt"),
        ({"Authorization": "Bearer a.b.c"}, "BadJwt"),
        ({"Authorization": "Bearer " + "x" * 9000}, "BadJwt"),
    ],
)
async def test_missing_or_malformed_authorization_is_refused(
    sqlite_engine: Engine, headers: dict[str, str], error: str
) -> None:
    async with huddle(sqlite_engine, "http://127.0.0.1:9") as client:
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=headers), error)


async def test_token_types_that_are_not_service_auth_are_refused(
    pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine
) -> None:
    access_typed = pds_peer.mint_service_jwt(
        alice, SERVICE_DID, GET_BOOKING, header={"typ": "at+jwt", "alg": "ES256K"}
    )
    async with huddle(sqlite_engine, pds_peer.plc_url) as client:
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(access_typed)), "BadJwtType")
        # The PDS session token itself is no service-auth token either.
        resp = await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(alice.access_jwt))
        assert resp.status_code == 401


async def test_issuer_with_a_service_fragment_is_the_bare_did(
    pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine
) -> None:
    token = pds_peer.mint_service_jwt(alice, SERVICE_DID, GET_BOOKING, extra={"iss": f"{alice.did}#huddle"})
    async with huddle(sqlite_engine, pds_peer.plc_url) as client:
        resp = await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    assert resp.json()["did"] == alice.did


async def test_replayed_jti_is_refused_across_replicas(
    pds_peer: PdsPeer, alice: Account, database_url: str
) -> None:
    first, second = make_engine(database_url, pool_size=2), make_engine(database_url, pool_size=2)
    token = pds_peer.service_auth(alice, aud=SERVICE_DID, lxm=GET_BOOKING)
    try:
        async with huddle(first, pds_peer.plc_url) as one, huddle(second, pds_peer.plc_url) as two:
            assert (await one.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token))).status_code == 200
            assert_401(await one.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token)), "JwtReplayed")
            assert_401(await two.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token)), "JwtReplayed")
            # Tokens without a jti cannot be told apart: allowed until they expire.
            no_jti = pds_peer.mint_service_jwt(alice, SERVICE_DID, GET_BOOKING, extra={"jti": None})
            for client in (one, two):
                assert (await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(no_jti))).status_code == 200
    finally:
        first.dispose()
        second.dispose()


def test_jti_of_an_expired_token_may_be_reused(sqlite_engine: Engine) -> None:
    now = time.time()
    guard = StoredReplayGuard(sqlite_engine, clock=lambda: now)
    assert guard.claim_sync("did:plc:a", "j1", now + 60)
    assert not guard.claim_sync("did:plc:a", "j1", now + 60)
    assert guard.claim_sync("did:plc:b", "j1", now + 60)  # another issuer's jti is its own
    later = StoredReplayGuard(sqlite_engine, clock=lambda: now + 61)
    assert later.claim_sync("did:plc:a", "j1", now + 120)
    assert later.sweep() == 1  # did:plc:b's row expired too; did:plc:a's was renewed


async def test_rotated_key_is_picked_up_by_refetching_once(
    did_web_host: HostFactory, sqlite_engine: Engine
) -> None:
    host = did_web_host()
    async with huddle(sqlite_engine, "http://127.0.0.1:9", refresh_cooldown=0) as client:
        assert (await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(host.token(GET_BOOKING)))).is_success
        host.rotate(TestKey("ES256"))  # a P-256 key this time
        resp = await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(host.token(GET_BOOKING)))
        assert resp.status_code == 200, resp.text
        assert host.hits == 2
        # A key the document never had: refetched once more, then refused.
        forged = host.token(GET_BOOKING, key=TestKey())
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(forged)), "BadJwtSignature")
        assert host.hits == 3


async def test_algorithm_must_match_the_key(did_web_host: HostFactory, sqlite_engine: Engine) -> None:
    host = did_web_host()
    now = int(time.time())
    claims = {"iss": host.did, "aud": SERVICE_DID, "lxm": GET_BOOKING, "iat": now, "exp": now + 60}
    lying_header = host.key.sign_jwt(claims, header={"typ": "JWT", "alg": "ES256"})
    async with huddle(sqlite_engine, "http://127.0.0.1:9") as client:
        assert_401(await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(lying_header)), "BadJwtSignature")


async def test_plc_outage_is_a_502_not_a_401(
    pds_peer: PdsPeer, alice: Account, sqlite_engine: Engine
) -> None:
    token = pds_peer.service_auth(alice, aud=SERVICE_DID, lxm=GET_BOOKING)
    async with huddle(sqlite_engine, "http://127.0.0.1:9", timeout=2.0) as client:
        resp = await client.get(f"/xrpc/{GET_BOOKING}", headers=bearer(token))
    assert resp.status_code == 502
    assert resp.json()["error"] == "UpstreamFailure"


async def test_auth_is_checked_before_the_body(did_web_host: HostFactory, sqlite_engine: Engine) -> None:
    host = did_web_host()
    broken = {"content-type": "application/json"}
    async with huddle(sqlite_engine, "http://127.0.0.1:9") as client:
        assert_401(await client.post(f"/xrpc/{MATCH}", content=b"{not json", headers=broken), "AuthMissing")
        resp = await client.post(
            f"/xrpc/{MATCH}", content=b"{not json", headers=broken | bearer(host.token(MATCH))
        )
        assert resp.status_code == 400 and resp.json()["error"] == "InvalidRequest"
        # Route, rate limiter and body all depend on the caller: verified once (its jti claimed once).
        resp = await client.post(f"/xrpc/{MATCH}", json={"host": "x"}, headers=bearer(host.token(MATCH)))
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"did": host.did, "body": {"host": "x"}}


async def test_caller_for_a_named_method_and_the_optional_caller(
    did_web_host: HostFactory, sqlite_engine: Engine
) -> None:
    host = did_web_host()
    async with huddle(sqlite_engine, "http://127.0.0.1:9") as client:
        resp = await client.post("/hooks/cancel", headers=bearer(host.token("com.huddle.cancel")))
        assert resp.json() == {"did": host.did}
        assert_401(
            await client.post("/hooks/cancel", headers=bearer(host.token(GET_BOOKING))), "BadJwtLexiconMethod"
        )
        assert (await client.get("/xrpc/com.huddle.listOffers")).json() == {"did": None}
        resp = await client.get(
            "/xrpc/com.huddle.listOffers", headers=bearer(host.token("com.huddle.listOffers"))
        )
        assert resp.json() == {"did": host.did}
        # A header that is there must be valid, even where auth is optional.
        assert_401(await client.get("/xrpc/com.huddle.listOffers", headers=bearer("junk")), "BadJwt")


async def test_warm_verification_does_no_identity_fetch(did_web_host: HostFactory) -> None:
    host = did_web_host()
    async with IdentityResolver(plc_url="http://127.0.0.1:9", dev_mode=True) as identity:
        verifier = ServiceAuthVerifier(identity, service_did=SERVICE_DID, replay_guard=None)
        for _ in range(50):
            claims = await verifier.verify(host.token(GET_BOOKING), GET_BOOKING)
            assert claims.did == host.did
    assert host.hits == 1
