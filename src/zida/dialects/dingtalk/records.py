"""Form-record routes (yida_1_0): save, update, delete, get, searchFormDatas, searchFormDataIdList."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.app_state import Zida
from zida.core.access.models import AppActor
from zida.core.apps.models import Field, Form
from zida.core.apps.service import get_form
from zida.core.filters import And, Condition, Filter, Page, RecordQuery
from zida.core.org.repository import find_departments, find_users
from zida.core.records import service as records
from zida.core.records.models import FormInstance
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.search import order_from_json, parse_search, time_range
from zida.dialects.dingtalk.shapes import Directory, form_data, gmt, person, referenced_ids

__all__ = ["routes", "search_filter"]


async def _directory(
    zida: Zida, actor: AppActor, items: list[FormInstance], fields: dict[tuple[int, int], tuple[Field, ...]]
) -> Directory:
    user_ids, dept_ids = referenced_ids(items, fields)
    users = await find_users(zida.db, actor.corp_pk, user_ids)
    depts = await find_departments(zida.db, actor.corp_pk, dept_ids)
    return Directory(users, depts)


@endpoint("Yida.Form.Write")
async def save_form_data(call: Call) -> dict[str, Any]:
    """SaveFormData: create a record of a receipt form → ``{result: formInstanceId}``."""
    actor = await call.actor(where="body")
    inst = await records.save_form_instance(
        call.zida.db,
        actor,
        call.text("formUuid", "body", required=True) or "",
        call.json("formDataJson", "body", required=True),
    )
    return {"result": inst.instance_id}


@endpoint("Yida.Form.Write")
async def update_form_data(call: Call) -> dict[str, Any]:
    """UpdateFormData: change the listed components only (appType optional, as in the SDK)."""
    instance_id = call.text("formInstanceId", "body", required=True) or ""
    actor = await _actor_for_instance(call, instance_id, "body")
    await records.update_form_instance(
        call.zida.db,
        actor,
        instance_id,
        call.json("updateFormDataJson", "body", required=True),
        use_latest_version=call.flag("useLatestVersion", False, "body"),
    )
    return {"result": True}


async def _actor_for_instance(call: Call, instance_id: str, where: str) -> AppActor:
    """Authenticate against ``appType`` if given, else against the app the instance belongs to."""
    if call.text("appType", where):
        return await call.actor(where=where)
    assert call.grant is not None
    app_pk = await records.instance_app_pk(call.zida.db, call.grant.corp_pk, instance_id)
    return await call.actor(app_pk=app_pk, where=where)


@endpoint("Yida.Form.Write")
async def delete_form_data(call: Call) -> dict[str, Any]:
    """DeleteFormData: all parameters in the query string."""
    instance_id = call.text("formInstanceId", "query", required=True) or ""
    actor = await call.actor(where="query")
    await records.delete_form_instance(call.zida.db, actor, instance_id)
    return {"result": True}


@endpoint("Yida.Form.Read")
async def get_form_data_by_id(call: Call) -> dict[str, Any]:
    """GetFormDataByID: ``{formInstId, modifiedTimeGMT, originator, formData}``."""
    instance_id = call.path["id"]
    actor = await _actor_for_instance(call, instance_id, "query")
    inst, form = await records.get_form_instance(call.zida.db, actor, instance_id)
    language = call.text("language", "query") or "zh_CN"
    directory = await _directory(call.zida, actor, [inst], {(form.pk, form.version): form.fields})
    return {
        "formInstId": inst.instance_id,
        "modifiedTimeGMT": gmt(inst.modified_at),
        "originator": person(directory, inst.originator_user_id, dept_key="departmentName"),
        "formData": form_data(form.fields, inst.data, directory, language),
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


@endpoint("Yida.Form.Read")
async def search_form_datas(call: Call) -> dict[str, Any]:
    """SearchFormDatas: ``currentPage``/``pageSize`` (default 10, max 100) in the body; newest first."""
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    page = Page(
        call.integer("currentPage", 1, "body"), call.integer("pageSize", 10, "body", maximum=records.MAX_PAGE_SIZE)
    )
    query = RecordQuery(
        filter=search_filter(call, form),
        sort=order_from_json(form, call.json("dynamicOrder", "body")),
        page=page,
    )
    result = await records.search_form_instances(call.zida.db, actor, form, query)
    language = call.text("language", "body") or "zh_CN"
    fields_of = await records.schemas_of(call.zida.db, actor, form, result.items)
    directory = await _directory(call.zida, actor, result.items, fields_of)
    data = []
    for inst in result.items:
        fields = fields_of[(inst.form_pk, inst.form_version)]
        data.append(
            {
                "formInstanceId": inst.instance_id,
                "dataId": inst.pk,
                "formUuid": form.form_uuid,
                "modelUuid": form.form_uuid,
                "title": inst.title,
                "createdTimeGMT": gmt(inst.created_at),
                "modifiedTimeGMT": gmt(inst.modified_at),
                "creatorUserId": inst.originator_user_id,
                "modifierUserId": inst.modifier_user_id,
                "originator": person(directory, inst.originator_user_id, name_key="userName", dept_key=None),
                "modifyUser": person(directory, inst.modifier_user_id, name_key="userName", dept_key=None),
                "formData": form_data(fields, inst.data, directory, language),
                "version": inst.form_version,
                "serialNo": inst.serial_no or "",
                "sequence": inst.serial_no or "",
            }
        )
    return {"currentPage": page.number, "totalCount": result.total, "data": data}


@endpoint("Yida.Form.Read")
async def search_form_data_id_list(call: Call) -> dict[str, Any]:
    """SearchFormDataIdList: appType/formUuid in the path, paging in the query, filters in the body."""
    actor = await call.actor(app_type=call.path["appType"], where="body")
    form = await get_form(call.zida.db, actor, call.path["formUuid"])
    page = Page(
        call.integer("pageNumber", 1, "query"), call.integer("pageSize", 10, "query", maximum=records.MAX_PAGE_SIZE)
    )
    query = RecordQuery(filter=search_filter(call, form), page=page)
    total, ids = await records.search_form_instance_ids(call.zida.db, actor, form, query)
    return {"pageNumber": page.number, "totalCount": total, "data": ids}


def routes() -> list[Route]:
    """Form-record routes."""
    return [
        Route("/v1.0/yida/forms/instances", save_form_data, methods=["POST"]),
        Route("/v1.0/yida/forms/instances", update_form_data, methods=["PUT"]),
        Route("/v1.0/yida/forms/instances", delete_form_data, methods=["DELETE"]),
        Route("/v1.0/yida/forms/instances/search", search_form_datas, methods=["POST"]),
        Route("/v1.0/yida/forms/instances/ids/{appType}/{formUuid}", search_form_data_id_list, methods=["POST"]),
        Route("/v1.0/yida/forms/instances/{id}", get_form_data_by_id, methods=["GET"]),
    ]
