"""The ``Store`` protocol: small shared state (counters, flags, cache epochs) behind one namespaced interface.

Keys are ``str``, values ``bytes``. Every operation is atomic on its key, and whoever holds the same store —
another task, or with Redis another worker or host — sees its effect at once. A store is meant for state that
may be lost (a restart of Redis, of the process): counters, leases, invalidation epochs, rate-limit windows;
what must survive lives in the database.
"""

from __future__ import annotations

import math
from typing import Protocol

__all__ = ["Store", "StoreUnavailable", "check_expiry", "check_prefix"]


class StoreUnavailable(ConnectionError):
    """The store's backend cannot be reached (Redis down or misconfigured)."""


class Store(Protocol):
    """A namespaced key-value store with expiry, atomic increment and compare-and-set."""

    @property
    def shared(self) -> bool:
        """True when other processes see this store's data (Redis); False for one process's memory."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, expires_in: float | None = None) -> None:
        """Store ``value`` under ``key``, for ``expires_in`` seconds (None: until deleted)."""
        ...

    async def incr(self, key: str, amount: int = 1, *, expires_in: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (absent: 0) and return the result, atomically.

        ``expires_in`` applies only when this call creates the key (a window counter keeps its first expiry).
        The value reads back from ``get`` as its decimal digits; a value that is not an integer is refused
        with ``ValueError``.
        """
        ...

    async def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes, *, expires_in: float | None = None
    ) -> bool:
        """Set ``key`` to ``new`` only if it holds ``expected`` (None: only if absent), atomically.

        True when it was set; the key then expires as ``set(key, new, expires_in=...)`` would make it.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it is absent)."""
        ...

    def namespace(self, prefix: str) -> Store:
        """A view of this store whose every key is prefixed with ``prefix + ":"`` (views nest)."""
        ...

    async def close(self) -> None:
        """Release the backend (called once, on the store ``open_store`` returned; a view's close does nothing)."""
        ...


def check_expiry(expires_in: float | None) -> float | None:
    """``expires_in`` if it is None or a finite number of seconds above 0, else ``ValueError``."""
    if expires_in is not None and not (math.isfinite(expires_in) and expires_in > 0):
        raise ValueError(f"expires_in must be a number of seconds above 0 or None, not {expires_in!r}")
    return expires_in


def check_prefix(prefix: str) -> str:
    """A namespace prefix: not empty (an empty one would not isolate anything)."""
    if not prefix:
        raise ValueError("a store namespace needs a non-empty prefix")
    return prefix
