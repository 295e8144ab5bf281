"""DingTalk's legacy contacts API (通讯录, oapi.dingtalk.com; dingtalk-platform.md §3.1-3.3) over the org directory.

Every route takes ``?access_token=`` (or the token in a form body) and answers HTTP 200 with ``{errcode, errmsg,
…}`` (``zida.dialects.dingtalk.oapi``); ``/topapi/`` routes are POST with a JSON or form-urlencoded body, answer the
result under ``result`` and carry ``request_id``. Numbers and booleans may come as strings (``"1"``, ``"true"``) and
lists as JSON arrays, JSON text or comma-separated text (``"1,2"``). Reads need the ``Contact.User.Read`` permission
point, writes ``Contact.User.Write``; a token sees only its own corp.

================================================= ===============================================================
route                                             result
================================================= ===============================================================
``/topapi/v2/user/get`` ``userid``                 the user (§3.2 keys Zida has: ``userid, unionid, name, mobile,
                                                   title, email, manager_userid, dept_id_list, leader_in_dept,
                                                   role_list, active, admin, boss, senior, hide_mobile,
                                                   exclusive_account``)
``/topapi/user/listsimple``                        ``{has_more, next_cursor, list:[{userid, name}]}``
``/topapi/v2/user/list``                           same, ``list`` of user-lite objects
``/topapi/user/listid`` ``dept_id``                ``{userid_list}``
``/topapi/v2/user/getbymobile`` ``mobile``         ``{userid}``
``/topapi/user/getbyunionid`` ``unionid``          ``{contact_type: 0, userid}``
``/topapi/user/listadmin``                         ``[{userid, sys_level: 2}]``
``/topapi/user/count`` ``only_active``             ``{count}``
``/topapi/v2/department/get`` ``dept_id``          the department (§3.3 keys Zida has, ``member_count``)
``/topapi/v2/department/listsub`` ``dept_id``      ``[{dept_id, name, parent_id, create_dept_group, auto_add_user}]``
``/topapi/v2/department/listsubid``                ``{dept_id_list}``
``/topapi/v2/department/listparentbydept``         ``{parent_id_list: [self, …, root]}``
``/topapi/v2/department/listparentbyuser``         ``{parent_list: [{parent_dept_id_list}]}``
``/topapi/role/list`` ``offset, size``             ``{hasMore, list:[{groupId, name, roles:[{id, name}]}]}``
``/topapi/role/simplelist`` ``role_id``            ``{hasMore, nextCursor, list:[{userid, name, manageScopes}]}``
``/topapi/role/getrole`` ``roleId``                top-level ``role: {name, groupId}``
``/topapi/v2/user/create|update|delete``           ``{userid}`` on create
``/topapi/v2/department/create|update|delete``     ``{dept_id}`` on create
GET ``/user/get``, ``/user/simplelist``,           the older API as the ``dingtalk-sdk`` package calls it, with
``/user/list``, ``/user/getDeptMember``,           its old keys (``department``, ``isAdmin``, ``userlist``,
``/user/get_org_user_count``,                      ``hasMore``, ``parentid``, ``sub_dept_id_list``,
``/user/getUseridByUnionid``, ``/user/get_admin``, ``parentIds``…); ``offset``/``size`` paging
``/department/list`` (``fetch_child``),
``/department/get``, ``/department/list_ids``,
``/department/list_parent_depts(_by_dept)``
================================================= ===============================================================

Choices where DingTalk's behaviour cannot apply or is not documented (each tested):

* **Members are active users.** Deleting a user (``topapi/v2/user/delete``) deactivates him (he keeps his history;
  event ``user_leave_org``). From then on he is not found (60121), listed or counted. He is refused while he holds
  open approval tasks (errcode 60130, Zida's: DingTalk reassigns them, Zida will not do that silently); the Zida
  parameter ``handover_userid`` names who takes them over, in the same transaction. Creating a user with the id of a
  deactivated one brings him back with the new fields (event ``user_add_org``).
* **Orders and cursors** (``zida.core.org.queries``): ``custom`` is the entry order (Zida keeps no hand-made order);
  for the entry orders ``next_cursor`` is a position that stays right while members join and leave; for the
  ``modify_*`` orders it is an offset. The older routes page by ``offset``.
* **Admins** (``listadmin``, ``admin``/``isAdmin``): Zida has no corp administrators; the admins of the corp's apps
  are its sub-administrators (``sys_level`` 2). No one is the main administrator (1), ``boss`` is false.
* **Roles**: Zida's role groups are names without ids; a group's ``groupId`` is the smallest role id in it, and
  roles without a group form the group ``默认``. ``manageScopes`` is empty (Zida has no role scopes).
* Fields Zida does not keep (``job_number``, ``hired_date``, ``telephone``, ``work_place``, ``extension``…) are
  absent from answers and ignored in writes. ``mobile`` is optional on create (DingTalk requires it).
* Errors: unknown user 60121, invalid ``userid`` 33012, unknown department 60003, invalid mobile 40104, bad
  ``cursor``/``offset`` 40068 and ``size`` 40069, a department tree cycle 60010, deleting a department with members
  or sub-departments 60005, an existing userid 60102 (DingTalk's global table).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zida.core.errors import InvalidArgument, NotFound
from zida.core.org import actions, queries
from zida.core.org.actions import DepartmentSpec, UserSpec
from zida.core.org.models import CorpRef
from zida.core.org.repository import get_user
from zida.core.records.values import brief
from zida.dialects.dingtalk.http import Call
from zida.dialects.dingtalk.oapi import json_field, oapi_endpoint
from zida.ids import is_decimal

__all__ = ["routes"]

READ = "Contact.User.Read"
WRITE = "Contact.User.Write"

_MOBILE = re.compile(r"\+?[0-9][0-9\-]{2,19}")
_MAX_USER_ID = 64
_MAX_CURSOR = 2**63 - 1


# ------------------------------------------------------------------------------------------------ parameters


def _corp(call: Call) -> CorpRef:
    assert call.principal is not None
    return CorpRef(call.principal.corp_pk, call.principal.corp_id)


def _actor(call: Call) -> str:
    assert call.principal is not None
    return f"credential:{call.principal.client_id}"


def _user_id(call: Call, name: str = "userid") -> str:
    """A userid parameter: required, at most 64 characters (33012 otherwise)."""
    value = call.text(name, required=True)
    assert value is not None
    if len(value) > _MAX_USER_ID or not value.isprintable():
        raise InvalidArgument(f"{name} {brief(value)} is not a valid userid", reason="user.invalid_id", param=name)
    return value


def _dept_id(call: Call, name: str = "dept_id", default: int | None = None) -> int:
    """A department id parameter (root: 1)."""
    if default is None and call.raw(name) in (None, ""):
        raise InvalidArgument(f"{name}不能为空", reason="argument.missing", param=name)
    return call.integer(name, default if default is not None else 1, maximum=actions.MAX_ID)


def _page(call: Call, cursor: str, size: str, *, default_size: int, max_size: int) -> tuple[int, int]:
    """(cursor or offset, size), each refused with DingTalk's paging codes (40068, 40069)."""
    try:
        start = call.integer(cursor, 0, minimum=0, maximum=_MAX_CURSOR)
    except InvalidArgument as exc:
        raise InvalidArgument(exc.template, reason="page.bad_offset", param=cursor) from None
    try:
        count = call.integer(size, default_size, minimum=1, maximum=max_size)
    except InvalidArgument as exc:
        raise InvalidArgument(exc.template, reason="page.bad_size", param=size) from None
    return start, count


def _order(call: Call, name: str) -> str:
    order = call.text(name) or "custom"
    if order not in queries.MEMBER_ORDERS:
        raise InvalidArgument(
            f"{name} must be one of {', '.join(queries.MEMBER_ORDERS)}, got {brief(order)}",
            reason="argument.invalid",
            param=name,
        )
    return order


def _english(call: Call) -> bool:
    return (call.text("language") or call.text("lang") or "zh_CN") == "en_US"


def _list(call: Call, name: str) -> list[str] | None:
    """A list parameter: a JSON array (or its text) or comma-separated text; None when absent."""
    value = json_field(call, name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    raise InvalidArgument(f"{name} must be a list", reason="argument.invalid", param=name)


def _dept_ids(call: Call, name: str) -> tuple[int, ...] | None:
    values = _list(call, name)
    if values is None:
        return None
    ids = []
    for value in values:
        if not is_decimal(value) or not 1 <= int(value) <= actions.MAX_ID:
            raise InvalidArgument(
                f"{name}: {brief(value)} is not a department id", reason="argument.invalid", param=name
            )
        ids.append(int(value))
    return tuple(dict.fromkeys(ids))


def _mobile(call: Call, name: str = "mobile", *, required: bool = False) -> str | None:
    value = call.text(name, required=required)
    if value is not None and not _MOBILE.fullmatch(value):
        raise InvalidArgument(f"{name} {brief(value)} is not a mobile number", reason="user.invalid_mobile", param=name)
    return value


def _user_missing(user_id: str) -> NotFound:
    return NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found", param="userid")


def _department_missing(dept_id: int) -> NotFound:
    return NotFound(f"department {dept_id} does not exist", reason="department.not_found", param="dept_id")


# --------------------------------------------------------------------------------------------------- shapes


def _user(member: queries.Member) -> dict[str, Any]:
    """``topapi/v2/user/get``'s user (§3.2)."""
    out: dict[str, Any] = {"userid": member.user_id, "unionid": member.union_id, "name": member.name}
    for key, value in (
        ("mobile", member.mobile),
        ("title", member.title),
        ("email", member.email),
        ("manager_userid", member.manager_user_id),
    ):
        if value:
            out[key] = value
    out["dept_id_list"] = [d.dept_id for d in member.departments]
    out["leader_in_dept"] = [{"dept_id": d.dept_id, "leader": d.leader} for d in member.departments]
    out["role_list"] = [{"id": r.role_id, "name": r.name, "group_name": r.group or "默认"} for r in member.roles]
    out.update(
        active=True, admin=member.app_admin, boss=False, senior=False, hide_mobile=False, exclusive_account=False
    )
    return out


def _leads(member: queries.Member, dept_id: int) -> bool:
    """Whether the member heads this department (a listing's ``leader``: the department listed, not any other)."""
    return any(d.leader for d in member.departments if d.dept_id == dept_id)


def _user_lite(member: queries.Member, dept_id: int) -> dict[str, Any]:
    """``topapi/v2/user/list``'s list entry for a member of the department listed."""
    out = _user(member)
    del out["role_list"]
    out["leader"] = _leads(member, dept_id)
    return out


def _old_user(member: queries.Member) -> dict[str, Any]:
    """The older ``/user/get`` keys."""
    out: dict[str, Any] = {"userid": member.user_id, "unionid": member.union_id, "name": member.name}
    for key, value in (
        ("mobile", member.mobile),
        ("position", member.title),
        ("email", member.email),
        ("managerUserId", member.manager_user_id),
    ):
        if value:
            out[key] = value
    out["department"] = [d.dept_id for d in member.departments]
    out["isLeaderInDepts"] = "{" + ",".join(f"{d.dept_id}:{str(d.leader).lower()}" for d in member.departments) + "}"
    out["roles"] = [{"id": r.role_id, "name": r.name, "groupName": r.group or "默认"} for r in member.roles]
    out.update(active=True, isAdmin=member.app_admin, isBoss=False, isSenior=False, isHide=False)
    return out


def _old_list_user(member: queries.Member, dept_id: int) -> dict[str, Any]:
    """The older ``/user/list``'s entry for a member of the department listed."""
    out = _old_user(member)
    out["isLeader"] = _leads(member, dept_id)
    return out


def _dept_name(dept: queries.DirectoryDepartment, english: bool) -> str:
    return dept.name_en if english and dept.name_en else dept.name


def _department(dept: queries.DirectoryDepartment, english: bool) -> dict[str, Any]:
    """``topapi/v2/department/get``'s department (§3.3)."""
    out: dict[str, Any] = {"dept_id": dept.dept_id, "name": _dept_name(dept, english)}
    if dept.parent_id is not None:
        out["parent_id"] = dept.parent_id
    out.update(
        order=dept.order,
        dept_manager_userid_list=list(dept.manager_user_ids),
        member_count=dept.member_count,
        create_dept_group=False,
        auto_add_user=False,
        hide_dept=False,
        outer_dept=False,
    )
    return out


def _sub_department(dept: queries.DirectoryDepartment, english: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"dept_id": dept.dept_id, "name": _dept_name(dept, english)}
    if dept.parent_id is not None:
        out["parent_id"] = dept.parent_id
    out.update(create_dept_group=False, auto_add_user=False)
    return out


def _old_department(dept: queries.DirectoryDepartment, english: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": dept.dept_id, "name": _dept_name(dept, english)}
    if dept.parent_id is not None:
        out["parentid"] = dept.parent_id
    out.update(createDeptGroup=False, autoAddUser=False)
    return out


# -------------------------------------------------------------------------------------------- reads (topapi)


async def _member(call: Call, user_id: str) -> queries.Member:
    found = await queries.members(call.zida.db, _corp(call).pk, user_ids=[user_id])
    if not found:
        raise _user_missing(user_id)
    return found[0]


@oapi_endpoint(READ, "POST")
async def user_get(call: Call) -> dict[str, Any]:
    """``topapi/v2/user/get``: one user."""
    return {"result": _user(await _member(call, _user_id(call)))}


async def _member_page(call: Call, *, old: bool = False) -> tuple[queries.MemberPage, int]:
    """A page of the department named in the call, and that department's id."""
    if old:
        dept_id = _dept_id(call, "department_id")
        start, size = _page(call, "offset", "size", default_size=100, max_size=100)
        order = _order(call, "order")
    else:
        dept_id = _dept_id(call)
        start, size = _page(call, "cursor", "size", default_size=100, max_size=100)
        order = _order(call, "order_field")
    page = await queries.member_page(
        call.zida.db, _corp(call).pk, dept_id, order=order, cursor=start, size=size, by_offset=old
    )
    if page is None:
        raise _department_missing(dept_id)
    return page, dept_id


def _cursor_result(page: queries.MemberPage, items: list[Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"has_more": page.next_cursor is not None, "list": items}
    if page.next_cursor is not None:
        result["next_cursor"] = page.next_cursor
    return result


@oapi_endpoint(READ, "POST")
async def user_listsimple(call: Call) -> dict[str, Any]:
    """``topapi/user/listsimple``: a page of a department's members, id and name."""
    page, _ = await _member_page(call)
    return {"result": _cursor_result(page, [{"userid": u, "name": n} for _, u, n in page.members])}


@oapi_endpoint(READ, "POST")
async def user_list(call: Call) -> dict[str, Any]:
    """``topapi/v2/user/list``: a page of a department's members in detail."""
    page, dept_id = await _member_page(call)
    found = await queries.members(call.zida.db, _corp(call).pk, pks=[pk for pk, _, _ in page.members])
    return {"result": _cursor_result(page, [_user_lite(m, dept_id) for m in found])}


async def _member_ids(call: Call, name: str) -> list[str]:
    dept_id = _dept_id(call, name)
    ids = await queries.department_member_ids(call.zida.db, _corp(call).pk, dept_id)
    if ids is None:
        raise _department_missing(dept_id)
    return ids


@oapi_endpoint(READ, "POST")
async def user_listid(call: Call) -> dict[str, Any]:
    """``topapi/user/listid``: every direct member's userid."""
    return {"result": {"userid_list": await _member_ids(call, "dept_id")}}


@oapi_endpoint(READ, "POST")
async def user_getbymobile(call: Call) -> dict[str, Any]:
    """``topapi/v2/user/getbymobile``: the userid of a mobile number."""
    mobile = _mobile(call, required=True)
    assert mobile is not None
    user_id = await queries.user_by_mobile(call.zida.db, _corp(call).pk, mobile)
    if user_id is None:
        raise NotFound(f"no user has the mobile number {mobile}", reason="user.not_found", param="mobile")
    return {"result": {"userid": user_id}}


async def _by_union_id(call: Call, name: str) -> str:
    union_id = call.text(name, required=True, max_chars=100)
    assert union_id is not None
    user_id = await queries.user_by_union_id(call.zida.db, _corp(call).pk, union_id)
    if user_id is None:
        raise NotFound(f"no user has the unionid {union_id}", reason="user.not_found", param=name)
    return user_id


@oapi_endpoint(READ, "POST")
async def user_getbyunionid(call: Call) -> dict[str, Any]:
    """``topapi/user/getbyunionid``: the userid of a union id (always an internal contact)."""
    return {"result": {"contact_type": 0, "userid": await _by_union_id(call, "unionid")}}


@oapi_endpoint(READ, "POST")
async def user_listadmin(call: Call) -> dict[str, Any]:
    """``topapi/user/listadmin``: the app administrators as sub-administrators."""
    admins = await queries.app_admins(call.zida.db, _corp(call).pk)
    return {"result": [{"userid": u, "sys_level": 2} for u in admins]}


@oapi_endpoint(READ, "POST")
async def user_count(call: Call) -> dict[str, Any]:
    """``topapi/user/count``: how many members (``only_active`` makes no difference: every member is active)."""
    call.flag("only_active")
    return {"result": {"count": await queries.count_members(call.zida.db, _corp(call).pk)}}


async def _department_of(call: Call, name: str, default: int | None = None) -> queries.DirectoryDepartment:
    dept_id = _dept_id(call, name, default)
    dept = await queries.find_department(call.zida.db, _corp(call).pk, dept_id)
    if dept is None:
        raise _department_missing(dept_id)
    return dept


@oapi_endpoint(READ, "POST")
async def department_get(call: Call) -> dict[str, Any]:
    """``topapi/v2/department/get``: one department."""
    return {"result": _department(await _department_of(call, "dept_id"), _english(call))}


async def _children(call: Call, name: str, default: int | None, recursive: bool = False) -> list[Any]:
    dept_id = _dept_id(call, name, default)
    subs = await queries.sub_departments(call.zida.db, _corp(call).pk, dept_id, recursive=recursive)
    if subs is None:
        raise _department_missing(dept_id)
    return subs


@oapi_endpoint(READ, "POST")
async def department_listsub(call: Call) -> dict[str, Any]:
    """``topapi/v2/department/listsub``: the direct sub-departments (``dept_id`` defaults to the root, 1)."""
    english = _english(call)
    return {"result": [_sub_department(d, english) for d in await _children(call, "dept_id", 1)]}


@oapi_endpoint(READ, "POST")
async def department_listsubid(call: Call) -> dict[str, Any]:
    """``topapi/v2/department/listsubid``: the direct sub-departments' ids."""
    return {"result": {"dept_id_list": [d.dept_id for d in await _children(call, "dept_id", None)]}}


async def _parents(call: Call, name: str) -> list[int]:
    dept_id = _dept_id(call, name)
    chain = await queries.parent_chain(call.zida.db, _corp(call).pk, dept_id)
    if chain is None:
        raise _department_missing(dept_id)
    return chain


@oapi_endpoint(READ, "POST")
async def department_listparentbydept(call: Call) -> dict[str, Any]:
    """``topapi/v2/department/listparentbydept``: the department, its parent, …, the root."""
    return {"result": {"parent_id_list": await _parents(call, "dept_id")}}


async def _user_chains(call: Call, name: str) -> list[list[int]]:
    user_id = _user_id(call, name)
    chains = await queries.user_parent_chains(call.zida.db, _corp(call).pk, user_id)
    if chains is None:
        raise _user_missing(user_id)
    return chains


@oapi_endpoint(READ, "POST")
async def department_listparentbyuser(call: Call) -> dict[str, Any]:
    """``topapi/v2/department/listparentbyuser``: for each of the user's departments, its chain up to the root."""
    chains = await _user_chains(call, "userid")
    return {"result": {"parent_list": [{"parent_dept_id_list": c} for c in chains]}}


@oapi_endpoint(READ, "POST")
async def role_list(call: Call) -> dict[str, Any]:
    """``topapi/role/list``: a page of role groups with their roles (camelCase keys, as DingTalk)."""
    offset, size = _page(call, "offset", "size", default_size=20, max_size=200)
    groups, more = await queries.role_groups(call.zida.db, _corp(call).pk, offset=offset, size=size)
    items = [
        {"groupId": g.group_id, "name": g.name, "roles": [{"id": r.role_id, "name": r.name} for r in g.roles]}
        for g in groups
    ]
    result: dict[str, Any] = {"hasMore": more, "list": items}
    if more:
        result["nextCursor"] = offset + size
    return {"result": result}


@oapi_endpoint(READ, "POST")
async def role_simplelist(call: Call) -> dict[str, Any]:
    """``topapi/role/simplelist``: a page of a role's members."""
    role_id = call.integer("role_id", 0, maximum=actions.MAX_ID) if call.raw("role_id") not in (None, "") else None
    if role_id is None:
        raise InvalidArgument("role_id不能为空", reason="argument.missing", param="role_id")
    offset, size = _page(call, "offset", "size", default_size=20, max_size=100)
    page = await queries.role_member_page(call.zida.db, _corp(call).pk, role_id, offset=offset, size=size)
    if page is None:
        raise NotFound(f"role {role_id} does not exist", reason="role.not_found", param="role_id")
    people, more = page
    result: dict[str, Any] = {
        "hasMore": more,
        "list": [{"userid": u, "name": n, "manageScopes": []} for u, n in people],
    }
    if more:
        result["nextCursor"] = offset + size
    return {"result": result}


@oapi_endpoint(READ, "POST")
async def role_getrole(call: Call) -> dict[str, Any]:
    """``topapi/role/getrole``: a role's name and group (top-level ``role``, no ``result``)."""
    if call.raw("roleId") in (None, ""):
        raise InvalidArgument("roleId不能为空", reason="argument.missing", param="roleId")
    role_id = call.integer("roleId", 0, maximum=actions.MAX_ID)
    group = await queries.find_role(call.zida.db, _corp(call).pk, role_id)
    if group is None:
        raise NotFound(f"role {role_id} does not exist", reason="role.not_found", param="roleId")
    return {"role": {"name": group.roles[0].name, "groupId": group.group_id}}


# -------------------------------------------------------------------------------------------- writes (topapi)


def _user_changes(call: Call) -> dict[str, Any]:
    """The ``UserSpec`` fields a create or update names."""
    changes: dict[str, Any] = {}
    name = call.text("name", max_chars=80)
    if name is not None:
        changes["name"] = name
    for wire, field in (("title", "title"), ("email", "email"), ("org_email", "email")):
        value = call.text(wire, max_chars=200)
        if value is not None:
            changes[field] = value
    mobile = _mobile(call)
    if mobile is not None:
        changes["mobile"] = mobile
    if call.raw("manager_userid") not in (None, ""):
        changes["manager"] = _user_id(call, "manager_userid")
    depts = _dept_ids(call, "dept_id_list")
    if depts is not None:
        changes["departments"] = depts
    return changes


@oapi_endpoint(WRITE, "POST")
async def user_create(call: Call) -> dict[str, Any]:
    """``topapi/v2/user/create``: a new user (``userid`` generated when absent); a deactivated user's id brings him
    back with these fields."""
    user_id = _user_id(call) if call.raw("userid") not in (None, "") else secrets.token_hex(8)
    changes = _user_changes(call)
    if "name" not in changes:
        raise InvalidArgument("name不能为空", reason="argument.missing", param="name")
    if not changes.get("departments"):
        raise InvalidArgument("dept_id_list不能为空", reason="argument.missing", param="dept_id_list")
    corp = _corp(call)
    stored = await get_user(call.zida.db, corp.pk, user_id)
    if stored is not None and not stored.active:
        await actions.update_user(call.zida.db, corp, user_id, {**changes, "active": True}, actor=_actor(call))
    else:
        await actions.create_user(call.zida.db, corp, UserSpec(user_id=user_id, **changes), actor=_actor(call))
    return {"result": {"userid": user_id}}


async def _active_user_id(call: Call) -> str:
    user_id = _user_id(call)
    stored = await get_user(call.zida.db, _corp(call).pk, user_id)
    if stored is None or not stored.active:
        raise _user_missing(user_id)
    return user_id


@oapi_endpoint(WRITE, "POST")
async def user_update(call: Call) -> dict[str, Any]:
    """``topapi/v2/user/update``: change the fields named (``dept_id_list`` replaces his departments)."""
    user_id = await _active_user_id(call)
    changes = _user_changes(call)
    if "departments" in changes and not changes["departments"]:
        raise InvalidArgument("dept_id_list不能为空", reason="argument.missing", param="dept_id_list")
    await actions.update_user(call.zida.db, _corp(call), user_id, changes, actor=_actor(call))
    return {}


@oapi_endpoint(WRITE, "POST")
async def user_delete(call: Call) -> dict[str, Any]:
    """``topapi/v2/user/delete``: deactivate the user (module docstring); refused while he holds open tasks unless
    Zida's ``handover_userid`` names who takes them over."""
    user_id = await _active_user_id(call)
    successor = _user_id(call, "handover_userid") if call.raw("handover_userid") not in (None, "") else None
    await actions.deactivate_user(call.zida.db, _corp(call), user_id, actor=_actor(call), hand_over_to=successor)
    return {}


def _department_changes(call: Call) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    name = call.text("name", max_chars=64)
    if name is not None:
        changes["name"] = name
    if call.raw("parent_id") not in (None, ""):
        changes["parent_id"] = _dept_id(call, "parent_id")
    if call.raw("order") not in (None, ""):
        changes["order"] = call.integer("order", 0, minimum=-(2**31 - 1))
    managers = _list(call, "dept_manager_userid_list")
    if managers is not None:
        changes["managers"] = tuple(dict.fromkeys(managers))
    return changes


@oapi_endpoint(WRITE, "POST")
async def department_create(call: Call) -> dict[str, Any]:
    """``topapi/v2/department/create``: a new department under ``parent_id``."""
    changes = _department_changes(call)
    for required in ("name", "parent_id"):
        if required not in changes:
            raise InvalidArgument(f"{required}不能为空", reason="argument.missing", param=required)
    dept = await actions.create_department(
        call.zida.db, _corp(call), DepartmentSpec(dept_id=None, **changes), actor=_actor(call)
    )
    return {"result": {"dept_id": dept.dept_id}}


@oapi_endpoint(WRITE, "POST")
async def department_update(call: Call) -> dict[str, Any]:
    """``topapi/v2/department/update``: change the fields named (a move that would make a cycle is 60010)."""
    dept_id = _dept_id(call)
    await actions.update_department(call.zida.db, _corp(call), dept_id, _department_changes(call), actor=_actor(call))
    return {}


@oapi_endpoint(WRITE, "POST")
async def department_delete(call: Call) -> dict[str, Any]:
    """``topapi/v2/department/delete``: delete a department without members or sub-departments."""
    await actions.delete_department(call.zida.db, _corp(call), _dept_id(call), actor=_actor(call))
    return {}


# ------------------------------------------------------------------------------------------ older GET routes


@oapi_endpoint(READ, "GET")
async def old_user_get(call: Call) -> dict[str, Any]:
    """``/user/get?userid=``: one user, old keys."""
    return _old_user(await _member(call, _user_id(call)))


@oapi_endpoint(READ, "GET")
async def old_user_simplelist(call: Call) -> dict[str, Any]:
    """``/user/simplelist``: a page (``offset``, ``size``) of a department's members."""
    page, _ = await _member_page(call, old=True)
    return {"hasMore": page.next_cursor is not None, "userlist": [{"userid": u, "name": n} for _, u, n in page.members]}


@oapi_endpoint(READ, "GET")
async def old_user_list(call: Call) -> dict[str, Any]:
    """``/user/list``: a page of a department's members in detail, old keys."""
    page, dept_id = await _member_page(call, old=True)
    found = await queries.members(call.zida.db, _corp(call).pk, pks=[pk for pk, _, _ in page.members])
    return {"hasMore": page.next_cursor is not None, "userlist": [_old_list_user(m, dept_id) for m in found]}


@oapi_endpoint(READ, "GET")
async def old_user_dept_member(call: Call) -> dict[str, Any]:
    """``/user/getDeptMember?deptId=``: every direct member's userid."""
    return {"userIds": await _member_ids(call, "deptId")}


@oapi_endpoint(READ, "GET")
async def old_user_count(call: Call) -> dict[str, Any]:
    """``/user/get_org_user_count?onlyActive=``: how many members."""
    return {"count": await queries.count_members(call.zida.db, _corp(call).pk)}


@oapi_endpoint(READ, "GET")
async def old_user_by_unionid(call: Call) -> dict[str, Any]:
    """``/user/getUseridByUnionid?unionid=``."""
    return {"contactType": 0, "userid": await _by_union_id(call, "unionid")}


@oapi_endpoint(READ, "GET")
async def old_user_admins(call: Call) -> dict[str, Any]:
    """``/user/get_admin``: the app administrators as sub-administrators."""
    admins = await queries.app_admins(call.zida.db, _corp(call).pk)
    return {"admin_list": [{"userid": u, "sys_level": 2} for u in admins]}


@oapi_endpoint(READ, "GET")
async def old_department_list(call: Call) -> dict[str, Any]:
    """``/department/list?id=&fetch_child=``: sub-departments (every level with ``fetch_child``)."""
    english = _english(call)
    subs = await _children(call, "id", 1, recursive=call.flag("fetch_child"))
    return {"department": [_old_department(d, english) for d in subs]}


@oapi_endpoint(READ, "GET")
async def old_department_get(call: Call) -> dict[str, Any]:
    """``/department/get?id=``: one department, old keys (managers joined by ``|``)."""
    dept = await _department_of(call, "id")
    out = _old_department(dept, _english(call))
    out.update(order=dept.order, deptManagerUseridList="|".join(dept.manager_user_ids), deptHiding=False)
    return out


@oapi_endpoint(READ, "GET")
async def old_department_list_ids(call: Call) -> dict[str, Any]:
    """``/department/list_ids?id=``: the direct sub-departments' ids."""
    return {"sub_dept_id_list": [d.dept_id for d in await _children(call, "id", 1)]}


@oapi_endpoint(READ, "GET")
async def old_department_parents_by_dept(call: Call) -> dict[str, Any]:
    """``/department/list_parent_depts_by_dept?id=``: the department, its parent, …, the root."""
    return {"parentIds": await _parents(call, "id")}


@oapi_endpoint(READ, "GET")
async def old_department_parents_by_user(call: Call) -> dict[str, Any]:
    """``/department/list_parent_depts?userId=``: each of the user's departments with its chain to the root."""
    return {"department": await _user_chains(call, "userId")}


def routes() -> list[Route]:
    """The contacts routes: ``/topapi/…`` (POST) and the older ``/user/…``, ``/department/…`` (GET)."""
    table: list[tuple[str, Callable[[Request], Awaitable[Response]]]] = [
        ("/topapi/v2/user/get", user_get),
        ("/topapi/user/listsimple", user_listsimple),
        ("/topapi/v2/user/list", user_list),
        ("/topapi/user/listid", user_listid),
        ("/topapi/v2/user/getbymobile", user_getbymobile),
        ("/topapi/user/getbyunionid", user_getbyunionid),
        ("/topapi/user/listadmin", user_listadmin),
        ("/topapi/user/count", user_count),
        ("/topapi/v2/department/get", department_get),
        ("/topapi/v2/department/listsub", department_listsub),
        ("/topapi/v2/department/listsubid", department_listsubid),
        ("/topapi/v2/department/listparentbydept", department_listparentbydept),
        ("/topapi/v2/department/listparentbyuser", department_listparentbyuser),
        ("/topapi/role/list", role_list),
        ("/topapi/role/simplelist", role_simplelist),
        ("/topapi/role/getrole", role_getrole),
        ("/topapi/v2/user/create", user_create),
        ("/topapi/v2/user/update", user_update),
        ("/topapi/v2/user/delete", user_delete),
        ("/topapi/v2/department/create", department_create),
        ("/topapi/v2/department/update", department_update),
        ("/topapi/v2/department/delete", department_delete),
        ("/user/get", old_user_get),
        ("/user/simplelist", old_user_simplelist),
        ("/user/list", old_user_list),
        ("/user/getDeptMember", old_user_dept_member),
        ("/user/get_org_user_count", old_user_count),
        ("/user/getUseridByUnionid", old_user_by_unionid),
        ("/user/get_admin", old_user_admins),
        ("/department/list", old_department_list),
        ("/department/get", old_department_get),
        ("/department/list_ids", old_department_list_ids),
        ("/department/list_parent_depts_by_dept", old_department_parents_by_dept),
        ("/department/list_parent_depts", old_department_parents_by_user),
    ]
    # Every method reaches the handler, whose wrapper answers a wrong one with 43001/43002 in oapi's format.
    both = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return [Route(path, handler, methods=both) for path, handler in table]
