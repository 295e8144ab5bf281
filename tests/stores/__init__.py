"""Helpers shared by the store tests: the test Redis (skipped only where nothing listens), waiting for a condition.

``ZIDA_TEST_REDIS_URL`` names the Redis (default: database 11 of the local one, 127.0.0.1:6379). Each test works
under a random root prefix and deletes its keys at the end, so runs never see one another's data.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import anyio
import pytest
from redis.asyncio import Redis

from zida.stores import StoreUnavailable
from zida.stores.redis import RedisStore

__all__ = ["TEST_REDIS_URL", "connect_redis", "drop_keys", "eventually", "random_prefix", "raw_redis"]

TEST_REDIS_URL = os.environ.get("ZIDA_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
WAIT_SECONDS = 30.0  # generous: these machines are noisy; a passing test returns as soon as the condition holds


def random_prefix() -> str:
    """A root key prefix no other test or run uses."""
    return "zida-test-" + secrets.token_hex(6)


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def connect_redis(prefix: str) -> RedisStore:
    """A ``RedisStore`` on the test Redis under ``prefix``; the test is skipped only when the connection is refused."""
    store = RedisStore.from_url(TEST_REDIS_URL, prefix=prefix)
    try:
        await store.get("ping")
    except StoreUnavailable as exc:
        await store.close()
        if _refused(exc):
            where = urlsplit(TEST_REDIS_URL).netloc.rpartition("@")[2] or TEST_REDIS_URL
            pytest.skip(f"Redis is not running on {where}: {exc}")
        raise
    return store


def raw_redis(*, decode_responses: bool = False) -> Redis:
    """A plain client of the test Redis whose every wait is bounded (a stuck Redis fails a test, never hangs it)."""
    return Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=5, socket_timeout=5, decode_responses=decode_responses)


async def drop_keys(prefix: str) -> None:
    """Delete every key of the test Redis under ``prefix``."""
    client = raw_redis()
    try:
        keys = [key async for key in client.scan_iter(match=prefix + ":*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def eventually(condition: Callable[[], bool | Awaitable[bool]], what: str) -> float:
    """Wait until ``condition()`` holds, checking every 10 ms; the seconds it took. Fails after ``WAIT_SECONDS``."""
    started = time.monotonic()
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > WAIT_SECONDS:
            pytest.fail(f"{what}: still not true after {WAIT_SECONDS:.0f} s")
        await anyio.sleep(0.01)
