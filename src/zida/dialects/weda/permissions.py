"""WeDa's permission API (users, organisations, roles, resource and data authorisation):
``/weda/auth/v1.1/{envType}/{action}`` and the older ``/weda/auth/v1/{envType}/{action}``, over the same org
directory and access policy as every dialect. Writes go through the org actions (one transaction each, audited,
seen at once by the DingTalk dialect); they need a credential with the ``admin`` scope, reads ``directory.read``.

Bodies are JSON with PascalCase keys (camelCase accepted); ``GET`` actions read the same names from the query
string (``describeUserList?pageNo=1&pageSize=10``, ``describeWedaUser?uid=…``). Answers are
``{"Response": {"RequestId", "Data"}}``.

How WeDa's objects map (README, "WeDa"): a WeDa user is a corp user whose ``UserId`` (and ``Uuid``) is the Zida
userId (``addUser`` takes ``Uuid`` as the new userId, else ``Name``), ``Name`` is his sign-in name, ``NickName``
his display name, ``Phone``/``Email`` his mobile and email, ``ParentUserId`` his manager, ``MainOrg``/``Orgs`` his
departments, ``Description`` his title, ``RoleIds`` his roles. An organisation is a department: its ``OrgId`` /
``_id`` / ``departmentCode`` is the department id, ``departmentParentCode`` its parent's. A role's ``Id`` is the
role id and ``RoleIdentity`` its group. ``deleteUser`` deactivates (Zida keeps people its history names; a user
holding open tasks is refused: hand them over with the admin API). ``describeResourcesPermission`` answers from
Zida's policy, in which every active user of the corp may use every app, process and model (what he sees in them is
the row policy); ``describeAuthStrategy`` reports that row policy: app admins read and write all records (Type 4),
others their own and the approvals they take part in (Type 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.routing import Route

from zida.core.access.members import app_actor
from zida.core.apps.queries import find_app, find_model_form
from zida.core.errors import InvalidArgument, NotFound, Unsupported
from zida.core.org import actions
from zida.core.org.actions import DepartmentSpec, RoleSpec, UserSpec
from zida.core.org.models import CorpRef, Department, Role, User
from zida.core.org.repository import (
    environment_id,
    find_departments,
    find_roles,
    get_user,
    list_departments,
    page_users,
)
from zida.core.principals import Scope
from zida.core.records.values import brief
from zida.core.workflow import store as workflow_store
from zida.dialects.weda.calls import ActionCall, Actions, bad, find_action, pascal
from zida.dialects.weda.http import MAX_PAGE_NO, WedaCall, api_endpoint
from zida.ids import is_decimal

__all__ = ["ACTIONS", "routes"]

MAX_PAGE_SIZE = 1000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_.@]{0,63}$")
# Phone and Email must be "valid, unique" (unique among the environment's active users: ``unique_contacts``).
_PHONE = re.compile(r"\+?[0-9][0-9\-]{2,19}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
_RESOURCE_TYPES = ("app", "modelApp", "flow", "dataSource")


def _corp(call: ActionCall) -> CorpRef:
    return CorpRef(call.principal.corp_pk, call.principal.corp_id)


def _actor(call: ActionCall) -> str:
    return f"credential:{call.principal.client_id}"


def _id(call: ActionCall, name: str, what: str) -> int:
    value = call.required(name)
    if not is_decimal(value) or len(value) > 18:
        raise bad(f"{name} {brief(value)} is not {what}")
    return int(value)


def _page(call: ActionCall) -> tuple[int, int]:
    number = call.integer("PageNo", 1, maximum=MAX_PAGE_NO)
    size = call.integer("PageSize", 10, maximum=MAX_PAGE_SIZE)
    return (number - 1) * size, size


def _ids(values: Any, name: str, what: str) -> list[int]:
    if values is None:
        return []
    if not isinstance(values, list) or len(values) > MAX_PAGE_SIZE:
        raise bad(f"{name} must be a list of {what}s, got {brief(values)}")
    out = []
    for v in values:
        text = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        if not isinstance(text, str) or not is_decimal(text) or len(text) > 18:
            raise bad(f"{name}: {brief(v)} is not {what}")
        out.append(int(text))
    return out


# ------------------------------------------------------------------------------------------------ shapes


def _org(dept_id: int, departments: Mapping[int, Department]) -> dict[str, Any]:
    dept = departments.get(dept_id)
    return {"OrgId": str(dept_id), "OrgName": dept.name if dept else "", "OrgIdentity": str(dept_id)}


def _role_out(role: Role, env_id: str) -> dict[str, Any]:
    return {
        "Id": role.role_id,
        "Name": role.name,
        "RoleIdentity": role.group or str(role.role_id),
        "RoleDesc": "",
        "EnvId": env_id,
        "UpdateTime": "",
        "ParentRoleId": None,
        "ChildRoleId": None,
        "EnvIdentity": None,
        "IsReleased": True,
    }


async def _env_id(call: ActionCall) -> str:
    return await environment_id(call.db, call.principal.corp_pk) or ""


async def _users_out(call: ActionCall, users: Sequence[User]) -> list[dict[str, Any]]:
    corp_pk = call.principal.corp_pk
    departments = await find_departments(call.db, corp_pk, {d for u in users for d in u.dept_ids})
    roles = await find_roles(call.db, corp_pk)
    env_id = await _env_id(call)
    out = []
    for user in users:
        related = [_role_out(r, env_id) for r in roles.values() if user.user_id in r.members]
        out.append(
            {
                "UserId": user.user_id,
                "Uuid": user.user_id,
                "Name": user.username or user.user_id,
                "NickName": user.name,
                "Email": user.email or "",
                "Phone": user.mobile or "",
                "MainOrg": _org(user.dept_ids[0], departments) if user.dept_ids else None,
                "Orgs": [_org(d, departments) for d in user.dept_ids],
                "ParentUserId": user.manager_user_id or "",
                "UserDesc": user.title or "",
                "RelatedRoles": related,
                "IsLicensed": user.active,
                "Status": 1 if user.active else 0,
                "Source": 1,
                "Type": 0,
                "InternalUserType": 0,
                "EnvId": env_id,
                "UserExtend": "{}",
            }
        )
    return out


# ------------------------------------------------------------------------------------------------ users


def _org_ids(call: ActionCall) -> list[int] | None:
    main, more = call.body.get("MainOrg"), call.body.get("Orgs")
    if main is None and more is None:
        return None
    orgs = ([main] if main is not None else []) + (more if isinstance(more, list) else [] if more is None else [more])
    out: list[int] = []
    for org in orgs:
        org_id = pascal(org).get("OrgId") if isinstance(org, Mapping) else None
        out.extend(_ids([org_id], "MainOrg/Orgs OrgId", "a department id"))
    return list(dict.fromkeys(out))


def _user_changes(call: ActionCall) -> dict[str, Any]:
    extend = call.body.get("UserExtend")
    if extend not in (None, "", "{}"):
        raise Unsupported("UserExtend: Zida's users have no extra model fields", reason="user.extend")
    changes: dict[str, Any] = {}
    name = call.text("Name", max_chars=64)
    if name is not None:
        if not _NAME.match(name):
            raise bad("Name: 1-64 letters, digits, '-', '_', '.' or '@', starting with a letter or digit")
        changes["username"] = name
    for key, field in (("NickName", "name"), ("Phone", "mobile"), ("Email", "email"), ("Description", "title")):
        value = call.text(key, max_chars=128)
        if value is not None:
            changes[field] = value
    if "mobile" in changes and not _PHONE.fullmatch(changes["mobile"]):
        raise bad(f"Phone: {brief(changes['mobile'])} is not a phone number")
    if "email" in changes and not _EMAIL.fullmatch(changes["email"]):
        raise bad(f"Email: {brief(changes['email'])} is not an email address")
    password = call.text("Password", max_chars=60)
    if password is not None:
        if len(password) < 4:
            raise bad("Password: 4-60 characters")
        changes["password"] = password
    manager = call.text("ParentUserId")
    if manager is not None:
        changes["manager"] = manager
    departments = _org_ids(call)
    if departments is not None:
        changes["departments"] = tuple(departments)
    return changes


def _roles(call: ActionCall) -> list[int] | None:
    return None if call.body.get("RoleIds") is None else _ids(call.body["RoleIds"], "RoleIds", "a role id")


async def add_user(call: ActionCall) -> str:
    """addUser → the new user's UserId."""
    name = call.required("Name")
    changes = _user_changes(call)
    user_id = call.text("Uuid", max_chars=64) or name
    if call.text("Uuid") is None and "password" not in changes:
        raise InvalidArgument("Uuid and Password may not both be empty", reason="argument.missing")
    spec = UserSpec(user_id=user_id, name=changes.pop("name", name), **changes)
    user = await actions.create_user(
        call.db, _corp(call), spec, actor=_actor(call), roles=_roles(call), unique_contacts=True
    )
    return user.user_id


async def update_user(call: ActionCall) -> bool:
    """updateUserInfoByUserId (updateUser): change the fields given."""
    user_id = call.required("UserId")
    await actions.update_user(
        call.db, _corp(call), user_id, _user_changes(call), actor=_actor(call), roles=_roles(call), unique_contacts=True
    )
    return True


async def delete_user(call: ActionCall) -> bool:
    """deleteUser: deactivate the user (refused while he holds open tasks)."""
    await actions.deactivate_user(call.db, _corp(call), call.required("UserId"), actor=_actor(call))
    return True


async def describe_user(call: ActionCall) -> dict[str, Any]:
    """describeWedaUser (GET ``?uid=``) / describeUser (``UserId``): one user."""
    user_id = call.text("Uid") or call.required("UserId")
    user = await get_user(call.db, call.principal.corp_pk, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist in this environment", reason="user.not_found")
    return (await _users_out(call, [user]))[0]


async def describe_user_list(call: ActionCall) -> dict[str, Any]:
    """describeUserList: a page of users ordered by UserId (``UserIds`` narrows it)."""
    offset, size = _page(call)
    raw = call.body.get("UserIds")
    if raw is not None and (not isinstance(raw, list) or not all(isinstance(u, str) for u in raw)):
        raise bad(f"UserIds must be a list of user ids, got {brief(raw)}")
    total, users = await page_users(call.db, call.principal.corp_pk, offset=offset, limit=size, user_ids=raw)
    return {"Total": total, "UserList": await _users_out(call, users)}


# ------------------------------------------------------------------------------------------------ organisations


def _org_data(call: ActionCall) -> dict[str, Any]:
    raw = call.body.get("OrgData")
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise bad("OrgData must be a JSON object (or its text)") from None
    if not isinstance(raw, dict):
        raise bad(f"OrgData must be a JSON object (or its text), got {brief(raw)}")
    return raw


def _dept_number(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    return _ids([value], f"OrgData.{name}", "a department id")[0]


def _dept_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "departmentName" in data:
        name = data["departmentName"]
        if not isinstance(name, str) or not name.strip():
            raise bad("OrgData.departmentName must be a non-empty text")
        changes["name"] = name
    if "departmentParentCode" in data:
        changes["parent_id"] = _dept_number(data["departmentParentCode"], "departmentParentCode")
    return changes


def _org_id(data: Mapping[str, Any]) -> int | None:
    ids = {_dept_number(data.get(k), k) for k in ("_id", "departmentCode")} - {None}
    if len(ids) > 1:
        raise bad("OrgData._id and departmentCode name different departments")
    return ids.pop() if ids else None


async def add_org(call: ActionCall) -> str:
    """addOrg → the new department's OrgId."""
    data = _org_data(call)
    changes = _dept_changes(data)
    if "name" not in changes:
        raise InvalidArgument("OrgData.departmentName is required", reason="argument.missing")
    spec = DepartmentSpec(_org_id(data), changes["name"], parent_id=changes.get("parent_id"))
    dept = await actions.create_department(call.db, _corp(call), spec, actor=_actor(call))
    return str(dept.dept_id)


async def update_org(call: ActionCall) -> int:
    """updateOrg: change a department's name or parent."""
    data = _org_data(call)
    org_id = _org_id(data)
    if org_id is None:
        raise InvalidArgument("OrgData._id (or departmentCode) is required", reason="argument.missing")
    await actions.update_department(call.db, _corp(call), org_id, _dept_changes(data), actor=_actor(call))
    return 1


async def delete_org(call: ActionCall) -> int:
    """deleteOrg: delete a department without members or sub-departments."""
    await actions.delete_department(call.db, _corp(call), _id(call, "OrgId", "a department id"), actor=_actor(call))
    return 1


async def describe_orgs(call: ActionCall) -> dict[str, Any]:
    """describeOrgs: a page of departments, each record as the JSON text WeDa gives."""
    offset, size = _page(call)
    departments = await list_departments(call.db, call.principal.corp_pk)
    by_id = {d.dept_id: d for d in departments}

    def depth(dept: Department) -> int:
        level, seen = 1, {dept.dept_id}
        while dept.parent_dept_id is not None and dept.parent_dept_id in by_id and dept.parent_dept_id not in seen:
            dept = by_id[dept.parent_dept_id]
            seen.add(dept.dept_id)
            level += 1
        return level

    items = []
    for dept in departments[offset : offset + size]:
        record = {
            "_id": str(dept.dept_id),
            "departmentCode": str(dept.dept_id),
            "departmentName": dept.name,
            "departmentParentCode": str(dept.parent_dept_id) if dept.parent_dept_id is not None else "",
            "depth": depth(dept),
            "managers": list(dept.manager_user_ids),
        }
        items.append({"DataId": str(dept.dept_id), "DataRecord": orjson.dumps(record).decode()})
    return {"Total": len(departments), "DataList": items}


# ------------------------------------------------------------------------------------------------ roles


async def _role(call: ActionCall) -> Role:
    role_id = _id(call, "RoleId", "a role id")
    found = await find_roles(call.db, call.principal.corp_pk, [role_id])
    if role_id not in found:
        raise NotFound(f"role {role_id} does not exist", reason="role.not_found")
    return found[role_id]


async def add_role(call: ActionCall) -> str:
    """addRole → the new role's Id."""
    spec = RoleSpec(None, call.required("Name"), call.text("RoleIdentity", max_chars=64))
    role = await actions.create_role(call.db, _corp(call), spec, actor=_actor(call))
    return str(role.role_id)


async def update_role(call: ActionCall) -> bool:
    """updateRole: change a role's Name or RoleIdentity."""
    role_id = _id(call, "RoleId", "a role id")
    changes: dict[str, Any] = {}
    if call.text("Name") is not None:
        changes["name"] = call.text("Name")
    if call.text("RoleIdentity") is not None:
        changes["group"] = call.text("RoleIdentity")
    await actions.update_role(call.db, _corp(call), role_id, changes, actor=_actor(call))
    return True


async def delete_role(call: ActionCall) -> bool:
    """deleteRole: delete a role no process names."""
    await actions.delete_role(call.db, _corp(call), _id(call, "RoleId", "a role id"), actor=_actor(call))
    return True


async def describe_role(call: ActionCall) -> dict[str, Any]:
    """describeRole: one role with its members' UserIds."""
    role = await _role(call)
    return {**_role_out(role, await _env_id(call)), "UserIds": list(role.members)}


async def describe_role_list(call: ActionCall) -> dict[str, Any]:
    """describeRoleList (and the documented misspelling describeRoelList): a page of roles."""
    offset, size = _page(call)
    roles = sorted((await find_roles(call.db, call.principal.corp_pk)).values(), key=lambda r: r.role_id)
    env_id = await _env_id(call)
    return {"Total": len(roles), "RoleList": [_role_out(r, env_id) for r in roles[offset : offset + size]]}


async def describe_role_users(call: ActionCall) -> dict[str, Any]:
    """describeRoleUsers: a page of a role's members."""
    role = await _role(call)
    offset, size = _page(call)
    total, users = await page_users(
        call.db, call.principal.corp_pk, offset=offset, limit=size, user_ids=list(role.members)
    )
    return {"Total": total, "UserList": await _users_out(call, users)}


async def _set_members(call: ActionCall, *, bind: bool) -> bool:
    role = await _role(call)
    users = call.user_ids("UserIds")
    members = (
        list(role.members) + [u for u in users if u not in role.members]
        if bind
        else [m for m in role.members if m not in users]
    )
    await actions.set_role_members(call.db, _corp(call), role.role_id, members, actor=_actor(call))
    return True


async def bind_role_users(call: ActionCall) -> bool:
    """bindRoleUsers: add users to a role."""
    return await _set_members(call, bind=True)


async def unbind_role_users(call: ActionCall) -> bool:
    """unbindRoleUsers: remove users from a role."""
    return await _set_members(call, bind=False)


# ------------------------------------------------------------------------------------------------ authorisation


async def _subject(call: ActionCall) -> User:
    info = call.body.get("UserInfo")
    uid = pascal(info).get("Uid") if isinstance(info, Mapping) else None
    if isinstance(uid, int) and not isinstance(uid, bool):
        uid = str(uid)
    if not isinstance(uid, str) or not uid:
        raise InvalidArgument("UserInfo.Uid is required", reason="argument.missing")
    user = await get_user(call.db, call.principal.corp_pk, uid)
    if user is None:
        raise NotFound(f"user {uid} does not exist in this environment", reason="user.not_found")
    return user


async def _resource_exists(call: ActionCall, kind: str, resource_id: str) -> bool:
    corp_pk = call.principal.corp_pk
    if kind in ("app", "modelApp"):
        return await find_app(call.db, corp_pk, resource_id) is not None
    if kind == "flow":
        return bool(await workflow_store.find_process_forms_by_key(call.db, corp_pk, resource_id))
    return await find_model_form(call.db, corp_pk, resource_id) is not None


async def describe_resources_permission(call: ActionCall) -> list[dict[str, Any]]:
    """describeResourcesPermission: whether the user may use each app, process or model."""
    user = await _subject(call)
    kind = call.required("ResourceType")
    if kind not in _RESOURCE_TYPES:
        raise bad(f"ResourceType must be one of {', '.join(_RESOURCE_TYPES)}, got {brief(kind)}")
    resources = call.body.get("ResourceList")
    if not isinstance(resources, list) or not resources or len(resources) > MAX_PAGE_SIZE:
        raise bad(f"ResourceList must be a list of {{ResourceId, SubResourceId}}, got {brief(resources)}")
    out = []
    for item in resources:
        resource_id = pascal(item).get("ResourceId") if isinstance(item, Mapping) else None
        if not isinstance(resource_id, str) or not resource_id:
            raise bad(f"ResourceList items need a ResourceId, got {brief(item)}")
        allowed = user.active and await _resource_exists(call, kind, resource_id)
        out.append({"ResourceId": resource_id, "ResourceType": kind, "IsAccess": allowed})
    return out


async def describe_auth_strategy(call: ActionCall) -> dict[str, Any]:
    """describeAuthStrategy: the row policy of a data model for a user."""
    user = await _subject(call)
    resource = call.body.get("Resource")
    spec = pascal(resource) if isinstance(resource, Mapping) else {}
    model = spec.get("ResourceId")
    if not isinstance(model, str) or not model:
        raise InvalidArgument("Resource.ResourceId (a data model name) is required", reason="argument.missing")
    form = await find_model_form(call.db, call.principal.corp_pk, model)
    if form is None:
        raise NotFound(f"data model {model} does not exist", reason="model.not_found")
    methods = spec.get("MethodIdList") or []
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise bad(f"Resource.MethodIdList must be a list of method names, got {brief(methods)}")
    if user.active:
        actor = await app_actor(call.db, call.principal.corp_pk, form.app_pk, user.user_id)
        kind = 4 if actor.is_app_admin else 2
    else:
        kind = 1
    rows = {"Type": kind, "Scope": [], "Condition": []}
    return {
        "Permission": {
            "RowPermission": {"Read": rows, "Write": rows},
            "MethodPermission": [{"Name": m, "IsAccess": user.active} for m in methods],
            "ResourceId": model,
        },
        "UserId": user.user_id,
    }


# ------------------------------------------------------------------------------------------------ routing

ACTIONS: Actions = {
    "addUser": (Scope.ADMIN, add_user),
    "updateUserInfoByUserId": (Scope.ADMIN, update_user),
    "updateUser": (Scope.ADMIN, update_user),
    "deleteUser": (Scope.ADMIN, delete_user),
    "describeWedaUser": (Scope.DIRECTORY_READ, describe_user),
    "describeUser": (Scope.DIRECTORY_READ, describe_user),
    "describeUserList": (Scope.DIRECTORY_READ, describe_user_list),
    "addOrg": (Scope.ADMIN, add_org),
    "updateOrg": (Scope.ADMIN, update_org),
    "deleteOrg": (Scope.ADMIN, delete_org),
    "describeOrgs": (Scope.DIRECTORY_READ, describe_orgs),
    "addRole": (Scope.ADMIN, add_role),
    "updateRole": (Scope.ADMIN, update_role),
    "deleteRole": (Scope.ADMIN, delete_role),
    "describeRole": (Scope.DIRECTORY_READ, describe_role),
    "describeRoleList": (Scope.DIRECTORY_READ, describe_role_list),
    "describeRoelList": (Scope.DIRECTORY_READ, describe_role_list),
    "describeRoleUsers": (Scope.DIRECTORY_READ, describe_role_users),
    "bindRoleUsers": (Scope.ADMIN, bind_role_users),
    "unbindRoleUsers": (Scope.ADMIN, unbind_role_users),
    "describeResourcesPermission": (Scope.DIRECTORY_READ, describe_resources_permission),
    "describeAuthStrategy": (Scope.DIRECTORY_READ, describe_auth_strategy),
}


@api_endpoint(None)
async def permission_action(call: WedaCall) -> Any:
    """GET or POST /weda/auth/v1.1/{envType}/{action} (and /weda/auth/v1/…)."""
    scope, action = find_action(call, ACTIONS, "permission")
    if call.request.method == "GET" and scope is Scope.ADMIN:
        raise InvalidArgument(f"{call.path['action']} changes data: POST it", reason="request.method_not_allowed")
    body = call.body if call.request.method == "POST" else dict(call.request.query_params)
    return await action(ActionCall(call, pascal(body)))


def routes() -> list[Route]:
    """The permission service's routes, current (v1.1) and older (v1)."""
    return [
        Route(f"/weda/auth/{version}/{{env}}/{{action}}", permission_action, methods=["GET", "POST"])
        for version in ("v1.1", "v1")
    ]
