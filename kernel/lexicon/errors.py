"""The one error type lexicon validation raises."""

from __future__ import annotations


class LexiconValidationError(ValueError):
    """A value does not match its lexicon; ``path`` names the field, e.g. ``windows[2].start``."""

    def __init__(self, path: str, message: str) -> None:
        # Both go into args so the error survives pickling (process pools, Temporal failures).
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def join_path(base: str, key: str) -> str:
    """``base.key``, or just ``key`` at the top level."""
    return f"{base}.{key}" if base else key
