"""The outbox: domain events written in the same transaction as the change they describe.

A row is ``(corp, topic, payload, created_at, delivered_at)`` (the topic in ``event_type``, the payload as
``DomainEvent.payload``); ``delivered_at`` stays NULL until a deliverer (``SELECT … FOR UPDATE SKIP LOCKED`` over the
pending index) has sent it. Nothing but the core's actions writes here, and only inside their own transaction, so an
event exists if and only if its change committed.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from zida.core.events.models import DomainEvent
from zida.db import Connection

__all__ = ["append_events", "insert_events_sql", "pending_events"]


def insert_events_sql(conn: Connection) -> str:
    """The INSERT one event row takes (parameters ``corp_pk``, ``topic``, ``payload``, ``created_at``)."""
    return (
        "INSERT INTO outbox_event (corp_pk, event_type, payload, created_at)"
        f" VALUES (:corp_pk, :topic, {conn.sql.json_param('payload')}, :created_at)"
    )


async def append_events(conn: Connection, events: Sequence[DomainEvent]) -> None:
    """Write events to the outbox (call inside the transaction of the change)."""
    if not events:
        return
    await conn.executemany(
        insert_events_sql(conn),
        [
            {
                "corp_pk": e.corp_pk,
                "topic": e.topic,
                "payload": orjson.dumps(e.payload()).decode(),
                "created_at": e.at,
            }
            for e in events
        ],
    )


async def pending_events(conn: Connection, corp_pk: int, *, after_id: int = 0, limit: int = 100) -> list[DomainEvent]:
    """Undelivered events of a corp in write order."""
    rows = await conn.fetch(
        "SELECT e.id, e.corp_pk, co.corp_id, e.event_type, e.payload, e.created_at FROM outbox_event e"
        " JOIN corp co ON co.id = e.corp_pk"
        " WHERE e.corp_pk = :c AND e.id > :after AND e.delivered_at IS NULL ORDER BY e.id LIMIT :limit",
        {"c": corp_pk, "after": after_id, "limit": limit},
    )
    out = []
    for r in rows:
        payload = orjson.loads(r["payload"])
        out.append(
            DomainEvent(
                topic=r["event_type"],
                corp_pk=r["corp_pk"],
                object_id=str(payload.get("object", "")),
                actor=payload.get("actor"),
                at=r["created_at"],
                data=payload.get("data") or {},
                app=payload.get("app"),
                event_id=r["id"],
                corp_id=r["corp_id"],
            )
        )
    return out
