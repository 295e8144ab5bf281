"""Rate limits: calls per second per credential and API, and per corp, counted in the shared store.

Each call adds one to the counter of its (credential, API, second) — the API is the route's path template, so
``/v1.0/yida/forms/instances/{id}`` is one API whatever the id — and, with a corp limit, to its (corp, second).
Past the limit the call is refused with ``RateLimited`` (``rate.api_qps`` / ``rate.corp_qps``) before it does
anything else: no database statement, one store increment per counter (in memory for one process; with
``ZIDA_REDIS_URL`` one budget for every worker and host sharing that Redis).

Windows are whole seconds (fixed windows, as "N calls per second" reads): a client may make N calls at the end of
one second and N at the start of the next. A refused call counts too (retrying at once does not help). The limit of
a credential is its own ``rate_limit`` when it has one (0: none), else ``ZIDA_RATE_LIMIT_QPS`` (20, the platform's
documented limit for a standard-edition app; 0: none); the corp's is ``ZIDA_RATE_LIMIT_CORP_QPS`` (0: none). Calls
without a caller (token requests: limited by ``ZIDA_TOKEN_FAILURES_PER_MINUTE``) and signed-in users' calls (no
credential) count only toward the corp's limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request

from zida.core.errors import RateLimited
from zida.core.principals import Principal
from zida.observability.metrics import rate_limited
from zida.stores import Store

__all__ = ["RateLimiter"]


class RateLimiter:
    """Counts calls in ``store`` and refuses those over the limits (module docstring)."""

    def __init__(self, store: Store, per_api_qps: int, corp_qps: int, clock: Callable[[], float] = time.time) -> None:
        self.store = store.namespace("rate")
        self.per_api_qps = per_api_qps
        self.corp_qps = corp_qps
        self.clock = clock

    async def check(self, principal: Principal | None, api: str) -> None:
        """Count one call of ``principal`` to ``api``; ``RateLimited`` when it is over a limit."""
        if principal is None:
            return
        second = int(self.clock())
        limit = self.per_api_qps if principal.rate_limit is None else principal.rate_limit
        if limit > 0 and principal.credential_pk is not None:
            calls = await self.store.incr(f"{principal.credential_pk}|{api}|{second}", expires_in=2)
            if calls > limit:
                rate_limited("api")
                raise RateLimited(
                    f"credential {principal.client_id} made more than {limit} calls to {api} in one second",
                    reason="rate.api_qps",
                    retry_after=1,
                )
        if self.corp_qps > 0:
            calls = await self.store.incr(f"corp:{principal.corp_pk}|{second}", expires_in=2)
            if calls > self.corp_qps:
                rate_limited("corp")
                raise RateLimited(
                    f"corp {principal.corp_id} made more than {self.corp_qps} calls in one second",
                    reason="rate.corp_qps",
                    retry_after=1,
                )

    async def hook(self, request: Request, principal: Principal | None) -> None:
        """The dialects' rate-limit hook (``zida.app_state.RateLimitHook``): the API is the matched route."""
        route = request.scope.get("route")
        await self.check(principal, getattr(route, "path", None) or request.url.path)

    @property
    def active(self) -> bool:
        """Whether any limit applies by default (a credential's own limit needs the hook too)."""
        return self.per_api_qps > 0 or self.corp_qps > 0
