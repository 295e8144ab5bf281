"""The admin API for users, departments, roles, credentials and the audit log, over HTTP against a live server:
an auth matrix for every route, each action and its bad input, and a user deactivated while he holds tasks — refused,
then handed over to a successor who decides them through the official SDK; the deactivated user can no longer call
the Yida API, and tasks that reach him later are transferred by an app admin.

Everything happens in the corpAdmin bundle (tests/fixtures/corp_admin.yaml); tests create their own users, roles
and departments with unique ids, so they do not depend on each other."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conformance.sdk import A_ALL, Sdk, expect_error
from tests.conftest import ServerProcess, load_fixture_bundle

ADMIN = ("corpadmin-admin", "corpadmin-secret-admin-01")
ALL = ("corpadmin-all", "corpadmin-secret-all-01")
READ = ("corpadmin-read", "corpadmin-secret-read-01")
APP = {"app_type": "APP_CORPADMIN1", "system_token": "ST-CORPADMIN1-SECRET"}
OR_FORM = "FORM-CORPADMIN-OR"
LINE_FORM = "FORM-CORPADMIN-LINE"
NOTE_FORM = "FORM-CORPADMIN-NOTE"


def unique(prefix: str) -> str:
    return prefix + secrets.token_hex(3)


class Admin:
    """The admin API of the session's server, with the official SDK for the Yida side."""

    def __init__(self, server: ServerProcess) -> None:
        self.base = f"http://{server.endpoint}"
        self.sdk = Sdk(server.endpoint)

    def token(self, credential: tuple[str, str] = ADMIN) -> str:
        """An access token through the real token endpoint (cached per credential by the SDK helper)."""
        return self.sdk.token(credential)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.token()}"}
        return httpx.request(method, self.base + path, json=body, headers=headers, timeout=30)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, token: str | None = None) -> Any:
        response = self.call(method, path, body, token)
        assert response.status_code == status, response.text
        return response.json()

    def error(self, method: str, path: str, body: Any, status: int, code: str, token: str | None = None) -> str:
        response = self.call(method, path, body, token)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code, error
        message: str = error["message"]
        return message

    def new_user(self, prefix: str = "u", **fields: Any) -> str:
        """A fresh user of sales (7110), managed by mgr."""
        user_id = unique(prefix)
        body = {"userId": user_id, "name": f"用户{user_id}", "departments": [7110], "manager": "mgr", **fields}
        self.ok("POST", "/admin/v1/users", body, status=201)
        return user_id

    def yida(self, api: str, user: str | None, *, path: str | None = None, **fields: Any) -> Any:
        """A Yida call through the official SDK, in APP_CORPADMIN1, as ``user`` (``path``: its path parameter)."""
        extra = {**APP, **({"user_id": user} if user is not None else {})}
        return self.sdk.call(api, *([path] if path else []), token=self.token(ALL), **extra, **fields)

    def last_event(self) -> int:
        """The id of the corp's newest undelivered event."""
        after = 0
        while True:
            events = self.ok("GET", f"/admin/v1/events?after={after}&limit=1000")["events"]
            if not events:
                return after
            after = events[-1]["id"]

    def start(self, form: str, approvers_field: str, approvers: list[str], user: str = "boss") -> str:
        data = json.dumps({"textField_title": "审批", approvers_field: approvers})
        result: str = self.yida("start_instance", user, form_uuid=form, form_data_json=data).body.result
        return result

    def running(self, instance_id: str) -> list[Any]:
        return list(self.yida("get_running_tasks", "adm", process_instance_id=instance_id).body.result)

    def assignees(self, instance_id: str) -> list[str]:
        return sorted(t.actual_actioner_id for t in self.running(instance_id))

    def execute(self, instance_id: str, user: str) -> None:
        (task,) = [int(t.task_id) for t in self.running(instance_id) if t.actual_actioner_id == user]
        self.yida(
            "execute_task", user, process_instance_id=instance_id, task_id=task, out_result="AGREE", remark="同意"
        )

    def audit(self, kind: str, object_id: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.ok("GET", f"/admin/v1/audit?kind={kind}&object={object_id}&limit=1000")[
            "entries"
        ]
        return entries


@pytest.fixture(scope="session")
def admin_corp(loaded_url: str) -> str:
    """The session database with the corpAdmin bundle loaded."""
    load_fixture_bundle(loaded_url, "corp_admin.yaml")
    return loaded_url


@pytest.fixture(scope="session")
def admin(server: ServerProcess, admin_corp: str) -> Iterator[Admin]:
    yield Admin(server)


# ------------------------------------------------------------------------------------------ auth matrix

ROUTES = [
    ("GET", "/admin/v1/users", None),
    ("POST", "/admin/v1/users", {"userId": "nobody", "name": "无"}),
    ("GET", "/admin/v1/users/mgr", None),
    ("PATCH", "/admin/v1/users/mgr", {"title": "x"}),
    ("POST", "/admin/v1/users/mgr/deactivate", {}),
    ("GET", "/admin/v1/departments", None),
    ("POST", "/admin/v1/departments", {"name": "无"}),
    ("GET", "/admin/v1/departments/7110", None),
    ("PATCH", "/admin/v1/departments/7110", {"name": "x"}),
    ("DELETE", "/admin/v1/departments/7110", None),
    ("GET", "/admin/v1/roles", None),
    ("POST", "/admin/v1/roles", {"name": "无"}),
    ("GET", "/admin/v1/roles/7001", None),
    ("PATCH", "/admin/v1/roles/7001", {"name": "x"}),
    ("PUT", "/admin/v1/roles/7001/members", {"members": []}),
    ("DELETE", "/admin/v1/roles/7001", None),
    ("GET", "/admin/v1/credentials", None),
    ("POST", "/admin/v1/credentials", {"scopes": ["*"]}),
    ("GET", "/admin/v1/credentials/corpadmin-read", None),
    ("PATCH", "/admin/v1/credentials/corpadmin-read", {"scopes": ["*"]}),
    ("POST", "/admin/v1/credentials/corpadmin-read/rotate", {}),
    ("DELETE", "/admin/v1/credentials/corpadmin-read", None),
    ("GET", "/admin/v1/audit", None),
]
# What corp A's token (scope "*") gets on corpAdmin's objects: they do not exist for it.
OTHER_CORP = {
    ("GET", "/admin/v1/users/mgr"): "user.not_found",
    ("PATCH", "/admin/v1/users/mgr"): "user.not_found",
    ("POST", "/admin/v1/users/mgr/deactivate"): "user.not_found",
    ("GET", "/admin/v1/departments/7110"): "department.not_found",
    ("PATCH", "/admin/v1/departments/7110"): "department.not_found",
    ("DELETE", "/admin/v1/departments/7110"): "department.not_found",
    ("GET", "/admin/v1/roles/7001"): "role.not_found",
    ("PATCH", "/admin/v1/roles/7001"): "role.not_found",
    ("PUT", "/admin/v1/roles/7001/members"): "role.not_found",
    ("DELETE", "/admin/v1/roles/7001"): "role.not_found",
    ("GET", "/admin/v1/credentials/corpadmin-read"): "credential.not_found",
    ("PATCH", "/admin/v1/credentials/corpadmin-read"): "credential.not_found",
    ("POST", "/admin/v1/credentials/corpadmin-read/rotate"): "credential.not_found",
    ("DELETE", "/admin/v1/credentials/corpadmin-read"): "credential.not_found",
}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_needs_an_admin_token_of_the_corp(admin: Admin, method: str, path: str, body: Any) -> None:
    missing = httpx.request(method, admin.base + path, json=body, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "auth.token_missing")
    admin.error(method, path, body, 401, "auth.token_invalid", token="not-a-token")
    admin.error(method, path, body, 403, "auth.scope_missing", token=admin.token(READ))
    code = OTHER_CORP.get((method, path))
    if code is not None:
        admin.error(method, path, body, 404, code, token=admin.sdk.token(A_ALL))


def test_another_corps_lists_show_nothing_of_this_corp(admin: Admin) -> None:
    other = admin.sdk.token(A_ALL)
    users = admin.ok("GET", "/admin/v1/users?limit=1000", token=other)["users"]
    assert "mgr" not in [u["userId"] for u in users] and "admin1" in [u["userId"] for u in users]
    creds = admin.ok("GET", "/admin/v1/credentials", token=other)["credentials"]
    assert not [c for c in creds if c["appKey"].startswith("corpadmin-")]
    entries = admin.ok("GET", "/admin/v1/audit?limit=1000", token=other)["entries"]
    assert not [e for e in entries if e["object"] in ("mgr", "corpadmin-read", "corpAdmin")]
    # Nothing of this corp changed through those calls.
    assert admin.ok("GET", "/admin/v1/users/mgr")["title"] is None


# ------------------------------------------------------------------------------------------------ users


def test_users_are_created_read_changed_and_listed(admin: Admin) -> None:
    user_id = unique("new")
    body = {"userId": user_id, "name": "新人", "nameEn": "New", "departments": [7110, 7100], "manager": "mgr"}
    created = admin.ok("POST", "/admin/v1/users", {**body, "email": "n@x.example", "mobile": "13800000000"}, 201)
    assert {k: created[k] for k in body} == body
    assert created["active"] is True and created["unionId"] and created["title"] is None
    assert admin.ok("GET", f"/admin/v1/users/{user_id}") == created
    changed = admin.ok("PATCH", f"/admin/v1/users/{user_id}", {"title": "组长", "departments": [7100], "nameEn": None})
    assert (changed["title"], changed["departments"], changed["nameEn"]) == ("组长", [7100], None)
    listed = admin.ok("GET", f"/admin/v1/users?after={user_id[:-1]}&limit=1000")["users"]
    assert changed in listed and all(u["userId"] > user_id[:-1] for u in listed)
    inactive = admin.ok("GET", "/admin/v1/users?active=false&limit=1000")["users"]
    assert all(not u["active"] for u in inactive) and user_id not in [u["userId"] for u in inactive]
    entries = admin.audit("user", user_id)
    assert [(e["topic"], e["actor"]) for e in entries] == [
        ("user.created", "credential:corpadmin-admin"),
        ("user.updated", "credential:corpadmin-admin"),
    ]
    assert entries[1]["changes"] == {
        "name_en": {"old": "New", "new": None},
        "title": {"old": None, "new": "组长"},
        "departments": {"old": [7110, 7100], "new": [7100]},
    }
    # The same values again write nothing.
    admin.ok("PATCH", f"/admin/v1/users/{user_id}", {"title": "组长"})
    assert len(admin.audit("user", user_id)) == 2


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/admin/v1/users", {"userId": "mgr", "name": "重复"}, 409, "user.exists"),
        ("POST", "/admin/v1/users", {"userId": "x-dept", "name": "X", "departments": [404]}, 400, "department.unknown"),
        ("POST", "/admin/v1/users", {"userId": "x-mgr", "name": "X", "manager": "ghost"}, 400, "user.unknown"),
        ("POST", "/admin/v1/users", {"userId": "x-key", "name": "X", "colour": "red"}, 400, "argument.invalid"),
        ("POST", "/admin/v1/users", {"name": "无名"}, 400, "argument.invalid"),
        ("POST", "/admin/v1/users", {"userId": "x-act", "name": "X", "active": "yes"}, 400, "argument.invalid"),
        ("POST", "/admin/v1/users", {"userId": "x-dep", "name": "X", "departments": ["10"]}, 400, "argument.invalid"),
        ("GET", "/admin/v1/users/ghost", None, 404, "user.not_found"),
        ("PATCH", "/admin/v1/users/ghost", {"title": "x"}, 404, "user.not_found"),
        ("PATCH", "/admin/v1/users/boss", {"manager": "mgr"}, 400, "user.manager_cycle"),
        ("PATCH", "/admin/v1/users/mgr", {"name": None}, 400, "argument.invalid"),
        ("PATCH", "/admin/v1/users/mgr", {"userId": "mgr2"}, 400, "argument.invalid"),
        ("POST", "/admin/v1/users/ghost/deactivate", {}, 404, "user.not_found"),
        ("POST", "/admin/v1/users/mgr/deactivate", {"handOverTo": "ghost"}, 404, "user.not_found"),
        ("POST", "/admin/v1/users/mgr/deactivate", {"handOverTo": "mgr"}, 400, "user.hand_over_to_self"),
        ("GET", "/admin/v1/users?active=maybe", None, 400, "argument.invalid"),
        ("GET", "/admin/v1/users?limit=0", None, 400, "argument.invalid"),
        ("GET", "/admin/v1/users?limit=-1", None, 400, "argument.invalid"),
    ],
)
def test_bad_user_input_is_refused_and_changes_nothing(
    admin: Admin, method: str, path: str, body: Any, status: int, code: str
) -> None:
    before = admin.ok("GET", "/admin/v1/audit?limit=1000&kind=user")["entries"]
    admin.error(method, path, body, status, code)
    assert admin.ok("GET", "/admin/v1/audit?limit=1000&kind=user")["entries"] == before
    assert admin.ok("GET", "/admin/v1/users/mgr")["active"] is True


def test_messages_name_the_wire_parameters(admin: Admin) -> None:
    message = admin.error(
        "POST", "/admin/v1/users", {"userId": "x", "name": "X", "departments": [404]}, 400, "department.unknown"
    )
    assert message == "departments: department 404 does not exist in this corp"
    for limit in ("0", "-1", "1001", "x"):  # one message whatever is wrong with it
        assert admin.error("GET", f"/admin/v1/users?limit={limit}", None, 400, "argument.invalid").startswith(
            "limit must be between 1 and 1000, got"
        )
    message = admin.error("POST", "/admin/v1/users", {"userId": 7, "name": "X"}, 400, "argument.invalid")
    assert message.startswith("userId: ")


# --------------------------------------------------------------------------------- deactivation and tasks


def test_a_user_holding_tasks_is_deactivated_only_with_a_successor(admin: Admin) -> None:
    leaver, successor = admin.new_user("leave"), admin.new_user("succ")
    first = admin.start(OR_FORM, "employeeField_any", [leaver])
    second = admin.start(LINE_FORM, "employeeField_line", [leaver, "mgr"])
    message = admin.error("POST", f"/admin/v1/users/{leaver}/deactivate", {}, 409, "user.holds_tasks")
    assert "2 open tasks in 2 process instances" in message and first in message and second in message
    assert "handOverTo" in message
    admin.error("PATCH", f"/admin/v1/users/{leaver}", {"active": False}, 409, "user.holds_tasks")
    assert admin.ok("GET", f"/admin/v1/users/{leaver}")["active"] is True
    assert admin.assignees(first) == [leaver] and admin.assignees(second) == [leaver]

    done = admin.ok(
        "POST",
        f"/admin/v1/users/{leaver}/deactivate",
        {"handOverTo": successor, "userId": "adm", "remark": "离职交接"},
    )
    assert done["user"]["active"] is False and len(done["handedOver"]) == 2
    assert admin.assignees(first) == [successor] and admin.assignees(second) == [successor]
    records = admin.yida("get_operation_records", "adm", process_instance_id=first).body.result
    assert [(r.operator_user_id, r.remark) for r in records if r.operate_type == "REDIRECT_TASK"] == [
        ("adm", "离职交接")
    ]
    # The successor decides both through the Yida API; the sequential line goes on to mgr.
    admin.execute(first, successor)
    admin.execute(second, successor)
    assert admin.yida("get_instance_by_id", "adm", path=first).body.instance_status == "COMPLETED"
    assert admin.assignees(second) == ["mgr"]
    assert [e["topic"] for e in admin.audit("user", leaver)] == ["user.created", "user.deactivated"]


def test_a_deactivated_user_can_no_longer_call_the_yida_api_nor_be_named(admin: Admin) -> None:
    leaver = admin.new_user("gone")
    note = json.dumps({"textField_note": "我的记录"})
    saved = admin.yida("save_form_data", leaver, form_uuid=NOTE_FORM, form_data_json=note).body.result
    admin.ok("POST", f"/admin/v1/users/{leaver}/deactivate", {})
    expect_error(
        lambda: admin.yida("save_form_data", leaver, form_uuid=NOTE_FORM, form_data_json=note),
        "failure.user.userNotExist",
        400,
    )
    expect_error(lambda: admin.yida("get_form_data_by_id", leaver, path=saved), "failure.user.userNotExist", 400)
    naming = json.dumps({"textField_note": "指派", "employeeField_owner": [leaver]})
    expect_error(
        lambda: admin.yida("save_form_data", "boss", form_uuid=NOTE_FORM, form_data_json=naming),
        "invalidState.form.invalidFormData",
        400,
    )
    # His record still renders with his name for others.
    shown = admin.yida("get_form_data_by_id", "adm", path=saved)
    assert shown.body.originator.user_id == leaver
    # Reactivated, he works again.
    admin.ok("PATCH", f"/admin/v1/users/{leaver}", {"active": True})
    admin.yida("save_form_data", leaver, form_uuid=NOTE_FORM, form_data_json=note)
    assert [e["topic"] for e in admin.audit("user", leaver)][-2:] == ["user.deactivated", "user.reactivated"]


def test_tasks_that_reach_him_later_are_transferred_by_an_app_admin(admin: Admin) -> None:
    first, later, successor = admin.new_user("first"), admin.new_user("later"), admin.new_user("next")
    iid = admin.start(LINE_FORM, "employeeField_line", [first, later])
    assert admin.ok("POST", f"/admin/v1/users/{later}/deactivate", {})["handedOver"] == []  # holds nothing yet
    admin.execute(iid, first)
    assert admin.assignees(iid) == [later]  # the line was resolved at start
    (task,) = [int(t.task_id) for t in admin.running(iid)]
    gone = admin.new_user("gone")
    admin.ok("POST", f"/admin/v1/users/{gone}/deactivate", {})
    admin.error(  # nor is a deactivated user given a task by hand
        "POST",
        f"/admin/v1/tasks/{task}/transfer",
        {"userId": "adm", "toUserId": gone, "onBehalf": True},
        404,
        "user.not_found",
    )
    admin.ok(
        "POST",
        f"/admin/v1/tasks/{task}/transfer",
        {"userId": "adm", "toUserId": successor, "onBehalf": True, "remark": "已离职"},
    )
    admin.execute(iid, successor)
    assert admin.yida("get_instance_by_id", "adm", path=iid).body.instance_status == "COMPLETED"


def test_a_deactivated_user_is_never_resolved_as_a_new_approver(admin: Admin) -> None:
    leaver, stays = admin.new_user("old"), admin.new_user("stay")
    iid = admin.start(OR_FORM, "employeeField_any", [leaver, stays])
    admin.ok("POST", f"/admin/v1/users/{leaver}/deactivate", {"handOverTo": "boss"})
    assert admin.assignees(iid) == ["boss", stays]  # his own turn went to boss
    expect_error(
        lambda: admin.start(OR_FORM, "employeeField_any", [leaver, stays]),
        "invalidState.form.invalidFormData",
        400,
    )


# ------------------------------------------------------------------------------------ departments, roles


def test_departments_over_http(admin: Admin) -> None:
    created = admin.ok("POST", "/admin/v1/departments", {"name": "华南", "parentId": 7110, "managers": ["mgr"]}, 201)
    dept = created["deptId"]
    expected = {"deptId": dept, "name": "华南", "nameEn": None, "parentId": 7110, "managers": ["mgr"], "order": 0}
    assert created == expected
    assert admin.ok("GET", f"/admin/v1/departments/{dept}") == created
    assert created in admin.ok("GET", "/admin/v1/departments")["departments"]
    admin.error("POST", "/admin/v1/departments", {"deptId": dept, "name": "重"}, 409, "department.exists")
    admin.error("PATCH", "/admin/v1/departments/7100", {"parentId": dept}, 400, "department.cycle")
    admin.error("PATCH", f"/admin/v1/departments/{dept}", {"parentId": 404}, 400, "department.unknown")
    admin.error("PATCH", f"/admin/v1/departments/{dept}", {"managers": ["ghost"]}, 400, "user.unknown")
    admin.error("GET", "/admin/v1/departments/abc", None, 400, "argument.invalid")
    admin.error("GET", "/admin/v1/departments/404404", None, 404, "department.not_found")
    member = admin.new_user("dm", departments=[dept])
    message = admin.error("DELETE", f"/admin/v1/departments/{dept}", None, 409, "department.not_empty")
    assert "1 member" in message
    admin.ok("PATCH", f"/admin/v1/users/{member}", {"departments": [7110]})
    renamed = admin.ok("PATCH", f"/admin/v1/departments/{dept}", {"name": "华南区", "order": 2})
    assert (renamed["name"], renamed["order"]) == ("华南区", 2)
    assert admin.ok("DELETE", f"/admin/v1/departments/{dept}") == {"deptId": dept, "deleted": True}
    admin.error("DELETE", f"/admin/v1/departments/{dept}", None, 404, "department.not_found")
    topics = [e["topic"] for e in admin.audit("department", str(dept))]
    assert topics == ["department.created", "department.updated", "department.deleted"]


def test_roles_over_http(admin: Admin) -> None:
    first, second = admin.new_user("r"), admin.new_user("r")
    created = admin.ok("POST", "/admin/v1/roles", {"name": "评审", "group": "职能", "members": [first]}, 201)
    role = created["roleId"]
    assert created == {"roleId": role, "name": "评审", "group": "职能", "members": [first]}
    members = admin.ok("PUT", f"/admin/v1/roles/{role}/members", {"members": [first, second]})["members"]
    assert sorted(members) == sorted([first, second])
    admin.error("PUT", f"/admin/v1/roles/{role}/members", {"members": ["ghost"]}, 400, "user.unknown")
    admin.error("PUT", f"/admin/v1/roles/{role}/members", {}, 400, "argument.invalid")
    admin.error("POST", "/admin/v1/roles", {"roleId": role, "name": "重"}, 409, "role.exists")
    assert admin.ok("PATCH", f"/admin/v1/roles/{role}", {"name": "评审组"})["name"] == "评审组"
    assert admin.ok("GET", f"/admin/v1/roles/{role}")["name"] == "评审组"
    assert admin.ok("DELETE", f"/admin/v1/roles/{role}") == {"roleId": role, "deleted": True}
    admin.error("GET", f"/admin/v1/roles/{role}", None, 404, "role.not_found")


# ------------------------------------------------------------------------------------------ credentials


def test_credentials_over_http(admin: Admin) -> None:
    app_key = unique("cred-")
    created = admin.ok("POST", "/admin/v1/credentials", {"appKey": app_key, "scopes": ["Yida.Form.Read"]}, 201)
    assert created["appKey"] == app_key and created["scopes"] == ["records.read"] and len(created["appSecret"]) >= 32
    shown = admin.ok("GET", f"/admin/v1/credentials/{app_key}")
    assert "appSecret" not in shown and shown["scopes"] == ["records.read"]
    token = Sdk(admin.base[7:]).token((app_key, created["appSecret"]))
    admin.error("GET", "/admin/v1/users/mgr", None, 403, "auth.scope_missing", token=token)
    # New scopes apply to the token it already has.
    assert admin.ok("PATCH", f"/admin/v1/credentials/{app_key}", {"scopes": ["Zida.Admin"]})["scopes"] == ["admin"]
    assert admin.ok("GET", "/admin/v1/users/mgr", token=token)["userId"] == "mgr"
    # Rotating: the old token and the old secret stop working at once; the new secret obtains tokens.
    rotated = admin.ok("POST", f"/admin/v1/credentials/{app_key}/rotate", {})
    assert rotated["appSecret"] != created["appSecret"]
    admin.error("GET", "/admin/v1/users/mgr", None, 401, "auth.token_invalid", token=token)
    expect_error(lambda: Sdk(admin.base[7:]).token((app_key, created["appSecret"])), "invalidClientIdOrSecret", 400)
    token = Sdk(admin.base[7:]).token((app_key, rotated["appSecret"]))
    assert admin.ok("GET", "/admin/v1/users/mgr", token=token)["userId"] == "mgr"
    # Revoking: its token stops, its secret obtains nothing.
    assert admin.ok("DELETE", f"/admin/v1/credentials/{app_key}") == {"appKey": app_key, "revoked": True}
    admin.error("GET", "/admin/v1/users/mgr", None, 401, "auth.token_invalid", token=token)
    expect_error(lambda: Sdk(admin.base[7:]).token((app_key, rotated["appSecret"])), "invalidClientIdOrSecret", 400)
    admin.error("GET", f"/admin/v1/credentials/{app_key}", None, 404, "credential.not_found")
    topics = [e["topic"] for e in admin.audit("credential", app_key)]
    assert topics == ["credential.created", "credential.updated", "credential.rotated", "credential.revoked"]
    text = json.dumps(admin.audit("credential", app_key))
    assert created["appSecret"] not in text and rotated["appSecret"] not in text


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/admin/v1/credentials", {"scopes": ["Yida.Nothing"]}, 400, "credential.unknown_scope"),
        ("POST", "/admin/v1/credentials", {"scopes": []}, 400, "argument.invalid"),
        ("POST", "/admin/v1/credentials", {}, 400, "argument.invalid"),
        ("POST", "/admin/v1/credentials", {"scopes": ["*"], "appSecret": "short"}, 400, "argument.invalid"),
        ("POST", "/admin/v1/credentials", {"scopes": ["*"], "appKey": "corpadmin-read"}, 409, "credential.exists"),
        ("POST", "/admin/v1/credentials", {"scopes": ["*"], "appKey": "keyA-all"}, 409, "credential.exists"),
        ("POST", "/admin/v1/credentials/ghost/rotate", {}, 404, "credential.not_found"),
        ("DELETE", "/admin/v1/credentials/keyA-all", None, 404, "credential.not_found"),
    ],
)
def test_bad_credential_input_changes_nothing(
    admin: Admin, method: str, path: str, body: Any, status: int, code: str
) -> None:
    before = admin.ok("GET", "/admin/v1/credentials")["credentials"]
    admin.error(method, path, body, status, code)
    assert admin.ok("GET", "/admin/v1/credentials")["credentials"] == before
    assert admin.sdk.token(A_ALL)  # corp A's credential still works


# ------------------------------------------------------------------------------------------------ audit


def test_the_audit_log_pages_and_filters(admin: Admin) -> None:
    last = admin.last_event()
    user_id = admin.new_user("aud")
    admin.ok("PATCH", f"/admin/v1/users/{user_id}", {"title": "一"})
    admin.ok("PATCH", f"/admin/v1/users/{user_id}", {"title": "二"})
    entries = admin.audit("user", user_id)
    assert [e["action"] for e in entries] == ["created", "updated", "updated"]
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    page = admin.ok("GET", f"/admin/v1/audit?kind=user&object={user_id}&after={entries[0]['id']}&limit=1")["entries"]
    assert page == [entries[1]]
    for query in ("kind=planet", "object=x", "after=-1", "limit=1001"):
        admin.error("GET", f"/admin/v1/audit?{query}", None, 400, "argument.invalid")
    # The events of the same changes are in the outbox.
    events = admin.ok("GET", f"/admin/v1/events?after={last}&limit=1000")["events"]
    assert [(e["topic"], e["object"], e["actor"], e["data"]) for e in events] == [
        (e["topic"], user_id, "credential:corpadmin-admin", e["changes"]) for e in entries
    ]
