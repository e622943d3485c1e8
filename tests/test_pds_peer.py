"""The real-PDS test peer does what the other issues need of it (see tests/peers/pds_peer.py)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from atproto import (
    CAR,
    AsyncFirehoseSubscribeReposClient,
    AsyncIdResolver,
    models,
    parse_subscribe_repos_message,
)
from atproto_server.auth.jwt import (
    TokenExpiredSignatureError,
    TokenInvalidAudienceError,
    TokenInvalidSignatureError,
    verify_jwt,
    verify_jwt_async,
)

from tests.peers.pds_peer import FOLLOW, Account, PdsPeer, XrpcError

pytest_plugins = ["tests.peers.fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
HUDDLE_DID = "did:web:localhost"
SLOT_OFFER = "com.huddle.slotOffer"


def slot_offer(title: str = "Office hours") -> dict:
    return {
        "title": title,
        "timezone": "Europe/Berlin",
        "windows": [{"days": ["mon", "wed"], "start": "09:00", "end": "12:00"}],
        "durations": [30, 60],
        "policy": "anyone",
        "createdAt": "2026-01-05T10:00:00.000Z",
    }


@pytest.fixture(scope="module")
def alice(pds_peer: PdsPeer) -> Account:
    return pds_peer.create_account("alice")


@pytest.fixture(scope="module")
def bob(pds_peer: PdsPeer) -> Account:
    return pds_peer.create_account("bob")


def test_two_accounts_with_plc_identities(pds_peer: PdsPeer, alice: Account, bob: Account) -> None:
    assert alice.did != bob.did
    for acc in (alice, bob):
        assert acc.did.startswith("did:plc:")
        assert acc.handle.endswith(".test")
        assert pds_peer.resolve_handle(acc.handle) == acc.did
        doc = pds_peer.resolve_did_doc(acc.did)
        assert doc["id"] == acc.did
        assert f"at://{acc.handle}" in doc["alsoKnownAs"]
        pds = [s for s in doc["service"] if s["id"] == "#atproto_pds"]
        assert pds[0]["serviceEndpoint"] == pds_peer.pds_url
    assert pds_peer.login(alice.handle, alice.password).did == alice.did
    assert pds_peer.pds_url.startswith("http://localhost:")
    assert pds_peer.service_did == HUDDLE_DID


def test_slot_offer_record_round_trip(pds_peer: PdsPeer, alice: Account) -> None:
    uri, cid = pds_peer.create_record(alice, SLOT_OFFER, slot_offer())
    assert uri.startswith(f"at://{alice.did}/{SLOT_OFFER}/")
    listed = {r["uri"]: r for r in pds_peer.list_records(alice.did, SLOT_OFFER)}
    assert listed[uri]["cid"] == cid
    assert listed[uri]["value"] == {"$type": SLOT_OFFER, **slot_offer()}

    rkey = uri.rsplit("/", 1)[1]
    uri2, cid2 = pds_peer.put_record(alice, SLOT_OFFER, rkey, slot_offer("Renamed"))
    assert uri2 == uri and cid2 != cid
    assert pds_peer.get_record(alice.did, SLOT_OFFER, rkey)["value"]["title"] == "Renamed"

    pds_peer.delete_record(alice, SLOT_OFFER, rkey)
    assert uri not in {r["uri"] for r in pds_peer.list_records(alice.did, SLOT_OFFER)}
    with pytest.raises(XrpcError) as err:
        pds_peer.get_record(alice.did, SLOT_OFFER, rkey)
    assert err.value.error == "RecordNotFound"


def test_follow_and_unfollow(pds_peer: PdsPeer, alice: Account, bob: Account) -> None:
    uri = pds_peer.follow(alice, bob.did)
    follows = pds_peer.list_records(alice.did, FOLLOW)
    assert [r["value"]["subject"] for r in follows if r["uri"] == uri] == [bob.did]
    pds_peer.unfollow(alice, uri)
    assert uri not in {r["uri"] for r in pds_peer.list_records(alice.did, FOLLOW)}


async def test_service_auth_token_verifies_against_the_plc(pds_peer: PdsPeer, alice: Account) -> None:
    token = pds_peer.service_auth(alice, aud=HUDDLE_DID, lxm="com.huddle.match")
    resolver = AsyncIdResolver(plc_url=pds_peer.plc_url)
    payload = await verify_jwt_async(token, resolver.did.resolve_atproto_key, own_did=HUDDLE_DID)
    assert payload.iss == alice.did
    assert payload.aud == HUDDLE_DID
    # verify_jwt does not check lxm: the caller must.
    assert payload.model_dump().get("lxm") == "com.huddle.match"
    with pytest.raises(TokenInvalidAudienceError):
        await verify_jwt_async(token, resolver.did.resolve_atproto_key, own_did="did:web:elsewhere.test")


def test_minted_tokens_for_the_bad_cases(pds_peer: PdsPeer, alice: Account, bob: Account) -> None:
    get_key = pds_peer.id_resolver().did.resolve_atproto_key
    # Signed with alice's real key: verifies like a getServiceAuth token ...
    fresh = pds_peer.mint_service_jwt(alice, HUDDLE_DID, "com.huddle.match")
    assert verify_jwt(fresh, get_key, own_did=HUDDLE_DID).iss == alice.did
    # ... and can be expired, which getServiceAuth refuses to make.
    expired = pds_peer.mint_service_jwt(
        alice, HUDDLE_DID, "com.huddle.match", iat=int(time.time()) - 120, exp=int(time.time()) - 60
    )
    with pytest.raises(TokenExpiredSignatureError):
        verify_jwt(expired, get_key, own_did=HUDDLE_DID)
    # bob's key claiming to be alice: bad signature.
    forged = pds_peer.mint_service_jwt(bob, HUDDLE_DID, "com.huddle.match", extra={"iss": alice.did})
    with pytest.raises(TokenInvalidSignatureError):
        verify_jwt(forged, get_key, own_did=HUDDLE_DID)
    # getServiceAuth itself refuses an exp in the past.
    with pytest.raises(XrpcError) as err:
        pds_peer.service_auth(alice, HUDDLE_DID, "com.huddle.match", exp=int(time.time()) - 10)
    assert err.value.error == "BadExpiration"


async def _firehose_until(pds_peer: PdsPeer, found, wait_s: float = 20.0) -> list:
    """Replay the firehose from the start (cursor 0) until ``found(messages)``; return the messages."""
    client = AsyncFirehoseSubscribeReposClient(
        params=models.ComAtprotoSyncSubscribeRepos.Params(cursor=0), base_uri=pds_peer.firehose_url
    )
    messages: list = []
    done = asyncio.Event()

    async def on_message(message) -> None:
        messages.append(parse_subscribe_repos_message(message))
        if found(messages):
            done.set()

    task = asyncio.create_task(client.start(on_message))
    try:
        await asyncio.wait_for(done.wait(), wait_s)
    finally:
        await client.stop()
        await asyncio.wait_for(task, 10)
    return messages


async def test_firehose_delivers_a_commit_for_our_record(pds_peer: PdsPeer, alice: Account) -> None:
    uri, cid = pds_peer.create_record(alice, SLOT_OFFER, slot_offer("On the firehose"))
    path = uri.split("/", 3)[3]  # collection/rkey

    def commit_for(msgs: list):
        for m in msgs:
            if isinstance(m, models.ComAtprotoSyncSubscribeRepos.Commit) and m.repo == alice.did:
                for op in m.ops:
                    if op.action == "create" and op.path == path:
                        return m, op
        return None

    msgs = await _firehose_until(pds_peer, commit_for)
    commit, op = commit_for(msgs)
    assert str(op.cid) == cid
    record = CAR.from_bytes(commit.blocks).blocks.get(op.cid)
    assert record["title"] == "On the firehose"
    assert record["$type"] == SLOT_OFFER


async def test_handle_change_and_deactivation(pds_peer: PdsPeer) -> None:
    carol = pds_peer.create_account("carol")
    new_handle = pds_peer.update_handle(carol, f"carol2-{secrets.token_hex(3)}")
    assert carol.handle == new_handle
    assert pds_peer.resolve_handle(new_handle) == carol.did
    assert f"at://{new_handle}" in pds_peer.resolve_did_doc(carol.did)["alsoKnownAs"]

    pds_peer.deactivate_account(carol)
    with pytest.raises(XrpcError):
        pds_peer.create_record(carol, SLOT_OFFER, slot_offer())
    pds_peer.activate_account(carol)
    pds_peer.create_record(carol, SLOT_OFFER, slot_offer())

    def account_events(msgs: list) -> list[bool]:
        return [
            m.active
            for m in msgs
            if isinstance(m, models.ComAtprotoSyncSubscribeRepos.Account) and m.did == carol.did
        ]

    msgs = await _firehose_until(pds_peer, lambda ms: account_events(ms)[-2:] == [False, True])
    identities = [
        m for m in msgs if isinstance(m, models.ComAtprotoSyncSubscribeRepos.Identity) and m.did == carol.did
    ]
    assert new_handle in [m.handle for m in identities]


def test_atproto_client_logs_in(pds_peer: PdsPeer, bob: Account) -> None:
    client = pds_peer.atproto_client(bob)
    assert client.me is None or client.me.did == bob.did  # no AppView: no profile fetched
    out = client.com.atproto.repo.list_records({"repo": bob.did, "collection": SLOT_OFFER})
    assert out.records == []


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:
                found.add(addr)
    return found


def test_listens_on_loopback_only(pds_peer: PdsPeer) -> None:
    for port in (pds_peer.pds_port, pds_peer.plc_port):
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and nothing on IPv6 / 0.0.0.0


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status  # a zombie left for init to reap is gone too


def test_stop_leaves_nothing_behind(pds_peer_factory) -> None:
    peer = pds_peer_factory()
    pid, tmp, port = peer.pid, peer.tmp_dir, peer.pds_port
    assert pid and tmp and tmp.exists() and peer.running()
    peer.stop()
    assert _gone(pid)
    assert not tmp.exists()
    assert _listening(port) == set()


def test_server_goes_when_its_parent_is_killed() -> None:
    if os.environ.get("HUDDLE_SKIP_PDS") == "1":
        pytest.skip("real PDS peer disabled by HUDDLE_SKIP_PDS=1")
    code = (
        "from tests.peers.pds_peer import PdsPeer; import time\n"
        "p = PdsPeer(quiet_install=True).start()\n"
        "print(p.pid, p.pds_port, p.tmp_dir, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    line = ""
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, "child did not start a peer"
        pid_s, port_s, tmp = line.split()
        pid, port = int(pid_s), int(port_s)
        assert not _gone(pid)
        parent.send_signal(signal.SIGKILL)  # no chance to clean up: the server must notice by itself
        parent.wait(10)
        deadline = time.monotonic() + 20
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(pid), f"PDS server {pid} outlived its killed parent"
        assert _listening(port) == set()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if line:
            shutil.rmtree(tmp, ignore_errors=True)  # its parent died before it could
