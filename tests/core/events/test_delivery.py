"""Deliveries at the core level, on the real database: fan-out (only subscribed, only after the subscription, once),
claims (per-object order, leases that two workers never share), both retry schedules, redelivery and pruning."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import SECRET_KEY, fresh_database, opened
from zida.clock import now_ms
from zida.core.access.credentials import create_credential
from zida.core.events import delivery
from zida.core.events.delivery import Rendered, RetryPolicy
from zida.core.events.models import DomainEvent
from zida.core.events.outbox import append_events
from zida.core.events.subscriptions import (
    DINGTALK_SCHEDULE,
    HTTP,
    Subscription,
    SubscriptionSpec,
    load_subscriptions,
    register_subscription,
)
from zida.core.org.actions import CorpSpec, upsert_corp
from zida.core.org.models import CorpRef
from zida.crypto import SecretBox
from zida.db import Connection, Database

pytestmark = pytest.mark.anyio

BOX = SecretBox(SECRET_KEY)
ACTOR = "credential:test"
AES = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
POLICY = RetryPolicy(dingtalk_retries=(10.0, 30.0), max_backoff_seconds=300.0, retry_window_seconds=3600.0)


def render(event: DomainEvent, sub: Subscription) -> Rendered | None:
    """A minimal renderer: topic ``a.*`` events keyed by their object, for subscriptions tagged ``a``."""
    if not event.topic.startswith("a.") or "a" not in sub.tags:
        return None
    return Rendered("a", event.object_id, {"topic": event.topic, "object": event.object_id, "n": event.data["n"]})


@pytest.fixture(scope="module")
def quiet_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own: the servers other tests leave running deliver every subscription of the session
    database, and would claim what these tests claim."""
    with fresh_database(tmp_path_factory.mktemp("delivery")) as url:
        yield url


@pytest.fixture
async def db(quiet_url: str) -> AsyncIterator[Database]:
    async with opened(quiet_url) as database:
        yield database


@pytest.fixture
async def corp(db: Database) -> AsyncIterator[CorpRef]:
    async with db.transaction() as tx:
        ref, _ = await upsert_corp(tx, BOX, CorpSpec("ev" + secrets.token_hex(4), "投递"), actor=ACTOR, now=now_ms())
    yield ref


async def subscribe(
    db: Database, corp: CorpRef, schedule: str = "persistent", tags: tuple[str, ...] = ("a",)
) -> Subscription:
    issued = await create_credential(db, corp, ["*"], actor=ACTOR)
    spec = SubscriptionSpec(HTTP, tags, "http://127.0.0.1:9/x", "token-123", AES, schedule)
    pk = await register_subscription(db, BOX, corp, issued.credential.client_id, spec, replace=False, actor=ACTOR)
    return await current(db, corp, pk)


async def current(db: Database, corp: CorpRef, pk: int) -> Subscription:
    return next(s for s in await load_subscriptions(db, BOX, corp.pk) if s.pk == pk)


async def emit(db: Database, corp: CorpRef, *events: tuple[str, str, int]) -> None:
    async with db.transaction() as tx:
        await append_events(
            tx,
            [
                DomainEvent(topic=t, corp_pk=corp.pk, object_id=o, actor=None, at=now_ms(), data={"n": n})
                for t, o, n in events
            ],
        )


async def fan_out(db: Database, corp: CorpRef) -> int:
    async def subs(conn: Connection) -> list[Subscription]:
        return await load_subscriptions(conn, BOX, corp.pk)

    total = 0
    while (n := await delivery.dispatch(db, subs, render, now_ms())) > 0:
        total += n
    return total


async def test_fan_out_is_filtered_ordered_and_once(db: Database, corp: CorpRef) -> None:
    await emit(db, corp, ("a.x", "o1", 0))  # before the subscription: never delivered
    sub = await subscribe(db, corp)
    other = await subscribe(db, corp, tags=("b",))
    await emit(db, corp, ("a.x", "o1", 1), ("b.x", "o1", 2), ("a.y", "o2", 3), ("a.z", "o1", 4))
    assert await fan_out(db, corp) >= 4
    assert await fan_out(db, corp) == 0  # dispatched once
    claimed = await delivery.claim(db, sub, 10, now_ms(), 30_000)
    # The oldest pending event of each object: o1's first and o2's.
    assert [d.payload["n"] for d in claimed] == [1, 3]
    assert await delivery.claim(db, sub, 10, now_ms(), 30_000) == []  # leased, and o1's next waits for its first
    assert await delivery.claim(db, await current(db, corp, other.pk), 10, now_ms(), 30_000) == []
    await delivery.settle(db, sub, claimed, [], now_ms(), POLICY)
    assert [d.payload["n"] for d in await delivery.claim(db, sub, 10, now_ms(), 30_000)] == [4]


async def test_a_dispatch_without_the_fan_out_lock_reads_and_renders_nothing(db: Database, corp: CorpRef) -> None:
    """PostgreSQL: while another process fans out (it holds the lock), a dispatch returns 0 before reading or
    rendering anything; once the lock is free it fans out."""
    if db.sql.name != "postgresql":
        pytest.skip("SQLite reads and renders before its write transaction (one writer at a time anyway)")
    await subscribe(db, corp)
    await emit(db, corp, ("a.x", "o1", 1), ("a.x", "o2", 2))
    rendered: list[str] = []

    def counting(event: DomainEvent, sub: Subscription) -> Rendered | None:
        rendered.append(event.topic)
        return render(event, sub)

    async def subs(conn: Connection) -> list[Subscription]:
        return await load_subscriptions(conn, BOX, corp.pk)

    async with db.transaction() as other:
        assert await other.fetchval("SELECT pg_try_advisory_xact_lock(:k)", {"k": delivery._DISPATCH_LOCK})
        assert await delivery.dispatch(db, subs, counting, now_ms()) == 0
        assert rendered == []
    assert await delivery.dispatch(db, subs, counting, now_ms()) >= 2  # the credential's events too
    assert [t for t in rendered if t.startswith("a.")] == ["a.x", "a.x"]


async def test_a_lease_is_held_by_one_claimer_until_it_runs_out(db: Database, corp: CorpRef) -> None:
    sub = await subscribe(db, corp)
    await emit(db, corp, ("a.x", "o1", 1))
    await fan_out(db, corp)
    now = now_ms()
    first = await delivery.claim(db, sub, 10, now, 1_000)
    assert len(first) == 1
    assert await delivery.claim(db, sub, 10, now + 999, 1_000) == []
    again = await delivery.claim(db, sub, 10, now + 1_001, 1_000)  # the first claimer died: its lease ran out
    assert [d.pk for d in again] == [first[0].pk]


async def test_dingtalk_schedule_retries_twice_then_fails(db: Database, corp: CorpRef) -> None:
    sub = await subscribe(db, corp, schedule=DINGTALK_SCHEDULE)
    await emit(db, corp, ("a.x", "o1", 1))
    await fan_out(db, corp)
    now = now_ms()
    for attempt, wait_ms in ((1, 10_000), (2, 30_000)):
        (d,) = await delivery.claim(db, sub, 10, now, 5_000)
        await delivery.settle(db, sub, [], [(d, "http statusCode is:503")], now, POLICY)
        assert await delivery.claim(db, sub, 10, now + wait_ms - 1, 5_000) == []
        now += wait_ms
        assert attempt == d.attempts + 1
    (d,) = await delivery.claim(db, sub, 10, now, 5_000)
    await delivery.settle(db, sub, [], [(d, "timeout")], now, POLICY)
    (failed,) = await delivery.find_deliveries(db, [sub.pk], limit=10)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "timeout")
    assert await delivery.claim(db, sub, 10, now + 10**9, 5_000) == []
    async with db.transaction() as tx:
        assert await delivery.mark_failures_read(tx, [sub.pk], [failed.pk]) == [failed.pk]
        assert await delivery.mark_failures_read(tx, [sub.pk], [failed.pk]) == []  # read once
    assert await delivery.find_deliveries(db, [sub.pk], limit=10, unread_only=True) == []
    assert await delivery.redeliver(db, sub, None, now) == 1
    assert [d.pk for d in await delivery.claim(db, sub, 10, now, 5_000)] == [failed.pk]


async def test_persistent_schedule_backs_off_probes_and_resumes(db: Database, corp: CorpRef) -> None:
    sub = await subscribe(db, corp)
    await emit(db, corp, ("a.x", "o1", 1), ("a.x", "o2", 2), ("a.x", "o3", 3))
    await fan_out(db, corp)
    now = now_ms()
    claimed = await delivery.claim(db, sub, 10, now, 5_000)
    assert len(claimed) == 3
    await delivery.settle(db, sub, [], [(claimed[0], "down")], now, POLICY)
    await delivery.settle(db, await current(db, corp, sub.pk), [], [(d, "down") for d in claimed[1:]], now, POLICY)
    failing = await current(db, corp, sub.pk)
    assert failing.failing_since == now and failing.failures == 2 and failing.retry_at == now + 30_000
    assert await delivery.claim(db, failing, 10, now + 29_999, 5_000) == []
    probe = await delivery.claim(db, failing, 10, now + 30_000, 5_000)
    assert [d.payload["n"] for d in probe] == [1]  # one probe, the oldest
    await delivery.settle(db, failing, probe, [], now + 30_001, POLICY)
    healthy = await current(db, corp, sub.pk)
    assert healthy.failing_since is None and healthy.failures == 0
    rest = await delivery.claim(db, healthy, 10, now + 30_001, 5_000)
    assert [d.payload["n"] for d in rest] == [2, 3]
    # Past the retry window, what is still undelivered fails.
    await delivery.settle(db, healthy, [], [(rest[0], "down")], now + 3_600_000 + 1, POLICY)
    states = {d.payload["n"]: d.status for d in await delivery.find_deliveries(db, [sub.pk], limit=10, status="failed")}
    assert states == {2: "failed", 3: "failed"}


async def test_backoff_is_capped() -> None:
    assert [POLICY.backoff_ms(n) for n in range(1, 8)] == [10_000, 30_000, 60_000, 120_000, 300_000, 300_000, 300_000]
    assert RetryPolicy(max_backoff_seconds=20).backoff_ms(5) == 20_000


async def test_prune_deletes_what_retention_passed(db: Database, corp: CorpRef) -> None:
    sub = await subscribe(db, corp)
    await emit(db, corp, ("a.x", "o1", 1))
    await fan_out(db, corp)
    (d,) = await delivery.claim(db, sub, 10, now_ms(), 5_000)
    await delivery.settle(db, sub, [d], [], now_ms(), POLICY)
    assert await delivery.find_deliveries(db, [sub.pk], limit=10, status="delivered") != []
    # Make this corp's rows two days old (other tests' rows stay recent).
    old = now_ms() - 2 * 86_400_000
    async with db.transaction() as tx:
        await tx.execute("UPDATE outbox_event SET created_at = :t WHERE corp_pk = :c", {"t": old, "c": corp.pk})
        await tx.execute("UPDATE event_delivery SET finished_at = :t WHERE corp_pk = :c", {"t": old, "c": corp.pk})
    assert await delivery.prune(db, now_ms(), 1.0) >= 2
    assert await delivery.find_deliveries(db, [sub.pk], limit=10, status="delivered") == []
    assert await db.fetchval("SELECT count(*) FROM outbox_event WHERE corp_pk = :c", {"c": corp.pk}) == 0


async def test_event_key_is_stable() -> None:
    assert delivery.event_key("corp", 7) == delivery.event_key("corp", 7) != delivery.event_key("corp", 8)
    assert len(delivery.event_key("corp", 7)) == 32


async def test_never_tried_deliveries_fail_after_the_retry_window(db: Database, corp: CorpRef) -> None:
    sub = await subscribe(db, corp)
    await emit(db, corp, ("a.x", "o1", 1))
    await fan_out(db, corp)
    async with db.transaction() as tx:  # waiting two hours for a Stream client that never came back
        await tx.execute("UPDATE event_delivery SET created_at = :t WHERE corp_pk = :c",
                         {"t": now_ms() - 7_200_000, "c": corp.pk})  # fmt: skip
    await delivery.prune(db, now_ms(), 7.0, retry_window_seconds=3600.0)
    (failed,) = await delivery.find_deliveries(db, [sub.pk], limit=10)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 0, "not delivered within the retry window")


async def test_several_events_of_an_object_are_claimed_in_order(db: Database, corp: CorpRef) -> None:
    sub = await subscribe(db, corp)
    await emit(db, corp, ("a.x", "o1", 1), ("a.x", "o2", 2), ("a.x", "o1", 3), ("a.x", "o1", 4))
    await fan_out(db, corp)
    now = now_ms()
    first = await delivery.claim(db, sub, 10, now, 30_000, per_object=2)
    assert [d.payload["n"] for d in first] == [1, 2, 3]  # o1's first two, o2's one
    assert await delivery.claim(db, sub, 10, now, 30_000, per_object=2) == []  # o1's third waits for them
    o1 = [d for d in first if d.object_key == "o1"]
    await delivery.settle(db, sub, [o1[0]], [(o1[1], "down")], now, POLICY)  # the second failed: nothing after it
    failing = await current(db, corp, sub.pk)
    assert await delivery.claim(db, failing, 10, now, 30_000, per_object=2) == []


async def test_a_backlog_larger_than_the_statistics_saw_drains_in_order(db: Database, corp: CorpRef) -> None:
    """Statistics taken while nothing was pending (a healthy system), then a receiver falls far behind: every
    event still goes out once, each object's in order, claims bounded whatever the backlog."""
    sub = await subscribe(db, corp)
    await db.execute("ANALYZE")
    objects, per = 150, 6
    await emit(db, corp, *[("a.x", f"o{o}", n) for n in range(per) for o in range(objects)])
    assert await fan_out(db, corp) >= objects * per
    sent: dict[str, list[int]] = {}
    claims = 0
    while batch := await delivery.claim(db, sub, 64, now_ms(), 30_000, per_object=4):
        claims += 1
        assert len(batch) <= 64
        for d in batch:
            sent.setdefault(d.object_key, []).append(d.payload["n"])
        await delivery.settle(db, sub, batch, [], now_ms(), POLICY)
    assert sent == {f"o{o}": list(range(per)) for o in range(objects)}  # all, once, in order
    assert claims >= objects * per // 64


@pytest.fixture
async def healthy_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own, for statistics taken as on a healthy system."""
    with fresh_database(tmp_path) as url:
        async with opened(url) as database:
            yield database


async def test_deliveries_found_by_id_use_the_primary_key_under_a_backlog(healthy_db: Database) -> None:
    """The by-id statements (settle, release, lease) must not let the planner pick a partial index of pending
    deliveries: with ``status = 'pending'`` and statistics that saw none pending, PostgreSQL scans such an index
    whole for every id (O(backlog) per row)."""
    db = healthy_db
    async with db.transaction() as tx:
        ref, _ = await upsert_corp(tx, BOX, CorpSpec("ev" + secrets.token_hex(4), "投递"), actor=ACTOR, now=now_ms())
    sub = await subscribe(db, ref)
    await emit(db, ref, *[("a.x", f"h{n % 300}", n) for n in range(3000)])
    await fan_out(db, ref)
    await db.execute("UPDATE event_delivery SET status = 'delivered', finished_at = 1")
    await db.execute("ANALYZE")
    await emit(db, ref, *[("a.x", f"p{n % 40}", n) for n in range(800)])
    await fan_out(db, ref)
    pk = await db.fetchval("SELECT MAX(id) FROM event_delivery WHERE subscription_id = :s", {"s": sub.pk})
    statement = f"UPDATE event_delivery SET lease_until = 0 WHERE id = {int(pk)} AND {delivery._STILL_PENDING}"
    async with db.transaction() as tx:
        if tx.sql.name == "postgresql":
            plan = "\n".join(r[0] for r in await tx.fetch(f"EXPLAIN {statement}"))
            assert "event_delivery_pkey" in plan, plan
            assert "ix_event_delivery" not in plan, plan
        else:
            plan = "\n".join(str(tuple(r)) for r in await tx.fetch(f"EXPLAIN QUERY PLAN {statement}"))
            assert "INTEGER PRIMARY KEY" in plan, plan
