"""DID documents from the real PLC of the local PDS and from did:web hosts, and how they are cached."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import pytest
from atproto_crypto.did import format_did_key
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clients.identity import (
    DidNotFound,
    IdentityResolver,
    IdentityUnavailable,
    InvalidDidDocument,
    InvalidIdentifier,
)
from tests.identity.helpers import DidWebHost, TestKey, did_document, make_identity
from tests.peers.pds_peer import PdsPeer

pytest_plugins = ["tests.peers.fixtures"]

HostFactory = Callable[..., DidWebHost]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def random_plc_did() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "did:plc:" + "".join(secrets.choice(alphabet) for _ in range(24))


async def test_did_plc_document_comes_from_the_configured_plc(pds_peer: PdsPeer) -> None:
    alice = pds_peer.create_account("alice")
    async with make_identity(pds_peer.plc_url) as identity:
        doc = await identity.resolve_did(alice.did)
        assert doc.did == alice.did
        assert doc.handle == alice.handle
        assert doc.pds_endpoint == pds_peer.pds_url
        # The account's real repo key (this PLC serves it in the legacy 2019 key format).
        private = ec.derive_private_key(
            int.from_bytes(pds_peer.signing_key_bytes(alice), "big"), ec.SECP256K1()
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        assert doc.signing_key == format_did_key("ES256K", public)
        assert await identity.get_signing_key(alice.did) == doc.signing_key


async def test_unknown_did_plc_is_not_found(pds_peer: PdsPeer) -> None:
    async with make_identity(pds_peer.plc_url) as identity:
        with pytest.raises(DidNotFound):
            await identity.resolve_did(random_plc_did())


async def test_unreachable_plc_is_unavailable_not_unknown(did_web_host: HostFactory) -> None:
    plc = did_web_host()
    plc.close()  # nothing listens there any more
    async with make_identity(plc.url, timeout=2.0) as identity:
        with pytest.raises(IdentityUnavailable):
            await identity.resolve_did(random_plc_did())


async def test_stale_document_is_served_while_the_plc_is_down_up_to_max_stale(
    did_web_host: HostFactory,
) -> None:
    plc = did_web_host()
    did = random_plc_did()
    plc.plc_docs[did] = did_document(did, TestKey(), handle="stale.test")
    clock = FakeClock()
    async with make_identity(plc.url, clock=clock, cache_ttl=60) as identity:
        fresh = await identity.resolve_did(did)
        plc.status = 503
        clock.now += 120  # past the TTL: a refetch is due, and it fails
        assert await identity.resolve_did(did) == fresh
        clock.now += 3600  # past max_stale: no longer acceptable
        with pytest.raises(IdentityUnavailable):
            await identity.resolve_did(did)


async def test_did_web_document_is_cached_for_the_ttl(did_web_host: HostFactory) -> None:
    host = did_web_host()
    clock = FakeClock()
    async with make_identity("http://127.0.0.1:9", clock=clock, cache_ttl=300) as identity:
        key = await identity.get_signing_key(host.did)
        assert key == f"did:key:{host.key.multikey}"
        clock.now += 299
        await identity.get_signing_key(host.did)
        assert host.hits == 1
        clock.now += 2
        await identity.get_signing_key(host.did)
        assert host.hits == 2


async def test_forced_refresh_waits_out_the_cooldown(did_web_host: HostFactory) -> None:
    host = did_web_host()
    clock = FakeClock()
    async with make_identity("http://127.0.0.1:9", clock=clock, refresh_cooldown=5) as identity:
        await identity.get_signing_key(host.did)
        clock.now += 1
        await identity.get_signing_key(host.did, force_refresh=True)
        assert host.hits == 1  # too soon: a stream of forged tokens must not hammer the directory
        clock.now += 5
        await identity.get_signing_key(host.did, force_refresh=True)
        assert host.hits == 2


async def test_cache_is_bounded(did_web_host: HostFactory) -> None:
    hosts = [did_web_host() for _ in range(3)]
    async with make_identity("http://127.0.0.1:9", cache_max_entries=2) as identity:
        for host in hosts:
            await identity.resolve_did(host.did)
        await identity.resolve_did(hosts[2].did)
        await identity.resolve_did(hosts[0].did)  # evicted by the third: fetched again
        assert [h.hits for h in hosts] == [2, 1, 1]


async def test_concurrent_lookups_share_one_request(did_web_host: HostFactory) -> None:
    host = did_web_host()
    async with make_identity("http://127.0.0.1:9") as identity:
        keys = await asyncio.gather(*(identity.get_signing_key(host.did) for _ in range(20)))
    assert set(keys) == {f"did:key:{host.key.multikey}"}
    assert host.hits == 1


async def test_did_web_on_localhost_only_in_dev_mode(did_web_host: HostFactory) -> None:
    host = did_web_host()
    async with IdentityResolver(plc_url="http://127.0.0.1:9", dev_mode=False) as identity:
        with pytest.raises(InvalidIdentifier):
            await identity.resolve_did(host.did)
    assert host.hits == 0


async def test_document_naming_another_did_is_refused(did_web_host: HostFactory) -> None:
    host = did_web_host()
    host.document = did_document("did:web:elsewhere.example.com", host.key)
    async with make_identity("http://127.0.0.1:9") as identity:
        with pytest.raises(InvalidDidDocument):
            await identity.resolve_did(host.did)


async def test_document_without_an_atproto_key_has_no_signing_key(did_web_host: HostFactory) -> None:
    host = did_web_host()
    host.document = did_document(host.did, None)
    async with make_identity("http://127.0.0.1:9") as identity:
        assert (await identity.resolve_did(host.did)).signing_key is None
        with pytest.raises(InvalidDidDocument):
            await identity.get_signing_key(host.did)


@pytest.mark.parametrize(
    "did",
    [
        "did:plc:short",
        "did:key:zQ3shabc",
        "not-a-did",
        "did:web:example.com:user:alice",
        "did:web:evil.com%3A8080",
    ],
)
async def test_unsupported_or_malformed_dids_fail_without_network(did: str) -> None:
    async with make_identity("http://127.0.0.1:9") as identity:
        with pytest.raises(InvalidIdentifier):
            await identity.resolve_did(did)
