"""The delivery worker: one per server process, fanning out the outbox and sending deliveries through channels.

Every ``ZIDA_EVENTS_POLL_SECONDS`` (default 0.1 s; at once when woken: a Stream client connected, a fan-out made
new deliveries) it

1. fans out waiting outbox events (``zida.core.events.delivery.dispatch``; first a cheap read, so an idle server
   writes nothing),
2. for each subscription a channel of this process can serve now (HTTP: always; Stream: while one of its clients
   is connected here) and that has room (at most ``Channel.capacity`` sends in flight per subscription), claims
   due deliveries with a lease (at most ``_CLAIM`` at once; more claims follow while these are in flight) and
   sends them in a task of their own — a slow receiver holds only its own subscription's sends, never the API or
   another receiver —, each object's events one after the other (in steps: the first of every object together,
   then the next ones), then settles the outcome (retries, failures),
3. every ten minutes fails what stayed pending past the retry window and deletes what the retention period has
   passed.

Several workers and hosts run the same loop against one database: fan-out is one transaction at a time, and claims
are leases, so no delivery is sent by two of them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from zida.clock import now_ms
from zida.core.errors import Unavailable
from zida.core.events.delivery import (
    FAN_OUT,
    Delivery,
    Renderer,
    RetryPolicy,
    claim,
    dispatch,
    prune,
    release,
    settle,
    waiting,
)
from zida.core.events.subscriptions import PERSISTENT_SCHEDULE, Subscription, load_subscriptions
from zida.crypto import SecretBox
from zida.db import Connection, Database
from zida.observability.metrics import count_deliveries

__all__ = ["NOT_SENT", "Channel", "DeliveryWorker"]

log = logging.getLogger("zida.events")

_PRUNE_EVERY_MS = 600_000
# A channel's outcome for a delivery it could not even try (its Stream connection closed): due again at once, no
# attempt counted.
NOT_SENT = ""
# Events of one object claimed at once (sent one after the other): fewer rounds for an approval's chain of events.
_PER_OBJECT = 10
# A claim's lease, in sends' worth (``Channel.lease_ms``): an object's later events are sent only while one more send
# fits in what is left of it (the others are released), so a lapsed lease never lets another worker send them too.
_CHAIN_LEASE = 2
# Deliveries one claim takes (a channel's capacity can be larger: the next claim goes out while these are in flight).
# Each round costs several statements whatever it claims: under API load, 256 a claim delivered fewer Stream events
# per second than an approvals load wrote (BENCHMARKS.md, 2026-12-04, sixth session).
_CLAIM = 1024


class Channel(Protocol):
    """A way of sending deliveries (HTTP pushes, Stream connections) for some kinds of subscription."""

    kinds: frozenset[str]

    def ready(self, subscription: Subscription) -> bool:
        """Whether this process can send to the subscription now."""
        ...

    def capacity(self, subscription: Subscription) -> int:
        """How many of its deliveries may be in flight at once."""
        ...

    def lease_ms(self) -> int:
        """How long a claimed delivery stays leased (longer than a send may take)."""
        ...

    async def send(self, subscription: Subscription, deliveries: Sequence[Delivery]) -> list[str | None]:
        """Send deliveries; for each, None when the receiver took it, ``NOT_SENT``, or why it did not take it."""
        ...


class DeliveryWorker:
    """The loop of the module docstring (``start``/``stop`` from the server's lifespan)."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        render: Renderer,
        channels: Sequence[Channel],
        *,
        policy: RetryPolicy,
        poll_seconds: float,
        retention_days: float,
    ) -> None:
        self.db = db
        self.box = box
        self.render = render
        self.channels = {kind: channel for channel in channels for kind in channel.kinds}
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.retention_days = retention_days
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, int] = {}
        self._stopping = False
        self._pruned_at = 0

    def wake(self) -> None:
        """Run the loop now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name="zida-event-delivery")

    async def stop(self) -> None:
        """Stop the loop; sends in flight finish (or their leases run out)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sends:
            await asyncio.wait(list(self._sends), timeout=5)
        for task in list(self._sends):
            task.cancel()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            busy = False
            self._wake.clear()  # before the round: a send finishing during it wakes the next one at once
            try:
                busy = await self.round()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Unavailable as exc:  # the database is restarting: one line, not a stack, each backed-off round
                failures += 1
                log.warning("event delivery round failed (%d in a row): %s", failures, exc)
            except Exception:
                failures += 1
                log.exception("event delivery round failed (%d in a row)", failures)
            if busy:
                await asyncio.sleep(0)
                continue
            pause = self.poll_seconds if failures == 0 else min(30.0, self.poll_seconds * 2**failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _subscriptions(self, conn: Connection) -> list[Subscription]:
        return await load_subscriptions(conn, self.box)

    async def round(self) -> bool:
        """One pass: fan out, claim and send, prune; True when there is more to do at once."""
        subs = await load_subscriptions(self.db, self.box)
        if not subs:
            return False
        now = now_ms()
        more = False
        if await waiting(self.db, sorted({s.corp_pk for s in subs})):
            dispatched = await dispatch(self.db, self._subscriptions, self.render, now)
            more = dispatched >= FAN_OUT
            if dispatched:
                subs = await load_subscriptions(self.db, self.box)
        for sub in subs:
            channel = self.channels.get(sub.kind)
            if channel is None or not channel.ready(sub):
                continue
            if self._in_flight.get(sub.pk) and sub.failing_since is not None and sub.schedule == PERSISTENT_SCHEDULE:
                continue  # a failing subscription: its probe is still out, the next waits for its outcome
            room = channel.capacity(sub) - self._in_flight.get(sub.pk, 0)
            if room <= 0:
                continue
            limit = min(room, _CLAIM)
            lease_ms = channel.lease_ms() * _CHAIN_LEASE
            deliveries = await claim(self.db, sub, limit, now, lease_ms, _PER_OBJECT)
            if not deliveries:
                continue
            if len(deliveries) == limit < room:
                more = True  # a full claim and room for another: claim again at once
            self._in_flight[sub.pk] = self._in_flight.get(sub.pk, 0) + len(deliveries)
            task = asyncio.create_task(self._send(channel, sub, deliveries, now + lease_ms, len(deliveries) == limit))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        if now - self._pruned_at >= _PRUNE_EVERY_MS:
            self._pruned_at = now
            await prune(self.db, now, self.retention_days, self.policy.retry_window_seconds)
        return more

    async def _send_batch(self, channel: Channel, sub: Subscription, batch: Sequence[Delivery]) -> list[str | None]:
        try:
            return await channel.send(sub, batch)
        except Exception as exc:  # a channel's bug must not lose the deliveries: they are retried
            log.exception("sending events to subscription %s failed", sub.pk)
            return [f"internal error: {type(exc).__name__}"] * len(batch)

    async def _send_in_order(
        self, channel: Channel, sub: Subscription, deliveries: Sequence[Delivery], lease_until: int
    ) -> list[tuple[Delivery, str | None]]:
        """Send each object's events in order, in steps: the first event of every object in one batch, then the
        second of those whose first the receiver took, and so on (an object's next event waits for the receiver to
        take the previous one). After an object's event fails, or once another step would not fit in the lease,
        its later events are ``NOT_SENT``."""
        chains: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            chains.setdefault(delivery.object_key, []).append(delivery)
        out: list[tuple[Delivery, str | None]] = []
        live = list(chains.values())
        step = 0
        while live:
            if step and now_ms() + channel.lease_ms() > lease_until:
                out.extend((later, NOT_SENT) for chain in live for later in chain[step:])
                break
            results = await self._send_batch(channel, sub, [chain[step] for chain in live])
            following = []
            for chain, result in zip(live, results, strict=True):
                out.append((chain[step], result))
                if result is not None:
                    out.extend((later, NOT_SENT) for later in chain[step + 1 :])
                elif len(chain) > step + 1:
                    following.append(chain)
            live = following
            step += 1
        return out

    async def _send(
        self, channel: Channel, sub: Subscription, deliveries: Sequence[Delivery], lease_until: int, full: bool
    ) -> None:
        try:
            pairs = await self._send_in_order(channel, sub, deliveries, lease_until)
            delivered = [d for d, error in pairs if error is None]
            failed = [(d, error) for d, error in pairs if error]
            count_deliveries(sub.kind, [d.event_time for d in delivered], len(failed), now_ms())
            await release(self.db, [d.pk for d, error in pairs if error == NOT_SENT])
            await settle(self.db, sub, delivered, failed, now_ms(), self.policy)
        except Exception:
            log.exception("settling deliveries of subscription %s failed (their leases will run out)", sub.pk)
        finally:
            left = self._in_flight.get(sub.pk, 0) - len(deliveries)
            if left > 0:
                self._in_flight[sub.pk] = left
            else:
                self._in_flight.pop(sub.pk, None)
            if full:
                self._wake.set()  # a backlog: claim again at once (else at the next poll, with a larger batch)
