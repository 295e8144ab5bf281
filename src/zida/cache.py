"""Small in-process TTL caches for read-mostly data (app actors, form schemas, directory entries), and how every
worker learns that they must be emptied.

Each cache has a ``scope`` naming what it holds (``"apps"``, ``"org"``…). After a change commits, the code that
made it calls ``invalidate(scope)`` (sync) or ``await invalidate_everywhere(store, scope)`` (async): this
process's caches of that scope are emptied at once, and the invalidation is recorded in the store as a
per-scope epoch (``caches:scope:<scope>``, plus ``caches:any`` bumped after it). ``CacheSync``, started in the
server's lifespan with ``start_cache_sync``, reads ``caches:any`` every ``ZIDA_CACHE_SYNC_SECONDS`` (0.5 s)
and, when it moved, empties the caches whose scope's epoch moved. So:

- one process (memory store): an invalidation is seen at once; nothing polls;
- several workers or hosts sharing Redis (``ZIDA_REDIS_URL``): within ``ZIDA_CACHE_SYNC_SECONDS``;
- several workers without Redis (e.g. ``zida serve --workers 2`` on SQLite), or a change made by another
  program: within ``ZIDA_CACHE_SECONDS`` (5 s), the lifetime of every entry, which stays the upper bound.

Nothing that a request writes is read back from a cache. Module-level caches are created at import, before the
settings exist: ``configure_caches(settings)`` at startup gives those created without an explicit ``ttl`` the
lifetime ``ZIDA_CACHE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from zida.settings import Settings
    from zida.stores.base import Store

__all__ = [
    "ALL_SCOPES",
    "CACHES",
    "DEFAULT_CACHE_SECONDS",
    "CacheRegistry",
    "CacheSync",
    "TtlCache",
    "clear_all",
    "configure_caches",
    "invalidate",
    "invalidate_everywhere",
    "publish_invalidation",
    "start_cache_sync",
]

K = TypeVar("K")
V = TypeVar("V")

log = logging.getLogger("zida.cache")

DEFAULT_CACHE_SECONDS = 5.0  # until configure_caches(settings) sets ZIDA_CACHE_SECONDS
ALL_SCOPES = "*"  # the epoch ``invalidate()`` with no scope moves: every cache, unscoped ones included
_NAMESPACE = "caches"
_ANY = "any"
_STOP_SECONDS = 5.0  # how long stopping waits for invalidations still being published


def _scope_key(scope: str) -> str:
    return f"scope:{scope}"


class CacheRegistry:
    """The caches of one process, their default lifetime and where invalidations are published.

    ``CACHES`` is the process's registry; tests create more to play several workers in one process.
    """

    def __init__(self, default_ttl: float = DEFAULT_CACHE_SECONDS) -> None:
        self.default_ttl = default_ttl
        self.caches: list[TtlCache[Any, Any]] = []
        self._targets: list[tuple[Store, asyncio.AbstractEventLoop]] = []  # the latest attached one is used
        self._pending: set[concurrent.futures.Future[None]] = set()

    def register(self, cache: TtlCache[Any, Any]) -> None:
        """Track ``cache`` (TtlCache does it when created)."""
        self.caches.append(cache)

    def scopes(self) -> set[str]:
        """The scopes the registered caches hold (unscoped caches have none)."""
        return {cache.scope for cache in self.caches if cache.scope}

    def clear(self, scopes: Iterable[str] = ()) -> None:
        """Empty the caches of these scopes; every cache when none is named or ``ALL_SCOPES`` is among them."""
        wanted = set(scopes)
        for cache in self.caches:
            if not wanted or ALL_SCOPES in wanted or cache.scope in wanted:
                cache.clear()

    def configure(self, settings: Settings) -> None:
        """Give the caches created without an explicit ``ttl`` the lifetime ``settings.cache_seconds``."""
        self.default_ttl = settings.cache_seconds

    def attach(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        """Publish the invalidations ``invalidate()`` makes to ``store``, on ``loop`` (CacheSync does it)."""
        self._targets.append((store, loop))

    def detach(self, store: Store) -> None:
        """Stop publishing to ``store``."""
        self._targets = [(s, loop) for s, loop in self._targets if s is not store]

    def publish_soon(self, scopes: tuple[str, ...]) -> None:
        """Record an invalidation in the attached shared store without waiting (callable from any thread)."""
        if not self._targets:
            return
        store, loop = self._targets[-1]
        if not store.shared or loop.is_closed():
            return  # one process: the local clear was everything there is to do
        future = asyncio.run_coroutine_threadsafe(publish_invalidation(store, *scopes), loop)
        self._pending.add(future)
        future.add_done_callback(self._published)

    async def wait_published(self) -> None:
        """Wait (a few seconds at most) for the invalidations ``publish_soon`` started to reach the store."""
        if self._pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in list(self._pending)], timeout=_STOP_SECONDS)

    def _published(self, future: concurrent.futures.Future[None]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning(
                "a cache invalidation could not be recorded in the shared store: other workers see the change"
                " within ZIDA_CACHE_SECONDS",
                exc_info=future.exception(),
            )


CACHES = CacheRegistry()


class TtlCache(Generic[K, V]):
    """A bounded mapping whose entries expire ``ttl`` seconds after they were put.

    ``ttl=None`` follows the registry's default (``ZIDA_CACHE_SECONDS`` once ``configure_caches`` ran); a
    ``ttl`` of 0 or less disables the cache. A value read from the database before the cache was emptied is
    not stored by ``put`` (the ``get`` that missed remembers the cache's generation), so an invalidation
    that lands while a reader is loading cannot be undone by that reader.
    """

    def __init__(
        self, ttl: float | None = None, size: int = 10_000, *, scope: str = "", registry: CacheRegistry | None = None
    ) -> None:
        self._ttl = ttl
        self.size = size
        self.scope = scope  # what the cache holds ("org", "apps", "forms"…): ``invalidate(scope)`` empties it
        self.registry = CACHES if registry is None else registry
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._misses: OrderedDict[K, int] = OrderedDict()  # key → generation when a get missed it
        self._generation = 0  # bumped by clear()
        self.registry.register(self)

    @property
    def ttl(self) -> float:
        """Seconds an entry lives: the explicit ``ttl`` or the registry's default."""
        return self.registry.default_ttl if self._ttl is None else self._ttl

    def get(self, key: K) -> V | None:
        """The live value for ``key``, or None."""
        if self.ttl <= 0:
            return None
        entry = self._data.get(key)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        if entry is not None:
            self._data.pop(key, None)
        self._misses[key] = self._generation
        self._misses.move_to_end(key)
        while len(self._misses) > self.size:
            self._misses.popitem(last=False)
        return None

    def put(self, key: K, value: V) -> V:
        """Store ``value`` (evicting the oldest entries beyond ``size``) and return it.

        Not stored when the cache was emptied since the ``get`` that missed ``key``: the value may be older.
        """
        missed_in = self._misses.pop(key, None)
        if self.ttl > 0 and (missed_in is None or missed_in == self._generation):
            self._data[key] = (time.monotonic() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()
        self._generation += 1


def configure_caches(settings: Settings, *, registry: CacheRegistry | None = None) -> None:
    """At startup: caches created without an explicit ``ttl`` keep entries ``settings.cache_seconds``."""
    (registry or CACHES).configure(settings)


def invalidate(*scopes: str, registry: CacheRegistry | None = None) -> None:
    """Empty this process's caches of these scopes now (every cache when none is named) and tell the others.

    For sync code paths; call it after the change committed. The other workers learn it through the shared
    store attached by ``start_cache_sync``: the record is made in the background on the server's event loop
    (from any thread). Without a running cache sync (a command-line process) only this process is cleared;
    async code that must know the record was made awaits ``invalidate_everywhere`` instead.
    """
    target = registry or CACHES
    target.clear(scopes)
    target.publish_soon(scopes)


async def invalidate_everywhere(store: Store, *scopes: str, registry: CacheRegistry | None = None) -> None:
    """Empty this process's caches of these scopes (all when none is named) and record it in ``store``.

    ``store`` is the process's store (what ``open_store`` returned); every worker whose ``CacheSync`` reads
    the same Redis empties its caches of these scopes within ``ZIDA_CACHE_SYNC_SECONDS``. Call it after the
    change committed (earlier, another worker could cache the old rows again).
    """
    (registry or CACHES).clear(scopes)
    await publish_invalidation(store, *scopes)


async def publish_invalidation(store: Store, *scopes: str) -> None:
    """Move the epochs of these scopes (``ALL_SCOPES`` when none is named), then the ``any`` epoch, in ``store``."""
    epochs = store.namespace(_NAMESPACE)
    for scope in scopes or (ALL_SCOPES,):
        await epochs.incr(_scope_key(scope))
    await epochs.incr(_ANY)  # after the scopes: a reader that sees it moved then reads every scope's new epoch


def clear_all(*, registry: CacheRegistry | None = None) -> None:
    """Empty every cache of this process only (tests; a bundle load in the same process)."""
    (registry or CACHES).clear()


class CacheSync:
    """Empties this process's caches when another process invalidates them through the shared store.

    ``start()`` attaches the store to the registry (so ``invalidate()`` publishes to it) and, when the store is
    shared (Redis), empties the caches and polls every ``interval`` seconds; with a memory store there is no
    other process to hear from, so it does not poll.
    """

    def __init__(self, store: Store, interval: float, *, registry: CacheRegistry | None = None) -> None:
        if not interval > 0:
            raise ValueError(f"the cache sync interval must be above 0 seconds, not {interval!r}")
        self.store = store
        self.interval = interval
        self.registry = registry or CACHES
        self._epochs = store.namespace(_NAMESPACE)
        self._any: bytes | None = None
        self._known: dict[str, bytes | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def polling(self) -> bool:
        """True while the background poll runs (a shared store, between start and stop)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Attach the store; with a shared one, read the epochs, empty the caches and start polling.

        Raises ``StoreUnavailable`` when Redis cannot be reached, so a misconfigured server does not start.
        """
        self.registry.attach(self.store, asyncio.get_running_loop())
        if not self.store.shared:
            return
        try:
            # Whatever was cached before the epochs were read may predate an invalidation: start empty.
            self._any = await self._epochs.get(_ANY)
            self._known = {scope: await self._epochs.get(_scope_key(scope)) for scope in self._watched()}
        except BaseException:
            self.registry.detach(self.store)
            raise
        self.registry.clear()
        self._task = asyncio.create_task(self._run(), name="zida-cache-sync")

    async def poll(self) -> set[str]:
        """One check: empty the caches whose scope's epoch moved since the last check; the scopes that moved."""
        any_epoch = await self._epochs.get(_ANY)  # read first: a publish after it moves it again
        if any_epoch == self._any:
            return set()
        moved: set[str] = set()
        for scope in self._watched():
            epoch = await self._epochs.get(_scope_key(scope))
            if scope not in self._known or self._known[scope] != epoch:  # a scope seen first: empty it too
                moved.add(scope)
            self._known[scope] = epoch
        self._any = any_epoch
        if moved:
            self.registry.clear(moved)
        return moved

    async def stop(self) -> None:
        """Stop polling, let pending invalidations reach the store, detach it."""
        self._stopping = True  # the poll ends even if the store's client turns the cancellation into an error
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.registry.wait_published()
        finally:
            self.registry.detach(self.store)

    def _watched(self) -> set[str]:
        return self.registry.scopes() | {ALL_SCOPES}

    async def _run(self) -> None:
        failing = False
        while not self._stopping:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except Exception as exc:  # the store is down: keep serving, the TTL bounds staleness meanwhile
                if self._stopping:  # a stop's cancellation that the Redis client reported as a lost connection
                    return
                if not failing:
                    log.warning("cache sync cannot read the shared store, caches live ZIDA_CACHE_SECONDS: %s", exc)
                failing = True
                continue
            if failing:
                log.warning("cache sync reads the shared store again")
                failing = False


@asynccontextmanager
async def start_cache_sync(
    store: Store, settings: Settings, *, registry: CacheRegistry | None = None
) -> AsyncIterator[CacheSync]:
    """``async with start_cache_sync(store, settings):`` — a ``CacheSync`` every ``settings.cache_sync_seconds``."""
    sync = CacheSync(store, settings.cache_sync_seconds, registry=registry)
    await sync.start()
    try:
        yield sync
    finally:
        await sync.stop()
