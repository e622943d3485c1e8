"""Capped exponential backoff with jitter, for reconnecting to a relay without a thundering herd."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """`next()` gives delays growing by `factor` up to `maximum`, each jittered into [d/2, d]."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        factor: float = 2.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._rand = rand
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        # "Equal jitter": never less than half the step, so a flapping relay is not hammered.
        return ceiling / 2 + self._rand() * ceiling / 2

    def reset(self) -> None:
        self.attempt = 0
