"""``MemoryStore``: the default store, in this process's memory (one process; nothing is shared)."""

from __future__ import annotations

import copy
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from zida.stores.base import Store, check_expiry, check_prefix

__all__ = ["MemoryStore"]

_INTEGER = re.compile(rb"-?[0-9]+")
_INT64 = range(-(2**63), 2**63)  # what Redis can count to, so both stores refuse the same overflow


class _Entries:
    """The data every view of one ``MemoryStore`` shares: value and deadline (None: none) by full key."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self.data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()  # least recently written first
        self.max_entries = max_entries
        self.clock = clock
        self.lock = threading.Lock()  # one event loop needs none; a thread calling in must not tear an entry
        self.writes_since_sweep = 0


class MemoryStore:
    """A ``Store`` held in a dict of this process: operations are atomic because none of them waits.

    Expired entries go lazily, when they are read, and in a sweep when the store holds more than
    ``max_entries``; if it is still too full after that, the least recently written entries are dropped (a
    store holds state that may be lost, see ``zida.stores.base``).
    """

    shared = False

    def __init__(self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self._entries = _Entries(max_entries, clock)
        self._prefix = ""
        self._root = True

    def __len__(self) -> int:
        """How many entries the whole store holds (every namespace; expired ones not yet dropped included)."""
        return len(self._entries.data)

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""
        entries = self._entries
        with entries.lock:
            return self._live(self._prefix + key, entries.clock())

    async def set(self, key: str, value: bytes, *, expires_in: float | None = None) -> None:
        """Store ``value`` under ``key``, for ``expires_in`` seconds (None: until deleted)."""
        check_expiry(expires_in)
        entries = self._entries
        with entries.lock:
            now = entries.clock()
            self._write(self._prefix + key, bytes(value), None if expires_in is None else now + expires_in, now)

    async def incr(self, key: str, amount: int = 1, *, expires_in: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (absent: 0) and return it; ``expires_in`` only on creation."""
        check_expiry(expires_in)
        full = self._prefix + key
        entries = self._entries
        with entries.lock:
            now = entries.clock()
            current = self._live(full, now)
            if current is None:
                result, deadline = amount, (None if expires_in is None else now + expires_in)
            else:
                if not _INTEGER.fullmatch(current):
                    raise ValueError(f"store key {key!r} does not hold an integer")
                result, deadline = int(current) + amount, entries.data[full][1]
            if result not in _INT64:
                raise ValueError(f"incrementing store key {key!r} by {amount} leaves the 64-bit range")
            self._write(full, str(result).encode(), deadline, now)
            return result

    async def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes, *, expires_in: float | None = None
    ) -> bool:
        """Set ``key`` to ``new`` only if it holds ``expected`` (None: only if absent); True when it was set."""
        check_expiry(expires_in)
        full = self._prefix + key
        entries = self._entries
        with entries.lock:
            now = entries.clock()
            if self._live(full, now) != expected:
                return False
            self._write(full, bytes(new), None if expires_in is None else now + expires_in, now)
            return True

    async def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it is absent)."""
        entries = self._entries
        with entries.lock:
            entries.data.pop(self._prefix + key, None)

    def namespace(self, prefix: str) -> Store:
        """A view sharing this store's data whose every key is prefixed with ``prefix + ":"``."""
        view = copy.copy(self)
        view._prefix = self._prefix + check_prefix(prefix) + ":"
        view._root = False
        return view

    async def close(self) -> None:
        """Forget everything (on the store itself; a namespace view's close does nothing)."""
        if self._root:
            with self._entries.lock:
                self._entries.data.clear()

    def _live(self, full_key: str, now: float) -> bytes | None:
        """The value at ``full_key`` unless it expired (then it is dropped). Call with the lock held."""
        entry = self._entries.data.get(full_key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= now:
            del self._entries.data[full_key]
            return None
        return entry[0]

    def _write(self, full_key: str, value: bytes, deadline: float | None, now: float) -> None:
        """Put an entry and keep the store within its bound. Call with the lock held."""
        entries = self._entries
        data = entries.data
        data[full_key] = (value, deadline)
        data.move_to_end(full_key)
        entries.writes_since_sweep += 1
        if len(data) <= entries.max_entries:
            return
        # A full sweep costs O(n): at most one per max_entries/10 writes, so each write costs O(1) on average.
        if entries.writes_since_sweep * 10 >= entries.max_entries:
            entries.writes_since_sweep = 0
            for dead in [k for k, (_, at) in data.items() if at is not None and at <= now]:
                del data[dead]
        while len(data) > entries.max_entries:
            data.popitem(last=False)
