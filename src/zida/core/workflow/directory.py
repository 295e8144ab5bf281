"""The engine's ``Directory`` over the org tables.

The engine asks its directory synchronously while it resolves approvers, so ``load_directory`` reads up front
— in one to four queries — exactly what resolving one definition for one originator can ask: the manager
chain up to the deepest ``manager`` level, the department chain above the starting department, the members
of the roles the definition names, the app's administrators, and which of the other named users exist.
What it read is kept for a few seconds per question asked (see ``zida.cache``, scope ``org``), so repeated starts
by the same originator read nothing.

Deactivated users are not in it (``user_exists`` is false for them): they are never resolved as new approvers or CCs,
whether named directly, as a manager, a department head, a role member, an app admin or in an EmployeeField, and a
node whose people are all deactivated follows its empty-approver policy. The manager and department chains still
run through them, so "manager at level 2" above a deactivated manager is still found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from zida.cache import TtlCache
from zida.core.workflow.definition import (
    ApproverNode,
    CcNode,
    DepartmentHead,
    FieldUsers,
    FixedUsers,
    Manager,
    ProcessDefinition,
    RoleMembers,
)
from zida.core.workflow.engine import StaticDirectory
from zida.db import Connection

__all__ = ["load_directory", "main_department"]

_MAX_DEPARTMENT_DEPTH = 100

# Directories by what was asked of the org tables (the staleness bound of zida.cache).
_DIRECTORIES: TtlCache[tuple[object, ...], StaticDirectory] = TtlCache(scope="org")


def _in(prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    names = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{n}" for n in names) or "NULL", names


async def main_department(conn: Connection, corp_pk: int, user_id: str) -> int | None:
    """The user's main department (the first of their departments)."""
    value = await conn.fetchval(
        "SELECT d.dept_id FROM org_user u JOIN user_department ud ON ud.user_pk = u.id"
        " JOIN department d ON d.id = ud.dept_pk WHERE u.corp_pk = :c AND u.user_id = :u"
        " ORDER BY ud.position LIMIT 1",
        {"c": corp_pk, "u": user_id},
    )
    return None if value is None else int(value)


async def _manager_chain(
    conn: Connection, corp_pk: int, originator: str, levels: int
) -> tuple[dict[str, str], set[str]]:
    rows = await conn.fetch(
        "WITH RECURSIVE chain(user_id, manager, depth) AS ("
        " SELECT user_id, manager_user_id, 0 FROM org_user WHERE corp_pk = :c AND user_id = :u"
        " UNION ALL"
        " SELECT o.user_id, o.manager_user_id, chain.depth + 1 FROM org_user o"
        " JOIN chain ON o.corp_pk = :c AND o.user_id = chain.manager WHERE chain.depth < :n"
        ") SELECT user_id, manager FROM chain",
        {"c": corp_pk, "u": originator, "n": levels},
    )
    return {r["user_id"]: r["manager"] for r in rows if r["manager"]}, {r["user_id"] for r in rows}


async def _department_chain(
    conn: Connection, corp_pk: int, start: int
) -> tuple[dict[int, int | None], dict[int, tuple[str, ...]]]:
    rows = await conn.fetch(
        "WITH RECURSIVE chain(dept_id, parent, managers, depth) AS ("
        " SELECT dept_id, parent_dept_id, manager_user_ids, 0 FROM department WHERE corp_pk = :c AND dept_id = :d"
        " UNION ALL"
        " SELECT d.dept_id, d.parent_dept_id, d.manager_user_ids, chain.depth + 1 FROM department d"
        " JOIN chain ON d.corp_pk = :c AND d.dept_id = chain.parent WHERE chain.depth < :n"
        ") SELECT dept_id, parent, managers FROM chain",
        {"c": corp_pk, "d": start, "n": _MAX_DEPARTMENT_DEPTH},
    )
    parents = {int(r["dept_id"]): (int(r["parent"]) if r["parent"] is not None else None) for r in rows}
    heads = {int(r["dept_id"]): tuple(orjson.loads(r["managers"])) for r in rows}
    return parents, heads


async def _role_members(conn: Connection, corp_pk: int, role_ids: set[int]) -> dict[int, list[str]]:
    placeholders, params = _in("r", sorted(role_ids))
    rows = await conn.fetch(
        "SELECT r.role_id, u.user_id FROM role r JOIN role_member m ON m.role_pk = r.id"
        f" JOIN org_user u ON u.id = m.user_pk AND u.active WHERE r.corp_pk = :c AND r.role_id IN ({placeholders})"
        " ORDER BY r.role_id, u.id",
        {"c": corp_pk, **params},
    )
    members: dict[int, list[str]] = {r: [] for r in role_ids}
    for row in rows:
        members[int(row["role_id"])].append(row["user_id"])
    return members


async def _known_users_and_admins(
    conn: Connection, corp_pk: int, app_pk: int, candidates: set[str]
) -> tuple[set[str], list[str]]:
    placeholders, params = _in("u", sorted(candidates))
    rows = await conn.fetch(
        f"SELECT 'user' AS kind, user_id FROM org_user WHERE corp_pk = :c AND user_id IN ({placeholders}) AND active"
        " UNION ALL"
        " SELECT 'admin' AS kind, u.user_id FROM app_admin a JOIN org_user u ON u.id = a.user_pk"
        " WHERE a.app_pk = :a AND u.active",
        {"c": corp_pk, "a": app_pk, **params},
    )
    known = {r["user_id"] for r in rows if r["kind"] == "user"}
    admins = sorted(r["user_id"] for r in rows if r["kind"] == "admin")
    return known, admins


def _field_users(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


async def load_directory(
    conn: Connection,
    *,
    corp_pk: int,
    app_pk: int,
    definition: ProcessDefinition,
    originator: str,
    department_id: int | None,
    form_data: Mapping[str, Any],
    chosen: Mapping[str, Sequence[str]],
) -> StaticDirectory:
    """Everything resolving ``definition`` for ``originator`` can ask, read from the org tables."""
    manager_levels = 0
    dept_levels = 0
    role_ids: set[int] = set()
    candidates: set[str] = {originator}
    for node in definition.walk():
        if not isinstance(node, ApproverNode | CcNode):
            continue
        who = node.who
        if isinstance(who, Manager):
            manager_levels = max(manager_levels, who.level)
        elif isinstance(who, DepartmentHead):
            dept_levels = max(dept_levels, who.level)
        elif isinstance(who, RoleMembers):
            role_ids.add(who.role_id)
        elif isinstance(who, FixedUsers):
            candidates.update(who.user_ids)
        elif isinstance(who, FieldUsers):
            candidates.update(_field_users(form_data.get(who.field_id)))
    for users in chosen.values():
        candidates.update(u for u in users if isinstance(u, str))
    key = (
        corp_pk,
        app_pk,
        originator,
        department_id,
        manager_levels,
        dept_levels,
        frozenset(role_ids),
        frozenset(candidates),
    )
    cached = _DIRECTORIES.get(key)
    if cached is not None:
        return cached

    managers: dict[str, str] = {}
    if manager_levels:
        managers, chain_users = await _manager_chain(conn, corp_pk, originator, manager_levels)
        candidates.update(chain_users)
    parents: dict[int, int | None] = {}
    heads: dict[int, tuple[str, ...]] = {}
    start_dept = department_id
    if dept_levels:
        if start_dept is None:
            start_dept = await main_department(conn, corp_pk, originator)
        if start_dept is not None:
            parents, heads = await _department_chain(conn, corp_pk, start_dept)
            for users in heads.values():
                candidates.update(users)
    roles = await _role_members(conn, corp_pk, role_ids) if role_ids else {}
    known, admins = await _known_users_and_admins(conn, corp_pk, app_pk, candidates)
    known.update(admins)
    for users in roles.values():
        known.update(users)
    return _DIRECTORIES.put(
        key,
        StaticDirectory(
            user_ids=frozenset(known),
            user_managers=managers,
            user_departments={originator: start_dept} if start_dept is not None else {},
            department_parents=parents,
            department_heads=heads,
            role_users=roles,
            admin_ids=tuple(admins),
        ),
    )
