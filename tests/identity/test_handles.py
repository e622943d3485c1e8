"""Handles resolve to DIDs through the local PDS, both ways, and actors may be either."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clients.identity import HandleNotFound, IdentityUnavailable, InvalidIdentifier
from tests.identity.helpers import DidWebHost, did_document, make_identity
from tests.peers.pds_peer import PdsPeer

pytest_plugins = ["tests.peers.fixtures"]

HostFactory = Callable[..., DidWebHost]


async def test_handle_resolves_through_the_pds_and_is_verified_both_ways(pds_peer: PdsPeer) -> None:
    alice = pds_peer.create_account("alice")
    async with make_identity(pds_peer.plc_url, handle_resolver_urls=[pds_peer.base_url]) as identity:
        assert await identity.resolve_handle(alice.handle) == alice.did
        assert await identity.resolve_handle(alice.handle.upper()) == alice.did
        assert await identity.resolve_actor(f"@{alice.handle}") == alice.did
        assert await identity.resolve_actor(f"at://{alice.handle}") == alice.did
        assert await identity.resolve_actor(alice.did) == alice.did
        assert await identity.verified_handle(alice.did) == alice.handle


async def test_unknown_handle_is_not_found(pds_peer: PdsPeer) -> None:
    async with make_identity(pds_peer.plc_url, handle_resolver_urls=[pds_peer.base_url]) as identity:
        with pytest.raises(HandleNotFound):
            await identity.resolve_handle("nobody-here.test")


async def test_changed_handle_stops_resolving_and_the_new_one_does(pds_peer: PdsPeer) -> None:
    bob = pds_peer.create_account("bob")
    old = bob.handle
    pds_peer.update_handle(bob, f"bob-new-{bob.did[-5:]}")
    async with make_identity(pds_peer.plc_url, handle_resolver_urls=[pds_peer.base_url]) as identity:
        assert await identity.resolve_handle(bob.handle) == bob.did
        with pytest.raises(HandleNotFound):
            await identity.resolve_handle(old)


async def test_handle_whose_did_does_not_claim_it_is_refused(
    pds_peer: PdsPeer, did_web_host: HostFactory
) -> None:
    # A resolver we trust says mallory.test is alice's DID, but alice's document never claims it.
    alice = pds_peer.create_account("alice")
    liar = did_web_host()
    liar.handle_dids["mallory.test"] = alice.did
    async with make_identity(pds_peer.plc_url, handle_resolver_urls=[liar.url]) as identity:
        with pytest.raises(HandleNotFound, match="does not claim"):
            await identity.resolve_handle("mallory.test")


async def test_did_web_identity_with_a_handle_resolves_through_a_fallback_resolver(
    did_web_host: HostFactory,
) -> None:
    host = did_web_host()
    host.document = did_document(host.did, host.key, handle="carol.test")
    host.handle_dids["carol.test"] = host.did
    async with make_identity("http://127.0.0.1:9", handle_resolver_urls=[host.url]) as identity:
        assert await identity.resolve_actor("carol.test") == host.did


async def test_resolver_down_is_unavailable_not_not_found(did_web_host: HostFactory) -> None:
    gone = did_web_host()
    gone.close()
    async with make_identity("http://127.0.0.1:9", handle_resolver_urls=[gone.url], timeout=2.0) as identity:
        with pytest.raises(IdentityUnavailable):
            await identity.resolve_handle("someone.test")


async def test_handles_are_cached(did_web_host: HostFactory) -> None:
    host = did_web_host()
    host.document = did_document(host.did, host.key, handle="dave.test")
    host.handle_dids["dave.test"] = host.did
    async with make_identity("http://127.0.0.1:9", handle_resolver_urls=[host.url]) as identity:
        await identity.resolve_handle("dave.test")
        del host.handle_dids["dave.test"]
        assert await identity.resolve_handle("dave.test") == host.did


@pytest.mark.parametrize("value", ["", "no_underscores.test", "alice", "x.local", "-bad.test", "did:nope"])
async def test_malformed_actors_are_refused_without_network(value: str) -> None:
    async with make_identity("http://127.0.0.1:9") as identity:
        with pytest.raises(InvalidIdentifier):
            await identity.resolve_actor(value)


async def test_test_tld_only_in_dev_mode() -> None:
    async with make_identity("http://127.0.0.1:9", dev_mode=False) as identity:
        with pytest.raises(InvalidIdentifier):
            await identity.resolve_handle("alice.test")
