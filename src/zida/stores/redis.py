"""``RedisStore``: the store shared by every worker and host that serves one database (``ZIDA_REDIS_URL``).

Every key is ``<root prefix>:<namespaces…>:<key>`` (root ``ZIDA_REDIS_PREFIX``, default ``zida``), so several
installations can share one Redis. Increment-with-expiry and compare-and-set are Lua scripts, which Redis runs
atomically; the rest are single commands.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis

from zida.stores.base import Store, StoreUnavailable, check_expiry, check_prefix

__all__ = ["RedisStore"]

# KEYS[1]: the key; ARGV[1]: the amount; ARGV[2]: the expiry in ms, set only when this call creates the key.
_INCR = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""

# KEYS[1]: the key; ARGV[1]: '1' when a value is expected, '0' when the key must be absent; ARGV[2]: the
# expected value; ARGV[3]: the new value; ARGV[4]: the expiry in ms or '' for none. Lua strings are binary-safe.
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[4] == '' then redis.call('SET', KEYS[1], ARGV[3]) else redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end
return 1
"""

# A worker must not hang on an unreachable Redis: these bound connecting, each reply and the wait for a free
# connection when ``max_connections`` are busy (a URL's own ``socket_timeout`` / ``socket_connect_timeout`` win).
_CONNECT_SECONDS = 5.0
_REPLY_SECONDS = 5.0
_POOL_WAIT_SECONDS = 5.0


def _milliseconds(expires_in: float) -> int:
    return max(1, math.ceil(expires_in * 1000))


def _where(client: Redis) -> str:
    """``host:port/db`` (or the socket path) of the client's server, without credentials, for error messages."""
    kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


class RedisStore:
    """A ``Store`` in Redis, seen at once by every process connected to the same Redis and root prefix."""

    shared = True

    def __init__(self, client: Redis, *, prefix: str = "zida") -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisStore needs a client without decode_responses: values are bytes")
        self._client = client
        self._prefix = check_prefix(prefix) + ":"
        self._root = True
        self._where = _where(client)
        self._incr_script = client.register_script(_INCR)
        self._cas_script = client.register_script(_COMPARE_AND_SET)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "zida", max_connections: int = 64) -> RedisStore:
        """A store on the Redis at ``url`` (``redis://``, ``rediss://`` or ``unix://``); connects on first use.

        At most ``max_connections`` commands are in flight; more wait for a connection (a burst of requests
        queues instead of failing).
        """
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=_POOL_WAIT_SECONDS,
            socket_connect_timeout=_CONNECT_SECONDS,
            socket_timeout=_REPLY_SECONDS,
        )
        return cls(Redis.from_pool(pool), prefix=prefix)

    @property
    def prefix(self) -> str:
        """What every key of this store (or view) starts with in Redis, ``:`` included."""
        return self._prefix

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""
        with self._errors(key):
            value = await self._client.get(self._prefix + key)
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, *, expires_in: float | None = None) -> None:
        """Store ``value`` under ``key``, for ``expires_in`` seconds (None: until deleted)."""
        check_expiry(expires_in)
        ttl = None if expires_in is None else _milliseconds(expires_in)
        with self._errors(key):
            await self._client.set(self._prefix + key, value, px=ttl)

    async def incr(self, key: str, amount: int = 1, *, expires_in: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (absent: 0) and return it; ``expires_in`` only on creation."""
        check_expiry(expires_in)
        with self._errors(key):
            if expires_in is None:
                result = await self._client.incrby(self._prefix + key, amount)
            else:
                result = await self._incr_script(keys=[self._prefix + key], args=[amount, _milliseconds(expires_in)])
        return int(result)

    async def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes, *, expires_in: float | None = None
    ) -> bool:
        """Set ``key`` to ``new`` only if it holds ``expected`` (None: only if absent); True when it was set."""
        check_expiry(expires_in)
        ttl = "" if expires_in is None else str(_milliseconds(expires_in))
        args = ["0" if expected is None else "1", b"" if expected is None else expected, new, ttl]
        with self._errors(key):
            done = await self._cas_script(keys=[self._prefix + key], args=args)
        return bool(int(done))

    async def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it is absent)."""
        with self._errors(key):
            await self._client.delete(self._prefix + key)

    def namespace(self, prefix: str) -> Store:
        """A view sharing this store's connections whose every key is prefixed with ``prefix + ":"``."""
        view = copy.copy(self)
        view._prefix = self._prefix + check_prefix(prefix) + ":"
        view._root = False
        return view

    async def close(self) -> None:
        """Close the connections (on the store itself; a namespace view's close does nothing)."""
        if self._root:
            await self._client.aclose()

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Redis's errors as the store's: unreachable or busy → StoreUnavailable, not an integer → ValueError."""
        try:
            yield
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis at {self._where} is unavailable: {exc}") from exc
        except redis_errors.ResponseError as exc:
            if "not an integer" in str(exc) or "overflow" in str(exc):
                raise ValueError(f"store key {key!r} does not hold an integer (or the result overflows)") from exc
            raise
