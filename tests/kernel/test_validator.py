from typing import Any

import pytest

from kernel.lexicon import catalog
from kernel.lexicon.errors import LexiconValidationError
from kernel.lexicon.validator import (
    grapheme_count,
    validate_def,
    validate_input,
    validate_output,
    validate_params,
    validate_record,
)
from tests.kernel.factories import offer_record

OFFER = "com.huddle.slotOffer"


def error_of(call: Any, *args: Any) -> LexiconValidationError:
    with pytest.raises(LexiconValidationError) as caught:
        call(*args)
    return caught.value


def test_a_valid_record_gets_its_defaults() -> None:
    value = validate_record(OFFER, offer_record())
    assert value["slotStepMinutes"] == 15
    assert value["horizonDays"] == 60
    assert value["holdMinutes"] == 15
    assert value["policy"] == "anyone"
    assert value["requiresApproval"] is False
    assert value["bufferBeforeMinutes"] == value["bufferAfterMinutes"] == 0
    assert "maxPerDay" not in value


def test_input_is_not_modified() -> None:
    record = offer_record()
    before = repr(record)
    validate_record(OFFER, record)
    assert repr(record) == before


def test_unknown_fields_are_tolerated_and_kept() -> None:
    value = validate_record(OFFER, offer_record(futureField={"x": 1}))
    assert value["futureField"] == {"x": 1}
    nested = offer_record(windows=[{"days": ["mon"], "start": "09:00", "end": "10:00", "tz": "later"}])
    assert validate_record(OFFER, nested)["windows"][0]["tz"] == "later"


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"title": None}, "title", "required"),
        ({"title": 5}, "title", "string"),
        ({"title": "é" * 101}, "title", "at most 100 characters"),
        ({"windows": []}, "windows", "at least 1 items"),
        ({"windows": [{"days": ["mon"], "start": "09:00", "end": "10:00"}] * 51}, "windows", "at most 50"),
        (
            {
                "windows": [
                    {"days": ["mon"], "start": "09:00", "end": "10:00"},
                    {"days": ["funday"], "start": "09:00", "end": "10:00"},
                ]
            },
            "windows[1].days[0]",
            "one of",
        ),
        ({"windows": [{"days": ["mon"], "start": "09:00"}]}, "windows[0].end", "required"),
        ({"windows": [{"days": ["mon"], "start": 900, "end": "10:00"}]}, "windows[0].start", "string"),
        ({"durations": [30, 500]}, "durations[1]", "at most 480"),
        ({"durations": [30, True]}, "durations[1]", "integer"),
        ({"durations": [30.0]}, "durations[0]", "integer"),
        ({"durations": list(range(5, 50, 5))}, "durations", "at most 8"),
        ({"slotStepMinutes": 4}, "slotStepMinutes", "at least 5"),
        ({"holdMinutes": 1441}, "holdMinutes", "at most 1440"),
        ({"horizonDays": 0}, "horizonDays", "at least 1"),
        ({"bufferAfterMinutes": 241}, "bufferAfterMinutes", "at most 240"),
        ({"requiresApproval": "yes"}, "requiresApproval", "boolean"),
        ({"createdAt": "2026-11-25"}, "createdAt", "datetime"),
        ({"createdAt": "2026-11-25T10:00:00"}, "createdAt", "datetime"),
        ({"validFrom": "2026-02-30T10:00:00Z"}, "validFrom", "datetime"),
        (
            {"dateOverrides": [{"date": "2026-12-24", "windows": [{"start": "09:00"}]}]},
            "dateOverrides[0].windows[0].end",
            "required",
        ),
        ({"dateOverrides": None}, "", ""),  # None means "leave out" in offer_record
    ],
)
def test_errors_name_the_field(changes: dict[str, Any], path: str, words: str) -> None:
    record = offer_record(**changes)
    if not path:
        validate_record(OFFER, record)
        return
    error = error_of(validate_record, OFFER, record)
    assert error.path == path
    assert words in error.message
    assert str(error).startswith(f"{path}: ")


def test_null_is_not_absent() -> None:
    record = offer_record()
    record["description"] = None
    assert error_of(validate_record, OFFER, record).path == "description"


def test_wrong_or_unknown_type() -> None:
    assert error_of(validate_record, OFFER, {**offer_record(), "$type": "app.bsky.feed.post"}).path == "$type"
    assert error_of(validate_record, "com.example.nothing", offer_record()).path == "$type"
    assert error_of(validate_record, OFFER, ["not", "an", "object"]).path == ""
    with pytest.raises(TypeError):
        validate_record("com.huddle.match", {})  # a procedure, not a record: a programming error


def test_lengths_count_utf8_bytes_and_graphemes_separately() -> None:
    family = "👨‍👩‍👧‍👦"  # one grapheme, seven code points, 25 bytes
    assert grapheme_count(family * 3) == 3
    validate_record(OFFER, offer_record(title=family * 40))  # 40 graphemes, 1000 bytes
    error = error_of(validate_record, OFFER, offer_record(title=family * 41))
    assert (error.path, "bytes" in error.message) == ("title", True)
    assert error_of(validate_record, OFFER, offer_record(title="")).path == "title"  # minLength 1


def test_lone_surrogates_are_not_text() -> None:
    error = error_of(validate_record, OFFER, offer_record(title="bad \ud800"))
    assert (error.path, error.message) == ("title", "must be valid Unicode text")


def test_known_values_are_open() -> None:
    # A newer client may publish a policy we do not know; kernel.matching.policy treats it as mutuals.
    assert validate_record(OFFER, offer_record(policy="friendsOfFriends"))["policy"] == "friendsOfFriends"


MATCH = "com.huddle.match"


def match_body(**fields: Any) -> dict[str, Any]:
    return {"host": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "durationMinutes": 30, **fields}


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"host": "not a handle"}, "host"),
        ({"offer": "https://example.com/x"}, "offer"),
        ({"offer": "at://did:plc:abc/not-an-nsid/3l4k"}, "offer"),
        ({"earliest": "tomorrow"}, "earliest"),
        ({"note": "x" * 1001}, "note"),
        ({"guestEmail": "a" * 245 + "@example.com"}, "guestEmail"),
        ({"idempotencyKey": "k" * 129}, "idempotencyKey"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"preferences": {"prefer": "latest"}}, "preferences.prefer"),
        ({"preferences": {"windows": [{"days": ["mon"], "start": "09:00"}]}}, "preferences.windows[0].end"),
        ({"preferences": []}, "preferences"),
    ],
)
def test_match_input_errors(fields: dict[str, Any], path: str) -> None:
    assert error_of(validate_input, MATCH, match_body(**fields)).path == path


def test_match_input_accepts_handles_and_applies_nested_defaults() -> None:
    value = validate_input(
        MATCH, match_body(host="alice.example.com", preferences={"timezone": "Europe/Paris"})
    )
    assert value["preferences"]["prefer"] == "earliest"
    assert value["host"] == "alice.example.com"
    assert error_of(validate_input, MATCH, None).path == ""
    assert error_of(validate_input, MATCH, {"host": "alice.example.com"}).path == "durationMinutes"


def test_note_counts_graphemes() -> None:
    validate_input(MATCH, match_body(note="é" * 1000))  # 1000 graphemes, 2000 bytes
    validate_input(MATCH, match_body(note="e\u0301" * 1000))  # combining accents: still 1000
    assert error_of(validate_input, MATCH, match_body(note="e\u0301" * 1001)).path == "note"


def test_params_are_typed_from_text() -> None:
    assert validate_params("com.huddle.listBookings", {"role": "host", "limit": "20", "other": "x"}) == {
        "role": "host",
        "limit": 20,
    }
    assert validate_params("com.huddle.listOffers", {}) == {"limit": 50}
    assert validate_params("com.huddle.listOffers", {"limit": ["7"]})["limit"] == 7


@pytest.mark.parametrize(
    ("params", "path", "words"),
    [
        ({}, "role", "required"),
        ({"role": "admin"}, "role", "one of"),
        ({"role": "host", "limit": "ten"}, "limit", "integer"),
        ({"role": "host", "limit": "1e3"}, "limit", "integer"),
        ({"role": "host", "limit": "٣"}, "limit", "integer"),
        ({"role": "host", "limit": "9" * 5000}, "limit", "integer"),
        ({"role": "host", "limit": "0"}, "limit", "at least 1"),
        ({"role": "host", "limit": "101"}, "limit", "at most 100"),
        ({"role": ["host", "guest"]}, "role", "once"),
        ({"role": 5}, "role", "text"),
    ],
)
def test_param_errors(params: dict[str, Any], path: str, words: str) -> None:
    error = error_of(validate_params, "com.huddle.listBookings", params)
    assert error.path == path and words in error.message


def test_params_must_be_a_mapping() -> None:
    assert error_of(validate_params, "com.huddle.listOffers", ["limit"]).path == ""


def test_outputs_validate_views() -> None:
    view = {
        "id": "bk1",
        "state": "held",
        "host": "did:plc:host",
        "guest": "did:plc:guest",
        "offer": "at://did:plc:host/com.huddle.slotOffer/3l4k5j6h7g2aa",
        "start": "2026-12-01T09:00:00.000Z",
        "end": "2026-12-01T09:30:00.000Z",
        "durationMinutes": 30,
        "holdExpiresAt": "2026-11-25T10:15:00.000Z",
        "awaiting": ["guest"],
        "createdAt": "2026-11-25T10:00:00.000Z",
        "updatedAt": "2026-11-25T10:00:00.000Z",
    }
    assert validate_output("com.huddle.getBooking", view)["state"] == "held"
    assert validate_output("com.huddle.listBookings", {"bookings": [view]})["bookings"][0]["id"] == "bk1"
    assert (
        error_of(validate_output, "com.huddle.listBookings", {"bookings": [{**view, "guest": "bob"}]}).path
        == "bookings[0].guest"
    )


@pytest.mark.parametrize(
    ("fmt_field", "good", "bad"),
    [
        (
            "host",
            ["did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:huddle.example", "alice.bsky.social"],
            ["did:PLC:x", "did:plc:", "alice", "-a.com", "did:plc:x#frag"],
        ),
        (
            "offer",
            [
                "at://did:plc:abc/com.huddle.slotOffer/3l4k5j6h7g2aa",
                "at://alice.example.com",
                "at://alice.example.com/com.huddle.slotOffer",
            ],
            [
                "at://did:plc:abc/com.huddle.slotOffer/..",
                "at://",
                "at://did:plc:abc/x/y/z",
                "at://did:plc:abc/com.huddle.slotOffer/a b",
            ],
        ),
        (
            "earliest",
            ["2026-12-01T09:00:00Z", "2026-12-01T09:00:00.123456789+05:45", "2026-12-01T09:00:00-03:00"],
            [
                "2026-12-01T09:00:00",
                "2026-12-01 09:00:00Z",
                "2026-12-01T09:00:00-00:00",
                "2026-12-01t09:00:00z",
                "9999-12-31T23:59:59-12:00",
                "2026-12-01T09:00Z",
            ],
        ),
    ],
)
def test_string_formats(fmt_field: str, good: list[str], bad: list[str]) -> None:
    for value in good:
        validate_input(MATCH, match_body(**{fmt_field: value}))
    for value in bad:
        assert error_of(validate_input, MATCH, match_body(**{fmt_field: value})).path == fmt_field, value


def test_other_formats() -> None:
    from kernel.lexicon.formats import is_cid, is_language, is_nsid, is_record_key, is_tid, is_uri

    assert is_tid("3l4k5j6h7g2aa") and not is_tid("3l4k5j6h7g2a") and not is_tid("kl4k5j6h7g2aa")
    assert is_record_key("self") and not is_record_key("..") and not is_record_key("a/b")
    assert is_nsid("com.huddle.slotOffer") and not is_nsid("com.huddle") and not is_nsid("com.huddle.1x")
    assert is_uri("https://example.com/x?y") and not is_uri("example.com") and not is_uri("https://a b")
    assert is_language("en") and is_language("pt-BR") and not is_language("english!")
    assert is_cid("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm") and not is_cid("short")


def test_unions_open_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = dict(catalog.lexicon_documents())
    docs["com.example.box"] = {
        "lexicon": 1,
        "id": "com.example.box",
        "defs": {
            "main": {
                "type": "object",
                "properties": {
                    "open": {"type": "union", "refs": ["#a", "com.huddle.defs#window"]},
                    "shut": {"type": "union", "refs": ["#a"], "closed": True},
                    "blob": {"type": "unknown"},
                },
            },
            "a": {
                "type": "object",
                "required": ["n"],
                "properties": {"n": {"type": "integer", "default": 1}},
            },
        },
    }
    monkeypatch.setattr(catalog, "lexicon_documents", lambda: docs)
    ref = "com.example.box"
    assert validate_def(ref, {"open": {"$type": "com.example.box#a", "n": 2}})["open"]["n"] == 2
    window = {"$type": "com.huddle.defs#window", "days": ["mon"], "start": "09:00", "end": "10:00"}
    assert validate_def(ref, {"open": window})["open"] == window
    assert validate_def(ref, {"open": {"$type": "com.example.other", "x": 1}})["open"]["x"] == 1
    assert error_of(validate_def, ref, {"open": {"$type": "com.huddle.defs#window"}}).path == "open.days"
    assert error_of(validate_def, ref, {"open": {"n": 1}}).path == "open.$type"
    assert error_of(validate_def, ref, {"shut": {"$type": "com.example.other"}}).path == "shut.$type"
    assert error_of(validate_def, ref, {"blob": "text"}).path == "blob"
    assert validate_def(ref, {"blob": {"anything": [1, 2]}})["blob"] == {"anything": [1, 2]}


def test_error_survives_pickling() -> None:
    import pickle

    error = LexiconValidationError("windows[2].start", "must be a time")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.message, str(copy)) == (
        error.path,
        error.message,
        "windows[2].start: must be a time",
    )
