"""`com.huddle.listOffers`: the indexed offers, public, no auth."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select

from api.auth import Identity, XrpcError
from api.deps import SessionDep
from api.xrpc.inputs import decode_cursor, encode_cursor, parse_cursor_time, query_params
from clients.identity.errors import IdentityError
from kernel.lexicon import OfferView
from models.tables import OfferIndex, User

router = APIRouter(tags=["xrpc"])
NSID = "com.huddle.listOffers"


@router.get(f"/xrpc/{NSID}")
async def list_offers(
    session: SessionDep, identity: Identity, params: dict[str, Any] = Depends(query_params(NSID))
) -> dict[str, Any]:
    """The offers Huddle knows from the network, newest first; one host's when `host` is given."""
    host = None
    if "host" in params:
        try:
            host = await identity.resolve_actor(params["host"])
        except IdentityError as exc:
            raise XrpcError(400, "HostNotFound", f"host: {exc}") from exc
    return await run_in_threadpool(_page, session, params, host)


def _page(session: Session, params: dict[str, Any], host: str | None) -> dict[str, Any]:
    query = select(OfferIndex, User.handle).join(User, col(User.did) == OfferIndex.did, isouter=True)
    query = query.where(col(OfferIndex.deleted).is_(False), col(User.active).is_not(False))
    if host is not None:
        query = query.where(OfferIndex.did == host)
    after = decode_cursor(params.get("cursor"), 2)
    if after is not None:
        indexed_at, uri = parse_cursor_time(after[0]), after[1]
        query = query.where(
            (col(OfferIndex.indexed_at) < indexed_at)
            | ((col(OfferIndex.indexed_at) == indexed_at) & (col(OfferIndex.uri) < uri))
        )
    limit = params["limit"]
    rows = session.exec(
        query.order_by(col(OfferIndex.indexed_at).desc(), col(OfferIndex.uri).desc()).limit(limit + 1)
    ).all()
    offers = [
        OfferView(
            uri=o.uri, cid=o.cid, host=o.did, indexed_at=o.indexed_at, record=o.record, handle=handle
        ).to_json()
        for o, handle in rows[:limit]
    ]
    out: dict[str, Any] = {"offers": offers}
    if len(rows) > limit:
        last = rows[limit - 1][0]
        out["cursor"] = encode_cursor(_ts(last), last.uri)
    return out


def _ts(row: OfferIndex) -> str:
    # The cursor compares against the stored column, so it carries the stored (UTC) value.
    return row.indexed_at.isoformat()
