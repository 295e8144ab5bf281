"""Apps and form schemas: listApplication, getFormListInApp, pageFormBaseInfos, form definitions."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.routing import Route

from zida.core.apps.models import Field, Form
from zida.core.apps.queries import get_form, list_apps, list_forms
from zida.core.errors import InvalidArgument
from zida.dialects.dingtalk.auth import check_org_token
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.shapes import gmt

__all__ = ["routes"]


@endpoint("Yida.App.Read")
async def list_application(call: Call) -> dict[str, Any]:
    """ListApplication: apps of the corp, authenticated by ``corpId`` + org ``token`` + ``userId``."""
    assert call.principal is not None
    corp_id = call.text("corpId", "query", required=True) or ""
    user_id = call.text("userId", "query", required=True) or ""
    principal = await check_org_token(
        call.zida.db,
        call.zida.box,
        call.principal,
        corp_id,
        user_id,
        call.text("token", "query", required=True) or "",
    )
    page = call.integer("pageNumber", 1, "query")
    size = call.integer("pageSize", 10, "query", maximum=100)
    app_filter = call.text("appFilter", "query")
    total, apps = await list_apps(
        call.zida.db,
        call.zida.box,
        principal.corp_pk,
        user_id,
        keyword=call.text("appNameSearchKeyword", "query"),
        created_by_me=app_filter == "createdByMe",
        page=page,
        size=size,
    )
    return {
        "pageNumber": page,
        "totalCount": total,
        "data": [
            {
                "appType": a.app.app_type,
                "name": a.app.name,
                "icon": a.app.icon or "",
                "description": a.app.description or "",
                "applicationStatus": a.app.status,
                "inexistence": "n",
                "releaseToDingStatus": "online" if a.app.status == "ONLINE" else "offline",
                "appConfig": "{}",
                "corpId": a.corp_id,
                "subCorpId": "",
                "creatorUserId": a.app.creator_user_id or "",
                **({"systemToken": a.secret} if a.secret is not None else {}),
            }
            for a in apps
        ],
    }


def _form_info(form: Form) -> dict[str, Any]:
    return {
        "creator": form.creator_user_id or "",
        "formType": form.form_type,
        "formUuid": form.form_uuid,
        "gmtCreate": gmt(form.created_at),
        "title": {"zhCN": form.title_zh, "enUS": form.title_en or form.title_zh},
    }


@endpoint("Yida.Form.Read")
async def get_form_list_in_app(call: Call) -> dict[str, Any]:
    """GetFormListInApp: forms of an app (pageSize default 100, at most 100)."""
    actor = await call.actor(where="query")
    page = call.integer("pageNumber", 1, "query")
    size = call.integer("pageSize", 100, "query", maximum=100)
    types = [t.strip() for t in (call.text("formTypes", "query") or "").split(",") if t.strip()]
    total, forms = await list_forms(call.zida.db, actor, types, page, size)
    return {
        "success": True,
        "result": {"currentPage": page, "totalCount": total, "data": [_form_info(f) for f in forms]},
    }


@endpoint("Yida.Form.Read")
async def page_form_base_infos(call: Call) -> dict[str, Any]:
    """PageFormBaseInfos: the same list, with ``appKey``/``formTypeList``/``pageIndex`` in the body."""
    actor = await call.actor(app_type=call.text("appKey", "body", required=True), where="body")
    page = call.integer("pageIndex", 1, "body")
    size = call.integer("pageSize", 100, "body", maximum=100)
    types = call.raw("formTypeList", "body") or []
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InvalidArgument("formTypeList must be an array of strings", reason="argument.invalid")
    total, forms = await list_forms(call.zida.db, actor, types, page, size)
    return {
        "success": True,
        "result": {"currentPage": page, "totalCount": total, "data": [_form_info(f) for f in forms]},
    }


def _label(f: Field, language: str) -> str:
    return f.label_en if language == "en_US" and f.label_en else f.label_zh


@endpoint("Yida.Form.Read")
async def get_form_component_definition_list(call: Call) -> dict[str, Any]:
    """GetFormComponentDefinitionList: components (sub-table children carry ``parentId``)."""
    actor = await call.actor(app_type=call.path["appType"], where="query")
    version = call.integer("version", 0, "query", minimum=1) if call.raw("version", "query") else None
    form = await get_form(call.zida.db, actor, call.path["formUuid"], version=version)
    language = call.text("language", "query") or "zh_CN"
    result = []
    for f in form.fields:
        result.append({"componentName": f.component, "fieldId": f.field_id, "label": _label(f, language)})
        for c in f.children:
            result.append(
                {
                    "componentName": c.component,
                    "fieldId": c.field_id,
                    "label": _label(c, language),
                    "parentId": f.field_id,
                }
            )
    return {"result": result}


def _props(f: Field) -> dict[str, Any]:
    props: dict[str, Any] = {"fieldId": f.field_id, "required": f.required, **f.props}
    if f.options:
        props["dataSource"] = [
            {
                "value": o.value,
                "text": {"zh_CN": o.label_zh, "en_US": o.label_en or o.label_zh, "type": "i18n"},
            }
            for o in f.options
        ]
    if f.multiple is not None:
        props["multiple"] = f.multiple
    if f.alias:
        props["alias"] = f.alias
    return props


def _field_def(f: Field) -> dict[str, Any]:
    return {
        "fieldId": f.field_id,
        "componentName": f.component,
        "label": {"zh_CN": f.label_zh, "en_US": f.label_en or f.label_zh, "type": "i18n"},
        "behavior": "NORMAL",
        "props": _props(f),
        "children": orjson.dumps([_field_def(c) for c in f.children]).decode() if f.children else "",
    }


@endpoint("Yida.Form.Read")
async def get_field_def_by_uuid(call: Call) -> dict[str, Any]:
    """GetFieldDefByUuid: component definitions with i18n labels and props (children as JSON text)."""
    actor = await call.actor(where="query")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "query", required=True))
    return {"success": True, "result": [_field_def(f) for f in form.fields]}


def routes() -> list[Route]:
    """App and form-schema routes."""
    return [
        Route("/v1.0/yida/organizations/applications", list_application, methods=["GET"]),
        Route("/v1.0/yida/forms", get_form_list_in_app, methods=["GET"]),
        Route("/v1.0/yida/apps/forms/query", page_form_base_infos, methods=["POST"]),
        Route(
            "/v1.0/yida/forms/definitions/{appType}/{formUuid}",
            get_form_component_definition_list,
            methods=["GET"],
        ),
        Route("/v1.0/yida/forms/formFields", get_field_def_by_uuid, methods=["GET"]),
    ]
