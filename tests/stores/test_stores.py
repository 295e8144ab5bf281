"""The ``Store`` contract, once for both implementations (memory and the local Redis), plus what only one has."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from tests.conftest import free_port
from tests.stores import TEST_REDIS_URL, connect_redis, drop_keys, eventually, random_prefix, raw_redis
from zida.settings import Settings
from zida.stores import MemoryStore, RedisStore, Store, StoreUnavailable, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """Each implementation in turn (Redis: a fresh root prefix, its keys deleted afterwards)."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory
        await memory.close()
        return
    prefix = random_prefix()
    redis_store = await connect_redis(prefix)
    try:
        yield redis_store
    finally:
        await redis_store.close()
        await drop_keys(prefix)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A root prefix on the test Redis (the test is skipped where Redis is absent); its keys go afterwards."""
    prefix = random_prefix()
    probe = await connect_redis(prefix)
    await probe.close()
    try:
        yield prefix
    finally:
        await drop_keys(prefix)


# ---------------------------------------------------------------- the contract, for both


async def test_get_set_delete(store: Store) -> None:
    assert await store.get("k") is None
    await store.set("k", b"one")
    assert await store.get("k") == b"one"
    await store.set("k", b"two")
    assert await store.get("k") == b"two"
    await store.set("empty", b"")
    assert await store.get("empty") == b""  # an empty value is a value, not an absent key
    binary = bytes(range(256))
    await store.set("binary", binary)
    assert await store.get("binary") == binary
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("never-there")  # no error


async def test_expiry_really_expires(store: Store) -> None:
    await store.set("set", b"v", expires_in=3)
    assert await store.incr("incr", expires_in=3) == 1
    assert await store.incr("incr", expires_in=3600) == 2  # not created by this call: keeps its first expiry
    assert await store.compare_and_set("cas", None, b"v", expires_in=3)
    await store.set("kept", b"v")
    await store.set("renewed", b"v", expires_in=3)
    await store.set("renewed", b"w")  # a plain set replaces the expiry too
    assert await store.get("set") == b"v"
    assert await store.get("incr") == b"2"
    assert await store.get("cas") == b"v"

    async def all_gone() -> bool:
        return [await store.get(k) for k in ("set", "incr", "cas")] == [None, None, None]

    await eventually(all_gone, "keys set with expires_in=3 have expired")
    assert await store.get("kept") == b"v"
    assert await store.get("renewed") == b"w"
    assert await store.incr("incr") == 1  # an expired counter starts again from nothing


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf])
async def test_expiry_must_be_positive(store: Store, bad: float) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        await store.set("k", b"v", expires_in=bad)
    with pytest.raises(ValueError, match="expires_in"):
        await store.incr("k", expires_in=bad)
    with pytest.raises(ValueError, match="expires_in"):
        await store.compare_and_set("k", None, b"v", expires_in=bad)
    assert await store.get("k") is None


async def test_incr_counts(store: Store) -> None:
    assert await store.incr("n") == 1
    assert await store.incr("n", 10) == 11
    assert await store.incr("n", -12) == -1
    assert await store.get("n") == b"-1"
    await store.set("m", b"41")
    assert await store.incr("m") == 42
    await store.set("text", b"forty")
    with pytest.raises(ValueError, match="integer"):
        await store.incr("text")
    assert await store.get("text") == b"forty"
    await store.set("big", str(2**63 - 1).encode())
    with pytest.raises(ValueError):
        await store.incr("big")


async def test_incr_is_atomic_under_concurrency(store: Store) -> None:
    results = await asyncio.gather(*(store.incr("hits", expires_in=600) for _ in range(200)))
    assert sorted(results) == list(range(1, 201))  # every caller got its own number
    assert await store.get("hits") == b"200"


async def test_compare_and_set(store: Store) -> None:
    assert await store.compare_and_set("k", None, b"a")  # absent, as expected
    assert not await store.compare_and_set("k", None, b"b")  # no longer absent
    assert not await store.compare_and_set("k", b"x", b"b")  # holds something else
    assert await store.get("k") == b"a"
    assert await store.compare_and_set("k", b"a", b"b")
    assert await store.get("k") == b"b"
    assert not await store.compare_and_set("other", b"b", b"c")  # absent is not b"b"
    assert await store.get("other") is None
    await store.set("empty", b"")
    assert not await store.compare_and_set("empty", None, b"x")  # an empty value is not absence
    assert await store.compare_and_set("empty", b"", b"x")


async def test_compare_and_set_race_has_exactly_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.compare_and_set("lease", None, f"worker-{i}".encode()) for i in range(50)))
    assert results.count(True) == 1
    assert await store.get("lease") == f"worker-{results.index(True)}".encode()

    await store.set("state", b"0")
    results = await asyncio.gather(*(store.compare_and_set("state", b"0", f"v{i}".encode()) for i in range(50)))
    assert results.count(True) == 1


async def test_compare_and_set_loops_lose_no_update(store: Store) -> None:
    """Read, yield to the others, compare-and-set, retry on a lost race: 40 such increments give exactly 40."""

    async def add_one() -> None:
        while True:
            current = await store.get("counter")
            await anyio.lowlevel.checkpoint()  # let the other writers in between the read and the write
            new = str(int(current or b"0") + 1).encode()
            if await store.compare_and_set("counter", current, new):
                return

    await asyncio.gather(*(add_one() for _ in range(40)))
    assert await store.get("counter") == b"40"


async def test_namespaces_isolate_keys_and_nest(store: Store) -> None:
    a, b = store.namespace("a"), store.namespace("b")
    await a.set("k", b"in a")
    await b.set("k", b"in b")
    assert await a.get("k") == b"in a"
    assert await b.get("k") == b"in b"
    assert await store.get("k") is None
    assert await store.get("a:k") == b"in a"  # a view prefixes each key with "<prefix>:"

    nested = a.namespace("x")
    await nested.set("k", b"in a:x")
    assert await store.get("a:x:k") == b"in a:x"
    assert await a.get("x:k") == b"in a:x"
    assert await store.namespace("a").namespace("x").get("k") == b"in a:x"  # views of the same names agree

    assert await a.incr("n") == 1
    assert await b.incr("n") == 1
    assert await a.compare_and_set("c", None, b"1")
    assert await b.compare_and_set("c", None, b"1")
    await a.delete("k")
    assert await b.get("k") == b"in b"
    with pytest.raises(ValueError, match="prefix"):
        store.namespace("")


async def test_a_namespace_view_does_not_close_its_store(store: Store) -> None:
    view = store.namespace("v")
    await view.set("k", b"v")
    await view.close()
    assert await store.get("v:k") == b"v"
    assert await view.get("k") == b"v"


# ---------------------------------------------------------------- Redis: many workers, one Redis


async def test_two_redis_stores_are_two_workers_sharing_state(redis_prefix: str) -> None:
    one = RedisStore.from_url(TEST_REDIS_URL, prefix=redis_prefix)
    two = RedisStore.from_url(TEST_REDIS_URL, prefix=redis_prefix)
    try:
        await one.set("k", b"from one")
        assert await two.get("k") == b"from one"
        await two.namespace("ns").set("k", b"from two")
        assert await one.namespace("ns").get("k") == b"from two"
        await two.delete("k")
        assert await one.get("k") is None

        results = await asyncio.gather(*(s.incr("hits") for s in (one, two) for _ in range(100)))
        assert sorted(results) == list(range(1, 201))
        assert await one.get("hits") == b"200"

        wins = await asyncio.gather(
            *(s.compare_and_set("lease", None, f"{i}".encode()) for i, s in enumerate([one, two] * 20))
        )
        assert wins.count(True) == 1
    finally:
        await one.close()
        await two.close()


async def test_redis_keys_live_under_the_root_prefix(redis_prefix: str) -> None:
    store = RedisStore.from_url(TEST_REDIS_URL, prefix=redis_prefix)
    neighbour = RedisStore.from_url(TEST_REDIS_URL, prefix=redis_prefix + "-other")
    raw = raw_redis()
    try:
        await store.namespace("caches").set("k", b"v", expires_in=60)
        assert await raw.get(f"{redis_prefix}:caches:k") == b"v"
        assert 0 < await raw.pttl(f"{redis_prefix}:caches:k") <= 60_000
        await store.incr("n", expires_in=5)
        await store.incr("n", expires_in=3600)
        assert 0 < await raw.pttl(f"{redis_prefix}:n") <= 5_000  # the expiry of the call that created it
        assert await neighbour.namespace("caches").get("k") is None  # another installation sharing the Redis
    finally:
        await store.close()
        await neighbour.close()
        await drop_keys(redis_prefix + "-other")
        await raw.aclose()


async def test_unreachable_redis_is_store_unavailable() -> None:
    store = RedisStore.from_url(f"redis://user:hunter2@127.0.0.1:{free_port()}/3", prefix=random_prefix())
    try:
        with pytest.raises(StoreUnavailable, match="is unavailable") as caught:
            await store.get("k")
        assert "hunter2" not in str(caught.value)
    finally:
        await store.close()


async def test_redis_store_refuses_decoded_responses() -> None:
    client = raw_redis(decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisStore(client)
    finally:
        await client.aclose()


# ---------------------------------------------------------------- memory: one process


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_expiry_follows_the_clock() -> None:
    clock = _Clock()
    store = MemoryStore(clock=clock)
    await store.set("k", b"v", expires_in=10)
    await store.incr("n", expires_in=10)
    clock.now += 9.9
    assert await store.get("k") == b"v"
    assert await store.incr("n", expires_in=100) == 2
    clock.now += 0.1
    assert await store.get("k") is None
    assert await store.get("n") is None
    assert len(store) == 0  # expired entries are dropped when read
    assert await store.compare_and_set("k", None, b"again", expires_in=5)  # an expired key is absent
    clock.now += 5
    assert not await store.compare_and_set("k", b"again", b"late")  # compare-and-set sees the expiry too
    assert await store.incr("n") == 1


async def test_memory_store_stays_within_its_bound() -> None:
    clock = _Clock()
    store = MemoryStore(max_entries=10, clock=clock)
    for i in range(5):
        await store.set(f"short-{i}", b"v", expires_in=1)
    clock.now += 2  # the five short ones are expired but nobody read them
    for i in range(30):
        await store.set(f"k{i}", b"v")
        assert len(store) <= 10
    assert await store.get("k29") == b"v"  # the latest writes are kept, the oldest dropped
    assert await store.get("k0") is None
    with pytest.raises(ValueError):
        MemoryStore(max_entries=0)


async def test_open_store_follows_the_settings() -> None:
    memory = open_store(Settings())
    assert isinstance(memory, MemoryStore) and not memory.shared
    redis_store = open_store(Settings(redis_url="redis://127.0.0.1:1/0", redis_prefix="tenant-7"))
    assert isinstance(redis_store, RedisStore) and redis_store.shared
    assert redis_store.prefix == "tenant-7:"  # nothing connected yet: a wrong URL shows on first use
    await redis_store.close()
