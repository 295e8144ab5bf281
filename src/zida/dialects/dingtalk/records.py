"""Form-record routes (yida_1_0 and yida_2_0): save, update, delete, get, searchFormDatas, searchFormDataIdList."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.app_state import Zida
from zida.core import forms
from zida.core.apps.models import Field, Form
from zida.core.apps.queries import get_form
from zida.core.org.repository import find_departments, find_users
from zida.core.principals import AppActor
from zida.core.records import queries as records
from zida.core.records.filters import And, Condition, Filter, Page, RecordQuery
from zida.core.records.models import FormInstance
from zida.dialects.dingtalk.aliases import aliased_form_data, values_from_aliases
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.search import order_from_json, parse_search, time_range
from zida.dialects.dingtalk.shapes import Directory, form_data, gmt, person, referenced_ids
from zida.dialects.dingtalk.shapes import instance_value as render_instance_value

__all__ = [
    "YIDA_PAGE_SIZE",
    "directory_for",
    "directory_of",
    "render_form_data",
    "render_items",
    "routes",
    "search_filter",
    "search_item",
]

YIDA_PAGE_SIZE = 100  # the largest pageSize Yida's record and search routes take


async def directory_for(
    zida: Zida, actor: AppActor, items: list[FormInstance], fields: dict[tuple[int, int], tuple[Field, ...]]
) -> Directory:
    """The users and departments a set of records mentions, for rendering."""
    return await directory_of(zida, actor, *referenced_ids(items, fields))


async def directory_of(zida: Zida, actor: AppActor, user_ids: set[str], dept_ids: set[int]) -> Directory:
    """These users and departments of the actor's corp, for rendering (one query each)."""
    users = await find_users(zida.db, actor.corp_pk, user_ids)
    depts = await find_departments(zida.db, actor.corp_pk, dept_ids)
    return Directory(users, depts)


def render_form_data(
    fields: tuple[Field, ...],
    inst: FormInstance,
    directory: Directory,
    language: str,
    *,
    use_alias: bool = False,
    with_tables: bool = True,
) -> dict[str, Any]:
    """``formData`` of a record, optionally without sub-tables and with aliases as keys."""
    shown = fields if with_tables else tuple(f for f in fields if f.component != "TableField")
    data = form_data(shown, inst.data, directory, language)
    return aliased_form_data(shown, data) if use_alias else data


def search_item(
    inst: FormInstance,
    form: Form,
    fields_of: dict[tuple[int, int], tuple[Field, ...]],
    directory: Directory,
    language: str,
    *,
    style: str,
    instance_value: bool = False,
    with_tables: bool = True,
    use_alias: bool = False,
) -> dict[str, Any]:
    """One record as a search/batch reply item: ``search`` (searchFormDatas), ``advanced`` (batchGet,
    advances/*) or ``main`` (instances/query: persons with department and email)."""
    fields = fields_of[(inst.form_pk, inst.form_version)]
    if use_alias or not with_tables:
        data = render_form_data(fields, inst, directory, language, use_alias=use_alias, with_tables=with_tables)
    else:  # the usual reply: every field, by fieldId
        data = form_data(fields, inst.data, directory, language)
    created = gmt(inst.created_at)
    modified = created if inst.modified_at == inst.created_at else gmt(inst.modified_at)
    serial = inst.serial_no or ""
    if style == "search":
        item: dict[str, Any] = {
            "formInstanceId": inst.instance_id,
            "dataId": inst.pk,
            "formUuid": form.form_uuid,
            "modelUuid": form.form_uuid,
            "title": inst.title,
            "createdTimeGMT": created,
            "modifiedTimeGMT": modified,
            "creatorUserId": inst.originator_user_id,
            "modifierUserId": inst.modifier_user_id,
            "originator": person(directory, inst.originator_user_id, name_key="userName", dept_key=None),
            "modifyUser": person(directory, inst.modifier_user_id, name_key="userName", dept_key=None),
            "formData": data,
            "version": inst.form_version,
            "serialNo": serial,
            "sequence": serial,
        }
    else:
        dept_key = "departmentName" if style == "main" else None
        item = {
            "id": inst.pk,
            "formInstanceId": inst.instance_id,
            "formUuid": form.form_uuid,
            "title": inst.title,
            "createTimeGMT": created,
            "modifiedTimeGMT": modified,
            "creatorUserId": inst.originator_user_id,
            "modifier": inst.modifier_user_id,
            "originator": person(directory, inst.originator_user_id, dept_key=dept_key, with_type=False),
            "modifyUser": person(directory, inst.modifier_user_id, dept_key=dept_key, with_type=False),
            "formData": data,
            "version": inst.form_version,
            "serialNumber": serial,
            "sequence": serial,
        }
    if inst.instance_status is not None:
        item["instanceStatus"] = inst.instance_status
        item["approvedResult"] = inst.approved_result or ""
    if instance_value:
        item["instanceValue"] = render_instance_value(fields, inst.data, directory, language)
    return item


@endpoint("Yida.Form.Write")
async def save_form_data(call: Call) -> dict[str, Any]:
    """SaveFormData: create a record of a receipt form → ``{result: formInstanceId}`` (v2: ``useAlias``)."""
    actor = await call.actor(where="body")
    form_uuid = call.text("formUuid", "body", required=True) or ""
    values = call.form_data("formDataJson", "body", required=True)
    if call.flag("useAlias", False, "body"):
        values = values_from_aliases(await get_form(call.zida.db, actor, form_uuid), values)
    inst = await forms.save_record(call.zida.db, actor, form_uuid, values)
    return {"result": inst.instance_id}


@endpoint("Yida.Form.Write")
async def update_form_data(call: Call) -> dict[str, Any]:
    """UpdateFormData: change the listed components only (appType optional, as in the SDK)."""
    instance_id = call.text("formInstanceId", "body", required=True) or ""
    actor = await _actor_for_instance(call, instance_id, "body")
    values = call.form_data("updateFormDataJson", "body", required=True)
    await records.check_record_form(call.zida.db, actor, instance_id, call.text("formUuid", "body"))  # v2
    if call.flag("useAlias", False, "body"):
        _, form = await records.get_form_instance(call.zida.db, actor, instance_id)
        values = values_from_aliases(form, values)
    await forms.update_record(
        call.zida.db, actor, instance_id, values, use_latest_version=call.flag("useLatestVersion", False, "body")
    )
    return {"result": True}


async def _actor_for_instance(call: Call, instance_id: str, where: str) -> AppActor:
    """Authenticate against ``appType`` if given, else against the app the instance belongs to."""
    if call.text("appType", where):
        return await call.actor(where=where)
    assert call.principal is not None
    app_pk = await records.instance_app_pk(call.zida.db, call.principal.corp_pk, instance_id)
    return await call.actor(app_pk=app_pk, where=where)


@endpoint("Yida.Form.Write")
async def delete_form_data(call: Call) -> dict[str, Any]:
    """DeleteFormData: all parameters in the query string."""
    instance_id = call.text("formInstanceId", "query", required=True) or ""
    actor = await call.actor(where="query")
    await records.check_record_form(call.zida.db, actor, instance_id, call.text("formUuid", "query"))
    await forms.delete_record(call.zida.db, actor, instance_id)
    return {"result": True}


@endpoint("Yida.Form.Read")
async def get_form_data_by_id(call: Call) -> dict[str, Any]:
    """GetFormDataByID: ``{formInstId, modifiedTimeGMT, originator, formData}``."""
    instance_id = call.path["id"]
    actor = await _actor_for_instance(call, instance_id, "query")
    inst, form = await records.get_form_instance(call.zida.db, actor, instance_id)
    form_uuid = call.text("formUuid", "query")  # v2
    if form_uuid and form_uuid != form.form_uuid:
        raise records.other_form(instance_id, form_uuid)
    language = call.text("language", "query") or "zh_CN"
    directory = await directory_for(call.zida, actor, [inst], {(form.pk, form.version): form.fields})
    return {
        "formInstId": inst.instance_id,
        "modifiedTimeGMT": gmt(inst.modified_at),
        "originator": person(directory, inst.originator_user_id, dept_key="departmentName"),
        "formData": render_form_data(
            form.fields, inst, directory, language, use_alias=call.flag("useAlias", False, "query")
        ),
    }


def search_filter(
    call: Call, form: Form, *, search_key: str = "searchFieldJson", use_alias: bool = False
) -> Filter | None:
    """The filter of a search request: search JSON, originator and the create/modified time ranges."""
    parts: list[Filter] = []
    parsed = parse_search(
        form, call.json(search_key, "body"), use_alias=use_alias, logic=call.text("logicOperator", "body")
    )
    if parsed is not None:
        parts.append(parsed)
    originator = call.text("originatorId", "body")
    if originator:
        parts.append(Condition("originator", "eq", originator))
    zone = call.zida.settings.timezone
    for system, prefix in (("created_at", "create"), ("modified_at", "modified")):
        cond = time_range(
            system, call.raw(f"{prefix}FromTimeGMT", "body"), call.raw(f"{prefix}ToTimeGMT", "body"), zone
        )
        if cond is not None:
            parts.append(cond)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


async def render_items(
    call: Call,
    actor: AppActor,
    form: Form,
    items: list[FormInstance],
    *,
    style: str,
    language: str,
    use_alias: bool = False,
    with_tables: bool = True,
    instance_value: bool = False,
) -> list[dict[str, Any]]:
    """Reply items for a page of records, each rendered with the schema version it was saved with."""
    fields_of = await records.schemas_of(call.zida.db, actor, form, items)
    directory = await directory_for(call.zida, actor, items, fields_of)
    return [
        search_item(
            inst,
            form,
            fields_of,
            directory,
            language,
            style=style,
            use_alias=use_alias,
            with_tables=with_tables,
            instance_value=instance_value,
        )
        for inst in items
    ]


@endpoint("Yida.Form.Read")
async def search_form_datas(call: Call) -> dict[str, Any]:
    """SearchFormDatas: ``currentPage``/``pageSize`` (default 10, max 100) in the body; newest first."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    use_alias = call.flag("useAlias", False, "body")
    page = Page(call.integer("currentPage", 1, "body"), call.page_size("pageSize", 10, "body", maximum=YIDA_PAGE_SIZE))
    query = RecordQuery(
        filter=search_filter(call, form, use_alias=use_alias),
        sort=order_from_json(form, call.json("dynamicOrder", "body"), use_alias=use_alias),
        page=page,
    )
    result = await forms.search_records(call.zida.db, actor, form, query)
    data = await render_items(
        call,
        actor,
        form,
        result.items,
        style="search",
        language=call.text("language", "body") or "zh_CN",
        use_alias=use_alias,
    )
    return {"currentPage": page.number, "totalCount": result.total, "data": data}


@endpoint("Yida.Form.Read")
async def search_form_data_id_list(call: Call) -> dict[str, Any]:
    """SearchFormDataIdList: appType/formUuid in the path, paging in the query, filters in the body."""
    actor = await call.actor(app_type=call.path["appType"], where="body")
    form = await get_form(call.zida.db, actor, call.path["formUuid"])
    page = Page(call.integer("pageNumber", 1, "query"), call.page_size("pageSize", 10, "query", maximum=YIDA_PAGE_SIZE))
    query = RecordQuery(filter=search_filter(call, form, use_alias=call.flag("useAlias", False, "body")), page=page)
    total, ids = await forms.search_record_ids(call.zida.db, actor, form, query)
    return {"pageNumber": page.number, "totalCount": total, "data": ids}


def routes(prefix: str = "/v1.0") -> list[Route]:
    """Form-record routes under ``/v1.0`` or ``/v2.0`` (v2 adds ``useAlias``; the handlers read it on both)."""
    base = f"{prefix}/yida/forms/instances"
    return [
        Route(base, save_form_data, methods=["POST"]),
        Route(base, update_form_data, methods=["PUT"]),
        *([Route(base, delete_form_data, methods=["DELETE"])] if prefix == "/v1.0" else []),
        Route(f"{base}/search", search_form_datas, methods=["POST"]),
        Route(f"{base}/ids/{{appType}}/{{formUuid}}", search_form_data_id_list, methods=["POST"]),
        Route(f"{base}/{{id}}", get_form_data_by_id, methods=["GET"]),
    ]
