"""Deliveries: the outbox's events fanned out to subscriptions, sent at least once, retried, failed, pruned.

**Fan-out** (:func:`dispatch`): reads the oldest undispatched outbox rows of corps with subscriptions, asks the
dialect's renderer for each subscription's payload (None: it does not receive that event), then, in one
transaction at a time across all workers (on PostgreSQL an advisory lock taken before the read, so one worker reads
and renders; SQLite reads and renders first and serialises the writers), inserts one
``event_delivery`` row per (subscription, event) — unique, so a repeated fan-out changes nothing — and marks the
events dispatched (``outbox_event.delivered_at``); if a subscription was added, changed or removed in between, it
writes nothing and the next round starts over. Two events of one object are written in the order their
transactions committed (the second waits on the first's row lock), so outbox ids follow commit order per object.

**Sending** (:func:`claim` → the channel → :func:`settle`): a worker claims due deliveries of one subscription with
a lease (``lease_until``, set by a conditional UPDATE: two workers or hosts never hold the same delivery, and a
worker that dies lets its leases run out); one subscription's claims run one at a time (SQLite serialises writers,
PostgreSQL takes an advisory lock), so each sees the leases of the one before. A delivery is due when its
``next_at`` has come and no earlier event of the same object is in flight or waiting for a retry; the worker sends
an object's claimed events one after the other and stops at the first that fails (or when another send would not
fit in the lease): each object's events arrive in commit order.

**Retries** (:func:`settle`):

* ``dingtalk`` schedule (registered through DingTalk's ``register_call_back``): a failed push is retried at +10 s
  and +30 s (``ZIDA_CALLBACK_RETRY_SECONDS``); after that it is ``failed`` and listed by the failed-list APIs.
* ``persistent`` schedule (bundle, admin API, Stream): the subscription is marked failing and backs off — 10 s,
  30 s, 1, 2, 5 min (at most ``ZIDA_EVENTS_MAX_BACKOFF_SECONDS``) — sending one probe at a time (per worker: the next
  when the last one's outcome is known) until its receiver answers; then everything pending flows again in order.
  An event still undelivered after ``ZIDA_EVENTS_RETRY_WINDOW_SECONDS`` (default a day) becomes ``failed``.

**Retention** (:func:`prune`): deliveries still pending past the retry window fail (a Stream client that never
reconnected); dispatched outbox rows, and undispatched ones of corps without subscriptions, are
deleted ``ZIDA_EVENTS_RETENTION_DAYS`` (default 7) after they were written; delivered deliveries that long after
delivery; failed ones that long after they failed (read from the failed list or not).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from zida.core.events.models import DomainEvent
from zida.core.events.subscriptions import DINGTALK_SCHEDULE, Subscription
from zida.db import Connection, Database, Row

__all__ = [
    "BACKOFF_SECONDS",
    "DELIVERED",
    "FAILED",
    "FAN_OUT",
    "PENDING",
    "Delivery",
    "Rendered",
    "RetryPolicy",
    "claim",
    "delivery_counts",
    "dispatch",
    "event_key",
    "find_deliveries",
    "mark_failures_read",
    "prune",
    "redeliver",
    "release",
    "settle",
    "waiting",
]

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
BACKOFF_SECONDS = (10, 30, 60, 120, 300)
FAN_OUT = 500  # events of one corp fanned out per dispatch transaction
_CANDIDATES = 4  # due deliveries a claim reads per delivery it may lease (some are behind their object's earlier one)
_DISPATCH_LOCK = 0x5A1DA0E7  # pg_advisory_xact_lock key: one fan-out at a time across workers and hosts
_CLAIM_LOCK = 0x5A1DC1A1 << 32  # + a subscription's id: its claims one at a time
# "Still pending" in statements that find deliveries by id. Not written ``status = 'pending'``: PostgreSQL would then
# consider the partial indexes on pending deliveries, and with statistics taken while few were pending it scans one of
# them whole for every id instead of using the primary key (O(pending) per row: minutes under a backlog).
_STILL_PENDING = "status NOT IN ('delivered', 'failed')"


@dataclass(frozen=True, slots=True)
class Rendered:
    """An event as one subscription receives it: its type name, ordering key and plaintext JSON."""

    tag: str
    object_key: str
    payload: dict[str, Any]


Renderer = Callable[[DomainEvent, Subscription], Rendered | None]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one subscription, as a worker sends it."""

    pk: int
    subscription_pk: int
    corp_pk: int
    event_id: int
    tag: str
    object_key: str
    payload: dict[str, Any]
    attempts: int
    status: str
    next_at: int
    last_error: str | None
    event_time: int
    created_at: int
    finished_at: int | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failed sends are retried (``ZIDA_CALLBACK_RETRY_SECONDS`` and the ``ZIDA_EVENTS_*`` settings)."""

    dingtalk_retries: tuple[float, ...] = (10.0, 30.0)
    max_backoff_seconds: float = 300.0
    retry_window_seconds: float = 86400.0

    def backoff_ms(self, failures: int) -> int:
        """The persistent schedule's wait after ``failures`` consecutive failures."""
        step = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS)) - 1] if failures > 0 else 0
        return int(min(step, self.max_backoff_seconds) * 1000)


def event_key(corp_id: str, event_id: int) -> str:
    """The stable id of an event (DingTalk's ``eventId``: 32 hex digits), the same on every redelivery."""
    return hashlib.sha256(f"{corp_id}:{event_id}".encode()).hexdigest()[:32]


def _event(row: Row, corp_id: str) -> DomainEvent:
    payload = orjson.loads(row["payload"])
    return DomainEvent(
        topic=row["event_type"],
        corp_pk=int(row["corp_pk"]),
        object_id=str(payload.get("object", "")),
        actor=payload.get("actor"),
        at=int(row["created_at"]),
        data=payload.get("data") or {},
        app=payload.get("app"),
        event_id=int(row["id"]),
        corp_id=corp_id,
    )


async def waiting(conn: Connection, corp_pks: Iterable[int]) -> bool:
    """Whether any of these corps has undispatched events (a cheap read before :func:`dispatch`'s transaction)."""
    for corp_pk in corp_pks:
        if await conn.fetchval(
            "SELECT id FROM outbox_event WHERE corp_pk = :c AND delivered_at IS NULL LIMIT 1", {"c": corp_pk}
        ):
            return True
    return False


async def dispatch(db: Database, subscriptions: Callable[[Connection], Any], render: Renderer, now: int) -> int:
    """Fan out each corp's oldest undispatched events (up to ``FAN_OUT``) to the subscriptions
    ``subscriptions(conn)`` loads; returns how many events were dispatched (0 when another worker is dispatching or
    nothing is waiting).

    On PostgreSQL the advisory lock comes first, so a worker that cannot have it reads and renders nothing (the lock
    holds back no other writer); on SQLite the events are read and rendered before the write transaction, so the
    single write lock is not held while Python renders. Should another process fan out the same events, the inserts
    find its rows (``ON CONFLICT DO NOTHING``) and the events are marked once."""
    if db.sql.name == "postgresql":
        async with db.transaction() as tx:
            if not await tx.fetchval("SELECT pg_try_advisory_xact_lock(:k)", {"k": _DISPATCH_LOCK}):
                return 0
            fan_out = await _render_waiting(tx, subscriptions, render, now)
            return 0 if fan_out is None else await _write_fan_out(tx, fan_out, now)
    fan_out = await _render_waiting(db, subscriptions, render, now)
    if fan_out is None:
        return 0
    async with db.transaction() as tx:
        return await _write_fan_out(tx, fan_out, now)


@dataclass(frozen=True, slots=True)
class _FanOut:
    """What one dispatch writes: the events read (their ``rows``), their ``deliveries`` as insert parameters, and the
    (id, updated_at) of the subscriptions they were rendered for."""

    corp_pks: list[int]
    rows: list[Row]
    deliveries: list[dict[str, Any]]
    rendered_for: list[tuple[int, int]]


async def _render_waiting(
    conn: Connection, subscriptions: Callable[[Connection], Any], render: Renderer, now: int
) -> _FanOut | None:
    """Read each corp's oldest undispatched events and render them for its subscriptions; None: nothing to do."""
    subs: list[Subscription] = await subscriptions(conn)
    if not subs:
        return None
    by_corp: dict[int, list[Subscription]] = {}
    for sub in subs:
        by_corp.setdefault(sub.corp_pk, []).append(sub)
    rows: list[Row] = []
    for corp_pk in by_corp:  # each corp's oldest first, through ix_outbox_event_undispatched
        rows += await conn.fetch(
            "SELECT id, corp_pk, event_type, payload, created_at FROM outbox_event"
            " WHERE corp_pk = :c AND delivered_at IS NULL ORDER BY id LIMIT :n",
            {"c": corp_pk, "n": FAN_OUT},
        )
    if not rows:
        return None
    deliveries = []
    for row in rows:
        event = _event(row, by_corp[int(row["corp_pk"])][0].corp_id)
        for sub in by_corp[event.corp_pk]:
            if event.event_id <= sub.start_event_id:
                continue
            rendered = render(event, sub)
            if rendered is None:
                continue
            deliveries.append(
                {
                    "s": sub.pk,
                    "c": sub.corp_pk,
                    "e": event.event_id,
                    "tag": rendered.tag,
                    "key": rendered.object_key,
                    "payload": orjson.dumps(rendered.payload).decode(),
                    "next": max(now, sub.retry_at or 0) if sub.failing_since else now,
                    "at": event.at,
                    "now": now,
                }
            )
    return _FanOut(sorted(by_corp), rows, deliveries, sorted((sub.pk, sub.updated_at) for sub in subs))


async def _write_fan_out(tx: Connection, fan_out: _FanOut, now: int) -> int:
    """Insert the deliveries and mark the events dispatched, in ``tx``, unless a subscription changed since they
    were rendered (then 0)."""
    corps = ", ".join(str(int(c)) for c in fan_out.corp_pks)
    current = await tx.fetch(f"SELECT id, updated_at FROM event_subscription WHERE corp_pk IN ({corps}) ORDER BY id")
    if [(int(r["id"]), int(r["updated_at"])) for r in current] != fan_out.rendered_for:
        return 0  # rendered for subscriptions that changed meanwhile: the next round renders again
    deliveries = fan_out.deliveries
    if deliveries and tx.sql.name == "postgresql":  # one statement for the batch: no per-row round
        await tx.execute(
            "INSERT INTO event_delivery (subscription_id, corp_pk, event_id, tag, object_key, payload, status,"
            " attempts, next_at, lease_until, event_time, created_at) SELECT s, c, e, tag, k, p, 'pending', 0,"
            " nx, 0, at, :now FROM unnest(CAST(:s AS bigint[]), CAST(:c AS bigint[]), CAST(:e AS bigint[]),"
            " CAST(:tag AS text[]), CAST(:k AS text[]), CAST(:p AS text[]), CAST(:nx AS bigint[]),"
            " CAST(:at AS bigint[])) AS u(s, c, e, tag, k, p, nx, at)"
            " ON CONFLICT (subscription_id, event_id) DO NOTHING",
            {
                "now": now,
                **{
                    column: [d[field] for d in deliveries]
                    for column, field in (
                        ("s", "s"),
                        ("c", "c"),
                        ("e", "e"),
                        ("tag", "tag"),
                        ("k", "key"),
                        ("p", "payload"),
                        ("nx", "next"),
                        ("at", "at"),
                    )
                },
            },
        )
    elif deliveries:
        await tx.executemany(
            "INSERT INTO event_delivery (subscription_id, corp_pk, event_id, tag, object_key, payload, status,"
            " attempts, next_at, lease_until, event_time, created_at) VALUES (:s, :c, :e, :tag, :key, :payload,"
            " 'pending', 0, :next, 0, :at, :now) ON CONFLICT (subscription_id, event_id) DO NOTHING",
            deliveries,
        )
    rows = fan_out.rows
    await _update_by_ids(tx, "outbox_event", "delivered_at = :now", "", [int(r["id"]) for r in rows], {"now": now})
    return len(rows)


async def _update_by_ids(
    tx: Connection, table: str, assignments: str, guard: str, ids: Sequence[int], params: dict[str, Any]
) -> None:
    """``UPDATE table SET assignments WHERE id IN ids guard``: one statement on PostgreSQL (an array), one text run
    for each id on SQLite (in process: no round trips to save, and a text whose cost the database layer knows)."""
    if not ids:
        return
    if tx.sql.name == "postgresql":
        await tx.execute(f"UPDATE {table} SET {assignments} WHERE id = ANY(:ids){guard}", {**params, "ids": list(ids)})
    else:
        await tx.executemany(
            f"UPDATE {table} SET {assignments} WHERE id = :id{guard}", [{**params, "id": pk} for pk in ids]
        )


_DELIVERY_COLUMNS = (
    "id, subscription_id, corp_pk, event_id, tag, object_key, payload, attempts, status, next_at, last_error,"
    " event_time, created_at, finished_at"
)


def _delivery(row: Row) -> Delivery:
    return Delivery(
        pk=int(row["id"]),
        subscription_pk=int(row["subscription_id"]),
        corp_pk=int(row["corp_pk"]),
        event_id=int(row["event_id"]),
        tag=row["tag"],
        object_key=row["object_key"],
        payload=orjson.loads(row["payload"]),
        attempts=int(row["attempts"]),
        status=row["status"],
        next_at=int(row["next_at"]),
        last_error=row["last_error"],
        event_time=int(row["event_time"]),
        created_at=int(row["created_at"]),
        finished_at=row["finished_at"],
    )


async def claim(
    db: Database, subscription: Subscription, limit: int, now: int, lease_ms: int, per_object: int = 1
) -> list[Delivery]:
    """Lease up to ``limit`` due deliveries of a subscription in event order: for each object the first
    ``per_object`` of its pending events, and only while none before them is in flight or waiting for a retry (a
    failing persistent subscription: only its probe, once its retry time has come). The caller sends each object's
    events in this order, one after the other."""
    if subscription.failing_since is not None and subscription.schedule != DINGTALK_SCHEDULE:
        if (subscription.retry_at or 0) > now:
            return []
        limit = 1
    # Candidates: the oldest due deliveries not in flight, a bounded range of ix_event_delivery_due read outside the
    # transaction (only a hint: its cost does not grow with a backlog, and the write lock is not held for it).
    candidates = await db.fetch(
        "SELECT object_key FROM event_delivery WHERE subscription_id = :s AND status = 'pending' AND next_at <= :now"
        " AND lease_until <= :now ORDER BY next_at LIMIT :n",
        {"s": subscription.pk, "now": now, "n": limit * _CANDIDATES},
    )
    objects = list(dict.fromkeys(r["object_key"] for r in candidates))
    if not objects:
        return []
    marks = ", ".join(f":o{i}" for i in range(len(objects)))
    params: dict[str, Any] = {f"o{i}": key for i, key in enumerate(objects)}
    params["s"] = subscription.pk
    async with db.transaction() as tx:
        postgresql = tx.sql.name == "postgresql"
        if postgresql:  # one claim per subscription at a time across workers and hosts (SQLite: one writer)
            await _lock_subscription(tx, subscription.pk)
        # Their objects' pending events (ids and state only), read in the transaction that leases them: it sees every
        # earlier claim's leases and every settled outcome.
        rows = await tx.fetch(
            "SELECT id, object_key, event_id, next_at, lease_until FROM event_delivery WHERE subscription_id = :s"
            f" AND status = 'pending' AND object_key IN ({marks}) ORDER BY object_key, event_id",
            params,
        )
        picked: list[Row] = []
        taken: dict[str, int] = {}
        blocked: set[str] = set()
        for row in rows:
            key = row["object_key"]
            if key in blocked or taken.get(key, 0) >= per_object:
                continue
            if int(row["next_at"]) > now or int(row["lease_until"]) > now:
                blocked.add(key)  # an earlier event in flight or waiting for its retry: the later ones wait
                continue
            picked.append(row)
            taken[key] = taken.get(key, 0) + 1
        picked.sort(key=lambda r: int(r["event_id"]))
        ids = [int(r["id"]) for r in picked[:limit]]
        if not ids:
            return []
        values: dict[str, Any]
        if postgresql:
            among, values = "= ANY(:ids)", {"ids": ids}
        else:
            among = "IN (" + ", ".join(f":i{n}" for n in range(len(ids))) + ")"
            values = {f"i{n}": pk for n, pk in enumerate(ids)}
        leased = await tx.fetch(
            f"UPDATE event_delivery SET lease_until = :until WHERE id {among} AND {_STILL_PENDING}"
            f" AND lease_until <= :now RETURNING {_DELIVERY_COLUMNS}",
            {"until": now + lease_ms, "now": now, **values},
        )
    return sorted((_delivery(r) for r in leased), key=lambda d: d.event_id)


async def _lock_subscription(tx: Connection, subscription_pk: int) -> None:
    """PostgreSQL: hold the subscription's claim lock until the transaction ends (claims, and the settles that
    touch other deliveries than their own, take it: they never deadlock on each other's rows)."""
    await tx.fetchval("SELECT pg_advisory_xact_lock(:k)", {"k": _CLAIM_LOCK + int(subscription_pk)})


async def release(db: Database, delivery_pks: Iterable[int]) -> None:
    """Give up the leases of deliveries that were not sent (a Stream connection closed): due again at once."""
    ids = [int(pk) for pk in delivery_pks]
    if ids:
        async with db.transaction() as tx:
            await _update_by_ids(tx, "event_delivery", "lease_until = 0", f" AND {_STILL_PENDING}", ids, {})


async def settle(
    db: Database,
    subscription: Subscription,
    delivered: Sequence[Delivery],
    failed: Sequence[tuple[Delivery, str]],
    now: int,
    policy: RetryPolicy,
) -> None:
    """Record the outcome of sends to one subscription: delivered ones are done; failed ones are retried on the
    subscription's schedule or become ``failed`` (module docstring)."""
    if not delivered and not failed:
        return
    # Each outcome writes the subscription's row before its deliveries' rows, the order in which deleting the
    # subscription locks them (the row, then its deliveries by cascade): the two never wait on each other crosswise.
    async with db.transaction() as tx:
        if tx.sql.name == "postgresql" and (failed or subscription.failing_since is not None):
            await _lock_subscription(tx, subscription.pk)  # it may update pending deliveries a claim could take
        if delivered:
            await tx.execute(
                "UPDATE event_subscription SET last_delivered_at = :now, failing_since = NULL, failures = 0,"
                " retry_at = NULL WHERE id = :s",
                {"now": now, "s": subscription.pk},
            )
            await _update_by_ids(
                tx,
                "event_delivery",
                "status = 'delivered', attempts = attempts + 1, finished_at = :now, lease_until = 0, last_error = NULL",
                f" AND {_STILL_PENDING}",
                [d.pk for d in delivered],
                {"now": now},
            )
            if subscription.failing_since is not None and subscription.schedule != DINGTALK_SCHEDULE:
                # The receiver is back: what waited for it is due now, in order.
                await tx.execute(
                    "UPDATE event_delivery SET next_at = :now WHERE subscription_id = :s AND status = 'pending'"
                    " AND next_at > :now",
                    {"now": now, "s": subscription.pk},
                )
        if not failed:
            return
        if subscription.schedule == DINGTALK_SCHEDULE:
            await tx.execute(
                "UPDATE event_subscription SET last_error = :err WHERE id = :s",
                {"err": failed[-1][1][:1000], "s": subscription.pk},
            )
            for delivery, error in failed:
                attempt = delivery.attempts + 1
                retry = attempt - 1 < len(policy.dingtalk_retries)
                await tx.execute(
                    "UPDATE event_delivery SET attempts = :a, lease_until = 0, last_error = :err, status = :st,"
                    f" next_at = :next, finished_at = :fin WHERE id = :id AND {_STILL_PENDING}",
                    {
                        "a": attempt,
                        "err": error[:1000],
                        "st": PENDING if retry else FAILED,
                        "next": now + int(policy.dingtalk_retries[attempt - 1] * 1000) if retry else now,
                        "fin": None if retry else now,
                        "id": delivery.pk,
                    },
                )
            return
        failures = 1 if subscription.failing_since is None else subscription.failures + 1
        retry_at = now + policy.backoff_ms(failures)
        window_ms = int(policy.retry_window_seconds * 1000)
        await tx.execute(
            "UPDATE event_subscription SET failing_since = COALESCE(failing_since, :now), failures = :f,"
            " retry_at = :r, last_error = :err WHERE id = :s",
            {"now": now, "f": failures, "r": retry_at, "err": failed[-1][1][:1000], "s": subscription.pk},
        )
        for delivery, error in failed:
            expired = now - delivery.created_at >= window_ms
            await tx.execute(
                "UPDATE event_delivery SET attempts = attempts + 1, lease_until = 0, last_error = :err, status = :st,"
                f" next_at = :next, finished_at = :fin WHERE id = :id AND {_STILL_PENDING}",
                {
                    "err": error[:1000],
                    "st": FAILED if expired else PENDING,
                    "next": retry_at,
                    "fin": now if expired else None,
                    "id": delivery.pk,
                },
            )
        # Nothing else goes to a failing receiver before its probe: the pending wait for the retry time.
        await tx.execute(
            "UPDATE event_delivery SET next_at = :r WHERE subscription_id = :s AND status = 'pending' AND next_at < :r",
            {"r": retry_at, "s": subscription.pk},
        )
        await tx.execute(
            "UPDATE event_delivery SET status = 'failed', finished_at = :now, last_error = COALESCE(last_error,"
            " 'not delivered within the retry window') WHERE subscription_id = :s AND status = 'pending'"
            " AND created_at <= :oldest",
            {"now": now, "s": subscription.pk, "oldest": now - window_ms},
        )


async def delivery_counts(conn: Connection, subscription_pks: Sequence[int]) -> dict[int, dict[str, int]]:
    """``{subscription: {pending, delivered, failed}}`` (deliveries still retained)."""
    out: dict[int, dict[str, int]] = {pk: {PENDING: 0, DELIVERED: 0, FAILED: 0} for pk in subscription_pks}
    if not subscription_pks:
        return out
    ids = ", ".join(str(int(pk)) for pk in subscription_pks)
    rows = await conn.fetch(
        f"SELECT subscription_id, status, COUNT(*) AS n FROM event_delivery WHERE subscription_id IN ({ids})"
        " GROUP BY subscription_id, status"
    )
    for r in rows:
        out[int(r["subscription_id"])][r["status"]] = int(r["n"])
    return out


async def find_deliveries(
    conn: Connection,
    subscription_pks: Sequence[int],
    *,
    limit: int,
    unread_only: bool = False,
    after_pk: int = 0,
    begin: int | None = None,
    end: int | None = None,
    status: str = FAILED,
) -> list[Delivery]:
    """Deliveries of some subscriptions in one state (default failed), oldest first; ``unread_only``: not yet
    returned by a consuming failed-list read; ``begin``/``end``: event time bounds (ms, inclusive)."""
    if not subscription_pks:
        return []
    ids = ", ".join(str(int(pk)) for pk in subscription_pks)
    where = f"subscription_id IN ({ids}) AND status = :st AND id > :after"
    params: dict[str, Any] = {"st": status, "after": after_pk, "n": limit}
    if unread_only:
        where += " AND failure_read = :no"
        params["no"] = False
    if begin is not None:
        where += " AND event_time >= :b"
        params["b"] = begin
    if end is not None:
        where += " AND event_time <= :e"
        params["e"] = end
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM event_delivery WHERE {where} ORDER BY id LIMIT :n", params
    )
    return [_delivery(r) for r in rows]


async def mark_failures_read(
    conn: Connection, subscription_pks: Sequence[int], delivery_pks: Iterable[int]
) -> list[int]:
    """Mark failed deliveries as read (consumed from a failed list); returns the ids that were failed and unread."""
    pks = [int(pk) for pk in delivery_pks]
    if not pks or not subscription_pks:
        return []
    subs = ", ".join(str(int(pk)) for pk in subscription_pks)
    ids = ", ".join(str(pk) for pk in pks)
    rows = await conn.fetch(
        f"UPDATE event_delivery SET failure_read = :yes WHERE id IN ({ids}) AND subscription_id IN ({subs})"
        " AND status = 'failed' AND failure_read = :no RETURNING id",
        {"yes": True, "no": False},
    )
    return sorted(int(r["id"]) for r in rows)


async def redeliver(db: Database, subscription: Subscription, delivery_pks: Sequence[int] | None, now: int) -> int:
    """Send failed deliveries of a subscription again (``None``: all of them) from now on; returns how many."""
    where = "subscription_id = :s AND status = 'failed'"
    if delivery_pks is not None:
        if not delivery_pks:
            return 0
        where += " AND id IN (" + ", ".join(str(int(pk)) for pk in delivery_pks) + ")"
    async with db.transaction() as tx:
        await tx.execute(  # the subscription's row first, as settle and deleting it lock them
            "UPDATE event_subscription SET failing_since = NULL, failures = 0, retry_at = NULL WHERE id = :s",
            {"s": subscription.pk},
        )
        count = await tx.execute(
            "UPDATE event_delivery SET status = 'pending', attempts = 0, next_at = :now, lease_until = 0,"
            f" finished_at = NULL, failure_read = :no, created_at = :now WHERE {where}",
            {"s": subscription.pk, "now": now, "no": False},
        )
    return int(count)


async def prune(db: Database, now: int, retention_days: float, retry_window_seconds: float | None = None) -> int:
    """Delete what the retention period has passed (module docstring), and fail deliveries still pending past the
    retry window (a Stream client that never came back: never tried, so never failed by ``settle``); returns the
    rows deleted."""
    oldest = now - int(retention_days * 86_400_000)
    async with db.transaction() as tx:
        if retry_window_seconds is not None:
            await tx.execute(
                "UPDATE event_delivery SET status = 'failed', finished_at = :now, last_error = COALESCE(last_error,"
                " 'not delivered within the retry window') WHERE status = 'pending' AND created_at <= :oldest"
                " AND lease_until <= :now",
                {"now": now, "oldest": now - int(retry_window_seconds * 1000)},
            )
        deleted = await tx.execute(
            "DELETE FROM outbox_event WHERE created_at < :o AND (delivered_at IS NOT NULL"
            " OR corp_pk NOT IN (SELECT corp_pk FROM event_subscription))",
            {"o": oldest},
        )
        deleted += await tx.execute(
            "DELETE FROM event_delivery WHERE status <> 'pending' AND finished_at < :o", {"o": oldest}
        )
    return int(deleted)
