"""Lexicon types and validation for ``com.huddle.*`` (see lexicons/com/huddle)."""

from kernel.lexicon.errors import LexiconValidationError
from kernel.lexicon.formats import format_datetime, parse_datetime
from kernel.lexicon.match_input import MatchInput
from kernel.lexicon.preferences import Preferences
from kernel.lexicon.slot_offer import DateOverride, SlotOffer, TimeRange, Window
from kernel.lexicon.validator import (
    validate_def,
    validate_input,
    validate_output,
    validate_params,
    validate_record,
)
from kernel.lexicon.views import BOOKING_STATES, BookingView, OfferView

__all__ = [
    "BOOKING_STATES",
    "BookingView",
    "DateOverride",
    "LexiconValidationError",
    "MatchInput",
    "OfferView",
    "Preferences",
    "SlotOffer",
    "TimeRange",
    "Window",
    "format_datetime",
    "parse_datetime",
    "validate_def",
    "validate_input",
    "validate_output",
    "validate_params",
    "validate_record",
]
