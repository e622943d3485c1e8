"""A guest's soft wishes for a slot (``com.huddle.defs#preferences``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kernel.lexicon.errors import join_path
from kernel.lexicon.slot_offer import Window
from kernel.lexicon.time_rules import check_time_range, check_zone
from kernel.lexicon.validator import validate_def

Prefer = Literal["earliest", "balanced"]


@dataclass(frozen=True, slots=True)
class Preferences:
    """Preferred weekly hours in ``timezone`` (the offer's zone when None) and how to rank slots."""

    timezone: str | None = None
    windows: tuple[Window, ...] = ()
    prefer: Prefer = "earliest"

    @classmethod
    def from_json(cls, value: object, path: str = "preferences") -> Preferences:
        """Validate and convert; error paths start with ``path``."""
        checked = validate_def("com.huddle.defs#preferences", value, path)
        return cls.from_checked(checked, path)

    @classmethod
    def from_checked(cls, value: Mapping[str, Any], path: str = "preferences") -> Preferences:
        """Convert a value that already passed the schema, checking what the schema cannot."""
        if "timezone" in value:
            check_zone(value["timezone"], join_path(path, "timezone"))
        windows = value.get("windows", ())
        for i, window in enumerate(windows):
            check_time_range(window, join_path(path, f"windows[{i}]"))
        return cls(
            timezone=value.get("timezone"),
            windows=tuple(Window.from_json(w) for w in windows),
            prefer=value.get("prefer", "earliest"),
        )

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"windows": [w.to_json() for w in self.windows], "prefer": self.prefer}
        if self.timezone is not None:
            value["timezone"] = self.timezone
        return value
