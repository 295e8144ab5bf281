"""yida_2_0-only form routes: component aliases, updateSubTable, updateSubTableByRowId.

The v2 variants of v1 routes (save/update/get/search/ids/queryAll/insertOrUpdate) are served by the v1
handlers, which read ``useAlias``. ``updateSubTable`` replaces the listed TableFields (``tableFieldIds``,
comma-separated) with the values in ``updateFormDataJson``; rows sent back with their ``rowId`` keep it.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.core import forms
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument
from zida.core.records import queries as records
from zida.dialects.dingtalk.aliases import values_from_aliases
from zida.dialects.dingtalk.http import Call, endpoint

__all__ = ["routes"]


@endpoint("Yida.Form.Read")
async def get_form_component_alias_list(call: Call) -> dict[str, Any]:
    """GetFormComponentAliasList: ``{result: [{fieldId, alias}]}`` for the components that have one."""
    actor = await call.actor(app_type=call.path["appType"], where="query")
    version = call.integer("version", 1, "query") if call.raw("version", "query") else None
    form = await get_form(call.zida.db, actor, call.path["formUuid"], version=version)
    result = []
    for f in form.fields:
        if f.alias:
            result.append({"fieldId": f.field_id, "alias": f.alias})
        result.extend({"fieldId": c.field_id, "alias": c.alias} for c in f.children if c.alias)
    return {"result": result}


@endpoint("Yida.Form.Write")
async def update_sub_table(call: Call) -> dict[str, Any]:
    """UpdateSubTable: replace whole sub-tables of one record."""
    actor = await call.actor(where="body")
    instance_id = call.text("formInstanceId", "body", required=True) or ""
    tables = [t.strip() for t in (call.text("tableFieldIds", "body", required=True) or "").split(",") if t.strip()]
    values = call.form_data("updateFormDataJson", "body", required=True)
    _, form = await records.get_form_instance(call.zida.db, actor, instance_id)
    form_uuid = call.text("formUuid", "body")
    if form_uuid and form_uuid != form.form_uuid:
        raise records.other_form(instance_id, form_uuid)
    if call.flag("useAlias", False, "body"):
        values = values_from_aliases(form, values)
        tables = [next((f.field_id for f in form.fields if f.alias == t), t) for t in tables]
    if not isinstance(values, dict):
        raise InvalidArgument("updateFormDataJson must be an object", reason="form_data.invalid")
    for t in tables:
        f = form.field(t)
        if f is None or f.component != "TableField":
            raise InvalidArgument(f"{t} is not a sub-table of {form.form_uuid}", reason="argument.invalid")
    extra = sorted(set(values) - set(tables))
    if extra:
        raise InvalidArgument(f"{extra[0]} is not listed in tableFieldIds", reason="argument.invalid")
    await forms.update_record(
        call.zida.db,
        actor,
        instance_id,
        {t: values.get(t, []) for t in tables},
        use_latest_version=call.flag("useLatestFormSchemaVersion", False, "body"),
    )
    return {"result": True}


@endpoint("Yida.Form.Write")
async def update_sub_table_by_row_id(call: Call) -> dict[str, Any]:
    """UpdateSubTableByRowId: change the rows named by ``rowId`` in one sub-table."""
    actor = await call.actor(where="body")
    instance_id = call.text("formInstanceId", "body", required=True) or ""
    table = call.text("tableFieldId", "body", required=True) or ""
    rows = call.json("updateSubTableDataJson", "body", required=True)
    await records.check_record_form(call.zida.db, actor, instance_id, call.text("formUuid", "body"))
    if call.flag("useAlias", False, "body"):
        _, form = await records.get_form_instance(call.zida.db, actor, instance_id)
        table = next((f.field_id for f in form.fields if f.alias == table), table)
        f = form.field(table)
        if f is not None and isinstance(rows, list):
            rows = values_from_aliases(form, {table: rows})[table]
    await forms.update_sub_table_rows(
        call.zida.db,
        actor,
        instance_id,
        table,
        rows,
        use_latest_version=call.flag("useLatestFormSchemaVersion", False, "body"),
    )
    return {"result": True}


def routes() -> list[Route]:
    """v2-only form routes."""
    return [
        Route("/v2.0/yida/forms/component/alias/{appType}/{formUuid}", get_form_component_alias_list, methods=["GET"]),
        Route("/v2.0/yida/forms/updateSubTable", update_sub_table, methods=["POST"]),
        Route("/v2.0/yida/forms/updateSubTableByRowId", update_sub_table_by_row_id, methods=["POST"]),
    ]
