"""The admin API for apps and forms, over HTTP against a live server: an auth matrix, apps created with a
systemToken the official SDK then uses, a new systemToken replacing the old one at once, forms written in the
bundle's format (a new version when the schema changes), a process form naming a role whose deactivated member is
never resolved as an approver, and bad input that changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conformance.sdk import A_ALL, expect_error
from tests.conformance.test_admin_org import ALL, APP, READ, Admin, admin, admin_corp, unique

__all__ = ["admin", "admin_corp"]  # the fixtures, shared with test_admin_org

APP_PATH = "/admin/v1/apps/APP_CORPADMIN1"


def note_form(**extra: Any) -> dict[str, Any]:
    return {
        "title": {"zh_CN": "台账", "en_US": "Ledger"},
        "fields": [
            {
                "fieldId": "textField_item",
                "component": "TextField",
                "label": "事项",
                "required": True,
                "searchable": True,
            },
            {"fieldId": "selectField_kind", "component": "SelectField", "label": "类别", "options": ["甲", "乙"]},
        ],
        **extra,
    }


def list_forms(admin: Admin, app: dict[str, str], user: str = "adm") -> list[str]:
    body = admin.sdk.call("get_form_list_in_app", token=admin.token(ALL), **app, user_id=user).body
    return [f.form_uuid for f in body.result.data]


ROUTES = [
    ("GET", "/admin/v1/apps", None),
    ("POST", "/admin/v1/apps", {"name": "无"}),
    ("GET", APP_PATH, None),
    ("PATCH", APP_PATH, {"name": "改"}),
    ("GET", f"{APP_PATH}/forms/FORM-CORPADMIN-NOTE", None),
    ("PUT", f"{APP_PATH}/forms/FORM-CORPADMIN-NOTE", note_form()),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_needs_an_admin_token_of_the_corp(admin: Admin, method: str, path: str, body: Any) -> None:
    admin.error(method, path, body, 401, "auth.token_invalid", token="not-a-token")
    admin.error(method, path, body, 403, "auth.scope_missing", token=admin.token(READ))
    other = admin.sdk.token(A_ALL)
    if path.startswith(APP_PATH):
        admin.error(method, path, body, 404, "app.not_found", token=other)
    elif method == "GET":
        assert "APP_CORPADMIN1" not in json.dumps(admin.ok(method, path, token=other))
    assert admin.ok("GET", APP_PATH)["name"] == "管理应用"


def test_an_app_is_created_with_a_system_token_the_sdk_uses(admin: Admin) -> None:
    created = admin.ok("POST", "/admin/v1/apps", {"name": "新应用", "nameEn": "New", "admins": ["adm", "mgr"]}, 201)
    app_type, secret = created["appType"], created["systemToken"]
    assert app_type.startswith("APP_") and len(secret) >= 24
    assert (created["admins"], created["creator"], created["status"], created["forms"]) == (
        ["adm", "mgr"],
        "adm",
        "ONLINE",
        [],
    )
    shown = admin.ok("GET", f"/admin/v1/apps/{app_type}")
    assert "systemToken" not in shown and shown["nameEn"] == "New"
    assert any(a["appType"] == app_type for a in admin.ok("GET", "/admin/v1/apps")["apps"])
    app = {"app_type": app_type, "system_token": secret}
    assert list_forms(admin, app) == []
    # A new systemToken replaces the old one at once.
    changed = admin.ok(
        "PATCH", f"/admin/v1/apps/{app_type}", {"systemToken": "ST-ROTATED-SECRET-01", "admins": ["adm"]}
    )
    assert changed["systemToken"] == "ST-ROTATED-SECRET-01" and changed["admins"] == ["adm"]
    expect_error(lambda: list_forms(admin, app), "invalidParameter.parameter.accessKeyNotMatch", 400)
    assert list_forms(admin, {"app_type": app_type, "system_token": "ST-ROTATED-SECRET-01"}) == []
    entries = admin.audit("app", app_type)
    assert [e["topic"] for e in entries] == ["app.created", "app.updated"]
    assert entries[1]["changes"] == {"admins": {"old": ["adm", "mgr"], "new": ["adm"]}, "secret": {"changed": True}}
    assert secret not in json.dumps(entries) and "ST-ROTATED-SECRET-01" not in json.dumps(entries)
    empty = admin.error("PATCH", f"/admin/v1/apps/{app_type}", {"systemToken": ""}, 400, "argument.invalid")
    assert "systemToken" in empty  # refused, not silently ignored
    # Texts are stored without surrounding blanks, as a bundle stores them (a dump loads back unchanged).
    blanks = admin.ok("PATCH", f"/admin/v1/apps/{app_type}", {"name": " 新应用 ", "description": " d "})
    assert (blanks["name"], blanks["description"]) == ("新应用", "d")
    assert [e["topic"] for e in admin.audit("app", app_type)] == ["app.created", "app.updated", "app.updated"]


def test_forms_are_written_in_the_bundle_format_with_new_versions(admin: Admin) -> None:
    uuid = unique("FORM-LEDGER-").upper()
    path = f"{APP_PATH}/forms/{uuid}"
    created = admin.ok("PUT", path, note_form(), 201)
    assert (created["formUuid"], created["version"], created["type"], created["process"]) == (uuid, 1, "receipt", None)
    assert created["title"] == {"zh_CN": "台账", "en_US": "Ledger"}
    assert created["fields"][1] == {
        "fieldId": "selectField_kind",
        "component": "SelectField",
        "label": "类别",
        "options": ["甲", "乙"],
    }
    assert admin.ok("GET", path) == created
    assert uuid in list_forms(admin, APP)
    saved = admin.yida("save_form_data", "boss", form_uuid=uuid, form_data_json=json.dumps({"textField_item": "一"}))
    assert saved.body.result.startswith("FINST-")
    assert admin.ok("PUT", path, note_form()) == created  # the same again: 200, nothing written
    assert len(admin.audit("form", uuid)) == 1
    grown = note_form()
    grown["fields"].append({"fieldId": "numberField_qty", "component": "NumberField", "label": "数量"})
    second = admin.ok("PUT", path, grown)
    assert second["version"] == 2 and second["fields"][-1]["fieldId"] == "numberField_qty"
    data = json.dumps({"textField_item": "二", "numberField_qty": 3})
    admin.yida("save_form_data", "boss", form_uuid=uuid, form_data_json=data)  # the new field at once
    assert [e["topic"] for e in admin.audit("form", uuid)] == ["form.created", "form.updated"]
    assert {"formUuid": uuid, "title": "台账", "titleEn": "Ledger", "type": "receipt", "version": 2} in admin.ok(
        "GET", APP_PATH
    )["forms"]


def test_a_form_read_and_written_back_keeps_its_data_model(admin: Admin) -> None:
    uuid = unique("FORM-MODEL-").upper()
    path = f"{APP_PATH}/forms/{uuid}"
    model = unique("ledger").replace("-", "_")
    fields = [{"fieldId": "textField_item", "component": "TextField", "label": "事项", "alias": "item"}]
    created = admin.ok("PUT", path, {"title": "模型", "fields": fields, "modelName": model}, 201)
    read = admin.ok("GET", path)
    assert read == created and read["modelName"] == model
    body = {k: v for k, v in read.items() if k not in ("formUuid", "appType", "version")}
    assert admin.ok("PUT", path, body) == read  # read, then written back: nothing changed, the model stays
    assert [e["topic"] for e in admin.audit("form", uuid)] == ["form.created"]


def test_a_deactivated_role_member_is_never_resolved_as_an_approver(admin: Admin) -> None:
    leaver, stays = admin.new_user("rm"), admin.new_user("rm")
    role = admin.ok("POST", "/admin/v1/roles", {"name": "审核", "members": [leaver, stays]}, 201)["roleId"]
    uuid = unique("FORM-ROLE-").upper()
    process = {
        "processCode": "TPROC--" + uuid[5:],
        "name": "角色审批",
        "nodes": [{"approver": {"id": "node_role", "name": "角色", "who": {"role": role}, "mode": "and"}}],
    }
    fields = [{"fieldId": "textField_title", "component": "TextField", "label": "标题"}]
    admin.ok(
        "PUT",
        f"{APP_PATH}/forms/{uuid}",
        {"title": "角色审批", "type": "process", "fields": fields, "process": process},
        201,
    )
    data = json.dumps({"textField_title": "前"})
    before = admin.yida("start_instance", "boss", form_uuid=uuid, form_data_json=data).body.result
    assert admin.assignees(before) == sorted([leaver, stays])
    admin.error("DELETE", f"/admin/v1/roles/{role}", None, 409, "role.in_use")
    admin.ok("POST", f"/admin/v1/users/{leaver}/deactivate", {"handOverTo": "boss"})
    after = admin.yida("start_instance", "boss", form_uuid=uuid, form_data_json=data).body.result
    assert admin.assignees(after) == [stays]
    assert admin.assignees(before) == sorted(["boss", stays])


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "words"),
    [
        ("POST", "/admin/v1/apps", {"name": "重", "appType": "APP_CORPADMIN1"}, 409, "app.exists", "APP_CORPADMIN1"),
        ("POST", "/admin/v1/apps", {"name": "别家", "appType": "APP_A1"}, 409, "app.exists", "APP_A1"),
        ("POST", "/admin/v1/apps", {"name": "坏", "appType": "NOPE"}, 400, "argument.invalid", "app code"),
        ("POST", "/admin/v1/apps", {"name": "鬼", "admins": ["ghost"]}, 400, "user.unknown", "admins: user ghost"),
        ("POST", "/admin/v1/apps", {"name": "短", "systemToken": "short"}, 400, "argument.invalid", "systemToken"),
        ("PATCH", APP_PATH, {"status": "GONE"}, 400, "argument.invalid", "status"),
        ("PATCH", APP_PATH, {"name": None}, 400, "argument.invalid", "name"),
        ("PATCH", "/admin/v1/apps/APP_NOPE", {"name": "无"}, 404, "app.not_found", "APP_NOPE"),
        (
            "PUT",
            f"{APP_PATH}/forms/FORM-BAD-COMPONENT",
            {"title": "坏", "fields": [{"fieldId": "f", "component": "FooField", "label": "F"}]},
            400,
            "form.invalid_schema",
            "fields[0].component: unknown component",
        ),
        (
            "PUT",
            f"{APP_PATH}/forms/FORM-BAD-KEY",
            {"title": "坏", "colour": "red"},
            400,
            "argument.invalid",
            "colour",
        ),
        ("PUT", f"{APP_PATH}/forms/not-a-form", {"title": "坏"}, 400, "argument.invalid", "formUuid"),
        ("PUT", f"{APP_PATH}/forms/FORM-A", {"formUuid": "FORM-B", "title": "坏"}, 400, "argument.invalid", "formUuid"),
        ("PUT", f"{APP_PATH}/forms/FORM-A1ALL", {"title": "偷"}, 409, "form.taken", "another app"),
        (
            "PUT",
            f"{APP_PATH}/forms/FORM-BAD-ROLE",
            {
                "title": "坏",
                "type": "process",
                "process": {
                    "processCode": "TPROC--BADROLE",
                    "name": "p",
                    "nodes": [{"approver": {"id": "n", "name": "n", "who": {"role": 404}}}],
                },
            },
            400,
            "form.unknown_role",
            "role 404",
        ),
        (
            "PUT",
            f"{APP_PATH}/forms/FORM-CORPADMIN-NOTE",
            {
                "title": "改成流程",
                "type": "process",
                "process": {"processCode": "TPROC--NOTE", "name": "p", "nodes": []},
            },
            409,
            "form.type_locked",
            "has records",
        ),
        ("GET", f"{APP_PATH}/forms/FORM-A1ALL", None, 404, "form.not_found", "FORM-A1ALL"),
    ],
)
def test_bad_app_and_form_input_changes_nothing(
    admin: Admin, method: str, path: str, body: Any, status: int, code: str, words: str
) -> None:
    if "CORPADMIN-NOTE" in path:  # the form must have a record for its type to be locked
        admin.yida(
            "save_form_data",
            "boss",
            form_uuid="FORM-CORPADMIN-NOTE",
            form_data_json=json.dumps({"textField_note": "有"}),
        )
    before = admin.ok("GET", "/admin/v1/audit?limit=1000&kind=form")["entries"], admin.ok("GET", APP_PATH)
    message = admin.error(method, path, body, status, code)
    assert words in message, message
    assert (admin.ok("GET", "/admin/v1/audit?limit=1000&kind=form")["entries"], admin.ok("GET", APP_PATH)) == before
