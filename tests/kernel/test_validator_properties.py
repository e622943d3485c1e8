"""Whatever arrives from the network, validation answers with LexiconValidationError or a value."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kernel.lexicon.errors import LexiconValidationError
from kernel.lexicon.match_input import MatchInput
from kernel.lexicon.preferences import Preferences
from kernel.lexicon.slot_offer import SlotOffer
from kernel.lexicon.validator import validate_input, validate_params, validate_record
from tests.kernel.factories import offer_record

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-16", categories=["Cs", "Lu"]), max_size=5),  # lone surrogates
    st.sampled_from(
        ["09:00", "24:00", "25:61", "mon", "funday", "Europe/Paris", "2026-12-01", "2026-12-01T09:00:00Z"]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

FIELDS = [
    "title",
    "description",
    "timezone",
    "windows",
    "dateOverrides",
    "durations",
    "slotStepMinutes",
    "bufferBeforeMinutes",
    "minNoticeMinutes",
    "horizonDays",
    "maxPerDay",
    "policy",
    "requiresApproval",
    "holdMinutes",
    "validFrom",
    "validUntil",
    "createdAt",
]


def rich_record() -> dict[str, Any]:
    return offer_record(
        timezone="America/New_York",
        description="Ask me anything",
        windows=[
            {"days": ["mon", "wed"], "start": "09:00", "end": "12:00"},
            {"days": ["fri"], "start": "13:00", "end": "24:00"},
        ],
        dateOverrides=[
            {"date": "2026-12-24", "windows": []},
            {"date": "2026-12-26", "windows": [{"start": "10:00", "end": "11:00"}]},
        ],
        maxPerDay=3,
        validFrom="2026-12-01T00:00:00Z",
        validUntil="2027-06-01T00:00:00Z",
    )


def set_path(value: Any, path: list[Any], new: Any) -> Any:
    """A copy of ``value`` with the element at ``path`` replaced (or deleted when new is ...)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and head in value:
        copy = dict(value)
        if new is ... and not rest:
            del copy[head]
        else:
            copy[head] = set_path(value[head], rest, new)
        return copy
    if isinstance(value, list) and isinstance(head, int) and -len(value) <= head < len(value):
        copy_list = list(value)
        copy_list[head] = set_path(value[head], rest, new)
        return copy_list
    return value


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += paths(child, (*prefix, i))
    return found


def only_validation_errors(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except LexiconValidationError as error:
        assert isinstance(error.path, str) and str(error)


@given(json_values)
def test_random_values_as_a_record(value: Any) -> None:
    only_validation_errors(validate_record, "com.huddle.slotOffer", value)
    only_validation_errors(SlotOffer.from_record, value)


@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_random_fields_over_a_valid_record(fields: dict[str, Any]) -> None:
    only_validation_errors(SlotOffer.from_record, {**rich_record(), **fields})


@given(st.data())
def test_mutated_valid_records(data: st.DataObject) -> None:
    record = rich_record()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(record)))
        replacement = data.draw(st.one_of(st.just(...), json_values))
        record = set_path(record, list(path), replacement)
    only_validation_errors(SlotOffer.from_record, record)


@given(json_values)
def test_random_match_bodies(value: Any) -> None:
    only_validation_errors(validate_input, "com.huddle.match", value)
    only_validation_errors(MatchInput.from_input, value)
    only_validation_errors(Preferences.from_json, value)


@given(
    st.dictionaries(
        st.sampled_from(["host", "offer", "durationMinutes", "earliest", "latest", "preferences", "note"]),
        json_values,
    )
)
def test_random_fields_over_a_valid_match_body(fields: dict[str, Any]) -> None:
    body = {
        "host": "did:plc:abc",
        "durationMinutes": 30,
        "preferences": {"timezone": "Asia/Kathmandu", "windows": []},
    }
    only_validation_errors(MatchInput.from_input, {**body, **fields})


@given(
    st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(["role", "state", "limit", "cursor"]),
            st.one_of(st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3)),
        ),
    )
)
def test_random_params(params: Any) -> None:
    only_validation_errors(validate_params, "com.huddle.listBookings", params)


@given(st.data())
def test_generated_valid_offers_round_trip(data: st.DataObject) -> None:
    times = st.integers(0, 47).map(lambda half_hours: f"{half_hours // 2:02d}:{half_hours % 2 * 30:02d}")
    start = data.draw(times)
    end = data.draw(st.sampled_from([t for t in (f"{h:02d}:00" for h in range(1, 25)) if t > start]))
    record = offer_record(
        windows=[
            {
                "days": data.draw(st.lists(st.sampled_from(["mon", "tue", "sun"]), min_size=1, max_size=3)),
                "start": start,
                "end": end,
            }
        ],
        durations=data.draw(st.lists(st.integers(5, 480), min_size=1, max_size=8)),
        slotStepMinutes=data.draw(st.integers(5, 120)),
        maxPerDay=data.draw(st.none() | st.integers(1, 288)),
        policy=data.draw(st.sampled_from(["anyone", "followers", "mutuals", "somethingNew"])),
    )
    offer = SlotOffer.from_record(record)
    assert SlotOffer.from_record(offer.to_record()) == offer
