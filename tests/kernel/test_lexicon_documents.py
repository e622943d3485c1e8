"""The lexicon files are well-formed Lexicon v1 and say what DESIGN.md §3 says."""

import json
from typing import Any

import pytest

from kernel.lexicon.catalog import lexicon_dir, lexicon_documents, resolve_ref

METHODS = {
    "com.huddle.listOffers": "query",
    "com.huddle.match": "procedure",
    "com.huddle.finalize": "procedure",
    "com.huddle.respond": "procedure",
    "com.huddle.cancel": "procedure",
    "com.huddle.reschedule": "procedure",
    "com.huddle.getBooking": "query",
    "com.huddle.listBookings": "query",
}
# A host's calendar connectors (api/routes/connectors.py).
CONNECTOR_METHODS = {
    "com.huddle.connector.list": "query",
    "com.huddle.connector.startOAuth": "procedure",
    "com.huddle.connector.connectCaldav": "procedure",
    "com.huddle.connector.listCalendars": "query",
    "com.huddle.connector.update": "procedure",
    "com.huddle.connector.delete": "procedure",
}
FIELD_TYPES = {
    "string",
    "integer",
    "boolean",
    "array",
    "object",
    "ref",
    "union",
    "unknown",
    "blob",
    "bytes",
    "cid-link",
}


def test_every_document_is_present_and_named_like_its_file() -> None:
    docs = lexicon_documents()
    assert set(docs) == {
        "com.huddle.slotOffer",
        "com.huddle.defs",
        "com.huddle.connector.defs",
        *METHODS,
        *CONNECTOR_METHODS,
    }
    for path in lexicon_dir().rglob("*.json"):
        doc = json.loads(path.read_text())
        assert doc["lexicon"] == 1
        assert path.stem == doc["id"].rsplit(".", 1)[1]


def walk(schema: dict[str, Any], nsid: str, where: str) -> None:
    """Every nested schema has a known type and every reference resolves."""
    kind = schema["type"]
    assert kind in FIELD_TYPES | {"params"}, where
    if kind == "ref":
        resolve_ref(schema["ref"], nsid)
    if kind == "union":
        for ref in schema["refs"]:
            resolve_ref(ref, nsid)
    if kind == "array":
        walk(schema["items"], nsid, f"{where}[]")
    if kind in ("object", "params"):
        for name in schema.get("required", []):
            assert name in schema["properties"], f"{where}: required {name} is not a property"
        for name, prop in schema.get("properties", {}).items():
            walk(prop, nsid, f"{where}.{name}")
    if kind == "string" and "default" in schema and "knownValues" in schema:
        assert schema["default"] in schema["knownValues"], where


@pytest.mark.parametrize("nsid", sorted(lexicon_documents()))
def test_schemas_are_consistent(nsid: str) -> None:
    doc = lexicon_documents()[nsid]
    for name, definition in doc["defs"].items():
        where = f"{nsid}#{name}"
        kind = definition["type"]
        if kind == "record":
            assert name == "main" and definition["key"] == "tid"
            walk(definition["record"], nsid, where)
        elif kind in ("query", "procedure"):
            assert name == "main"
            if "parameters" in definition:
                walk(definition["parameters"], nsid, where)
            for part in ("input", "output"):
                if part in definition:
                    assert definition[part]["encoding"] == "application/json"
                    walk(definition[part]["schema"], nsid, f"{where}/{part}")
            for error in definition.get("errors", []):
                assert error["name"].isidentifier()
        else:
            walk(definition, nsid, where)


def test_methods_have_the_right_kind_and_shapes() -> None:
    docs = lexicon_documents()
    for nsid, kind in {**METHODS, **CONNECTOR_METHODS}.items():
        main = docs[nsid]["defs"]["main"]
        assert main["type"] == kind
        assert main["output"]["encoding"] == "application/json"
    match = docs["com.huddle.match"]["defs"]["main"]["input"]["schema"]
    assert set(match["properties"]) == {
        "host",
        "offer",
        "durationMinutes",
        "earliest",
        "latest",
        "preferences",
        "note",
        "guestEmail",
        "idempotencyKey",
    }
    assert match["properties"]["note"]["maxGraphemes"] == 1000
    assert match["properties"]["guestEmail"]["maxLength"] == 254
    assert match["properties"]["idempotencyKey"]["maxLength"] == 128
    booking = docs["com.huddle.defs"]["defs"]["bookingView"]
    assert set(booking["properties"]) == {
        "id",
        "state",
        "host",
        "guest",
        "offer",
        "start",
        "end",
        "durationMinutes",
        "holdExpiresAt",
        "awaiting",
        "reason",
        "explanation",
        "createdAt",
        "updatedAt",
    }
    assert booking["properties"]["state"]["knownValues"] == [
        "pending",
        "held",
        "confirmed",
        "denied",
        "unavailable",
        "expired",
        "declined",
        "cancelled",
    ]
    params = docs["com.huddle.getBooking"]["defs"]["main"]["parameters"]
    assert params["required"] == ["booking"]


def test_slot_offer_fields_follow_the_design_table() -> None:
    record = lexicon_documents()["com.huddle.slotOffer"]["defs"]["main"]["record"]
    props = record["properties"]
    assert record["required"] == ["title", "timezone", "windows", "durations", "createdAt"]
    assert props["title"]["maxGraphemes"] == 100
    assert props["description"]["maxGraphemes"] == 1000
    assert (props["windows"]["minLength"], props["windows"]["maxLength"]) == (1, 50)
    assert (props["durations"]["minLength"], props["durations"]["maxLength"]) == (1, 8)
    assert (props["durations"]["items"]["minimum"], props["durations"]["items"]["maximum"]) == (5, 480)
    assert (
        props["slotStepMinutes"]["minimum"],
        props["slotStepMinutes"]["maximum"],
        props["slotStepMinutes"]["default"],
    ) == (5, 120, 15)
    for buffer in ("bufferBeforeMinutes", "bufferAfterMinutes"):
        assert (props[buffer]["minimum"], props[buffer]["maximum"]) == (0, 240)
    assert props["minNoticeMinutes"]["default"] == 120
    assert (
        props["horizonDays"]["minimum"],
        props["horizonDays"]["maximum"],
        props["horizonDays"]["default"],
    ) == (1, 365, 60)
    assert (
        props["holdMinutes"]["minimum"],
        props["holdMinutes"]["maximum"],
        props["holdMinutes"]["default"],
    ) == (1, 1440, 15)
    assert props["policy"]["knownValues"] == ["anyone", "followers", "mutuals"]
    assert props["policy"]["default"] == "anyone"
    assert props["requiresApproval"]["default"] is False
    for moment in ("validFrom", "validUntil", "createdAt"):
        assert props[moment]["format"] == "datetime"


def test_the_two_window_defs_have_the_same_shape() -> None:
    # Records stay self-contained (#window) while XRPC preferences share defs#window;
    # the Python Window type serves both, so their shapes must not drift apart.
    docs = lexicon_documents()

    def shape(definition: dict[str, Any]) -> Any:
        return {
            k: {kk: vv for kk, vv in v.items() if kk != "description"}
            for k, v in definition["properties"].items()
        }

    offer_window = docs["com.huddle.slotOffer"]["defs"]["window"]
    shared_window = docs["com.huddle.defs"]["defs"]["window"]
    assert shape(offer_window) == shape(shared_window)
    assert offer_window["required"] == shared_window["required"]
