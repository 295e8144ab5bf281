"""Admin pages of the org directory: people (list, search, create, edit, deactivate with a successor for open
tasks, reactivate), departments and roles (list, create, edit, delete) — each change through the org actions
(``zida.core.org.actions``), the same code path, audit rows and events as the admin API and a bundle load; the
actor recorded is ``user:<id>`` of the signed-in admin. Only the corp's admins (``zida.console.admin``) get here.

A form that the core refuses is shown again, as entered, with the core's message; a password is never shown back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from zida.console.admin import actor_of, admin_only
from zida.console.common import PAGE_SIZE, Pager, page_number
from zida.console.web import CONSOLE, Ctx, Form, console_page, redirect, render, status_of
from zida.core.errors import InvalidArgument, NotFound, ZidaError
from zida.core.org import actions
from zida.core.org.queries import search_users
from zida.core.org.repository import find_roles, get_user, list_departments, page_users
from zida.ids import is_decimal

__all__ = [
    "delete_department",
    "delete_role",
    "departments_page",
    "people_page",
    "roles_page",
    "update_department",
    "update_role",
    "user_active",
    "user_page",
]

_USER_FIELDS = ("user_id", "name", "name_en", "title", "mobile", "email", "manager", "username")


def _optional(text: str) -> str | None:
    return text.strip() or None


def _ids(values: list[str], param: str) -> tuple[int, ...]:
    if not all(is_decimal(v, 18) for v in values):
        raise InvalidArgument(f"{param} must be ids", reason="argument.invalid", param=param)
    return tuple(dict.fromkeys(int(v) for v in values))


def _user_ids(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(u for u in (p.strip() for p in text.replace("，", ",").split(",")) if u))


def _entered_user(form: Form) -> dict[str, Any]:
    entered: dict[str, Any] = {k: form.get(k).strip() for k in _USER_FIELDS}
    entered["departments"] = form.all("departments")
    entered["roles"] = form.all("roles")
    return entered


def _user_changes(entered: dict[str, Any], password: str) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "name": entered["name"],
        "name_en": _optional(entered["name_en"]),
        "title": _optional(entered["title"]),
        "mobile": _optional(entered["mobile"]),
        "email": _optional(entered["email"]),
        "manager": _optional(entered["manager"]),
        "username": _optional(entered["username"]),
        "departments": _ids(entered["departments"], "departments"),
    }
    if password:
        changes["password"] = password
    return changes


async def _user_form(ctx: Ctx, template_values: dict[str, Any], status: int = 200) -> Response:
    departments = [(str(d.dept_id), d.name) for d in await list_departments(ctx.zida.db, ctx.corp.pk)]
    roles = [(str(r.role_id), r.name) for r in (await find_roles(ctx.zida.db, ctx.corp.pk)).values()]
    return render(ctx, "admin_user.html", status, departments=departments, roles=roles, **template_values)


@console_page()
async def people_page(ctx: Ctx) -> Response:
    """The corp's people (GET: paged by user id, ``q`` searches names) and adding one (POST)."""
    admin_only(ctx)
    db = ctx.zida.db
    if ctx.request.method == "POST":
        entered = _entered_user(ctx.form)
        try:
            changes = _user_changes(entered, ctx.form.get("password"))
            spec = actions.UserSpec(user_id=entered["user_id"], **changes)
            await actions.create_user(db, ctx.corp, spec, actor=actor_of(ctx), roles=_ids(entered["roles"], "roles"))
        except ZidaError as exc:
            return await _user_form(ctx, {"entered": entered, "new": True, "error": exc.message}, status_of(exc))
        return redirect(f"{CONSOLE}/admin/people/{quote(entered['user_id'], safe='')}?saved=1")
    number = page_number(ctx)
    word = ctx.request.query_params.get("q", "").strip()[:64]
    wanted = None
    if word:
        _, wanted = await search_users(db, ctx.corp.pk, word, offset=0, size=200)
    total, users = await page_users(db, ctx.corp.pk, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE, user_ids=wanted)
    departments = {d.dept_id: d.name for d in await list_departments(db, ctx.corp.pk)}
    base = f"{CONSOLE}/admin/people?" + (f"q={quote(word, safe='')}&" if word else "")
    return render(
        ctx,
        "admin_people.html",
        users=users,
        departments=departments,
        word=word,
        pager=Pager(number, total, PAGE_SIZE, base),
        deactivated=ctx.request.query_params.get("deactivated") == "1",
    )


@console_page()
async def user_page(ctx: Ctx) -> Response:
    """One person (GET; ``new``: the form to add one) and saving changes (POST)."""
    admin_only(ctx)
    db = ctx.zida.db
    user_id = ctx.request.path_params["user_id"]
    if user_id == "new" and ctx.request.method == "GET":
        blank: dict[str, Any] = {k: "" for k in _USER_FIELDS} | {"departments": [], "roles": []}
        return await _user_form(ctx, {"entered": blank, "new": True, "error": None})
    user = await get_user(db, ctx.corp.pk, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")
    roles = await find_roles(db, ctx.corp.pk)
    if ctx.request.method == "POST":
        entered: dict[str, Any] = _entered_user(ctx.form) | {"user_id": user_id}
        try:
            await actions.update_user(
                db, ctx.corp, user_id, _user_changes(entered, ctx.form.get("password")), actor=actor_of(ctx),
                roles=_ids(entered["roles"], "roles"),
            )  # fmt: skip
        except ZidaError as exc:
            values = {"entered": entered, "new": False, "error": exc.message, "person": user}
            return await _user_form(ctx, values, status_of(exc))
        return redirect(f"{CONSOLE}/admin/people/{quote(user_id, safe='')}?saved=1")
    entered = {
        "user_id": user.user_id, "name": user.name, "name_en": user.name_en or "", "title": user.title or "",
        "mobile": user.mobile or "", "email": user.email or "", "manager": user.manager_user_id or "",
        "username": user.username or "", "departments": [str(d) for d in user.dept_ids],
        "roles": [str(r.role_id) for r in roles.values() if user.user_id in r.members],
    }  # fmt: skip
    values = {"entered": entered, "new": False, "error": None, "person": user}
    return await _user_form(ctx, values | {"saved": ctx.request.query_params.get("saved") == "1"})


@console_page()
async def user_active(ctx: Ctx) -> Response:
    """Deactivate a person (POST ``deactivate``, his open tasks to ``hand_over_to``) or reactivate him."""
    admin_only(ctx)
    user_id = ctx.request.path_params["user_id"]
    url = f"{CONSOLE}/admin/people/{quote(user_id, safe='')}"
    try:
        if ctx.form.get("action") == "reactivate":
            await actions.update_user(ctx.zida.db, ctx.corp, user_id, {"active": True}, actor=actor_of(ctx))
            return redirect(f"{url}?saved=1")
        if ctx.form.get("action") != "deactivate":
            raise InvalidArgument("action must be deactivate or reactivate", reason="argument.invalid")
        await actions.deactivate_user(
            ctx.zida.db,
            ctx.corp,
            user_id,
            actor=actor_of(ctx),
            hand_over_to=_optional(ctx.form.get("hand_over_to")),
            acting_user=ctx.user_id,
        )
    except ZidaError as exc:
        user = await get_user(ctx.zida.db, ctx.corp.pk, user_id)
        if user is None:
            raise
        entered = {"user_id": user.user_id, "name": user.name, "name_en": user.name_en or "",
                   "title": user.title or "", "mobile": user.mobile or "", "email": user.email or "",
                   "manager": user.manager_user_id or "", "username": user.username or "",
                   "departments": [str(d) for d in user.dept_ids], "roles": []}  # fmt: skip
        return await _user_form(ctx, {"entered": entered, "new": False, "error": exc.message, "person": user},
                                status_of(exc))  # fmt: skip
    return redirect(f"{CONSOLE}/admin/people?deactivated=1")


def _department_changes(form: Form) -> dict[str, Any]:
    parent = form.get("parent").strip()
    order = form.get("order").strip() or "0"
    if not (order.removeprefix("-").isascii() and order.removeprefix("-").isdigit()) or len(order) > 9:
        raise InvalidArgument("order must be a whole number", reason="argument.invalid", param="order")
    return {
        "name": form.get("name").strip(),
        "name_en": _optional(form.get("name_en")),
        "parent_id": _ids([parent], "parent")[0] if parent else None,
        "managers": _user_ids(form.get("managers")),
        "order": int(order),
    }


async def _departments(ctx: Ctx, status: int = 200, error: str | None = None, entered: Any = None) -> Response:
    departments = await list_departments(ctx.zida.db, ctx.corp.pk)
    return render(
        ctx,
        "admin_departments.html",
        status,
        departments=departments,
        names={d.dept_id: d.name for d in departments},
        error=error,
        entered=entered or {},
        notice=ctx.request.query_params.get("done", ""),
    )


@console_page()
async def departments_page(ctx: Ctx) -> Response:
    """The corp's departments (GET) and adding one (POST)."""
    admin_only(ctx)
    if ctx.request.method == "POST":
        try:
            changes = _department_changes(ctx.form)
            await actions.create_department(
                ctx.zida.db, ctx.corp, actions.DepartmentSpec(dept_id=None, **changes), actor=actor_of(ctx)
            )
        except ZidaError as exc:
            return await _departments(ctx, status_of(exc), exc.message, {"new": dict(ctx.form.pairs)})
        return redirect(f"{CONSOLE}/admin/departments?done=saved")
    return await _departments(ctx)


def _path_id(ctx: Ctx, name: str) -> int:
    return _ids([ctx.request.path_params[name]], name)[0]


@console_page()
async def update_department(ctx: Ctx) -> Response:
    """Save a department's changes (POST)."""
    admin_only(ctx)
    dept_id = _path_id(ctx, "dept_id")
    try:
        changes = _department_changes(ctx.form)
        await actions.update_department(ctx.zida.db, ctx.corp, dept_id, changes, actor=actor_of(ctx))
    except ZidaError as exc:
        return await _departments(ctx, status_of(exc), exc.message, {dept_id: dict(ctx.form.pairs)})
    return redirect(f"{CONSOLE}/admin/departments?done=saved")


@console_page()
async def delete_department(ctx: Ctx) -> Response:
    """Delete a department without members or sub-departments (POST)."""
    admin_only(ctx)
    try:
        await actions.delete_department(ctx.zida.db, ctx.corp, _path_id(ctx, "dept_id"), actor=actor_of(ctx))
    except ZidaError as exc:
        return await _departments(ctx, status_of(exc), exc.message)
    return redirect(f"{CONSOLE}/admin/departments?done=deleted")


def _role_changes(form: Form) -> dict[str, Any]:
    return {
        "name": form.get("name").strip(),
        "group": _optional(form.get("group")),
        "members": _user_ids(form.get("members")),
    }


async def _roles(ctx: Ctx, status: int = 200, error: str | None = None, entered: Any = None) -> Response:
    roles = sorted((await find_roles(ctx.zida.db, ctx.corp.pk)).values(), key=lambda r: r.role_id)
    return render(
        ctx,
        "admin_roles.html",
        status,
        roles=roles,
        error=error,
        entered=entered or {},
        notice=ctx.request.query_params.get("done", ""),
    )


@console_page()
async def roles_page(ctx: Ctx) -> Response:
    """The corp's roles (GET) and adding one (POST)."""
    admin_only(ctx)
    if ctx.request.method == "POST":
        try:
            spec = actions.RoleSpec(role_id=None, **_role_changes(ctx.form))
            await actions.create_role(ctx.zida.db, ctx.corp, spec, actor=actor_of(ctx))
        except ZidaError as exc:
            return await _roles(ctx, status_of(exc), exc.message, {"new": dict(ctx.form.pairs)})
        return redirect(f"{CONSOLE}/admin/roles?done=saved")
    return await _roles(ctx)


@console_page()
async def update_role(ctx: Ctx) -> Response:
    """Save a role's changes (POST)."""
    admin_only(ctx)
    role_id = _path_id(ctx, "role_id")
    try:
        await actions.update_role(ctx.zida.db, ctx.corp, role_id, _role_changes(ctx.form), actor=actor_of(ctx))
    except ZidaError as exc:
        return await _roles(ctx, status_of(exc), exc.message, {role_id: dict(ctx.form.pairs)})
    return redirect(f"{CONSOLE}/admin/roles?done=saved")


@console_page()
async def delete_role(ctx: Ctx) -> Response:
    """Delete a role no current process names (POST)."""
    admin_only(ctx)
    try:
        await actions.delete_role(ctx.zida.db, ctx.corp, _path_id(ctx, "role_id"), actor=actor_of(ctx))
    except ZidaError as exc:
        return await _roles(ctx, status_of(exc), exc.message)
    return redirect(f"{CONSOLE}/admin/roles?done=deleted")
