"""The operation log of records: who created, changed or deleted what, and when (readable by whoever may read the
record, ``zida.core.access.policy``; a deleted record's log by app admins)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from zida.core.access import policy
from zida.core.apps.models import Form
from zida.core.principals import AppActor
from zida.db import Connection

__all__ = ["OperationLog", "list_operation_logs"]


@dataclass(frozen=True, slots=True)
class OperationLog:
    """One mutation of a record: ``CREATE``/``UPDATE``/``DELETE`` and ``{fieldId: {old, new}}``."""

    instance_id: str
    operation: str
    operator_user_id: str
    changes: dict[str, Any]
    created_at: int


async def list_operation_logs(
    conn: Connection, actor: AppActor, form: Form, instance_ids: list[str]
) -> dict[str, list[OperationLog]]:
    """Logs per record of ``form`` (oldest first). App admins see every record's log, deleted ones included;
    other users the logs of the records they may read."""
    wanted = list(dict.fromkeys(instance_ids))
    if not wanted:
        return {}
    names = {f"i{n}": v for n, v in enumerate(wanted)}
    rows = await conn.fetch(
        "SELECT l.instance_id, l.operation_type, l.operator_user_id, l.changes, l.created_at,"
        " fi.originator_user_id AS originator, fi.app_pk, fi.process_instance_id"
        " FROM form_operation_log l LEFT JOIN form_instance fi ON fi.instance_id = l.instance_id"
        f" WHERE l.corp_pk = :c AND l.form_pk = :f AND l.instance_id IN ({', '.join(':' + n for n in names)})"
        " ORDER BY l.id",
        {"c": actor.corp_pk, "f": form.pk, **names},
    )
    out: dict[str, list[OperationLog]] = {}
    readable: dict[str, bool] = {}
    for r in rows:
        if not policy.reads_deleted_history(actor):
            instance_id = r["instance_id"]
            if instance_id not in readable:
                readable[instance_id] = r["originator"] is not None and await policy.can_read(
                    conn,
                    actor,
                    app_pk=r["app_pk"],
                    record_id=instance_id,
                    originator=r["originator"],
                    is_process=r["process_instance_id"] is not None,
                )
            if not readable[instance_id]:
                continue
        out.setdefault(r["instance_id"], []).append(
            OperationLog(
                instance_id=r["instance_id"],
                operation=r["operation_type"],
                operator_user_id=r["operator_user_id"],
                changes=orjson.loads(r["changes"]),
                created_at=r["created_at"],
            )
        )
    return out
