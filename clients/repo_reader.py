"""A repo's Huddle records and follows, read straight from its PDS (backfill, #sync, gaps, drift repair).

`RepoReader` only reads: DID document → PDS endpoint → `com.atproto.sync.getRepoStatus` and
`com.atproto.repo.listRecords`. `RepoRefresher` reads a repo and writes it into the index through
`models.index_store`, which decides whether the snapshot is newer than what the firehose applied.

Sync on purpose: it runs in activity threads, in the firehose process's thread pool and in the CLI.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine

from clients.calltrace import TracedTransport
from clients.identity.did import MAX_DOCUMENT_BYTES, parse_did_document
from clients.identity.errors import IdentityError
from clients.identity.syntax import check_did, is_loopback_host, web_host
from models import index_store
from models.index_store import FOLLOW_NSID, OFFER_NSID, RepoRecord, RepoSnapshot, SnapshotOutcome
from models.settings import Settings

log = logging.getLogger("huddle.repos")

MAX_PAGE_BYTES = 8 * 1024 * 1024
# An inactive repo cannot be listed; these listRecords/getLatestCommit errors say which way it went.
_INACTIVE_ERRORS = {
    "RepoDeactivated": "deactivated",
    "RepoTakendown": "takendown",
    "RepoSuspended": "suspended",
}


class RepoGone(Exception):
    """No such DID, no PDS in its document, or the PDS has no such repo: there is nothing to index."""


class RepoUnavailable(Exception):
    """The directory or the PDS could not answer now (network, 5xx, rate limit): try again later."""


@dataclass(frozen=True)
class RepoStatus:
    active: bool
    status: str | None
    rev: str | None


class RepoReader:
    """Reads repos over HTTP; `dev_mode` allows `http://` and loopback PDS endpoints (the local PDS)."""

    def __init__(
        self,
        *,
        plc_url: str,
        dev_mode: bool = False,
        timeout: float = 10.0,
        page_size: int = 100,
        max_records: int = 100_000,
        endpoint_ttl: float = 300.0,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plc_url = plc_url.rstrip("/")
        self._dev_mode = dev_mode
        self._page_size = page_size
        self._max_records = max_records
        self._endpoint_ttl = endpoint_ttl
        self._clock = clock
        self._endpoints: dict[str, tuple[str, float]] = {}
        self._owns_http = http is None
        self._http = http or httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            headers={"user-agent": "huddle-appview"},
            transport=TracedTransport("pds"),
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # ------------------------------------------------------------ identity → PDS

    def pds_endpoint(self, did: str) -> str:
        """The PDS base URL from `did`'s document (cached for a few minutes)."""
        cached = self._endpoints.get(did)
        if cached is not None and self._clock() - cached[1] < self._endpoint_ttl:
            return cached[0]
        doc = self._did_document(did)
        endpoint = doc.pds_endpoint
        if not endpoint:
            raise RepoGone(f"{did}: the DID document names no PDS")
        endpoint = self._checked_endpoint(did, endpoint)
        self._endpoints[did] = (endpoint, self._clock())
        return endpoint

    def forget(self, did: str) -> None:
        """Drop the cached PDS of `did` (its identity changed: it may have moved)."""
        self._endpoints.pop(did, None)

    def _did_document(self, did: str) -> Any:
        try:
            check_did(did)
            if did.startswith("did:plc:"):
                url = f"{self._plc_url}/{did}"
            else:
                host = web_host(did, allow_loopback=self._dev_mode)
                scheme = "http" if is_loopback_host(host) else "https"
                url = f"{scheme}://{host}/.well-known/did.json"
        except IdentityError as exc:
            raise RepoGone(str(exc)) from exc
        status, body = self._get(url, {}, MAX_DOCUMENT_BYTES, what=f"{did}: DID document")
        if status in (404, 410):
            raise RepoGone(f"{did}: no DID document ({status})")
        if status != 200:
            raise RepoUnavailable(f"{did}: the DID document answered {status}")
        try:
            return parse_did_document(did, json.loads(body))
        except (ValueError, IdentityError) as exc:
            raise RepoGone(f"{did}: unusable DID document ({exc})") from exc

    def _checked_endpoint(self, did: str, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        if parts.scheme not in ("https", "http") or not host:
            raise RepoGone(f"{did}: the PDS endpoint {endpoint[:200]!r} is not an http(s) URL")
        if not self._dev_mode and (parts.scheme != "https" or is_loopback_host(host)):
            raise RepoGone(f"{did}: the PDS endpoint {endpoint[:200]!r} is refused outside dev mode")
        if host == "localhost":
            # The local PDS listens on 127.0.0.1 only; "localhost" may resolve to ::1 first.
            endpoint = endpoint.replace("//localhost", "//127.0.0.1", 1)
        return endpoint.rstrip("/")

    # ------------------------------------------------------------ XRPC reads

    def status(self, did: str, pds: str | None = None) -> RepoStatus:
        """Whether the repo is active, and its newest commit rev."""
        pds = pds or self.pds_endpoint(did)
        status, body = self._xrpc(pds, "com.atproto.sync.getRepoStatus", {"did": did})
        if status == 200:
            out = _json_object(body)
            active = out.get("active") is not False
            rev = out.get("rev") if isinstance(out.get("rev"), str) else None
            return RepoStatus(active=active, status=_str_or_none(out.get("status")), rev=rev)
        error = _xrpc_error(body)
        if error == "RepoNotFound":
            raise RepoGone(f"{did}: {pds} has no such repo")
        if status in (404, 501) or error == "MethodNotImplemented":
            return self._status_from_latest_commit(did, pds)
        raise RepoUnavailable(f"{did}: getRepoStatus answered {status} {error or ''}".strip())

    def _status_from_latest_commit(self, did: str, pds: str) -> RepoStatus:
        status, body = self._xrpc(pds, "com.atproto.sync.getLatestCommit", {"did": did})
        if status == 200:
            rev = _json_object(body).get("rev")
            return RepoStatus(active=True, status=None, rev=rev if isinstance(rev, str) else None)
        error = _xrpc_error(body)
        if error in _INACTIVE_ERRORS:
            return RepoStatus(active=False, status=_INACTIVE_ERRORS[error], rev=None)
        if error == "RepoNotFound":
            raise RepoGone(f"{did}: {pds} has no such repo")
        raise RepoUnavailable(f"{did}: getLatestCommit answered {status} {error or ''}".strip())

    def list_records(self, did: str, collection: str, pds: str | None = None) -> list[RepoRecord]:
        """Every record of `collection` in the repo, following listRecords cursors."""
        pds = pds or self.pds_endpoint(did)
        records: list[RepoRecord] = []
        cursor: str | None = None
        while True:
            params = {"repo": did, "collection": collection, "limit": str(self._page_size)}
            if cursor:
                params["cursor"] = cursor
            status, body = self._xrpc(pds, "com.atproto.repo.listRecords", params)
            if status != 200:
                error = _xrpc_error(body)
                if error == "RepoNotFound":
                    raise RepoGone(f"{did}: {pds} has no such repo")
                raise RepoUnavailable(f"{did}: listRecords answered {status} {error or ''}".strip())
            page = _json_object(body)
            items = page.get("records")
            if not isinstance(items, list):
                raise RepoUnavailable(f"{did}: listRecords answered without a records list")
            for item in items:
                record = _record(did, collection, item)
                if record is not None:
                    records.append(record)
            if len(records) > self._max_records:
                raise RepoUnavailable(f"{did}: more than {self._max_records} {collection} records")
            next_cursor = page.get("cursor")
            if not items or not isinstance(next_cursor, str) or next_cursor == cursor:
                return records
            cursor = next_cursor

    def snapshot(self, did: str) -> RepoSnapshot:
        """The repo's offers and follows, with the rev read before listing them (a lower bound)."""
        pds = self.pds_endpoint(did)
        status = self.status(did, pds)
        if not status.active:
            return RepoSnapshot(did, status.rev, False, status.status, offers=None, follows=None)
        offers = self.list_records(did, OFFER_NSID, pds)
        follows = self.list_records(did, FOLLOW_NSID, pds)
        return RepoSnapshot(did, status.rev, True, status.status, offers=offers, follows=follows)

    # ------------------------------------------------------------ HTTP

    def _xrpc(self, pds: str, nsid: str, params: dict[str, str]) -> tuple[int, bytes]:
        return self._get(f"{pds}/xrpc/{nsid}", params, MAX_PAGE_BYTES, what=nsid)

    def _get(self, url: str, params: dict[str, str], limit: int, *, what: str) -> tuple[int, bytes]:
        try:
            with self._http.stream("GET", url, params=params) as resp:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise RepoUnavailable(f"{what}: answer larger than {limit} bytes")
                    chunks.append(chunk)
                return resp.status_code, b"".join(chunks)
        except httpx.HTTPError as exc:
            where = urlsplit(url).netloc
            raise RepoUnavailable(f"{what}: {where} unreachable ({type(exc).__name__})") from exc


def reader_from_settings(settings: Settings) -> RepoReader:
    return RepoReader(
        plc_url=settings.plc_url, dev_mode=settings.dev_mode, timeout=settings.repo_fetch_timeout_seconds
    )


class RepoRefresher:
    """Reads a repo and brings the index in line with it; the one way every caller re-fetches a repo."""

    def __init__(self, engine: Engine, reader: RepoReader, *, attempts: int = 3) -> None:
        self._engine = engine
        self.reader = reader
        self._attempts = attempts

    def refresh(self, did: str) -> SnapshotOutcome:
        """Fetch and apply; RepoUnavailable (recorded on the repo's row) when the PDS cannot answer.

        A snapshot older than commits the firehose applied meanwhile is read again, a few times.
        """
        try:
            for _ in range(self._attempts):
                outcome = index_store.apply_snapshot(self._engine, self.reader.snapshot(did))
                if outcome.applied:
                    return outcome
            return outcome
        except RepoGone as exc:
            log.info("repo %s is gone: %s", did, exc)
            index_store.mark_repo_gone(self._engine, did, str(exc))
            return SnapshotOutcome(applied=True)
        except RepoUnavailable as exc:
            index_store.mark_repo_error(self._engine, did, str(exc))
            raise


def _record(did: str, collection: str, item: Any) -> RepoRecord | None:
    if not isinstance(item, dict):
        return None
    uri, cid, value = item.get("uri"), item.get("cid"), item.get("value")
    prefix = f"at://{did}/{collection}/"
    if not isinstance(uri, str) or not uri.startswith(prefix) or "/" in uri[len(prefix) :]:
        return None  # a PDS answering with another repo's records is not believed
    if not isinstance(cid, str):
        return None
    return RepoRecord(uri=uri, cid=cid, value=value)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise RepoUnavailable("the PDS answered with something that is not JSON") from exc
    if not isinstance(value, dict):
        raise RepoUnavailable("the PDS answered with JSON that is not an object")
    return value


def _xrpc_error(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    error = value.get("error") if isinstance(value, dict) else None
    return error if isinstance(error, str) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
