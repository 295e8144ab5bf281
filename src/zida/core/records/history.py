"""The operation log of records: who created, changed or deleted what, and when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

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
    other users see the logs of records they originated."""
    wanted = list(dict.fromkeys(instance_ids))
    if not wanted:
        return {}
    names = {f"i{n}": v for n, v in enumerate(wanted)}
    rows = await conn.fetch(
        "SELECT l.instance_id, l.operation_type, l.operator_user_id, l.changes, l.created_at,"
        " (SELECT fi.originator_user_id FROM form_instance fi WHERE fi.instance_id = l.instance_id) AS originator"
        " FROM form_operation_log l"
        f" WHERE l.corp_pk = :c AND l.form_pk = :f AND l.instance_id IN ({', '.join(':' + n for n in names)})"
        " ORDER BY l.id",
        {"c": actor.corp_pk, "f": form.pk, **names},
    )
    out: dict[str, list[OperationLog]] = {}
    for r in rows:
        if not actor.is_app_admin and r["originator"] != actor.user_id:
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
