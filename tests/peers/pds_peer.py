"""A real ATProto PDS + PLC directory as a test peer, with helpers over XRPC.

    with PdsPeer() as peer:
        alice = peer.create_account("alice")
        uri, cid = peer.create_record(alice, "com.huddle.slotOffer", {...})
        token = peer.service_auth(alice, aud="did:web:localhost", lxm="com.huddle.match")

By hand (``make pds``)::

    python -m tests.peers.pds_peer [--pds-port 2583] [--plc-port 2582] [--account alice]

Node 22 and the PDS are installed on first use into ``~/.cache/huddle`` (see
``pds_install``). Each start gets a fresh temporary data directory; the PLC is in memory,
so nothing survives a stop. Both servers listen on 127.0.0.1 only. The PDS calls itself
``http://localhost:PORT`` (its DID documents, OAuth issuer and service DID
``did:web:localhost`` say so); handles are ``*.test``.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.peers import pds_install

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FOLLOW = "app.bsky.graph.follow"


class PdsPeerError(RuntimeError):
    """The peer failed to install, start or stop."""


class XrpcError(RuntimeError):
    """An XRPC call answered with an error status."""

    def __init__(self, nsid: str, status: int, error: str | None, message: str | None):
        super().__init__(f"{nsid}: HTTP {status} {error}: {message}")
        self.nsid = nsid
        self.status = status
        self.error = error
        self.message = message


@dataclass
class Account:
    did: str
    handle: str
    password: str
    access_jwt: str
    refresh_jwt: str
    email: str = ""

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_jwt}"}


def _now() -> int:
    return int(time.time())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rkey_of(uri: str) -> tuple[str, str, str]:
    """at://did/collection/rkey -> (did, collection, rkey)."""
    m = re.fullmatch(r"at://([^/]+)/([^/]+)/([^/]+)", uri)
    if not m:
        raise ValueError(f"not a record at-uri: {uri}")
    return m.group(1), m.group(2), m.group(3)


@dataclass
class PdsPeer:
    """A real ``@atproto/pds`` with its own in-memory PLC directory, on 127.0.0.1.

    ``pds_port`` / ``plc_port``: 0 picks free ports. ``keep_dir`` (or env
    ``HUDDLE_PDS_KEEP=1``) keeps the temp dir (data + ``peer.log``) after stop.
    ``extra_env``: more ``PDS_*`` settings for the server (ours win on conflict).
    """

    pds_port: int = 0
    plc_port: int = 0
    start_timeout: float = 120.0
    keep_dir: bool = field(default_factory=lambda: os.environ.get("HUDDLE_PDS_KEEP") == "1")
    extra_env: dict[str, str] = field(default_factory=dict)
    quiet_install: bool = False

    # Filled in by start():
    pds_url: str = field(init=False, default="")  # http://localhost:P (the PDS's own name)
    plc_url: str = field(init=False, default="")  # http://localhost:Q
    firehose_url: str = field(init=False, default="")  # ws://127.0.0.1:P/xrpc (append the NSID)
    service_did: str = field(init=False, default="")  # did:web:localhost
    admin_password: str = field(init=False, default="")
    tmp_dir: Path | None = field(init=False, default=None)
    data_dir: Path | None = field(init=False, default=None)
    log_path: Path | None = field(init=False, default=None)
    startup_seconds: float = field(init=False, default=0.0)
    info: dict[str, Any] = field(init=False, default_factory=dict)
    _proc: subprocess.Popen | None = field(init=False, default=None, repr=False)
    _log_fh: Any = field(init=False, default=None, repr=False)
    _http: httpx.Client | None = field(init=False, default=None, repr=False)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PdsPeer:
        if self._proc is not None:
            raise PdsPeerError("already started")
        inst = pds_install.install(quiet=self.quiet_install)
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="huddle-pds-"))
        self.data_dir = self.tmp_dir / "data"
        self.log_path = self.tmp_dir / "peer.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PDS_")}
        env.pop("NODE_OPTIONS", None)
        # V8's code cache for the PDS's modules: loading them is most of the start-up CPU.
        env.setdefault("NODE_COMPILE_CACHE", str(inst.root / ".node-compile-cache"))
        env.update(self.extra_env)
        cmd = [
            str(inst.node),
            str(inst.server_script),
            "--data-dir", str(self.data_dir),
            "--blob-dir", str(self.tmp_dir / "blobs"),
            "--pds-port", str(self.pds_port),
            "--plc-port", str(self.plc_port),
            "--watch-stdin",  # if this process dies, the server's stdin closes and it stops
        ]  # fmt: skip
        t0 = time.monotonic()
        self._log_fh = open(self.log_path, "ab", buffering=0)
        self._proc = subprocess.Popen(
            cmd,
            cwd=inst.root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it
        )
        atexit.register(self.stop)
        try:
            self.info = self._wait_ready(t0)
        except BaseException:
            self.stop(keep=True)
            raise
        self.startup_seconds = time.monotonic() - t0
        self.pds_port = int(self.info["pds_port"])
        self.plc_port = int(self.info["plc_port"])
        self.pds_url = self.info["pds"]
        self.plc_url = self.info["plc"]
        self.firehose_url = self.info["firehose"]
        self.service_did = self.info["service_did"]
        self.admin_password = self.info["admin_password"]
        self._http = httpx.Client(timeout=30.0)
        return self

    def _wait_ready(self, t0: float) -> dict[str, Any]:
        assert self._proc is not None and self.log_path is not None
        deadline = t0 + self.start_timeout
        while True:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(obj, dict) and "pds" in obj and "plc" in obj:
                        return obj
            if self._proc.poll() is not None:
                raise PdsPeerError(
                    f"PDS peer exited with {self._proc.returncode} before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise PdsPeerError(
                    f"PDS peer not ready after {self.start_timeout:.0f} s; log {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the server process (PDS and PLC share it)."""
        if self._proc is None:
            return 0
        for line in Path(f"/proc/{self._proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self, keep: bool | None = None) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s) and remove the temp dir."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self._http is not None:
            self._http.close()
            self._http = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            if proc.stdin:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        keep = self.keep_dir if keep is None else keep
        if self.tmp_dir is not None and not keep:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None

    def __enter__(self) -> PdsPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ raw XRPC

    @property
    def base_url(self) -> str:
        """Where to send HTTP: 127.0.0.1 (``pds_url`` says localhost, which may try ::1 first)."""
        return f"http://127.0.0.1:{self.pds_port}"

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise PdsPeerError("PDS peer is not running")
        return self._http

    @staticmethod
    def _auth(auth: Account | str | None) -> dict[str, str]:
        if auth is None:
            return {}
        token = auth.access_jwt if isinstance(auth, Account) else auth
        return {"Authorization": f"Bearer {token}"}

    def _check(self, nsid: str, r: httpx.Response) -> Any:
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {}
            raise XrpcError(nsid, r.status_code, body.get("error"), body.get("message") or r.text[:500])
        if not r.content:
            return None
        if r.headers.get("content-type", "").startswith("application/json"):
            return r.json()
        return r.content

    def query(
        self, nsid: str, params: dict[str, Any] | None = None, auth: Account | str | None = None
    ) -> Any:
        """GET /xrpc/<nsid>; ``auth`` is an Account (its access token) or a bearer token."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        r = self._client().get(f"{self.base_url}/xrpc/{nsid}", params=params, headers=self._auth(auth))
        return self._check(nsid, r)

    def procedure(
        self, nsid: str, body: dict[str, Any] | None = None, auth: Account | str | None = None
    ) -> Any:
        """POST /xrpc/<nsid> with a JSON body (none if ``body`` is None)."""
        kwargs: dict[str, Any] = {"headers": self._auth(auth)}
        if body is not None:
            kwargs["json"] = body
        r = self._client().post(f"{self.base_url}/xrpc/{nsid}", **kwargs)
        return self._check(nsid, r)

    def admin_headers(self) -> dict[str, str]:
        """Basic auth for com.atproto.admin.* (and other admin-only routes)."""
        token = base64.b64encode(f"admin:{self.admin_password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    # ------------------------------------------------------------------ accounts

    def create_account(self, handle_prefix: str = "user", *, password: str | None = None) -> Account:
        """A new account ``<prefix>-<random>.test`` (the PDS wants 3-18 chars before ``.test``)."""
        stem = re.sub(r"[^a-z0-9-]+", "-", handle_prefix.lower()).strip("-")[:12] or "user"
        handle = f"{stem}-{secrets.token_hex(2)}{secrets.choice('abcdefghijklmnopqrstuvwxyz')}.test"
        password = password or secrets.token_urlsafe(18)
        email = f"{handle.removesuffix('.test')}@example.test"
        out = self.procedure(
            "com.atproto.server.createAccount",
            {"handle": handle, "email": email, "password": password},
        )
        return Account(
            did=out["did"],
            handle=out["handle"],
            password=password,
            access_jwt=out["accessJwt"],
            refresh_jwt=out["refreshJwt"],
            email=email,
        )

    def login(self, identifier: str, password: str) -> Account:
        """com.atproto.server.createSession (identifier: handle, DID or email)."""
        out = self.procedure(
            "com.atproto.server.createSession", {"identifier": identifier, "password": password}
        )
        return Account(
            did=out["did"],
            handle=out["handle"],
            password=password,
            access_jwt=out["accessJwt"],
            refresh_jwt=out["refreshJwt"],
            email=out.get("email", ""),
        )

    def refresh_session(self, account: Account) -> Account:
        """New access/refresh tokens for ``account`` (updated in place and returned)."""
        out = self.procedure("com.atproto.server.refreshSession", auth=account.refresh_jwt)
        account.access_jwt, account.refresh_jwt = out["accessJwt"], out["refreshJwt"]
        account.handle = out.get("handle", account.handle)
        return account

    def update_handle(self, account: Account, new_handle: str) -> str:
        """com.atproto.identity.updateHandle; a bare name gets ``.test``. Updates ``account.handle``."""
        if "." not in new_handle:
            new_handle = f"{new_handle}.test"
        self.procedure("com.atproto.identity.updateHandle", {"handle": new_handle}, auth=account)
        account.handle = new_handle
        return new_handle

    def deactivate_account(self, account: Account, delete_after: str | None = None) -> None:
        """com.atproto.server.deactivateAccount (the firehose sends #account active=false)."""
        body = {"deleteAfter": delete_after} if delete_after else {}
        self.procedure("com.atproto.server.deactivateAccount", body, auth=account)

    def activate_account(self, account: Account) -> None:
        self.procedure("com.atproto.server.activateAccount", auth=account)

    def resolve_handle(self, handle: str) -> str:
        return self.query("com.atproto.identity.resolveHandle", {"handle": handle})["did"]

    def resolve_did_doc(self, did: str) -> dict[str, Any]:
        """The DID document from this peer's PLC directory."""
        r = self._client().get(f"http://127.0.0.1:{self.plc_port}/{did}")
        if r.status_code != 200:
            raise XrpcError("plc", r.status_code, "NotFound", r.text[:500])
        return r.json()

    # ------------------------------------------------------------------ records

    def create_record(
        self,
        account: Account,
        collection: str,
        record: dict[str, Any],
        rkey: str | None = None,
        validate: bool | None = None,
    ) -> tuple[str, str]:
        """com.atproto.repo.createRecord -> (uri, cid). ``$type`` is filled in if missing."""
        body: dict[str, Any] = {
            "repo": account.did,
            "collection": collection,
            "record": {"$type": collection, **record},
        }
        if rkey is not None:
            body["rkey"] = rkey
        if validate is not None:
            body["validate"] = validate
        out = self.procedure("com.atproto.repo.createRecord", body, auth=account)
        return out["uri"], out["cid"]

    def put_record(
        self,
        account: Account,
        collection: str,
        rkey: str,
        record: dict[str, Any],
        validate: bool | None = None,
        swap_record: str | None = None,
    ) -> tuple[str, str]:
        """com.atproto.repo.putRecord (create or replace) -> (uri, cid)."""
        body: dict[str, Any] = {
            "repo": account.did,
            "collection": collection,
            "rkey": rkey,
            "record": {"$type": collection, **record},
        }
        if validate is not None:
            body["validate"] = validate
        if swap_record is not None:
            body["swapRecord"] = swap_record
        out = self.procedure("com.atproto.repo.putRecord", body, auth=account)
        return out["uri"], out["cid"]

    def delete_record(self, account: Account, collection: str, rkey: str) -> None:
        self.procedure(
            "com.atproto.repo.deleteRecord",
            {"repo": account.did, "collection": collection, "rkey": rkey},
            auth=account,
        )

    def get_record(self, did: str, collection: str, rkey: str) -> dict[str, Any]:
        """{uri, cid, value}."""
        return self.query("com.atproto.repo.getRecord", {"repo": did, "collection": collection, "rkey": rkey})

    def list_records(self, did: str, collection: str) -> list[dict[str, Any]]:
        """Every record of a collection, newest first, as {uri, cid, value} (follows cursors)."""
        records: list[dict[str, Any]] = []
        cursor = None
        while True:
            out = self.query(
                "com.atproto.repo.listRecords",
                {"repo": did, "collection": collection, "limit": 100, "cursor": cursor},
            )
            records.extend(out.get("records", []))
            cursor = out.get("cursor")
            if not cursor or not out.get("records"):
                return records

    def follow(self, account: Account, subject_did: str) -> str:
        """An ``app.bsky.graph.follow`` record; returns its at-uri."""
        uri, _ = self.create_record(
            account,
            FOLLOW,
            {"subject": subject_did, "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")},
        )
        return uri

    def unfollow(self, account: Account, follow_uri: str) -> None:
        did, collection, rkey = _rkey_of(follow_uri)
        if did != account.did or collection != FOLLOW:
            raise ValueError(f"{follow_uri} is not a follow record of {account.did}")
        self.delete_record(account, collection, rkey)

    # ------------------------------------------------------------------ service auth

    def service_auth(self, account: Account, aud: str, lxm: str | None, exp: int | None = None) -> str:
        """A service-auth JWT from com.atproto.server.getServiceAuth (exp: epoch seconds, ≤ 1 h ahead;
        the PDS default is 60 s)."""
        return self.query(
            "com.atproto.server.getServiceAuth", {"aud": aud, "lxm": lxm, "exp": exp}, auth=account
        )["token"]

    def signing_key_bytes(self, account: Account | str) -> bytes:
        """The account's secp256k1 repo signing key (raw 32 bytes), read from the PDS data dir."""
        did = account.did if isinstance(account, Account) else account
        if self.data_dir is None:
            raise PdsPeerError("PDS peer is not running")
        key = self.data_dir / "actors" / hashlib.sha256(did.encode()).hexdigest()[:2] / did / "key"
        return key.read_bytes()

    def mint_service_jwt(
        self,
        account: Account | str,
        aud: str,
        lxm: str | None = None,
        *,
        exp: int | None = None,
        iat: int | None = None,
        jti: str | None = None,
        extra: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        """A service-auth JWT signed like the PDS signs one, with the account's real key, but with
        any claims: expired, issued in the future, a fixed ``jti``... (getServiceAuth refuses
        such). ``exp`` defaults to iat + 60 s, as the PDS does. ``extra`` adds/overrides claims
        (a None value drops one)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        did = account.did if isinstance(account, Account) else account
        iat = _now() if iat is None else iat
        payload: dict[str, Any] = {
            "iat": iat,
            "iss": did,
            "aud": aud,
            "exp": iat + 60 if exp is None else exp,
            "lxm": lxm,
            "jti": jti or secrets.token_hex(16),
        }
        payload.update(extra or {})
        payload = {k: v for k, v in payload.items() if v is not None}
        head = header or {"typ": "JWT", "alg": "ES256K"}
        signing_input = (
            f"{_b64url(json.dumps(head, separators=(',', ':')).encode())}."
            f"{_b64url(json.dumps(payload, separators=(',', ':')).encode())}"
        )
        priv = ec.derive_private_key(int.from_bytes(self.signing_key_bytes(did), "big"), ec.SECP256K1())
        r, s = decode_dss_signature(priv.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        if s > SECP256K1_N // 2:  # atproto wants low-S signatures
            s = SECP256K1_N - s
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    # ------------------------------------------------------------------ atproto package

    def atproto_client(self, account: Account) -> Any:
        """An ``atproto.Client`` logged in as ``account`` (no app.bsky profile fetch: no AppView here)."""
        from atproto import Client

        client = Client(base_url=f"{self.base_url}/xrpc")
        client.login(account.handle, account.password, fetch_bsky_profile=False)
        return client

    def id_resolver(self) -> Any:
        """An ``atproto.IdResolver`` that resolves did:plc through this peer's PLC."""
        from atproto import IdResolver

        return IdResolver(plc_url=self.plc_url)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.peers.pds_peer",
        description="Run a real ATProto PDS + PLC on 127.0.0.1 until Ctrl-C (fresh data each run).",
    )
    ap.add_argument("--pds-port", type=int, default=int(os.environ.get("HUDDLE_PDS_PORT", 2583)),
                    help="PDS port, 0 = any free (default $HUDDLE_PDS_PORT or 2583)")  # fmt: skip
    ap.add_argument("--plc-port", type=int, default=int(os.environ.get("HUDDLE_PLC_PORT", 2582)),
                    help="PLC port, 0 = any free (default $HUDDLE_PLC_PORT or 2582)")  # fmt: skip
    ap.add_argument("--account", action="append", default=[], metavar="PREFIX",
                    help="create an account (repeatable) and print its handle, DID and password")  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="keep the data dir and log after stop")
    args = ap.parse_args(argv)

    peer = PdsPeer(pds_port=args.pds_port, plc_port=args.plc_port, keep_dir=args.keep)
    try:
        peer.start()
    except (PdsPeerError, pds_install.InstallError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        print(f"PDS       {peer.pds_url}   (XRPC at {peer.base_url}/xrpc)")
        print(f"PLC       {peer.plc_url}")
        print(f"firehose  {peer.firehose_url}/com.atproto.sync.subscribeRepos")
        print(f"admin     admin:{peer.admin_password}")
        print(f"log       {peer.log_path}")
        print(
            f"started in {peer.startup_seconds:.1f} s, pid {peer.pid}, RSS {peer.rss_bytes() / 2**20:.0f} MiB"
        )
        print("for Huddle:")
        print(f"  export HUDDLE_RELAY_URL=ws://127.0.0.1:{peer.pds_port} HUDDLE_PLC_URL={peer.plc_url}")
        for prefix in args.account:
            acc = peer.create_account(prefix)
            print(f"account   {acc.handle}  {acc.did}  password {acc.password}")
        print("Ctrl-C to stop.", flush=True)
        while peer.running():
            time.sleep(0.5)
        print(f"the server exited; log:\n{peer.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", file=sys.stderr)
        return 0
    finally:
        peer.stop()


if __name__ == "__main__":
    sys.exit(main())
