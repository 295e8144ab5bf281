"""Small in-process TTL caches for read-mostly data (app actors, form schemas, directory entries).

What they hold changes only through ``zida load`` (another process), so each entry lives
``ZIDA_CACHE_SECONDS`` (default 5 s): a reloaded bundle is seen by every worker within that time, and the
hot path reads no database rows for it. Nothing that a request writes is cached.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["TtlCache", "clear_all"]

K = TypeVar("K")
V = TypeVar("V")

_ALL: list[TtlCache[object, object]] = []


class TtlCache(Generic[K, V]):
    """A bounded mapping whose entries expire ``ttl`` seconds after they were put."""

    def __init__(self, ttl: float | None = None, size: int = 10_000) -> None:
        self.ttl = float(os.environ.get("ZIDA_CACHE_SECONDS", "5")) if ttl is None else ttl
        self.size = size
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        _ALL.append(self)  # type: ignore[arg-type]

    def get(self, key: K) -> V | None:
        """The live value for ``key``, or None."""
        if self.ttl <= 0:
            return None
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return entry[1]

    def put(self, key: K, value: V) -> V:
        """Store ``value`` (evicting the oldest entries beyond ``size``) and return it."""
        if self.ttl > 0:
            self._data[key] = (time.monotonic() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()


def clear_all() -> None:
    """Empty every cache of this process (after a bundle load in the same process)."""
    for cache in _ALL:
        cache.clear()
