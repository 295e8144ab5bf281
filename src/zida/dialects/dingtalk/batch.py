"""Batch and upsert routes (yida_1_0): batchSave, batch updates, batch get, batchRemove, insertOrUpdate.

Limits per call follow the platform's (spec yida-openapi §7.2, from the Yida iteration notes): with
business rules off (``noExecuteExpression: true``; for batchRemove ``executeExpression: false``) batchSave
takes 100 items and the batch updates and batchRemove 500; with rules on, synchronous calls take 50 and
asynchronous ones 100 (save), 200 (updates) or 300 (remove). Zida runs no business rules or expressions and
executes "asynchronous" calls at once, returning the ids as a synchronous call does (the platform leaves
the asynchronous reply unspecified). batchGet takes at most 100 ids.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.core import forms
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument
from zida.core.records import queries as records
from zida.dialects.dingtalk.aliases import values_from_aliases
from zida.dialects.dingtalk.errors import wire_error
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.names import PARAMS
from zida.dialects.dingtalk.records import render_items
from zida.dialects.dingtalk.search import parse_search
from zida.dialects.http import decode_json

__all__ = ["batch_limit", "routes"]

MAX_BATCH_GET = 100


def batch_limit(kind: str, *, rules: bool, asynchronous: bool) -> int:
    """The platform's per-call item limit for ``kind`` (save, update, remove)."""
    if not rules:
        return {"save": 100, "update": 500, "remove": 500}[kind]
    if not asynchronous:
        return 50
    return {"save": 100, "update": 200, "remove": 300}[kind]


def _check_size(name: str, items: list[Any], limit: int) -> None:
    if not items:
        raise InvalidArgument(f"{name}不能为空", reason="argument.missing", param=name)
    if len(items) > limit:
        raise InvalidArgument(
            f"{name} has {len(items)} items; at most {limit} are allowed per call", reason="batch.too_many", param=name
        )


def _string_list(call: Call, name: str) -> list[str]:
    value = call.raw(name, "body")
    if isinstance(value, str):
        try:
            value = decode_json(value, name, param=name)
        except InvalidArgument as exc:
            if exc.reason != "argument.bad_json":
                raise
            value = [v for v in value.split(",") if v]
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{name} must be an array of strings", reason="argument.invalid", param=name)
    return value


def _json_value(raw: Any, label: str) -> Any:
    """One record's form data in a batch (integers beyond 64 bits read exactly, as ``Call.form_data`` reads them)."""
    if isinstance(raw, str):
        return decode_json(raw, label, exact_integers=True)
    return raw


@endpoint("Yida.Form.Write")
async def batch_save_form_data(call: Call) -> dict[str, Any]:
    """BatchSaveFormData: all-or-nothing unless ``keepRunningAfterException``; ``result`` = new ids in order.

    With ``keepRunningAfterException`` the reply also carries ``failures`` (``[{index, code, message}]``,
    an extra key the SDK ignores) naming the items that were skipped.
    """
    actor = await call.actor(where="body")
    items = (
        _string_list(call, "formDataJsonList")
        if isinstance(call.raw("formDataJsonList", "body"), str)
        else (call.raw("formDataJsonList", "body") or [])
    )
    if not isinstance(items, list):
        raise InvalidArgument("formDataJsonList must be an array of JSON strings", reason="argument.invalid")
    limit = batch_limit(
        "save",
        rules=not call.flag("noExecuteExpression", False, "body"),
        asynchronous=call.flag("asynchronousExecution", False, "body"),
    )
    _check_size("formDataJsonList", items, limit)
    keep_running = call.flag("keepRunningAfterException", False, "body")
    values: list[Any] = []
    for index, raw in enumerate(items):
        try:
            values.append(_json_value(raw, f"formDataJsonList[{index}]"))
        except InvalidArgument as exc:
            if not keep_running:
                raise
            values.append(exc)  # the core reports it as this item's failure
    result = await forms.save_records(
        call.zida.db, actor, call.text("formUuid", "body", required=True) or "", values, keep_running=keep_running
    )
    body: dict[str, Any] = {"result": result.ids}
    if keep_running:
        body["failures"] = [
            {"index": f.index, "code": wire_error(f.error)[1], "message": f.error.render(PARAMS)}
            for f in result.failures
        ]
    return body


def _update_limit(call: Call) -> int:
    return batch_limit(
        "update",
        rules=not call.flag("noExecuteExpression", False, "body"),
        asynchronous=call.flag("asynchronousExecution", False, "body"),
    )


@endpoint("Yida.Form.Write")
async def batch_update_by_instance_id(call: Call) -> dict[str, Any]:
    """BatchUpdateFormDataByInstanceId: the same ``updateFormDataJson`` applied to every listed record."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    ids = _string_list(call, "formInstanceIdList")
    _check_size("formInstanceIdList", ids, _update_limit(call))
    values = call.form_data("updateFormDataJson", "body", required=True)
    updated = await forms.update_records(
        call.zida.db,
        actor,
        form,
        [(i, dict(values) if isinstance(values, dict) else values) for i in ids],
        ignore_empty=call.flag("ignoreEmpty", False, "body"),
        use_latest_version=call.flag("useLatestFormSchemaVersion", False, "body"),
    )
    return {"result": updated}


@endpoint("Yida.Form.Write")
async def batch_update_by_instance_map(call: Call) -> dict[str, Any]:
    """BatchUpdateFormDataByInstanceMap: ``{formInstanceId: update}`` (each update an object or JSON text)."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    mapping = call.form_data("updateFormDataJsonMap", "body", required=True)
    if not isinstance(mapping, dict):
        raise InvalidArgument(
            "updateFormDataJsonMap must be an object of {formInstanceId: update}",
            reason="argument.invalid",
            param="updateFormDataJsonMap",
        )
    _check_size("updateFormDataJsonMap", list(mapping), _update_limit(call))
    updates = [(k, _json_value(v, f"updateFormDataJsonMap.{k}")) for k, v in mapping.items()]
    updated = await forms.update_records(
        call.zida.db,
        actor,
        form,
        updates,
        ignore_empty=call.flag("ignoreEmpty", False, "body"),
        use_latest_version=call.flag("useLatestFormSchemaVersion", False, "body"),
    )
    return {"result": updated}


@endpoint("Yida.Form.Read")
async def batch_get_form_data_by_id_list(call: Call) -> dict[str, Any]:
    """BatchGetFormDataByIdList: records in the order asked; unknown or invisible ids are left out."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    ids = _string_list(call, "formInstanceIdList")
    _check_size("formInstanceIdList", ids, MAX_BATCH_GET)
    items = await records.get_form_instances(call.zida.db, actor, form, ids)
    return {
        "result": await render_items(
            call,
            actor,
            form,
            items,
            style="advanced",
            language="zh_CN",
            instance_value=call.flag("needFormInstanceValue", False, "body"),
        )
    }


@endpoint("Yida.Form.Write")
async def batch_removal(call: Call) -> dict[str, Any]:
    """BatchRemovalByFormInstanceIdList: all-or-nothing; only plain (receipt) form data."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    ids = _string_list(call, "formInstanceIdList")
    limit = batch_limit(
        "remove",
        rules=call.flag("executeExpression", False, "body"),
        asynchronous=call.flag("asynchronousExecution", False, "body"),
    )
    _check_size("formInstanceIdList", ids, limit)
    return {"result": await forms.delete_records(call.zida.db, actor, form, ids)}


@endpoint("Yida.Form.Write")
async def create_or_update_form_data(call: Call) -> dict[str, Any]:
    """CreateOrUpdateFormData: update the one record ``searchCondition`` matches, else create one."""
    use_alias = call.flag("useAlias", False, "body")
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    condition = parse_search(form, call.json("searchCondition", "body", required=True), use_alias=use_alias)
    values = call.form_data("formDataJson", "body", required=True)
    if use_alias:
        values = values_from_aliases(form, values)
    return {"result": await forms.upsert_record(call.zida.db, actor, form, condition, values)}


def routes(prefix: str = "/v1.0") -> list[Route]:
    """Batch and upsert routes."""
    base = f"{prefix}/yida/forms/instances"
    if prefix == "/v2.0":
        return [Route(f"{base}/insertOrUpdate", create_or_update_form_data, methods=["POST"])]
    return [
        Route(f"{base}/batchSave", batch_save_form_data, methods=["POST"]),
        Route(f"{base}/components", batch_update_by_instance_id, methods=["PUT"]),
        Route(f"{base}/datas", batch_update_by_instance_map, methods=["PUT"]),
        Route(f"{base}/ids/query", batch_get_form_data_by_id_list, methods=["POST"]),
        Route(f"{base}/batchRemove", batch_removal, methods=["POST"]),
        Route(f"{base}/insertOrUpdate", create_or_update_form_data, methods=["POST"]),
    ]
