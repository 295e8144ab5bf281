"""Advanced queries (yida_1_0/2_0): advances/queryAll, advances/query, instances/query, sub-table rows,
employee-field values.

Paging is ``pageNumber``/``pageSize`` in the body (default 1/10, at most 100). ``searchCondition`` accepts
both search syntaxes; ``orderConfigJson`` takes component ids and ``gmt_create``/``gmt_modified``.
``instances/query`` answers ``hasMoreData`` (true when a further page exists). Sub-table rows page with
``pageSize`` default 10, at most 50 (the platform's limit); ``needRowId`` adds each row's ``rowId``.
``searchEmployeeFieldValues`` answers ``result`` = JSON text ``{"<employeeFieldId>": ["userId", …]}``:
the distinct employees each field (``targetFieldJson``, default every EmployeeField) holds over the
matching records — the platform leaves the format unspecified.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.routing import Route

from zida.core import forms
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument
from zida.core.records import queries as records
from zida.core.records.filters import Page, RecordQuery
from zida.core.records.values import ROW_ID
from zida.dialects.dingtalk.aliases import aliased_form_data
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.records import YIDA_PAGE_SIZE, directory_of, render_items, search_filter
from zida.dialects.dingtalk.search import order_from_json
from zida.dialects.dingtalk.shapes import form_data, referenced_in

__all__ = ["routes"]

MAX_SUB_TABLE_PAGE = 49  # the legacy rule is "pageSize < 50"


async def _advanced(call: Call, *, search_key: str, with_tables: bool, style: str, more: bool) -> dict[str, Any]:
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    use_alias = call.flag("useAlias", False, "body")
    page = Page(call.integer("pageNumber", 1, "body"), call.page_size("pageSize", 10, "body", maximum=YIDA_PAGE_SIZE))
    query = RecordQuery(
        filter=search_filter(call, form, search_key=search_key, use_alias=use_alias),
        sort=order_from_json(form, call.json("orderConfigJson", "body"), use_alias=use_alias),
        page=page,
    )
    result = await forms.search_records(call.zida.db, actor, form, query)
    data = await render_items(
        call,
        actor,
        form,
        result.items,
        style=style,
        language=call.text("language", "body") or "zh_CN",
        use_alias=use_alias,
        with_tables=with_tables,
    )
    body: dict[str, Any] = {"pageNumber": page.number, "totalCount": result.total, "data": data}
    if more:
        body["hasMoreData"] = result.total is not None and page.offset + len(result.items) < result.total
    return body


@endpoint("Yida.Form.Read")
async def search_form_data_second_generation(call: Call) -> dict[str, Any]:
    """advances/queryAll: ``searchCondition`` search including sub-tables."""
    return await _advanced(call, search_key="searchCondition", with_tables=True, style="advanced", more=False)


@endpoint("Yida.Form.Read")
async def search_form_data_second_generation_no_table_field(call: Call) -> dict[str, Any]:
    """advances/query: the same without TableField values."""
    return await _advanced(call, search_key="searchCondition", with_tables=False, style="advanced", more=False)


@endpoint("Yida.Form.Read")
async def search_form_data_removal_table_data(call: Call) -> dict[str, Any]:
    """instances/query: main-table data by ``searchFieldJson``, with ``hasMoreData``."""
    return await _advanced(call, search_key="searchFieldJson", with_tables=False, style="main", more=True)


@endpoint("Yida.Form.Read")
async def list_table_data(call: Call) -> dict[str, Any]:
    """ListTableDataByFormInstanceIdTableId: one page of a record's sub-table rows."""
    actor = await call.actor(where="query")
    instance_id = call.path["formInstanceId"]
    page = Page(
        call.integer("pageNumber", 1, "query"), call.integer("pageSize", 10, "query", maximum=MAX_SUB_TABLE_PAGE)
    )
    table_id = call.text("tableFieldId", "query", required=True) or ""
    form_uuid = call.text("formUuid", "query", required=True)
    total, rows, form, table = await records.list_sub_table_rows(call.zida.db, actor, instance_id, table_id, page)
    if form.form_uuid != form_uuid:
        raise records.other_form(instance_id, form_uuid or "")
    user_ids: set[str] = set()
    dept_ids: set[int] = set()
    for row in rows:
        referenced_in(table.children, row, user_ids, dept_ids)
    directory = await directory_of(call.zida, actor, user_ids, dept_ids)
    need_row_id = call.flag("needRowId", False, "query")
    use_alias = call.flag("useAlias", False, "query")
    data = []
    for row in rows:
        shaped = form_data(table.children, row, directory, call.text("language", "query") or "zh_CN")
        if use_alias:
            shaped = aliased_form_data(table.children, shaped)
        if need_row_id:
            shaped["rowId"] = row.get(ROW_ID)
        data.append(shaped)
    return {"pageNumber": page.number, "totalCount": total, "data": data}


@endpoint("Yida.Form.Read")
async def search_employee_field_values(call: Call) -> dict[str, Any]:
    """SearchEmployeeFieldValues: distinct employees per EmployeeField over the matching records."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    targets = call.json("targetFieldJson", "body")
    if targets is None:
        targets = []
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise InvalidArgument("targetFieldJson must be a JSON array of EmployeeField ids", reason="argument.invalid")
    query = RecordQuery(filter=search_filter(call, form), page=Page(1, YIDA_PAGE_SIZE), with_total=False)
    values = await records.employee_field_values(call.zida.db, actor, form, query, targets)
    return {"result": orjson.dumps(values).decode()}


def routes(prefix: str = "/v1.0") -> list[Route]:
    """Advanced-query routes (v2 has only advances/queryAll)."""
    base = f"{prefix}/yida/forms"
    if prefix == "/v2.0":
        return [Route(f"{base}/instances/advances/queryAll", search_form_data_second_generation, methods=["POST"])]
    return [
        Route(f"{base}/instances/advances/queryAll", search_form_data_second_generation, methods=["POST"]),
        Route(f"{base}/instances/advances/query", search_form_data_second_generation_no_table_field, methods=["POST"]),
        Route(f"{base}/instances/query", search_form_data_removal_table_data, methods=["POST"]),
        Route(f"{base}/innerTables/{{formInstanceId}}", list_table_data, methods=["GET"]),
        Route(f"{base}/employeeFields", search_employee_field_values, methods=["POST"]),
    ]
