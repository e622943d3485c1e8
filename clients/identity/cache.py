"""A bounded, per-process TTL cache: an optimisation only, never a guard for correctness."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class CacheEntry(Generic[V]):
    value: V
    stored_at: float


class TtlCache(Generic[K, V]):
    """Least-recently-used eviction past `max_entries`; entries older than `ttl` seconds are stale.

    Stale entries are kept (until evicted) so a resolver may fall back on them when the
    directory is down; `get` never returns them.
    """

    def __init__(self, ttl: float, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, CacheEntry[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def age(self, entry: CacheEntry[V]) -> float:
        return self._clock() - entry.stored_at

    def entry(self, key: K) -> CacheEntry[V] | None:
        """The entry for `key`, fresh or stale."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def get(self, key: K) -> V | None:
        """The value for `key` if it is fresh."""
        found = self.entry(key)
        if found is None or self.age(found) >= self.ttl:
            return None
        return found.value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = CacheEntry(value, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)
