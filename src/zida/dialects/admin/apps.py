"""Admin API for apps and forms.

An app's secret (``systemToken``, what every Yida call of the app carries) is shown only in the answer to the call
that set it: create (generated when not given) and an update that gives a new one. Forms are written in the
bundle's format (``docs/bundle.md``: ``title``, ``type``, ``fields``, ``process``); changing the fields or
the process makes a new version, which new records use (records and running approvals keep theirs). Another corp's
app or form does not exist (404).

====== ================================================ ====================================================
method path                                             body → effect
====== ================================================ ====================================================
GET    /admin/v1/apps                                   → ``{apps: […]}`` oldest first
POST   /admin/v1/apps                                   ``{name, appType?, nameEn?, description?, icon?,
                                                        status?, systemToken?, admins?, creator?}`` → 201,
                                                        the app with its ``systemToken``
GET    /admin/v1/apps/{appType}                         → ``{appType, name, nameEn, description, icon,
                                                        status, creator, admins, forms: [{formUuid, title,
                                                        titleEn, type, version}]}``
PATCH  /admin/v1/apps/{appType}                         any of the create keys but ``appType``
GET    /admin/v1/apps/{appType}/forms/{formUuid}        → ``{formUuid, appType, title, type, modelName?,
                                                        version, creator, fields, process, searchIndexes?}``
PUT    /admin/v1/apps/{appType}/forms/{formUuid}        ``{title, type?, fields?, process?, creator?}``:
                                                        create the form (201) or update it (a new version when
                                                        its fields or process changed) → the form
====== ================================================ ====================================================
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr
from starlette.routing import Route

from zida.bundle.dumper import field_data
from zida.bundle.loader import form_spec
from zida.bundle.schema import FormIn, I18nText
from zida.core.apps import actions
from zida.core.apps.queries import AppDetails, corp_apps, find_app, find_form_definition
from zida.core.audit import Outcome
from zida.core.errors import InvalidArgument, NotFound
from zida.dialects.admin.errors import parse_body
from zida.dialects.admin.http import AdminCall, admin_endpoint, respond
from zida.dialects.admin.org import actor_of, corp_of
from zida.dialects.weda.templates import check_stored_templates

__all__ = ["routes"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _AppCreate(_Body):
    name: StrictStr | I18nText
    appType: str | None = None
    nameEn: str | None = None
    description: str | None = None
    icon: str | None = None
    status: str = "ONLINE"
    systemToken: str | None = None
    admins: list[str] = []
    creator: str | None = None


class _AppPatch(_Body):
    name: StrictStr | I18nText | None = None
    nameEn: str | None = None
    description: str | None = None
    icon: str | None = None
    status: str | None = None
    systemToken: str | None = None
    admins: list[str] | None = None
    creator: str | None = None


def _name(name: str | I18nText, name_en: str | None) -> tuple[str, str | None]:
    if isinstance(name, I18nText):
        return name.zh_CN, name.en_US if name.en_US is not None else name_en
    return name, name_en


def _app_view(found: AppDetails, secret: str | None = None) -> dict[str, Any]:
    """An app as the admin API shows it (``secret``: only where the call set it)."""
    app = found.app
    out: dict[str, Any] = {
        "appType": app.app_type,
        "name": app.name,
        "nameEn": app.name_en,
        "description": app.description,
        "icon": app.icon,
        "status": app.status,
        "creator": app.creator_user_id,
        "admins": list(found.admins),
        "forms": [
            {
                "formUuid": f.form_uuid,
                "title": f.title_zh,
                "titleEn": f.title_en,
                "type": f.form_type,
                "version": f.version,
            }
            for f in found.forms
        ],
    }
    if secret is not None:
        out["systemToken"] = secret
    return out


@admin_endpoint
async def list_apps(call: AdminCall) -> dict[str, Any]:
    """The corp's apps."""
    return {"apps": [_app_view(a) for a in await corp_apps(call.zida.db, call.principal.corp_pk)]}


@admin_endpoint
async def create_app(call: AdminCall) -> Any:
    """Create an app; its systemToken is in this answer."""
    body = parse_body(_AppCreate, call.body)
    name, name_en = _name(body.name, body.nameEn)
    spec = actions.AppSpec(
        app_type=body.appType or None,
        name=name,
        name_en=name_en,
        description=body.description,
        icon=body.icon,
        status=body.status,
        secret=body.systemToken or None,
        admins=tuple(body.admins),
        creator=body.creator,
    )
    created = await actions.create_app(call.zida.db, call.zida.box, corp_of(call), spec, actor=actor_of(call))
    return respond(_app_view(created.details, created.secret), 201)


async def _app(call: AdminCall) -> AppDetails:
    found = await find_app(call.zida.db, call.principal.corp_pk, call.path["appType"])
    if found is None:
        raise NotFound(f"application {call.path['appType']} does not exist", reason="app.not_found")
    return found


@admin_endpoint
async def get_app(call: AdminCall) -> dict[str, Any]:
    """One app with its admins and forms."""
    return _app_view(await _app(call))


@admin_endpoint
async def update_app(call: AdminCall) -> dict[str, Any]:
    """Change some of an app's fields (a new systemToken is shown in this answer)."""
    body = parse_body(_AppPatch, call.body)
    given = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    for key in ("name", "status", "admins"):
        if key in given and given[key] is None:
            raise InvalidArgument(f"{key} cannot be null", reason="argument.invalid", param=key)
    if body.name is not None:
        changes["name"], name_en = _name(body.name, body.nameEn)
        if isinstance(body.name, I18nText) or "nameEn" in given:
            changes["name_en"] = name_en
    elif "nameEn" in given:
        changes["name_en"] = body.nameEn
    for key, name in (("description", "description"), ("icon", "icon"), ("status", "status"), ("creator", "creator")):
        if key in given:
            changes[name] = given[key]
    if body.admins is not None:
        changes["admins"] = tuple(body.admins)
    if body.systemToken is not None:  # "" too: refused as too short, not silently ignored
        changes["secret"] = body.systemToken
    updated = await actions.update_app(
        call.zida.db, call.zida.box, corp_of(call), call.path["appType"], changes, actor=actor_of(call)
    )
    return _app_view(updated, body.systemToken or None)


def _form_view(app_type: str, definition: Any) -> dict[str, Any]:
    form = definition.form
    return {
        "formUuid": form.form_uuid,
        "appType": app_type,
        "title": {"zh_CN": form.title_zh, "en_US": form.title_en} if form.title_en else form.title_zh,
        "type": form.form_type,
        **({"modelName": form.model_name} if form.model_name else {}),  # sent back with a PUT, the model stays
        "version": form.version,
        "creator": form.creator_user_id,
        "fields": [field_data(f) for f in form.fields],
        "process": definition.process,
        **({"searchIndexes": [list(c) for c in form.search_indexes]} if form.search_indexes else {}),
    }


async def _form(call: AdminCall) -> dict[str, Any]:
    app_type, form_uuid = call.path["appType"], call.path["formUuid"]
    found = await find_form_definition(call.zida.db, call.principal.corp_pk, form_uuid)
    if found is None or found.form.app_type != app_type:
        raise NotFound(f"form {form_uuid} does not exist in this application", reason="form.not_found")
    return _form_view(app_type, found)


@admin_endpoint
async def get_form(call: AdminCall) -> dict[str, Any]:
    """One form at its current version, in the bundle's format."""
    await _app(call)
    return await _form(call)


@admin_endpoint
async def put_form(call: AdminCall) -> Any:
    """Create a form or give it a new version."""
    await _app(call)
    form_uuid = call.path["formUuid"]
    if call.body.get("formUuid", form_uuid) != form_uuid:
        raise InvalidArgument("formUuid differs from the form in the path", reason="argument.invalid", param="form")
    form = parse_body(FormIn, {**call.body, "formUuid": form_uuid})
    corp = corp_of(call)
    written = await actions.put_form(
        call.zida.db,
        corp,
        call.path["appType"],
        form_spec(form),
        actor=actor_of(call),
        check=lambda tx: check_stored_templates(tx, corp.pk),  # WeDa's query templates name its models' fields
    )
    view = await _form(call)
    return respond(view, 201) if written.outcome is Outcome.CREATED else view


def routes() -> list[Route]:
    """Admin routes for apps and forms."""
    base = "/admin/v1/apps"
    return [
        Route(base, list_apps, methods=["GET"]),
        Route(base, create_app, methods=["POST"]),
        Route(f"{base}/{{appType}}", get_app, methods=["GET"]),
        Route(f"{base}/{{appType}}", update_app, methods=["PATCH"]),
        Route(f"{base}/{{appType}}/forms/{{formUuid}}", get_form, methods=["GET"]),
        Route(f"{base}/{{appType}}/forms/{{formUuid}}", put_form, methods=["PUT"]),
    ]
