"""Cache invalidation across workers: each "worker" is a cache registry of its own (or a child process), sharing a
store — Redis where it runs, or a memory store marked shared so the logic is also tested without Redis."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import suppress

import anyio
import pytest

from tests.conftest import free_port
from tests.stores import TEST_REDIS_URL, connect_redis, drop_keys, eventually, random_prefix
from zida.cache import (
    CacheRegistry,
    CacheSync,
    TtlCache,
    configure_caches,
    invalidate,
    invalidate_everywhere,
    start_cache_sync,
)
from zida.settings import Settings
from zida.stores import MemoryStore, RedisStore, Store, StoreUnavailable

pytestmark = pytest.mark.anyio

FAST = Settings(cache_sync_seconds=0.05)


class SharedMemoryStore(MemoryStore):
    """A memory store that claims to be shared: several registries in this process play several workers."""

    shared = True


class FlakyStore(SharedMemoryStore):
    """A shared store whose reads fail while ``down`` is set."""

    down = False

    async def get(self, key: str) -> bytes | None:
        if FlakyStore.down:
            raise StoreUnavailable("Redis at nowhere is unavailable: test")
        return await super().get(key)


Workers = tuple[Store, Store]


@pytest.fixture(params=["shared-memory", "redis"])
async def workers(request: pytest.FixtureRequest) -> AsyncIterator[Workers]:
    """Two workers' stores on the same shared data: two Redis clients, or one shared memory store."""
    if request.param == "shared-memory":
        memory = SharedMemoryStore()
        yield memory, memory
        return
    prefix = random_prefix()
    one = await connect_redis(prefix)
    two = RedisStore.from_url(TEST_REDIS_URL, prefix=prefix)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()
        await drop_keys(prefix)


def _cache(registry: CacheRegistry, scope: str) -> TtlCache[str, str]:
    """A cache whose entries live an hour: when one goes within a test, an invalidation removed it."""
    return TtlCache(ttl=3600, scope=scope, registry=registry)


def _filled(registry: CacheRegistry, scope: str) -> TtlCache[str, str]:
    return _fill(_cache(registry, scope))


def _fill(*caches: TtlCache[str, str]) -> TtlCache[str, str]:
    for cache in caches:
        cache.put("k", f"{cache.scope} value")
    return caches[0]


def _emptied(cache: TtlCache[str, str]) -> Callable[[], bool]:
    return lambda: cache.get("k") is None


async def test_an_invalidation_reaches_the_other_worker(workers: Workers) -> None:
    one, two = CacheRegistry(), CacheRegistry()
    # Caches exist before the sync starts, as module-level caches do in the server.
    apps_one, org_one, apps_two, org_two = (
        _cache(one, "apps"),
        _cache(one, "org"),
        _cache(two, "apps"),
        _cache(two, "org"),
    )
    unscoped_two = _cache(two, "")
    async with start_cache_sync(workers[0], FAST, registry=one), start_cache_sync(workers[1], FAST, registry=two):
        _fill(apps_one, org_one, apps_two, org_two, unscoped_two)
        await invalidate_everywhere(workers[0], "apps", registry=one)
        assert apps_one.get("k") is None  # this worker: at once
        await eventually(_emptied(apps_two), "the other worker's apps cache is emptied")
        assert org_two.get("k") == "org value"  # other scopes keep their entries
        assert unscoped_two.get("k") == " value"

        await invalidate_everywhere(workers[1], registry=two)  # no scope: every cache, unscoped ones too
        assert org_two.get("k") is None and unscoped_two.get("k") is None
        await eventually(_emptied(org_one), "the other worker's caches are all emptied")


async def test_sync_invalidate_publishes_in_the_background(workers: Workers) -> None:
    one, two = CacheRegistry(), CacheRegistry()
    apps_one, apps_two, org_two = _cache(one, "apps"), _cache(two, "apps"), _cache(two, "org")
    async with start_cache_sync(workers[0], FAST, registry=one), start_cache_sync(workers[1], FAST, registry=two):
        _fill(apps_one, apps_two, org_two)
        invalidate("apps", registry=one)  # from sync code on the event loop
        assert apps_one.get("k") is None
        await eventually(_emptied(apps_two), "invalidate() from the loop reaches the other worker")
        assert org_two.get("k") == "org value"

        # From a worker thread (sync code run off the loop) too.
        await anyio.to_thread.run_sync(functools.partial(invalidate, "org", registry=one))
        await eventually(_emptied(org_two), "invalidate() from a thread reaches the other worker")


async def test_a_worker_started_later_misses_nothing(workers: Workers) -> None:
    one, two = CacheRegistry(), CacheRegistry()
    async with start_cache_sync(workers[0], FAST, registry=one):
        await invalidate_everywhere(workers[0], "apps", registry=one)
        stale = _filled(two, "apps")  # cached before its worker's sync started: may be older than the change
        async with start_cache_sync(workers[1], FAST, registry=two):
            assert stale.get("k") is None  # a sync starts with empty caches
            fresh = _fill(stale)
            late = _filled(two, "forms")  # a cache created after the start, of a scope the sync has not read
            await invalidate_everywhere(workers[0], "apps", registry=one)
            await eventually(_emptied(fresh), "the later worker hears of the next invalidation")
            assert late.get("k") is None  # first seen while an epoch moved: emptied to be safe


async def test_one_process_memory_store_invalidates_at_once_and_does_not_poll() -> None:
    registry = CacheRegistry()
    store = MemoryStore()
    cache, other = _filled(registry, "apps"), _filled(registry, "org")
    async with start_cache_sync(store, FAST, registry=registry) as sync:
        assert not sync.polling
        assert cache.get("k") == "apps value"  # one process: nothing to catch up with at the start
        invalidate("apps", registry=registry)
        assert cache.get("k") is None
        assert other.get("k") == "org value"
        await invalidate_everywhere(store, "org", registry=registry)
        assert other.get("k") is None


async def test_without_a_shared_store_the_ttl_bounds_staleness() -> None:
    """Two workers on SQLite without Redis: a change made by one is seen by the other when its entries expire."""
    one, two = CacheRegistry(), CacheRegistry()
    configured = Settings(cache_seconds=0.5)
    configure_caches(configured, registry=one)
    configure_caches(configured, registry=two)
    cache_one: TtlCache[str, str] = TtlCache(scope="apps", registry=one)
    cache_two: TtlCache[str, str] = TtlCache(scope="apps", registry=two)
    pinned: TtlCache[str, str] = TtlCache(ttl=3600, scope="apps", registry=two)
    assert cache_two.ttl == 0.5 and pinned.ttl == 3600  # an explicit ttl is kept
    cache_one.put("k", "v")
    cache_two.put("k", "v")
    pinned.put("k", "v")
    invalidate("apps", registry=one)  # nothing attached: this process only
    assert cache_one.get("k") is None
    waited = await eventually(lambda: cache_two.get("k") is None, "the other worker's entry expires")
    assert waited < 20  # bounded by ZIDA_CACHE_SECONDS (0.5 s here), with room for a slow machine
    assert pinned.get("k") == "v"

    configure_caches(Settings(cache_seconds=0), registry=two)  # 0 disables the caches that follow the default
    assert cache_two.put("k", "v") == "v" and cache_two.get("k") is None


async def test_a_value_loaded_before_an_invalidation_is_not_cached() -> None:
    registry = CacheRegistry()
    cache: TtlCache[str, str] = TtlCache(ttl=60, scope="apps", registry=registry)
    assert cache.get("k") is None  # a reader misses and goes to the database…
    invalidate("apps", registry=registry)  # …meanwhile a change commits and invalidates…
    assert cache.put("k", "old") == "old"  # …the reader's (possibly older) value is returned, not kept
    assert cache.get("k") is None
    assert cache.put("k", "new") == "new"  # the next reader's value is kept
    assert cache.get("k") == "new"
    cache.put("direct", "v")  # a put without a get before it is kept
    assert cache.get("direct") == "v"


async def test_the_sync_survives_an_unavailable_store(caplog: pytest.LogCaptureFixture) -> None:
    registry = CacheRegistry()
    store = FlakyStore()
    cache = _cache(registry, "apps")
    async with start_cache_sync(store, FAST, registry=registry) as sync:
        _fill(cache)
        with caplog.at_level(logging.WARNING, logger="zida.cache"):
            FlakyStore.down = True
            try:
                await eventually(lambda: "cannot read the shared store" in caplog.text, "the outage is logged")
                await anyio.sleep(0.3)  # several failed polls: logged once
                assert caplog.text.count("cannot read the shared store") == 1
                assert sync.polling
                assert cache.get("k") == "apps value"  # entries stay (their TTL bounds them)
            finally:
                FlakyStore.down = False
            await eventually(lambda: "reads the shared store again" in caplog.text, "the recovery is logged")
        await invalidate_everywhere(store, "apps", registry=CacheRegistry())  # another worker, after the outage
        await eventually(_emptied(cache), "invalidations are heard again")


class CancellationEatingSync(CacheSync):
    """A sync whose read swallows a cancellation (as a Redis client may, reporting a lost connection or nothing)."""

    async def poll(self) -> set[str]:
        with suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        return set()


async def test_a_stop_ends_the_poll_even_when_a_read_swallows_the_cancellation() -> None:
    sync = CancellationEatingSync(SharedMemoryStore(), 0.001, registry=CacheRegistry())
    await sync.start()
    await anyio.sleep(0.05)  # the poll is reading now
    stopping = asyncio.ensure_future(sync.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)  # waits without cancelling anything
    assert stopping in done  # before the fix the poll went on, and stop() waited for it for ever
    assert not sync.polling


async def test_an_unreachable_redis_stops_the_start() -> None:
    registry = CacheRegistry()
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix=random_prefix())
    try:
        with pytest.raises(StoreUnavailable):
            async with start_cache_sync(store, FAST, registry=registry):
                pass
        cache = _filled(registry, "apps")
        invalidate("apps", registry=registry)  # nothing left attached: a local clear, no background publish
        assert cache.get("k") is None
    finally:
        await store.close()


async def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        CacheSync(MemoryStore(), 0)


_CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from zida.cache import CacheRegistry, TtlCache, start_cache_sync
    from zida.settings import Settings
    from zida.stores.redis import RedisStore

    async def main():
        registry = CacheRegistry()
        cache = TtlCache(ttl=3600, scope="apps", registry=registry)
        store = RedisStore.from_url(sys.argv[1], prefix=sys.argv[2])
        async with start_cache_sync(store, Settings(cache_sync_seconds=float(sys.argv[3])), registry=registry):
            cache.put("k", "v")
            print("ready", flush=True)
            deadline = time.monotonic() + 60
            while cache.get("k") is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            print("emptied" if cache.get("k") is None else "still cached", flush=True)
        await store.close()

    asyncio.run(main())
    """
)


async def test_an_invalidation_reaches_another_process_through_redis() -> None:
    prefix = random_prefix()
    here = await connect_redis(prefix)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, TEST_REDIS_URL, prefix, "0.5", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"ready\n"
        await invalidate_everywhere(here, "apps", registry=CacheRegistry())
        # The child's entry lives an hour: only the sync (every 0.5 s) can empty it; generous bound for noise.
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"emptied\n"
        assert await asyncio.wait_for(child.wait(), 30) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await here.close()
        await drop_keys(prefix)
