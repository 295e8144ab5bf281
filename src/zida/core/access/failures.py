"""Failed sign-in attempts per key and minute, counted in the shared store (every worker counts together when
Redis is configured); past the limit, further attempts are refused without being checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from zida.core.errors import RateLimited, Unauthenticated
from zida.stores import Store

__all__ = ["limit_failures"]


@asynccontextmanager
async def limit_failures(store: Store | None, per_minute: int, key: str, refused: str) -> AsyncIterator[None]:
    """Refuse (``RateLimited`` with the message ``refused``) once ``key`` failed ``per_minute`` times in the last
    minute; an ``Unauthenticated`` raised inside counts one failure. No store or ``per_minute`` 0: no limit."""
    if store is None or per_minute <= 0:
        yield
        return
    seen = await store.get(key)
    if seen is not None and int(seen) >= per_minute:
        # Retry-After: a minute at most (a refused attempt is not counted, so the count lapses by then)
        raise RateLimited(refused, reason="auth.too_many_failures", retry_after=60)
    try:
        yield
    except Unauthenticated:
        await store.incr(key, expires_in=60)
        raise
