"""Reading a host's offers from the index, and writing the host's own edits into it at once.

The firehose echoes every write a few moments later; writing the index here first means the host
(and their guests) see the change now. `rev` orders the two: an older write never replaces a newer
one, and the echo of this same write only records its rev (the cid is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from kernel.lexicon import LexiconValidationError, SlotOffer
from models.db import serialized_write
from models.tables import OfferIndex, User
from models.types import utcnow

OFFER_NSID = "com.huddle.slotOffer"


@dataclass(frozen=True)
class HostOffer:
    uri: str
    rkey: str
    cid: str
    offer: SlotOffer
    record: dict[str, Any]


def host_offers(engine: Engine, did: str) -> list[HostOffer]:
    """The host's bookable offers, oldest first (records that no longer validate are left out)."""
    with Session(engine) as session:
        rows = session.exec(
            select(OfferIndex)
            .where(OfferIndex.did == did, col(OfferIndex.deleted).is_(False))
            .order_by(col(OfferIndex.record_created_at), col(OfferIndex.uri))
        ).all()
    offers = []
    for row in rows:
        try:
            offers.append(
                HostOffer(row.uri, row.rkey, row.cid, SlotOffer.from_record(row.record), row.record)
            )
        except LexiconValidationError:
            continue
    return offers


def find_offer(engine: Engine, did: str, rkey: str) -> HostOffer | None:
    return next((o for o in host_offers(engine, did) if o.rkey == rkey), None)


def index_written_offer(
    engine: Engine,
    *,
    did: str,
    rkey: str,
    cid: str,
    rev: str | None,
    record: dict[str, Any],
    handle: str | None,
) -> None:
    """Put the host's just-written offer in the index, unless a newer revision is there already."""
    offer = SlotOffer.from_record(record)
    uri = f"at://{did}/{OFFER_NSID}/{rkey}"
    with serialized_write(engine) as session:
        if session.get(User, did) is None:
            session.add(User(did=did, handle=handle))
        row = session.exec(select(OfferIndex).where(OfferIndex.uri == uri).with_for_update()).first()
        if row is not None and row.rev is not None and rev is not None and row.rev >= rev:
            return
        values: dict[str, Any] = {
            "did": did,
            "rkey": rkey,
            "cid": cid,
            "rev": rev,
            "record": record,
            "title": offer.title,
            "timezone": offer.timezone,
            "policy": offer.policy,
            "requires_approval": offer.requires_approval,
            "record_created_at": offer.created_at,
            "indexed_at": utcnow(),
            "deleted": False,
        }
        if row is None:
            session.add(OfferIndex(uri=uri, **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
            session.add(row)


def tombstone_offer(engine: Engine, *, did: str, rkey: str, rev: str | None) -> None:
    uri = f"at://{did}/{OFFER_NSID}/{rkey}"
    with serialized_write(engine) as session:
        row = session.exec(select(OfferIndex).where(OfferIndex.uri == uri).with_for_update()).first()
        if row is None or (row.rev is not None and rev is not None and row.rev >= rev):
            return
        row.deleted = True
        row.rev = rev
        session.add(row)
