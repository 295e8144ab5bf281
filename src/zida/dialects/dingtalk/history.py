"""Change records and comments (yida_1_0): operationsLogs/query, remarks, remarks/query.

``operationLogMap`` has one entry per changed component per operation (``CREATE``, ``UPDATE``) and one
entry without a component for ``DELETE``; ``gmtModified`` is ``yyyy-MM-dd HH:mm:ss`` in ``ZIDA_TIMEZONE``
and ``preText``/``currentText`` are the values as the form shows them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.routing import Route

from zida.core.apps.models import Field
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument
from zida.core.records.history import list_operation_logs
from zida.core.records.queries import check_record_form
from zida.core.records.remarks import list_remarks, save_remark
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.processes import id_value
from zida.dialects.dingtalk.records import directory_of
from zida.dialects.dingtalk.shapes import Directory, form_data, referenced_in

__all__ = ["routes"]


def _id_list(call: Call, name: str) -> list[str]:
    value = call.raw(name, "body")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{name} must be an array of strings", reason="argument.invalid", param=name)
    if len(value) > 100:
        raise InvalidArgument(f"{name} takes at most 100 ids", reason="batch.too_many", param=name)
    return value


def _text(f: Field | None, value: Any, directory: Directory) -> str:
    if value is None:
        return ""
    if f is None:
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    shown = form_data((f,), {f.field_id: value}, directory).get(f.field_id)
    if isinstance(shown, str):
        return shown
    if isinstance(shown, list) and all(isinstance(v, str | int | float) for v in shown):
        return ",".join(str(v) for v in shown)
    return orjson.dumps(shown).decode()


@endpoint("Yida.Form.Read")
async def list_operation_logs_route(call: Call) -> dict[str, Any]:
    """ListOperationLogs: ``{operationLogMap: {formInstanceId: [entry, …]}}``."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    logs = await list_operation_logs(call.zida.db, actor, form, _id_list(call, "formInstanceIdList"))
    users: set[str] = {log.operator_user_id for entries in logs.values() for log in entries}
    depts: set[int] = set()
    for entries in logs.values():
        for log in entries:
            for key, change in log.changes.items():
                f = form.field(key)
                if f is not None:
                    for side in ("old", "new"):
                        referenced_in((f,), {key: change.get(side)}, users, depts)
    directory = await directory_of(call.zida, actor, users, depts)
    zone = ZoneInfo(call.zida.settings.timezone)
    out: dict[str, list[dict[str, Any]]] = {}
    for instance_id, entries in logs.items():
        for log in entries:
            operator = directory.users.get(log.operator_user_id)
            common = {
                "operationType": log.operation,
                "gmtModified": datetime.fromtimestamp(log.created_at / 1000, zone).strftime("%Y-%m-%d %H:%M:%S"),
                "operator": {
                    "userId": log.operator_user_id,
                    "displayName": operator.name if operator else log.operator_user_id,
                    "displayEnName": (operator.name_en or operator.name) if operator else log.operator_user_id,
                    "personalPhoto": "",
                    "status": "A",
                },
            }
            if not log.changes:
                out.setdefault(instance_id, []).append(common)
            for key, change in log.changes.items():
                f = form.field(key)
                out.setdefault(instance_id, []).append(
                    {
                        **common,
                        "fieldId": key,
                        "componentName": f.label_zh if f else key,
                        "componentType": f.component if f else "",
                        "preText": _text(f, change.get("old"), directory),
                        "currentText": _text(f, change.get("new"), directory),
                    }
                )
    return {"operationLogMap": out}


@endpoint("Yida.Comment.Write")
async def save_form_remark(call: Call) -> dict[str, Any]:
    """SaveFormRemark: a comment (``replyId`` answers one; ``atUserId`` = comma-separated userIds)."""
    actor = await call.actor(where="body")
    reply = call.raw("replyId", "body")
    reply_id = id_value("replyId", reply) if reply not in (None, "") else None  # an int64, as remark ids are
    at = tuple(u.strip() for u in (call.text("atUserId", "body") or "").split(",") if u.strip())
    instance_id = call.text("formInstanceId", "body", required=True) or ""
    await check_record_form(call.zida.db, actor, instance_id, call.text("formUuid", "body"))
    remark_id = await save_remark(
        call.zida.db,
        actor,
        instance_id,
        call.text("content", "body", required=True) or "",
        reply_id=reply_id,
        at_user_ids=at,
    )
    return {"result": remark_id}


@endpoint("Yida.Form.Read")
async def list_form_remarks(call: Call) -> dict[str, Any]:
    """ListFormRemarks: ``{formRemarkVoMap: {formInstanceId: [comment, …]}}``."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    remarks = await list_remarks(call.zida.db, actor, form, _id_list(call, "formInstanceIdList"))
    return {
        "formRemarkVoMap": {
            instance_id: [
                {
                    "id": r.id,
                    "formInstId": r.instance_id,
                    "content": r.content,
                    "creator": r.creator_user_id,
                    "gmtCreate": r.created_at,
                    "replyId": r.reply_id,
                    "replyUserId": r.reply_user_id or "",
                    "atUserId": ",".join(r.at_user_ids),
                    "files": "[]",
                    "images": "[]",
                }
                for r in items
            ]
            for instance_id, items in remarks.items()
        }
    }


def routes() -> list[Route]:
    """Change-record and comment routes."""
    return [
        Route("/v1.0/yida/forms/operationsLogs/query", list_operation_logs_route, methods=["POST"]),
        Route("/v1.0/yida/forms/remarks", save_form_remark, methods=["POST"]),
        Route("/v1.0/yida/forms/remarks/query", list_form_remarks, methods=["POST"]),
    ]
