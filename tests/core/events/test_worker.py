"""The delivery worker on the real database with an in-process channel: each object's events in order, a chain
never sent past its lease, what was not sent released and sent by a later round."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tests.core.events.test_delivery import BOX, POLICY, corp, db, emit, quiet_url, render, subscribe
from zida.clock import now_ms
from zida.core.events.delivery import Delivery
from zida.core.events.subscriptions import HTTP, Subscription
from zida.core.events.worker import DeliveryWorker
from zida.core.org.models import CorpRef
from zida.db import Database

pytestmark = pytest.mark.anyio

__all__ = ["corp", "db", "quiet_url"]  # the fixtures, shared with test_delivery


class SlowReceiver:
    """A channel whose receiver takes ``seconds`` per event; it records each send's start and lease end."""

    kinds = frozenset({HTTP})

    def __init__(self, db: Database, seconds: float, lease_ms: int, subscription_pk: int) -> None:
        self.db = db
        self.seconds = seconds
        self._lease_ms = lease_ms
        self.subscription_pk = subscription_pk
        self.received: list[tuple[str, int]] = []
        self.room_left: list[int] = []  # per send: what its lease had left when it started, ms

    def ready(self, subscription: Subscription) -> bool:
        return subscription.pk == self.subscription_pk

    def capacity(self, subscription: Subscription) -> int:
        return 64

    def lease_ms(self) -> int:
        return self._lease_ms

    async def send(self, subscription: Subscription, deliveries: Sequence[Delivery]) -> list[str | None]:
        for d in deliveries:
            lease_until = await self.db.fetchval("SELECT lease_until FROM event_delivery WHERE id = :id", {"id": d.pk})
            self.room_left.append(int(lease_until) - now_ms())
        await asyncio.sleep(self.seconds)
        self.received += [(d.object_key, d.payload["n"]) for d in deliveries]
        return [None] * len(deliveries)


async def test_a_chain_stops_where_its_lease_would_end_and_the_rest_follows_in_order(
    db: Database, corp: CorpRef
) -> None:
    sub = await subscribe(db, corp)
    # Each send takes 0.12 s, a lease is 2 × 0.3 s: a chain of 6 cannot go out under one lease. Three sends fit,
    # leaving the settle 0.24 s before the lease ends (with 0.08 s, a loaded machine once settled after it, and the
    # next claim sent two events again: at least once, but not the once this test counts).
    channel = SlowReceiver(db, 0.12, 300, sub.pk)
    worker = DeliveryWorker(db, BOX, render, [channel], policy=POLICY, poll_seconds=0.05, retention_days=7)
    await emit(db, corp, *[("a.x", "chain", n) for n in range(6)], ("a.x", "other", 99))
    await worker.start()
    try:
        for _ in range(200):
            if len(channel.received) >= 7:
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    assert [n for key, n in channel.received if key == "chain"] == list(range(6))  # once each, in order
    assert ("other", 99) in channel.received
    # Leases stay short (two sends' worth: a worker that dies holds its events that long), and no send started
    # after its lease ended.
    assert all(0 < room <= 600 for room in channel.room_left), channel.room_left
    delivered = await db.fetch(
        "SELECT attempts FROM event_delivery WHERE subscription_id = :s AND status = 'delivered'", {"s": sub.pk}
    )
    assert sorted(int(r["attempts"]) for r in delivered) == [1] * 7  # released events counted no attempt


class StuckReceiver(SlowReceiver):
    """A receiver that takes ``seconds`` and then fails every event; it records how many sends were out at once."""

    def __init__(self, db: Database, seconds: float, lease_ms: int, subscription_pk: int) -> None:
        super().__init__(db, seconds, lease_ms, subscription_pk)
        self.out = 0
        self.most_out = 0
        self.sends: list[int] = []

    async def send(self, subscription: Subscription, deliveries: Sequence[Delivery]) -> list[str | None]:
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        self.sends.append(len(deliveries))
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.out -= 1
        return ["the receiver timed out"] * len(deliveries)


async def test_a_failing_subscription_sends_one_probe_at_a_time(db: Database, corp: CorpRef) -> None:
    # Its retry time has come and many objects' events wait: one probe goes out, and no other while it is out (the
    # worker polls every 0.05 s and the receiver takes 0.4 s to time out).
    sub = await subscribe(db, corp)
    now = now_ms()
    await db.execute(
        "UPDATE event_subscription SET failing_since = :now, failures = 1, retry_at = :now WHERE id = :s",
        {"now": now, "s": sub.pk},
    )
    await emit(db, corp, *[("a.x", f"object-{n}", n) for n in range(8)])
    channel = StuckReceiver(db, 0.4, 2_000, sub.pk)
    worker = DeliveryWorker(db, BOX, render, [channel], policy=POLICY, poll_seconds=0.05, retention_days=7)
    await worker.start()
    try:
        for _ in range(100):
            if channel.sends:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)  # a dozen polls while the probe is out, and its outcome
    finally:
        await worker.stop()
    assert channel.sends[:1] == [1] and channel.most_out == 1, channel.sends
