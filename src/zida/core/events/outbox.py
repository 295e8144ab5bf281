"""The outbox: events written in the same transaction as the change they describe.

A row is ``(corp, event_type, payload, created_at, delivered_at)``; ``delivered_at`` stays NULL until a
deliverer (``SELECT … FOR UPDATE SKIP LOCKED`` over the pending index) has sent it. Nothing but the core's
actions writes here, and only inside their own transaction, so an event exists if and only if its change
committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from zida.db import Connection

__all__ = ["OutboxEvent", "append_events", "pending_events"]


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event of a corp: its type (``bpms_instance_change``…) and JSON payload."""

    corp_pk: int
    event_type: str
    payload: dict[str, Any]
    created_at: int
    event_id: int = 0
    delivered_at: int | None = None


async def append_events(conn: Connection, events: Sequence[OutboxEvent]) -> None:
    """Write events to the outbox (call inside the transaction of the change)."""
    if not events:
        return
    await conn.executemany(
        "INSERT INTO outbox_event (corp_pk, event_type, payload, created_at)"
        f" VALUES (:corp_pk, :event_type, {conn.sql.json_param('payload')}, :created_at)",
        [
            {
                "corp_pk": e.corp_pk,
                "event_type": e.event_type,
                "payload": orjson.dumps(e.payload).decode(),
                "created_at": e.created_at,
            }
            for e in events
        ],
    )


async def pending_events(conn: Connection, corp_pk: int, *, after_id: int = 0, limit: int = 100) -> list[OutboxEvent]:
    """Undelivered events of a corp in write order."""
    rows = await conn.fetch(
        "SELECT id, corp_pk, event_type, payload, created_at, delivered_at FROM outbox_event"
        " WHERE corp_pk = :c AND id > :after AND delivered_at IS NULL ORDER BY id LIMIT :limit",
        {"c": corp_pk, "after": after_id, "limit": limit},
    )
    return [
        OutboxEvent(
            corp_pk=r["corp_pk"],
            event_type=r["event_type"],
            payload=orjson.loads(r["payload"]),
            created_at=r["created_at"],
            event_id=r["id"],
            delivered_at=r["delivered_at"],
        )
        for r in rows
    ]
