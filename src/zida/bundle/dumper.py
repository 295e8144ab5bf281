"""Write a corp back in the bundle format (secrets are never dumped; deactivated users as ``active: false``)."""

from __future__ import annotations

from typing import Any

import orjson

from zida.core.apps.models import Field
from zida.core.apps.queries import parse_search_indexes
from zida.core.apps.templates import list_query_templates
from zida.core.errors import NotFound
from zida.db import Connection

__all__ = ["dump_bundle", "field_data"]


def _i18n(zh: str, en: str | None) -> str | dict[str, str]:
    # An empty English text is kept as such: dropped, a reload would store NULL for it and report a change.
    return {"zh_CN": zh, "en_US": en} if en is not None else zh


def field_data(f: Field) -> dict[str, Any]:
    """A field in the bundle format."""
    out: dict[str, Any] = {
        "fieldId": f.field_id,
        "component": f.component,
        "label": _i18n(f.label_zh, f.label_en),
    }
    if f.required:
        out["required"] = True
    if f.searchable:
        out["searchable"] = True
    if f.multiple is not None:
        out["multiple"] = f.multiple
    if f.alias:
        out["alias"] = f.alias
    if f.options:
        out["options"] = [
            o.value
            if o.label_zh == o.value and not o.label_en
            else {"value": o.value, "label": _i18n(o.label_zh, o.label_en)}
            for o in f.options
        ]
    if f.children:
        out["fields"] = [field_data(c) for c in f.children]
    if f.props:
        out["props"] = f.props
    return out


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


async def dump_bundle(conn: Connection, corp_id: str) -> dict[str, Any]:
    """The corp ``corp_id`` as bundle data (no appSecret, systemToken, taskApiCode, passwords or callback secrets)."""
    corp = await conn.fetchrow(
        "SELECT id, corp_id, name, env_id, env_type FROM corp WHERE corp_id = :c", {"c": corp_id}
    )
    if corp is None:
        raise NotFound(f"corp {corp_id} does not exist", reason="corp.not_found")
    c = corp["id"]
    depts = await conn.fetch(
        "SELECT dept_id, name, name_en, parent_dept_id, manager_user_ids, sort_order FROM department"
        " WHERE corp_pk = :c ORDER BY id",
        {"c": c},
    )
    users = await conn.fetch(
        "SELECT id, user_id, name, name_en, title, mobile, email, union_id, manager_user_id, active, username"
        " FROM org_user"
        " WHERE corp_pk = :c ORDER BY id",
        {"c": c},
    )
    memberships = await conn.fetch(
        "SELECT ud.user_pk, d.dept_id FROM user_department ud JOIN department d ON d.id = ud.dept_pk"
        " WHERE d.corp_pk = :c ORDER BY ud.user_pk, ud.position",
        {"c": c},
    )
    user_depts: dict[int, list[int]] = {}
    for m in memberships:
        user_depts.setdefault(m["user_pk"], []).append(m["dept_id"])
    roles = await conn.fetch("SELECT id, role_id, name, group_name FROM role WHERE corp_pk = :c ORDER BY id", {"c": c})
    role_members = await conn.fetch(
        "SELECT rm.role_pk, u.user_id FROM role_member rm JOIN org_user u ON u.id = rm.user_pk"
        " WHERE u.corp_pk = :c ORDER BY u.id",
        {"c": c},
    )
    creds = await conn.fetch(
        "SELECT app_key, scopes, rate_limit FROM credential WHERE corp_pk = :c ORDER BY id", {"c": c}
    )
    callbacks = await conn.fetch(
        "SELECT c.app_key, s.kind, s.url, s.tags, s.schedule FROM event_subscription s"
        " JOIN credential c ON c.id = s.credential_pk WHERE s.corp_pk = :c ORDER BY s.id",
        {"c": c},
    )
    apps = await conn.fetch(
        "SELECT id, app_type, name, name_en, description, icon, status, creator_user_id FROM app"
        " WHERE corp_pk = :c ORDER BY id",
        {"c": c},
    )
    admins = await conn.fetch(
        "SELECT aa.app_pk, u.user_id FROM app_admin aa JOIN org_user u ON u.id = aa.user_pk"
        " WHERE u.corp_pk = :c ORDER BY u.id",
        {"c": c},
    )
    forms = await conn.fetch(
        "SELECT f.app_pk, f.form_uuid, f.title_zh, f.title_en, f.form_type, f.creator_user_id, f.model_name,"
        " f.search_indexes,"
        " v.fields, v.process"
        " FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        " WHERE a.corp_pk = :c ORDER BY f.id",
        {"c": c},
    )
    preview = {"envType": corp["env_type"]} if corp["env_type"] != "prod" else {}
    templates = [t.to_dict() for t in await list_query_templates(conn, c)]
    listed = {"queryTemplates": templates} if templates else {}
    weda = {"weda": {"envId": corp["env_id"], **preview, **listed}} if corp["env_id"] else {}
    return {
        "corp": {"corpId": corp["corp_id"], "name": corp["name"]},
        **weda,
        "departments": [
            _clean(
                {
                    "deptId": d["dept_id"],
                    "name": d["name"],
                    "nameEn": d["name_en"],
                    "parentId": d["parent_dept_id"],
                    "managers": orjson.loads(d["manager_user_ids"]) or None,
                    "order": d["sort_order"] or None,
                }
            )
            for d in depts
        ],
        "users": [
            _clean(
                {
                    "userId": u["user_id"],
                    "name": u["name"],
                    "nameEn": u["name_en"],
                    "departments": user_depts.get(u["id"]),
                    "manager": u["manager_user_id"],
                    "title": u["title"],
                    "mobile": u["mobile"],
                    "email": u["email"],
                    "unionId": u["union_id"],
                    "active": None if u["active"] else False,
                    "username": u["username"],
                }
            )
            for u in users
        ],
        "roles": [
            _clean(
                {
                    "roleId": r["role_id"],
                    "name": r["name"],
                    "group": r["group_name"],
                    "members": [m["user_id"] for m in role_members if m["role_pk"] == r["id"]],
                }
            )
            for r in roles
        ],
        "credentials": [
            {
                "appKey": cr["app_key"],
                "scopes": orjson.loads(cr["scopes"]),
                **({"rateLimit": cr["rate_limit"]} if cr["rate_limit"] is not None else {}),
            }
            for cr in creds
        ],
        "apps": [
            _clean(
                {
                    "appType": a["app_type"],
                    "name": _i18n(a["name"], a["name_en"]),
                    "description": a["description"],
                    "icon": a["icon"],
                    "status": a["status"],
                    "creator": a["creator_user_id"],
                    "admins": [m["user_id"] for m in admins if m["app_pk"] == a["id"]],
                    "forms": [
                        _clean(
                            {
                                "formUuid": f["form_uuid"],
                                "title": _i18n(f["title_zh"], f["title_en"]),
                                "type": f["form_type"],
                                "modelName": f["model_name"],
                                "creator": f["creator_user_id"],
                                "fields": [field_data(Field.from_dict(x)) for x in orjson.loads(f["fields"])],
                                "process": orjson.loads(f["process"]) if f["process"] else None,
                                "searchIndexes": [list(c) for c in parse_search_indexes(f["search_indexes"])] or None,
                            }
                        )
                        for f in forms
                        if f["app_pk"] == a["id"]
                    ],
                }
            )
            for a in apps
        ],
        # Without token and aesKey, like every secret: loading this back keeps the stored ones.
        "callbacks": [
            _clean(
                {
                    "appKey": cb["app_key"],
                    "kind": cb["kind"],
                    "url": cb["url"],
                    "tags": orjson.loads(cb["tags"]),
                    "schedule": cb["schedule"],
                }
            )
            for cb in callbacks
        ],
    }
