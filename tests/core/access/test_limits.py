"""Rate limits (``zida.core.access.limits``): per credential and API, per corp, fixed one-second windows, a
credential's own limit, and one budget for every limiter sharing a Redis."""

from __future__ import annotations

import asyncio

import pytest

from tests.stores import connect_redis, drop_keys, random_prefix
from zida.core.access.limits import RateLimiter
from zida.core.errors import RateLimited
from zida.core.principals import ALL_SCOPES, Principal
from zida.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio


class Clock:
    """The limiter's clock, moved by the test (windows are whole seconds)."""

    def __init__(self) -> None:
        self.now = 1_000_000.25

    def __call__(self) -> float:
        return self.now


def principal(pk: int = 1, corp: int = 1, rate_limit: int | None = None) -> Principal:
    return Principal(
        kind="credential",
        corp_pk=corp,
        corp_id=f"corp{corp}",
        scopes=ALL_SCOPES,
        client_id=f"key{pk}",
        credential_pk=pk,
        rate_limit=rate_limit,
    )


async def calls(limiter: RateLimiter, who: Principal, api: str, n: int) -> int:
    """How many of ``n`` calls were let through."""
    allowed = 0
    for _ in range(n):
        try:
            await limiter.check(who, api)
            allowed += 1
        except RateLimited as exc:
            assert exc.reason in ("rate.api_qps", "rate.corp_qps") and exc.details["retry_after"] == 1
    return allowed


async def test_each_credential_and_api_has_its_own_budget_per_second() -> None:
    clock = Clock()
    limiter = RateLimiter(MemoryStore(), per_api_qps=3, corp_qps=0, clock=clock)
    assert await calls(limiter, principal(1), "/v1.0/yida/forms/instances/{id}", 5) == 3
    assert await calls(limiter, principal(1), "/v1.0/yida/forms/instances/search", 5) == 3  # another API
    assert await calls(limiter, principal(2), "/v1.0/yida/forms/instances/{id}", 5) == 3  # another credential
    clock.now += 0.5  # the same second
    assert await calls(limiter, principal(1), "/v1.0/yida/forms/instances/{id}", 1) == 0
    clock.now += 0.5  # the next one
    assert await calls(limiter, principal(1), "/v1.0/yida/forms/instances/{id}", 5) == 3


async def test_a_credential_s_own_limit_wins_and_zero_means_none() -> None:
    limiter = RateLimiter(MemoryStore(), per_api_qps=3, corp_qps=0, clock=Clock())
    assert await calls(limiter, principal(1, rate_limit=10), "/api", 12) == 10
    assert await calls(limiter, principal(2, rate_limit=0), "/api", 50) == 50
    unlimited = RateLimiter(MemoryStore(), per_api_qps=0, corp_qps=0, clock=Clock())
    assert await calls(unlimited, principal(3), "/api", 50) == 50
    assert await calls(unlimited, principal(4, rate_limit=2), "/api", 5) == 2  # its own limit holds without a default


async def test_the_corp_limit_counts_every_credential_and_api_and_signed_in_users() -> None:
    limiter = RateLimiter(MemoryStore(), per_api_qps=0, corp_qps=5, clock=Clock())
    assert await calls(limiter, principal(1, corp=7), "/a", 3) == 3
    user = Principal(kind="session", corp_pk=7, corp_id="corp7", scopes=ALL_SCOPES, client_id="s", user_id="wang")
    assert await calls(limiter, user, "/b", 3) == 2
    assert await calls(limiter, principal(2, corp=7), "/c", 1) == 0
    assert await calls(limiter, principal(3, corp=8), "/a", 5) == 5  # another corp
    await limiter.check(None, "/v1.0/oauth2/accessToken")  # no caller: nothing to count


async def test_limiters_sharing_a_redis_share_one_budget() -> None:
    prefix = random_prefix()
    first, second = await connect_redis(prefix), await connect_redis(prefix)
    try:
        clock = Clock()
        workers = [RateLimiter(first, per_api_qps=4, corp_qps=0, clock=clock), RateLimiter(second, 4, 0, clock)]
        allowed = [await calls(workers[i % 2], principal(1), "/api", 1) for i in range(10)]
        assert sum(allowed) == 4  # not 4 per worker
    finally:
        await drop_keys(prefix)
        await first.close()
        await second.close()


class CountingStore(MemoryStore):
    """A memory store that counts the increments it is asked for (what each would cost in Redis), its namespace
    views included (they share the count)."""

    def __init__(self) -> None:
        super().__init__()
        self.increments = [0]

    async def incr(self, key: str, amount: int = 1, *, expires_in: float | None = None) -> int:
        self.increments[0] += 1
        return await super().incr(key, amount, expires_in=expires_in)


async def test_a_process_takes_its_budget_a_twentieth_at_a_time() -> None:
    store = CountingStore()
    limiter = RateLimiter(store, per_api_qps=1000, corp_qps=0, clock=Clock())
    assert await calls(limiter, principal(1), "/api", 1000) == 1000
    assert store.increments[0] == 20  # one store increment per 50 calls, not one per call
    assert await calls(limiter, principal(1), "/api", 10) == 0  # and never more than the limit


async def test_shares_of_one_budget_never_admit_more_than_the_limit_and_refuse_little_early() -> None:
    store = MemoryStore()  # one store: what several processes sharing a Redis see
    clock = Clock()
    workers = [RateLimiter(store, per_api_qps=100, corp_qps=0, clock=clock) for _ in range(3)]
    admitted = [await calls(workers[i % 3], principal(1), "/api", 1) for i in range(300)]
    # each worker holds at most one share of 5 unused: at least 100 - 3 * 5 admitted, never more than 100
    assert 85 <= sum(admitted) <= 100
    clock.now += 1
    assert sum([await calls(workers[i % 3], principal(1), "/api", 1) for i in range(30)]) == 30  # a new window


class SlowStore(CountingStore):
    """A counting store whose increments take a round trip's time (as Redis's do)."""

    async def incr(self, key: str, amount: int = 1, *, expires_in: float | None = None) -> int:
        await asyncio.sleep(0.002)
        return await super().incr(key, amount, expires_in=expires_in)


async def test_calls_arriving_together_wait_for_one_share_instead_of_each_taking_one() -> None:
    store = SlowStore()
    limiter = RateLimiter(store, per_api_qps=10_000, corp_qps=0, clock=Clock())
    allowed = await asyncio.gather(*(calls(limiter, principal(1), "/api", 1) for _ in range(300)))
    assert sum(allowed) == 300  # none refused: 300 calls of a 10,000 budget
    assert store.increments[0] == 1  # one share of 500 taken for all of them
