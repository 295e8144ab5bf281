"""WeDa's permission API over the org directory: users, organisations and roles through the org actions (seen by the
other dialects and by sign-in at once), resource and data authorisation from the access policy, the v1 aliases,
the scopes, and bad input that changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from tests.dialects.weda.conftest import READ_ONLY, Weda, credential_token
from zida.dialects.weda.permissions import ACTIONS

AUTH = "/weda/auth/v1.1/prod"


def tag() -> str:
    return uuid.uuid4().hex[:8]


def call(client: Weda, action: str, body: dict[str, Any] | None = None, *, version: str = "v1.1", **kw: Any) -> Any:
    """An action that must succeed: its ``Data``."""
    method = "GET" if "params" in kw else "POST"
    reply = client.call(method, f"/weda/auth/{version}/prod/{action}", body if method == "POST" else None, **kw)
    assert reply.status_code == 200, reply.text
    response = reply.json()["Response"]
    assert "Error" not in response, response
    return response["Data"]


def error(client: Weda, action: str, body: dict[str, Any] | None = None, method: str = "POST") -> str:
    """An action that must fail: its ``Error.Code``."""
    reply = client.call(method, f"{AUTH}/{action}", body if method == "POST" else None)
    assert reply.status_code == 200, reply.text
    response = reply.json()["Response"]
    assert "Data" not in response and response["Error"]["Message"], response
    code: str = response["Error"]["Code"]
    return code


def test_users_are_the_directory_s(weda: Weda, weda_base: str) -> None:
    t = tag()
    phone = f"137{int(t, 16) % 10**8:08d}"  # unique among the environment's users, as WeDa requires
    role_id = call(weda, "addRole", {"Name": f"角色{t}", "RoleIdentity": f"group{t}"})
    body = {
        "Name": f"login.{t}",
        "NickName": "王五",
        "Uuid": f"u{t}",
        "Password": "pass-word-1",
        "Phone": phone,
        "Email": f"{t}@example.com",
        "ParentUserId": "wadmin",
        "RoleIds": [role_id],
        "MainOrg": {"OrgId": "10", "OrgIdentity": ""},
        "Description": "会计",
        "UserExtend": "",
    }
    assert call(weda, "addUser", body) == f"u{t}"
    user = call(weda, "describeWedaUser", params={"uid": f"u{t}", "source": 4}, version="v1")
    assert user["UserId"] == user["Uuid"] == f"u{t}" and user["Name"] == f"login.{t}" and user["NickName"] == "王五"
    assert user["MainOrg"] == {"OrgId": "10", "OrgName": "财务部", "OrgIdentity": "10"} and user["Phone"] == phone
    assert user["ParentUserId"] == "wadmin" and user["UserDesc"] == "会计" and user["IsLicensed"] is True
    assert [r["Id"] for r in user["RelatedRoles"]] == [int(role_id)]

    # He signs in with his Name at once (WeDa's sign-in), and the admin API (the same directory) sees him.
    signin = httpx.post(
        f"{weda_base}/auth/v1/signin",
        params={"client_id": "lowcode-test0001"},
        json={"username": f"login.{t}", "password": "pass-word-1"},
    )
    assert signin.status_code == 200 and signin.json()["sub"] == f"u{t}"
    admin = httpx.get(f"{weda_base}/admin/v1/users/u{t}", headers={"authorization": f"Bearer {weda.token}"})
    assert admin.status_code == 200 and admin.json()["manager"] == "wadmin", admin.text

    # Phone and Email are "valid, unique": another user may not take them, nor may they be anything.
    taken = {"Password": "pass-word-2", "Uuid": f"v{t}"}
    assert error(weda, "addUser", {"Name": f"other.{t}", **taken, "Phone": phone}) == "FailedOperation"
    assert error(weda, "addUser", {"Name": f"other.{t}", **taken, "Email": f"{t}@example.com"}) == "FailedOperation"
    for bad in ({"Phone": "13709999999x"}, {"Email": "same-not-an-email"}, {"Email": "a@b"}):
        assert error(weda, "addUser", {"Name": f"other.{t}", **taken, **bad}) == "InvalidParameter", bad
        assert error(weda, "updateUserInfoByUserId", {"UserId": f"u{t}", **bad}) == "InvalidParameter", bad
    assert error(weda, "describeUser", {"UserId": f"v{t}"}) == "ResourceNotFound"  # none of them was made
    assert error(weda, "updateUserInfoByUserId", {"UserId": "wuser1", "Phone": phone}) == "FailedOperation"
    assert call(weda, "updateUserInfoByUserId", {"UserId": f"u{t}", "Phone": phone}) is True  # his own, unchanged
    assert call(weda, "updateUserInfoByUserId", {"UserId": f"u{t}", "NickName": "王六", "RoleIds": []}) is True
    user = call(weda, "describeUser", {"UserId": f"u{t}"})
    assert user["NickName"] == "王六" and user["RelatedRoles"] == []
    page = call(weda, "describeUserList", {"PageNo": 1, "PageSize": 2, "UserIds": [f"u{t}", "wadmin", "ghost"]})
    assert page["Total"] == 2 and [u["UserId"] for u in page["UserList"]] == [f"u{t}", "wadmin"]
    listed = call(weda, "describeUserList", params={"pageNo": 1, "pageSize": 1000}, version="v1")
    assert listed["Total"] == len(listed["UserList"]) >= 5

    assert call(weda, "deleteUser", {"UserId": f"u{t}"}) is True  # deactivated: history keeps him
    assert call(weda, "describeUser", {"UserId": f"u{t}"})["IsLicensed"] is False
    again = httpx.post(
        f"{weda_base}/auth/v1/signin",
        params={"client_id": "lowcode-test0001"},
        json={"username": f"login.{t}", "password": "pass-word-1"},
    )
    assert again.status_code != 200


def test_organisations_are_departments(weda: Weda) -> None:
    t = tag()
    org = orjson.dumps({"departmentName": f"分部{t}", "departmentParentCode": "10"}).decode()
    org_id = call(weda, "addOrg", {"OrgData": org})
    records = [
        orjson.loads(d["DataRecord"]) for d in call(weda, "describeOrgs", {"PageNo": 1, "PageSize": 1000})["DataList"]
    ]
    mine = next(r for r in records if r["_id"] == org_id)
    assert mine["departmentName"] == f"分部{t}" and mine["departmentParentCode"] == "10" and mine["depth"] == 3
    update = orjson.dumps({"_id": org_id, "departmentName": f"改名{t}"}).decode()
    assert call(weda, "updateOrg", {"OrgData": update}) == 1
    records = [orjson.loads(d["DataRecord"]) for d in call(weda, "describeOrgs", {"PageSize": 1000})["DataList"]]
    assert any(r["departmentName"] == f"改名{t}" for r in records)
    assert error(weda, "deleteOrg", {"OrgId": "10"}) == "FailedOperation"  # it has members
    assert call(weda, "deleteOrg", {"OrgId": org_id}) == 1
    assert error(weda, "deleteOrg", {"OrgId": org_id}) == "ResourceNotFound"


def test_roles_and_their_users(weda: Weda) -> None:
    t = tag()
    role_id = call(weda, "addRole", {"Name": f"审批人{t}"})
    call(weda, "bindRoleUsers", {"RoleId": role_id, "UserIds": ["wuser1", "wuser2"]})
    role = call(weda, "describeRole", {"RoleId": role_id})
    assert role["Id"] == int(role_id) and role["Name"] == f"审批人{t}" and role["UserIds"] == ["wuser1", "wuser2"]
    users = call(weda, "describeRoleUsers", {"RoleId": role_id, "PageSize": 1})
    assert users["Total"] == 2 and [u["UserId"] for u in users["UserList"]] == ["wuser1"]
    call(weda, "unbindRoleUsers", {"RoleId": role_id, "UserIds": "wuser1"})
    call(weda, "updateRole", {"RoleId": role_id, "Name": f"改{t}", "RoleIdentity": "g1"})
    listed = call(weda, "describeRoelList", {"PageNo": 1, "PageSize": 1000}, version="v1")["RoleList"]
    mine = next(r for r in listed if r["Id"] == int(role_id))
    assert mine["Name"] == f"改{t}" and mine["RoleIdentity"] == "g1"
    assert call(weda, "describeRole", {"RoleId": role_id})["UserIds"] == ["wuser2"]
    assert call(weda, "deleteRole", {"RoleId": role_id}) is True
    assert error(weda, "describeRole", {"RoleId": role_id}) == "ResourceNotFound"


def test_resource_and_data_authorisation(weda: Weda) -> None:
    def access(kind: str, *ids: str, uid: str = "wuser1") -> list[bool]:
        body = {
            "UserInfo": {"Uid": uid, "Source": 4},
            "ResourceType": kind,
            "ResourceList": [{"ResourceId": i} for i in ids],
        }
        return [r["IsAccess"] for r in call(weda, "describeResourcesPermission", body)]

    assert access("app", "APP_WEDA_MAIN", "APP_ELSEWHERE") == [True, False]
    assert access("flow", "leave_approval", "nope") == [True, False]
    assert access("dataSource", "expense", "nope") == [True, False]

    def strategy(uid: str) -> dict[str, Any]:
        body = {
            "UserInfo": {"Uid": uid, "Source": 4},
            "Resource": {"ResourceId": "expense", "MethodIdList": ["wedaGetRecords"]},
        }
        result: dict[str, Any] = call(weda, "describeAuthStrategy", body)
        return result

    admin, user = strategy("wadmin"), strategy("wuser1")
    assert admin["Permission"]["RowPermission"]["Read"]["Type"] == 4 and admin["UserId"] == "wadmin"
    assert user["Permission"]["RowPermission"]["Write"]["Type"] == 2
    assert user["Permission"]["MethodPermission"] == [{"Name": "wedaGetRecords", "IsAccess": True}]


def test_scopes_and_bad_input(weda: Weda, weda_base: str, zhangsan: Weda) -> None:
    before = call(weda, "describeUserList", {"PageSize": 1})["Total"]
    read_only = Weda(weda_base, credential_token(weda_base, READ_ONLY))  # records.read only
    for action, (scope, _) in ACTIONS.items():
        assert error(read_only, action, {}) == "UnauthorizedOperation", action
        if scope.value == "admin":  # a signed-in user reads the directory but changes nothing
            assert error(zhangsan, action, {}) == "UnauthorizedOperation", action
        anonymous = httpx.post(f"{weda_base}{AUTH}/{action}", json={})
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "MISSING_CREDENTIALS"
    assert call(zhangsan, "describeUser", {"UserId": "wuser2"})["NickName"] == "李四"

    t = tag()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("noSuchAction", {}, "InvalidAction"),
        ("addUser", {}, "MissingParameter"),
        ("addUser", {"Name": f"n{t}"}, "MissingParameter"),  # Uuid and Password may not both be empty
        ("addUser", {"Name": "has space", "Password": "pass"}, "InvalidParameter"),
        ("addUser", {"Name": f"n{t}", "Password": "abc"}, "InvalidParameter"),
        ("addUser", {"Name": f"n{t}", "Uuid": f"x{t}", "MainOrg": {"OrgId": "999"}}, "InvalidParameter"),
        ("addUser", {"Name": f"n{t}", "Uuid": f"x{t}", "RoleIds": ["987654"]}, "ResourceNotFound"),
        ("addUser", {"Name": f"n{t}", "Uuid": f"x{t}", "UserExtend": '{"a": 1}'}, "UnsupportedOperation"),
        ("addUser", {"Name": f"n{t}", "Uuid": "wadmin"}, "FailedOperation"),
        ("updateUserInfoByUserId", {"UserId": "ghost", "NickName": "x"}, "ResourceNotFound"),
        ("updateUserInfoByUserId", {"UserId": "wuser1", "ParentUserId": "wuser1"}, "InvalidParameter"),
        ("describeUserList", {"PageSize": 5000}, "InvalidParameter"),
        ("addOrg", {"OrgData": "{not json"}, "InvalidParameter"),
        ("addOrg", {"OrgData": {"departmentName": "x", "departmentParentCode": "abc"}}, "InvalidParameter"),
        ("addOrg", {"OrgData": {"departmentCode": "1"}}, "MissingParameter"),
        ("addRole", {}, "MissingParameter"),
        ("bindRoleUsers", {"RoleId": "1x", "UserIds": ["wuser1"]}, "InvalidParameter"),
        (
            "describeResourcesPermission",
            {"UserInfo": {"Uid": "wuser1"}, "ResourceType": "page", "ResourceList": [{"ResourceId": "a"}]},
            "InvalidParameter",
        ),
        (
            "describeAuthStrategy",
            {"UserInfo": {"Uid": "ghost"}, "Resource": {"ResourceId": "expense"}},
            "ResourceNotFound",
        ),
    ]
    for action, body, code in cases:
        assert error(weda, action, body) == code, (action, body)
    assert error(weda, "addUser", method="GET") == "UnsupportedProtocol"  # a change is POSTed
    assert call(weda, "describeUserList", {"PageSize": 1})["Total"] == before
    assert call(weda, "describeUser", {"UserId": "wuser1"})["ParentUserId"] == "wadmin"
