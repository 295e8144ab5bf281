"""Admin API for the org directory: users (create, change, deactivate with a hand-over of their tasks), departments,
roles and their members, and the audit log of every such change.

Authentication and errors as for every admin route (``zida.dialects.admin.http``): a ``Zida.Admin`` token, whose
corp bounds every call (another corp's user, department or role does not exist: 404). Bodies are JSON objects with
the bundle's keys; unknown keys are refused. Every change is recorded in the audit log and the outbox with the actor
``credential:<appKey>`` (the token's credential). Responses show the object as it is after the call.

====== ======================================== ============================================================
method path                                     body → effect
====== ======================================== ============================================================
GET    /admin/v1/users?after=&limit=&active=    → ``{users: […]}`` ordered by userId, after ``after``; ``limit``
                                                1–1000 (default 100); ``active=true|false`` filters
POST   /admin/v1/users                          ``{userId, name, nameEn?, departments?, manager?, title?, email?,
                                                mobile?, unionId?, password?, active?}`` → 201, the user
GET    /admin/v1/users/{userId}                 → ``{userId, name, nameEn, departments, manager, title, email,
                                                mobile, unionId, active}``
PATCH  /admin/v1/users/{userId}                 any of the create keys but ``userId`` (null clears an optional
                                                one): ``active: true`` reactivates, ``active: false`` deactivates a
                                                user without open tasks
POST   /admin/v1/users/{userId}/deactivate      ``{handOverTo?, userId?, remark?}``: deactivate; his open tasks
                                                go to ``handOverTo`` (required when he has any: else 409
                                                ``user.holds_tasks``), transferred by ``userId`` (a user of the
                                                corp, shown in the approvals' history; default the credential)
                                                → ``{user, handedOver: [taskId…]}``
GET    /admin/v1/departments                    → ``{departments: […]}`` ordered by deptId
POST   /admin/v1/departments                    ``{deptId?, name, nameEn?, parentId?, managers?, order?}`` → 201
                                                (``deptId`` absent: one above the highest)
GET    /admin/v1/departments/{deptId}           → ``{deptId, name, nameEn, parentId, managers, order}``
PATCH  /admin/v1/departments/{deptId}           any of the create keys but ``deptId``
DELETE /admin/v1/departments/{deptId}           refused (409 ``department.not_empty``) while it has members or
                                                sub-departments → ``{deptId, deleted: true}``
GET    /admin/v1/roles                          → ``{roles: […]}`` ordered by roleId
POST   /admin/v1/roles                          ``{roleId?, name, group?, members?}`` → 201
GET    /admin/v1/roles/{roleId}                 → ``{roleId, name, group, members}``
PATCH  /admin/v1/roles/{roleId}                 ``{name?, group?, members?}``
PUT    /admin/v1/roles/{roleId}/members         ``{members}``: the role's members from now on
DELETE /admin/v1/roles/{roleId}                 refused (409 ``role.in_use``) while a form's current process
                                                names it → ``{roleId, deleted: true}``
GET    /admin/v1/audit?after=&limit=&kind=&object= → ``{entries: [{id, topic, kind, action, object, actor, changes,
                                                createdAt}]}`` oldest first (``kind``: user, department, role,
                                                credential, app, form, corp; ``object``: one object's id, with kind)
====== ======================================== ============================================================

References in a body (departments, manager, parentId, managers, members) must name the corp's objects (400
otherwise); the department tree and the manager chain stay acyclic (400). A deactivated user keeps everything but
can no longer act (see ``zida.core.org.actions`` for what happens to his tasks).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.routing import Route

from zida.core.audit import list_audit
from zida.core.errors import InvalidArgument, NotFound
from zida.core.org import actions
from zida.core.org.models import CorpRef, Department, Role, User
from zida.core.org.repository import find_departments, find_roles, get_user, list_departments, list_users
from zida.core.records.values import brief
from zida.dialects.admin.errors import parse_body
from zida.dialects.admin.http import MAX_INTEGER, AdminCall, admin_endpoint, respond
from zida.ids import is_decimal

__all__ = ["actor_of", "corp_of", "limit_of", "routes"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def corp_of(call: AdminCall) -> CorpRef:
    """The corp of the call's token: the only one it may touch."""
    return CorpRef(call.principal.corp_pk, call.principal.corp_id)


def actor_of(call: AdminCall) -> str:
    """Who makes the call's changes, as the audit log names it."""
    return f"credential:{call.principal.client_id}"


def limit_of(call: AdminCall, default: int = 100) -> int:
    """The ``limit`` query parameter (1–1000)."""
    raw = call.request.query_params.get("limit", str(default)).strip()
    if not is_decimal(raw, 4) or not 1 <= int(raw) <= 1000:
        raise InvalidArgument(
            f"limit must be between 1 and 1000, got {brief(raw)}", reason="argument.invalid", param="limit"
        )
    return int(raw)


# ------------------------------------------------------------------------------------------------ users


class _UserCreate(_Body):
    userId: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    nameEn: str | None = None
    departments: list[int] = []
    manager: str | None = None
    title: str | None = None
    mobile: str | None = None
    email: str | None = None
    unionId: str | None = None
    password: str | None = None
    active: StrictBool = True


class _UserPatch(_Body):
    name: str | None = None
    nameEn: str | None = None
    departments: list[int] | None = None
    manager: str | None = None
    title: str | None = None
    mobile: str | None = None
    email: str | None = None
    unionId: str | None = None
    password: str | None = None
    active: StrictBool | None = None


class _Deactivate(_Body):
    handOverTo: str | None = None
    userId: str | None = None
    remark: str = ""


_USER_KEYS = {
    "name": "name",
    "nameEn": "name_en",
    "departments": "departments",
    "manager": "manager",
    "title": "title",
    "mobile": "mobile",
    "email": "email",
    "unionId": "union_id",
    "password": "password",
    "active": "active",
}


def _user_view(user: User) -> dict[str, Any]:
    """A user as the admin API shows him."""
    return {
        "userId": user.user_id,
        "name": user.name,
        "nameEn": user.name_en,
        "departments": list(user.dept_ids),
        "manager": user.manager_user_id,
        "title": user.title,
        "email": user.email,
        "mobile": user.mobile,
        "unionId": user.union_id,
        "active": user.active,
    }


def _patch(body: BaseModel, keys: dict[str, str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None and key in required:
            raise InvalidArgument(f"{key} cannot be null", reason="argument.invalid", param=key)
        changes[keys[key]] = tuple(value) if isinstance(value, list) else value
    return changes


async def _user(call: AdminCall) -> User:
    user = await get_user(call.zida.db, call.principal.corp_pk, call.path["userId"])
    if user is None:
        raise NotFound(f"user {call.path['userId']} does not exist in this corp", reason="user.not_found")
    return user


@admin_endpoint
async def list_users_route(call: AdminCall) -> dict[str, Any]:
    """The corp's users ordered by userId."""
    query = call.request.query_params
    active_text = query.get("active")
    if active_text not in (None, "true", "false"):
        raise InvalidArgument("active must be true or false", reason="argument.invalid", param="active")
    found = await list_users(
        call.zida.db,
        call.principal.corp_pk,
        after=query.get("after", ""),
        limit=limit_of(call),
        active=None if active_text is None else active_text == "true",
    )
    return {"users": [_user_view(u) for u in found]}


@admin_endpoint
async def create_user(call: AdminCall) -> Any:
    """Create a user."""
    body = parse_body(_UserCreate, call.body)
    spec = actions.UserSpec(
        user_id=body.userId,
        name=body.name,
        name_en=body.nameEn,
        departments=tuple(body.departments),
        manager=body.manager,
        title=body.title,
        mobile=body.mobile,
        email=body.email,
        union_id=body.unionId,
        password=body.password,
        active=body.active,
    )
    user = await actions.create_user(call.zida.db, corp_of(call), spec, actor=actor_of(call))
    return respond(_user_view(user), 201)


@admin_endpoint
async def get_user_route(call: AdminCall) -> dict[str, Any]:
    """One user."""
    return _user_view(await _user(call))


@admin_endpoint
async def update_user(call: AdminCall) -> dict[str, Any]:
    """Change some of a user's fields."""
    changes = _patch(parse_body(_UserPatch, call.body), _USER_KEYS, required=("name", "departments", "active"))
    user = await actions.update_user(call.zida.db, corp_of(call), call.path["userId"], changes, actor=actor_of(call))
    return _user_view(user)


@admin_endpoint
async def deactivate_user(call: AdminCall) -> dict[str, Any]:
    """Deactivate a user, handing his open tasks over."""
    body = parse_body(_Deactivate, call.body)
    done = await actions.deactivate_user(
        call.zida.db,
        corp_of(call),
        call.path["userId"],
        actor=actor_of(call),
        hand_over_to=body.handOverTo or None,
        acting_user=body.userId or None,
        remark=body.remark,
    )
    return {"user": _user_view(done.user), "handedOver": list(done.handed_over)}


# ---------------------------------------------------------------------------------------------- departments


class _DepartmentCreate(_Body):
    deptId: int | None = Field(default=None, ge=1, le=MAX_INTEGER)
    name: str = Field(min_length=1)
    nameEn: str | None = None
    parentId: int | None = None
    managers: list[str] = []
    order: int = 0


class _DepartmentPatch(_Body):
    name: str | None = None
    nameEn: str | None = None
    parentId: int | None = None
    managers: list[str] | None = None
    order: int | None = None


_DEPARTMENT_KEYS = {
    "name": "name",
    "nameEn": "name_en",
    "parentId": "parent_id",
    "managers": "managers",
    "order": "order",
}


def _department_view(dept: Department) -> dict[str, Any]:
    """A department as the admin API shows it."""
    return {
        "deptId": dept.dept_id,
        "name": dept.name,
        "nameEn": dept.name_en,
        "parentId": dept.parent_dept_id,
        "managers": list(dept.manager_user_ids),
        "order": dept.order,
    }


def _dept_id(call: AdminCall) -> int:
    return call.number("deptId", call.path["deptId"], minimum=1)


@admin_endpoint
async def list_departments_route(call: AdminCall) -> dict[str, Any]:
    """The corp's departments."""
    return {"departments": [_department_view(d) for d in await list_departments(call.zida.db, call.principal.corp_pk)]}


@admin_endpoint
async def create_department(call: AdminCall) -> Any:
    """Create a department."""
    body = parse_body(_DepartmentCreate, call.body)
    spec = actions.DepartmentSpec(
        dept_id=body.deptId,
        name=body.name,
        name_en=body.nameEn,
        parent_id=body.parentId,
        managers=tuple(body.managers),
        order=body.order,
    )
    dept = await actions.create_department(call.zida.db, corp_of(call), spec, actor=actor_of(call))
    return respond(_department_view(dept), 201)


@admin_endpoint
async def get_department(call: AdminCall) -> dict[str, Any]:
    """One department."""
    dept_id = _dept_id(call)
    found = await find_departments(call.zida.db, call.principal.corp_pk, [dept_id])
    if dept_id not in found:
        raise NotFound(f"department {dept_id} does not exist", reason="department.not_found")
    return _department_view(found[dept_id])


@admin_endpoint
async def update_department(call: AdminCall) -> dict[str, Any]:
    """Change some of a department's fields."""
    dept_id = _dept_id(call)
    changes = _patch(parse_body(_DepartmentPatch, call.body), _DEPARTMENT_KEYS, required=("name", "managers", "order"))
    dept = await actions.update_department(call.zida.db, corp_of(call), dept_id, changes, actor=actor_of(call))
    return _department_view(dept)


@admin_endpoint
async def delete_department(call: AdminCall) -> dict[str, Any]:
    """Delete an empty department."""
    dept_id = _dept_id(call)
    await actions.delete_department(call.zida.db, corp_of(call), dept_id, actor=actor_of(call))
    return {"deptId": dept_id, "deleted": True}


# ------------------------------------------------------------------------------------------------ roles


class _RoleCreate(_Body):
    roleId: int | None = Field(default=None, ge=1, le=MAX_INTEGER)
    name: str = Field(min_length=1)
    group: str | None = None
    members: list[str] = []


class _RolePatch(_Body):
    name: str | None = None
    group: str | None = None
    members: list[str] | None = None


class _RoleMembers(_Body):
    members: list[str]


def _role_view(role: Role) -> dict[str, Any]:
    """A role as the admin API shows it."""
    return {"roleId": role.role_id, "name": role.name, "group": role.group, "members": list(role.members)}


def _role_id(call: AdminCall) -> int:
    return call.number("roleId", call.path["roleId"], minimum=1)


@admin_endpoint
async def list_roles(call: AdminCall) -> dict[str, Any]:
    """The corp's roles with their members."""
    found = await find_roles(call.zida.db, call.principal.corp_pk)
    return {"roles": [_role_view(r) for r in found.values()]}


@admin_endpoint
async def create_role(call: AdminCall) -> Any:
    """Create a role."""
    body = parse_body(_RoleCreate, call.body)
    spec = actions.RoleSpec(role_id=body.roleId, name=body.name, group=body.group, members=tuple(body.members))
    role = await actions.create_role(call.zida.db, corp_of(call), spec, actor=actor_of(call))
    return respond(_role_view(role), 201)


@admin_endpoint
async def get_role(call: AdminCall) -> dict[str, Any]:
    """One role."""
    role_id = _role_id(call)
    found = await find_roles(call.zida.db, call.principal.corp_pk, [role_id])
    if role_id not in found:
        raise NotFound(f"role {role_id} does not exist", reason="role.not_found")
    return _role_view(found[role_id])


@admin_endpoint
async def update_role(call: AdminCall) -> dict[str, Any]:
    """Change a role's name, group or members."""
    role_id = _role_id(call)
    keys = {"name": "name", "group": "group", "members": "members"}
    changes = _patch(parse_body(_RolePatch, call.body), keys, required=("name", "members"))
    return _role_view(await actions.update_role(call.zida.db, corp_of(call), role_id, changes, actor=actor_of(call)))


@admin_endpoint
async def set_role_members(call: AdminCall) -> dict[str, Any]:
    """Replace a role's members."""
    role_id = _role_id(call)
    body = parse_body(_RoleMembers, call.body)
    role = await actions.set_role_members(call.zida.db, corp_of(call), role_id, body.members, actor=actor_of(call))
    return _role_view(role)


@admin_endpoint
async def delete_role(call: AdminCall) -> dict[str, Any]:
    """Delete a role no process names."""
    role_id = _role_id(call)
    await actions.delete_role(call.zida.db, corp_of(call), role_id, actor=actor_of(call))
    return {"roleId": role_id, "deleted": True}


# ------------------------------------------------------------------------------------------------ audit

_KINDS = ("corp", "user", "department", "role", "credential", "app", "form")


@admin_endpoint
async def audit(call: AdminCall) -> dict[str, Any]:
    """The corp's audit log, oldest first."""
    query = call.request.query_params
    kind = query.get("kind") or None
    if kind is not None and kind not in _KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(_KINDS)}", reason="argument.invalid", param="kind")
    object_id = query.get("object") or None
    if object_id is not None and kind is None:
        raise InvalidArgument("object needs kind", reason="argument.invalid", param="object")
    entries = await list_audit(
        call.zida.db,
        call.principal.corp_pk,
        after_id=call.number("after", query.get("after", "0")),
        limit=limit_of(call),
        kind=kind,
        object_id=object_id,
    )
    return {
        "entries": [
            {
                "id": e.entry_id,
                "topic": e.topic,
                "kind": e.object_kind,
                "action": e.action,
                "object": e.object_id,
                "actor": e.actor,
                "changes": e.changes,
                "createdAt": e.created_at,
            }
            for e in entries
        ]
    }


def routes() -> list[Route]:
    """Admin routes for the org directory and the audit log."""
    base = "/admin/v1"
    return [
        Route(f"{base}/users", list_users_route, methods=["GET"]),
        Route(f"{base}/users", create_user, methods=["POST"]),
        Route(f"{base}/users/{{userId}}", get_user_route, methods=["GET"]),
        Route(f"{base}/users/{{userId}}", update_user, methods=["PATCH"]),
        Route(f"{base}/users/{{userId}}/deactivate", deactivate_user, methods=["POST"]),
        Route(f"{base}/departments", list_departments_route, methods=["GET"]),
        Route(f"{base}/departments", create_department, methods=["POST"]),
        Route(f"{base}/departments/{{deptId}}", get_department, methods=["GET"]),
        Route(f"{base}/departments/{{deptId}}", update_department, methods=["PATCH"]),
        Route(f"{base}/departments/{{deptId}}", delete_department, methods=["DELETE"]),
        Route(f"{base}/roles", list_roles, methods=["GET"]),
        Route(f"{base}/roles", create_role, methods=["POST"]),
        Route(f"{base}/roles/{{roleId}}", get_role, methods=["GET"]),
        Route(f"{base}/roles/{{roleId}}", update_role, methods=["PATCH"]),
        Route(f"{base}/roles/{{roleId}}", delete_role, methods=["DELETE"]),
        Route(f"{base}/roles/{{roleId}}/members", set_role_members, methods=["PUT"]),
        Route(f"{base}/audit", audit, methods=["GET"]),
    ]
