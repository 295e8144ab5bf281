"""Stores: small shared state behind one namespaced interface — memory for one process, Redis for many.

``open_store(settings)`` gives the process's store: a ``RedisStore`` when ``ZIDA_REDIS_URL`` is set (several
workers or hosts serving one database), else a ``MemoryStore``. Components take a ``namespace`` of it
(``store.namespace("caches")``, ``store.namespace("ratelimit")``…) so their keys never collide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zida.settings import Settings
from zida.stores.base import Store, StoreUnavailable
from zida.stores.memory import MemoryStore

if TYPE_CHECKING:
    from zida.stores.redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "Store", "StoreUnavailable", "open_store"]


def open_store(settings: Settings) -> Store:
    """The process's store: Redis at ``settings.redis_url`` under ``settings.redis_prefix``, else memory.

    Nothing connects yet: an unreachable Redis shows on first use, as ``StoreUnavailable``.
    """
    if settings.redis_url:
        from zida.stores.redis import RedisStore

        return RedisStore.from_url(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryStore()


def __getattr__(name: str) -> Any:
    """``RedisStore`` on first use: importing the Redis client costs ~0.1 s that memory-only commands skip."""
    if name == "RedisStore":
        from zida.stores.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
