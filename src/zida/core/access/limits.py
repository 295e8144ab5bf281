"""Rate limits: calls per second per credential and API, and per corp, counted in the shared store.

Each call counts toward its (credential, API, second) — the API is the route's path template, so
``/v1.0/yida/forms/instances/{id}`` is one API whatever the id — and, with a corp limit, toward its (corp, second).
Past the limit the call is refused with ``RateLimited`` (``rate.api_qps`` / ``rate.corp_qps``) before it does
anything else: no database statement. Counts live in the store (in memory for one process; with ``ZIDA_REDIS_URL``
one budget for every worker and host sharing that Redis).

**Leases.** A process does not go to the store for every call: it takes a share of a window's budget at once — a
twentieth of the limit (at least one call) — and admits calls from its share until it is spent, then takes another.
A call therefore costs a dictionary lookup, and one store increment (one Redis round trip) per share. The store's
counter is the sum of the shares taken, so the calls admitted in a window never exceed the limit, across every
worker; a share a process took and did not use is lost to the others for the rest of that second, so a client
spread over N processes may be refused up to N twentieths of the limit early (one call each at limits under 40).
Choice: admitting too many would break the budget the operator set; refusing a little early within one second
is what a client of a rate-limited platform already retries.

Windows are whole seconds (fixed windows, as "N calls per second" reads): a client may make N calls at the end of
one second and N at the start of the next. The limit of a credential is its own ``rate_limit`` when it has one (0:
none), else ``ZIDA_RATE_LIMIT_QPS`` (20, the platform's documented limit for a standard-edition app; 0: none); the
corp's is ``ZIDA_RATE_LIMIT_CORP_QPS`` (0: none). Calls without a caller (token requests: limited by
``ZIDA_TOKEN_FAILURES_PER_MINUTE``) and signed-in users' calls (no credential) count only toward the corp's limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.requests import Request

from zida.core.errors import RateLimited
from zida.core.principals import Principal
from zida.observability.metrics import rate_limited
from zida.stores import Store

__all__ = ["RateLimiter"]


# A process takes a window's budget this many shares at a time (module docstring).
LEASE_PARTS = 20


class _Lease:
    """What this process may still admit of one counter's window without asking the store (``taking``: a share
    being taken right now, which the other calls of the moment wait for instead of each taking one)."""

    __slots__ = ("left", "second", "spent", "taking")

    def __init__(self, second: int) -> None:
        self.second = second
        self.left = 0
        self.spent = False  # the window's budget is gone: refused without asking the store again
        self.taking: asyncio.Future[None] | None = None


class RateLimiter:
    """Counts calls in ``store`` and refuses those over the limits (module docstring)."""

    def __init__(self, store: Store, per_api_qps: int, corp_qps: int, clock: Callable[[], float] = time.time) -> None:
        self.store = store.namespace("rate")
        self.per_api_qps = per_api_qps
        self.corp_qps = corp_qps
        self.clock = clock
        self._leases: dict[str, _Lease] = {}

    async def _admit(self, counter: str, second: int, limit: int) -> bool:
        """Whether one more call fits ``counter``'s budget of ``limit`` in ``second``, from this process's share
        (taken from the store when spent, by one call at a time: the calls arriving meanwhile wait for it)."""
        while True:
            lease = self._leases.get(counter)
            if lease is None or lease.second < second:
                if len(self._leases) > 10_000:  # counters of past windows: dropped now and then
                    self._leases = {k: v for k, v in self._leases.items() if v.second >= second}
                lease = self._leases[counter] = _Lease(second)
            elif lease.second > second:
                return False  # the clock stepped back: this window is over for us
            if lease.left > 0:
                lease.left -= 1
                return True
            if lease.spent:
                return False
            if lease.taking is not None:
                await asyncio.shield(lease.taking)
                continue
            taking = lease.taking = asyncio.get_running_loop().create_future()
            try:
                share = max(1, limit // LEASE_PARTS)
                taken = await self.store.incr(f"{counter}|{second}", share, expires_in=2)
                granted = min(share, limit - (taken - share))  # what was left of the budget when we asked
                if granted > 0:
                    lease.left += granted
                else:
                    lease.spent = True
            finally:
                lease.taking = None
                if not taking.done():
                    taking.set_result(None)

    async def check(self, principal: Principal | None, api: str) -> None:
        """Count one call of ``principal`` to ``api``; ``RateLimited`` when it is over a limit."""
        if principal is None:
            return
        second = int(self.clock())
        limit = self.per_api_qps if principal.rate_limit is None else principal.rate_limit
        credential = principal.credential_pk
        if limit > 0 and credential is not None and not await self._admit(f"{credential}|{api}", second, limit):
            rate_limited("api")
            raise RateLimited(
                f"credential {principal.client_id} made more than {limit} calls to {api} in one second",
                reason="rate.api_qps",
                retry_after=1,
            )
        if self.corp_qps > 0 and not await self._admit(f"corp:{principal.corp_pk}", second, self.corp_qps):
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
