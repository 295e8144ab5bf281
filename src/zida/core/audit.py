"""The audit log: one row per change of a corp's directory, apps, forms and credentials, written with its event.

Every action of ``zida.core.org.actions``, ``zida.core.apps.actions`` and ``zida.core.access.credentials`` ends in
:func:`record_change`, inside its own transaction: the ``audit_log`` row and the domain event (topic
``<kind>.<action>``, e.g. ``user.deactivated``; ``zida.core.events.models``) carry the same ``changes`` —
``{name: {"old": …, "new": …}}`` for what changed, ``{name: {"new": …}}`` for every field of a created object,
``{name: {"old": …}}`` for every field of a deleted one. A changed secret (a credential's or an app's secret, a
password, an org secret) appears only as ``{"changed": true}``: never a secret or a hash of one. Unchanged input
records nothing.

``actor`` says who made the change in the words of the caller: ``credential:<client id>`` for the admin API,
``bundle:<file>`` for ``zida load``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from zida.core.events.models import DomainEvent
from zida.core.events.outbox import append_events
from zida.db import Connection

__all__ = [
    "SECRET_CHANGED",
    "AuditEntry",
    "Outcome",
    "changed_fields",
    "created_fields",
    "list_audit",
    "record_change",
    "removed_fields",
]

SECRET_CHANGED: Mapping[str, bool] = {"changed": True}


class Outcome(StrEnum):
    """What an action did to its object."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: {"old", "new"}}`` for every name of ``new`` whose value differs from ``old``'s."""
    return {name: {"old": old.get(name), "new": value} for name, value in new.items() if old.get(name) != value}


def created_fields(new: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of a created object as ``{name: {"new": value}}``."""
    return {name: {"new": value} for name, value in new.items()}


def removed_fields(old: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of a deleted object as ``{name: {"old": value}}``."""
    return {name: {"old": value} for name, value in old.items()}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change."""

    entry_id: int
    corp_pk: int
    actor: str | None
    action: str
    object_kind: str
    object_id: str
    created_at: int
    changes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        """The topic of the domain event written with it (``user.created``…)."""
        return f"{self.object_kind}.{self.action}"


async def record_change(
    tx: Connection,
    *,
    corp_pk: int,
    kind: str,
    object_id: str,
    action: str,
    changes: Mapping[str, Any],
    actor: str | None,
    at: int,
    app: str | None = None,
) -> None:
    """Inside the change's transaction: its audit row and its domain event ``<kind>.<action>``."""
    await tx.execute(
        "INSERT INTO audit_log (corp_pk, actor, action, object_kind, object_id, changes, created_at)"
        f" VALUES (:c, :actor, :action, :kind, :object, {tx.sql.json_param('changes')}, :at)",
        {
            "c": corp_pk,
            "actor": actor,
            "action": action,
            "kind": kind,
            "object": object_id,
            "changes": orjson.dumps(changes).decode(),
            "at": at,
        },
    )
    await append_events(
        tx,
        [
            DomainEvent(
                topic=f"{kind}.{action}",
                corp_pk=corp_pk,
                object_id=object_id,
                actor=actor,
                at=at,
                data=changes,
                app=app,
            )
        ],
    )


async def list_audit(
    conn: Connection,
    corp_pk: int,
    *,
    after_id: int = 0,
    limit: int = 100,
    kind: str | None = None,
    object_id: str | None = None,
) -> list[AuditEntry]:
    """A corp's recorded changes in write order, optionally of one kind of object (and one object)."""
    where = "corp_pk = :c AND id > :after"
    params: dict[str, Any] = {"c": corp_pk, "after": after_id, "limit": limit}
    if kind is not None:
        where += " AND object_kind = :kind"
        params["kind"] = kind
        if object_id is not None:
            where += " AND object_id = :object"
            params["object"] = object_id
    rows = await conn.fetch(
        "SELECT id, corp_pk, actor, action, object_kind, object_id, changes, created_at FROM audit_log"
        f" WHERE {where} ORDER BY id LIMIT :limit",
        params,
    )
    return [
        AuditEntry(
            entry_id=int(r["id"]),
            corp_pk=int(r["corp_pk"]),
            actor=r["actor"],
            action=r["action"],
            object_kind=r["object_kind"],
            object_id=r["object_id"],
            created_at=int(r["created_at"]),
            changes=orjson.loads(r["changes"]),
        )
        for r in rows
    ]
