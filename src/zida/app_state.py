"""The running server's shared objects (settings, database, key box, token service, shared store, hooks, events)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from zida.core.access.sessions import SessionService
from zida.core.access.tokens import TokenService
from zida.core.principals import Principal
from zida.crypto import SecretBox
from zida.db import Database
from zida.settings import Settings
from zida.stores import Store

if TYPE_CHECKING:
    from zida.core.events.worker import DeliveryWorker
    from zida.outbound import OutboundClient

__all__ = ["RateLimitHook", "Zida", "no_rate_limit"]

# Called by every dialect once the caller is known (None: an unauthenticated route); raises RateLimited to refuse.
RateLimitHook = Callable[[Request, Principal | None], Awaitable[None]]


async def no_rate_limit(request: Request, principal: Principal | None) -> None:
    """The default hook: no limit."""


@dataclass
class Zida:
    """Everything a request handler needs from the process."""

    settings: Settings
    db: Database
    box: SecretBox
    tokens: TokenService
    store: Store
    sessions: SessionService
    rate_limit: RateLimitHook = no_rate_limit
    # Events out: outbound HTTP (callbacks), the delivery worker and this worker's Stream connections (None when
    # ZIDA_EVENTS is off).
    http_client: OutboundClient | None = None
    events: DeliveryWorker | None = None
    stream_hub: Any = None

    def wake_events(self) -> None:
        """Let the delivery worker run now (a subscription changed, a client connected)."""
        if self.events is not None:
            self.events.wake()
