"""Directory reads for the contacts APIs: members with their departments and roles, pages of a department's
members, look-ups, department trees and chains, roles, and name search.

Only **active** users are members here: a deactivated user has left the corp (his history stays and renders
elsewhere, ``zida.core.org.actions``), so these reads do not find him, list him or count him.

**Paging a department's members** (:func:`member_page`). The orders are the contacts API's:

* ``custom`` and ``entry_asc`` (Zida keeps no hand-made member order, so ``custom`` is the entry order) and
  ``entry_desc``: the order users joined the corp, i.e. their row id (ids grow with each new user). The cursor is
  the row id of the last member served (0: the first page) and the next page is an index seek past it on
  ``user_department (dept_pk, user_pk)``: members who join, leave or change meanwhile never make a member who stayed
  appear twice or be skipped.
* ``modify_asc`` / ``modify_desc``: by the time of the user's last change, then row id. A change moves a user in
  this order by definition, so no cursor can keep it stable: the cursor is an offset (as DingTalk's own), and a
  page costs a sort of the department's members.

**Name search** (:func:`search_users`) reads ``user_name_gram`` (migration 0015): one- and two-character words are
one index range, longer words take the users having their first two characters as candidates and test each with the
real substring match. Matching is case-insensitive as the database's ``lower`` is (SQLite: ASCII letters).
Departments are few (thousands): :func:`search_departments` scans the corp's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from zida.core.org.repository import department_chain
from zida.db import Connection, Row, in_list

__all__ = [
    "MEMBER_ORDERS",
    "DirectoryDepartment",
    "Member",
    "MemberDepartment",
    "MemberPage",
    "MemberRole",
    "RoleGroup",
    "app_admins",
    "count_members",
    "department_member_ids",
    "find_department",
    "find_role",
    "is_corp_admin",
    "member_page",
    "members",
    "parent_chain",
    "role_groups",
    "role_member_page",
    "search_departments",
    "search_users",
    "sub_departments",
    "user_by_mobile",
    "user_by_sign_in_name",
    "user_by_union_id",
    "user_parent_chains",
]

MEMBER_ORDERS = ("custom", "entry_asc", "entry_desc", "modify_asc", "modify_desc")


@dataclass(frozen=True, slots=True)
class MemberDepartment:
    """A department a member belongs to (main first), and whether he heads it."""

    dept_id: int
    name: str
    name_en: str | None
    leader: bool


@dataclass(frozen=True, slots=True)
class MemberRole:
    """A role a member holds."""

    role_id: int
    name: str
    group: str | None


@dataclass(frozen=True, slots=True)
class Member:
    """An active user of the corp as the contacts APIs show him."""

    pk: int
    user_id: str
    union_id: str
    name: str
    name_en: str | None
    title: str | None
    mobile: str | None
    email: str | None
    manager_user_id: str | None
    created_at: int
    updated_at: int
    app_admin: bool
    departments: tuple[MemberDepartment, ...]
    roles: tuple[MemberRole, ...]


@dataclass(frozen=True, slots=True)
class MemberPage:
    """One page of a department's members: (row id, user id, name) each; ``next_cursor`` None on the last page."""

    members: tuple[tuple[int, str, str], ...]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class DirectoryDepartment:
    """A department as the contacts APIs show it, with how many active users are its direct members."""

    dept_id: int
    name: str
    name_en: str | None
    parent_id: int | None
    order: int
    manager_user_ids: tuple[str, ...]
    member_count: int


@dataclass(frozen=True, slots=True)
class RoleGroup:
    """Roles sharing a group name. Zida's groups have no ids: ``group_id`` is the smallest role id of the group."""

    group_id: int
    name: str
    roles: tuple[MemberRole, ...]


_MEMBER_COLUMNS = (
    "u.id, u.user_id, u.union_id, u.name, u.name_en, u.title, u.mobile, u.email, u.manager_user_id, u.created_at,"
    " u.updated_at, EXISTS (SELECT 1 FROM app_admin aa WHERE aa.user_pk = u.id) AS app_admin,"
    " ud.position, d.dept_id, d.name AS dept_name, d.name_en AS dept_name_en, d.manager_user_ids,"
    " r.role_id, r.name AS role_name, r.group_name"
)
_MEMBER_JOINS = (
    " LEFT JOIN user_department ud ON ud.user_pk = u.id LEFT JOIN department d ON d.id = ud.dept_pk"
    " LEFT JOIN role_member rm ON rm.user_pk = u.id LEFT JOIN role r ON r.id = rm.role_pk"
)


def _members(rows: list[Row]) -> list[Member]:
    grouped: dict[int, tuple[Row, dict[int, MemberDepartment], dict[int, MemberRole]]] = {}
    for row in rows:
        _, depts, roles = grouped.setdefault(int(row["id"]), (row, {}, {}))
        if row["dept_id"] is not None and row["position"] not in depts:
            managers = orjson.loads(row["manager_user_ids"])
            depts[int(row["position"])] = MemberDepartment(
                int(row["dept_id"]), row["dept_name"], row["dept_name_en"], row["user_id"] in managers
            )
        if row["role_id"] is not None:
            roles[int(row["role_id"])] = MemberRole(int(row["role_id"]), row["role_name"], row["group_name"])
    return [
        Member(
            pk=int(row["id"]),
            user_id=row["user_id"],
            union_id=row["union_id"],
            name=row["name"],
            name_en=row["name_en"],
            title=row["title"],
            mobile=row["mobile"],
            email=row["email"],
            manager_user_id=row["manager_user_id"],
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
            app_admin=bool(row["app_admin"]),
            departments=tuple(depts[p] for p in sorted(depts)),
            roles=tuple(roles[r] for r in sorted(roles)),
        )
        for row, depts, roles in grouped.values()
    ]


async def members(
    conn: Connection, corp_pk: int, *, user_ids: Iterable[str] = (), pks: Iterable[int] = ()
) -> list[Member]:
    """The active users of the corp named by user id or row id (one statement), in the order named; unknown or
    deactivated ones are absent."""
    wanted_ids, wanted_pks = list(dict.fromkeys(user_ids)), list(dict.fromkeys(pks))
    if not wanted_ids and not wanted_pks:
        return []
    # No ORDER BY: the rows are grouped by user and put in the order named here, and a user's departments and
    # roles are sorted by _members (a sort node cost PostgreSQL a tenth of this statement).
    column, wanted = ("u.user_id", wanted_ids) if wanted_ids else ("u.id", wanted_pks)
    params: dict[str, object]
    if len(wanted) == 1:  # one user: a plain equality
        where, params = f"{column} = :one", {"one": wanted[0]}
    else:
        placeholders, params = in_list("w", wanted)
        where = f"{column} IN ({placeholders})"
    rows = await conn.fetch(
        f"SELECT {_MEMBER_COLUMNS} FROM org_user u{_MEMBER_JOINS} WHERE u.corp_pk = :corp_pk AND u.active AND {where}",
        {"corp_pk": corp_pk, **params},
    )
    found = _members(rows)
    if wanted_ids:
        by_id = {m.user_id: m for m in found}
        return [by_id[u] for u in wanted_ids if u in by_id]
    by_pk = {m.pk: m for m in found}
    return [by_pk[p] for p in wanted_pks if p in by_pk]


async def _department_pk(conn: Connection, corp_pk: int, dept_id: int) -> int | None:
    value = await conn.fetchval(
        "SELECT id FROM department WHERE corp_pk = :c AND dept_id = :d", {"c": corp_pk, "d": dept_id}
    )
    return None if value is None else int(value)


_DEPT_OF = "(SELECT id FROM department WHERE corp_pk = :c AND dept_id = :d)"


async def member_page(
    conn: Connection,
    corp_pk: int,
    dept_id: int,
    *,
    order: str = "custom",
    cursor: int = 0,
    size: int = 100,
    by_offset: bool = False,
) -> MemberPage | None:
    """A page of the department's direct members in ``order`` (module docstring); ``by_offset``: the cursor is an
    offset in every order (the older API's paging). None when the corp has no such department."""
    if order not in MEMBER_ORDERS:
        raise ValueError(f"unknown member order {order!r}")
    params: dict[str, object] = {"c": corp_pk, "d": dept_id, "cursor": cursor, "n": size + 1}
    base = (
        "SELECT u.id, u.user_id, u.name FROM user_department ud"
        " JOIN org_user u ON u.id = ud.user_pk AND u.corp_pk = :c AND u.active"
    )
    keyset = order in ("custom", "entry_asc", "entry_desc") and not by_offset
    if by_offset and order != "modify_asc" and order != "modify_desc":
        direction = " DESC" if order == "entry_desc" else ""
        where, sort, tail = "1 = 1", f"ud.user_pk{direction}", " OFFSET :cursor"
    elif order in ("custom", "entry_asc"):
        where, sort, tail = "ud.user_pk > :cursor", "ud.user_pk", ""
    elif order == "entry_desc":
        where, sort, tail = "(:cursor = 0 OR ud.user_pk < :cursor)", "ud.user_pk DESC", ""
    else:
        direction = "" if order == "modify_asc" else " DESC"
        where, sort, tail = "1 = 1", f"u.updated_at{direction}, u.id{direction}", " OFFSET :cursor"
    rows = await conn.fetch(f"{base} WHERE ud.dept_pk = {_DEPT_OF} AND {where} ORDER BY {sort} LIMIT :n{tail}", params)
    if not rows and await _department_pk(conn, corp_pk, dept_id) is None:
        return None
    page = tuple((int(r["id"]), r["user_id"], r["name"]) for r in rows[:size])
    next_cursor = None
    if len(rows) > size:
        next_cursor = page[-1][0] if keyset else cursor + size
    return MemberPage(page, next_cursor)


async def department_member_ids(conn: Connection, corp_pk: int, dept_id: int) -> list[str] | None:
    """The user ids of every direct member of the department in entry order; None when there is no such department."""
    rows = await conn.fetch(
        "SELECT u.user_id FROM user_department ud JOIN org_user u ON u.id = ud.user_pk AND u.active"
        f" WHERE ud.dept_pk = {_DEPT_OF} ORDER BY ud.user_pk",
        {"c": corp_pk, "d": dept_id},
    )
    if not rows and await _department_pk(conn, corp_pk, dept_id) is None:
        return None
    return [r["user_id"] for r in rows]


async def count_members(conn: Connection, corp_pk: int) -> int:
    """How many active users the corp has."""
    return int(await conn.fetchval("SELECT count(*) FROM org_user WHERE corp_pk = :c AND active", {"c": corp_pk}))


async def user_by_mobile(conn: Connection, corp_pk: int, mobile: str) -> str | None:
    """The user id of the active user with this mobile number (the first joined, if several share it)."""
    value = await conn.fetchval(
        "SELECT user_id FROM org_user WHERE corp_pk = :c AND mobile = :m AND active ORDER BY id LIMIT 1",
        {"c": corp_pk, "m": mobile},
    )
    return None if value is None else str(value)


async def user_by_union_id(conn: Connection, corp_pk: int, union_id: str) -> str | None:
    """The user id of the active user with this union id."""
    value = await conn.fetchval(
        "SELECT user_id FROM org_user WHERE corp_pk = :c AND union_id = :u AND active ORDER BY id LIMIT 1",
        {"c": corp_pk, "u": union_id},
    )
    return None if value is None else str(value)


async def user_by_sign_in_name(conn: Connection, corp_pk: int, name: str) -> str | None:
    """The user id of the active user whose sign-in name is ``name`` (his username, else his userId)."""
    value = await conn.fetchval(
        "SELECT user_id FROM org_user WHERE corp_pk = :c AND active AND (username = :n OR (username IS NULL AND"
        " user_id = :n)) ORDER BY id LIMIT 1",
        {"c": corp_pk, "n": name},
    )
    return None if value is None else str(value)


async def app_admins(conn: Connection, corp_pk: int) -> list[str]:
    """The active users who administer at least one app of the corp, in entry order (Zida's corp-level admins)."""
    rows = await conn.fetch(
        "SELECT u.user_id FROM org_user u WHERE u.corp_pk = :c AND u.active"
        " AND EXISTS (SELECT 1 FROM app_admin aa JOIN app a ON a.id = aa.app_pk"
        " WHERE aa.user_pk = u.id AND a.corp_pk = :c) ORDER BY u.id",
        {"c": corp_pk},
    )
    return [r["user_id"] for r in rows]


async def is_corp_admin(conn: Connection, corp_pk: int, user_id: str) -> bool:
    """Whether an active user administers every app of the corp (and it has one): what the console's corp-level
    pages (credentials, people) ask. Choice (Zida has no corp administrator of its own): such a user already reads
    and changes everything of every app, so these pages give him no record or approval he could not reach; the
    admin of some apps only is refused them (a credential or a password he set could reach the other apps)."""
    value = await conn.fetchval(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM app a WHERE a.corp_pk = :c) AND NOT EXISTS (SELECT 1 FROM app a"
        " WHERE a.corp_pk = :c AND NOT EXISTS (SELECT 1 FROM app_admin aa JOIN org_user u ON u.id = aa.user_pk"
        " WHERE aa.app_pk = a.id AND u.user_id = :u AND u.active)) THEN 1 ELSE 0 END",
        {"c": corp_pk, "u": user_id},
    )
    return bool(value)


_DEPARTMENT_COLUMNS = "d.dept_id, d.name, d.name_en, d.parent_dept_id, d.sort_order, d.manager_user_ids"


def _directory_department(row: Row, member_count: int = 0) -> DirectoryDepartment:
    return DirectoryDepartment(
        dept_id=int(row["dept_id"]),
        name=row["name"],
        name_en=row["name_en"],
        parent_id=int(row["parent_dept_id"]) if row["parent_dept_id"] is not None else None,
        order=int(row["sort_order"] or 0),
        manager_user_ids=tuple(orjson.loads(row["manager_user_ids"])),
        member_count=member_count,
    )


async def find_department(conn: Connection, corp_pk: int, dept_id: int) -> DirectoryDepartment | None:
    """One department with its count of active direct members (one statement)."""
    row = await conn.fetchrow(
        f"SELECT {_DEPARTMENT_COLUMNS}, (SELECT count(*) FROM user_department ud JOIN org_user u"
        " ON u.id = ud.user_pk AND u.active WHERE ud.dept_pk = d.id) AS member_count"
        " FROM department d WHERE d.corp_pk = :c AND d.dept_id = :d",
        {"c": corp_pk, "d": dept_id},
    )
    return None if row is None else _directory_department(row, int(row["member_count"]))


async def sub_departments(
    conn: Connection, corp_pk: int, parent_id: int, *, recursive: bool = False
) -> list[DirectoryDepartment] | None:
    """The departments under ``parent_id`` by their order (``recursive``: every level, each level after its parent);
    None when there is no such department (member counts are not read: 0)."""
    if recursive:
        rows = await conn.fetch(
            "WITH RECURSIVE tree(id, dept_id, depth) AS ("
            " SELECT id, dept_id, 0 FROM department WHERE corp_pk = :c AND dept_id = :d"
            " UNION ALL SELECT c.id, c.dept_id, tree.depth + 1 FROM department c"
            " JOIN tree ON c.corp_pk = :c AND c.parent_dept_id = tree.dept_id WHERE tree.depth < 1000"
            f") SELECT {_DEPARTMENT_COLUMNS}, tree.depth FROM tree JOIN department d ON d.id = tree.id"
            " ORDER BY tree.depth, d.sort_order, d.dept_id",
            {"c": corp_pk, "d": parent_id},
        )
        if not rows:
            return None
        return [_directory_department(r) for r in rows if int(r["depth"]) > 0]
    rows = await conn.fetch(
        f"SELECT {_DEPARTMENT_COLUMNS} FROM department d WHERE d.corp_pk = :c AND d.parent_dept_id = :d"
        " ORDER BY d.sort_order, d.dept_id",
        {"c": corp_pk, "d": parent_id},
    )
    if not rows and await _department_pk(conn, corp_pk, parent_id) is None:
        return None
    return [_directory_department(r) for r in rows]


def _chain(links: dict[int, int | None], start: int) -> list[int]:
    chain: list[int] = []
    seen: set[int] = set()
    current: int | None = start
    while current is not None and current in links and current not in seen:
        seen.add(current)
        chain.append(current)
        current = links[current]
    return chain


async def parent_chain(conn: Connection, corp_pk: int, dept_id: int) -> list[int] | None:
    """The department itself, its parent, …, the root; None when there is no such department."""
    links = await department_chain(conn, corp_pk, dept_id)
    return _chain(links, dept_id) if dept_id in links else None


async def user_parent_chains(conn: Connection, corp_pk: int, user_id: str) -> list[list[int]] | None:
    """For each department of the active user (main first): that department, its parent, …, the root; None when the
    corp has no such active user. One statement."""
    rows = await conn.fetch(
        "WITH RECURSIVE chain(dept_id, parent, depth) AS ("
        " SELECT d.dept_id, d.parent_dept_id, 0 FROM org_user u JOIN user_department ud ON ud.user_pk = u.id"
        " JOIN department d ON d.id = ud.dept_pk WHERE u.corp_pk = :c AND u.user_id = :u AND u.active"
        " UNION SELECT d.dept_id, d.parent_dept_id, chain.depth + 1 FROM department d"
        " JOIN chain ON d.corp_pk = :c AND d.dept_id = chain.parent WHERE chain.depth < 1000"
        ") SELECT DISTINCT dept_id, parent, 0 AS pos, 0 AS is_user FROM chain"
        " UNION ALL SELECT d.dept_id, NULL, ud.position, 1 FROM org_user u"
        " LEFT JOIN user_department ud ON ud.user_pk = u.id LEFT JOIN department d ON d.id = ud.dept_pk"
        " WHERE u.corp_pk = :c AND u.user_id = :u AND u.active",
        {"c": corp_pk, "u": user_id},
    )
    mine = sorted((int(r["pos"]), int(r["dept_id"])) for r in rows if r["is_user"] and r["dept_id"] is not None)
    if not any(r["is_user"] for r in rows):
        return None
    links = {
        int(r["dept_id"]): (int(r["parent"]) if r["parent"] is not None else None) for r in rows if not r["is_user"]
    }
    return [_chain(links, dept_id) for _, dept_id in mine]


async def role_groups(conn: Connection, corp_pk: int, *, offset: int, size: int) -> tuple[list[RoleGroup], bool]:
    """A page of the corp's role groups (by group id) with their roles, and whether more follow. Roles without a group
    form the group named ``默认``."""
    rows = await conn.fetch(
        "SELECT role_id, name, group_name FROM role WHERE corp_pk = :c ORDER BY role_id", {"c": corp_pk}
    )
    groups: dict[str, list[MemberRole]] = {}
    for row in rows:
        groups.setdefault(row["group_name"] or "默认", []).append(
            MemberRole(int(row["role_id"]), row["name"], row["group_name"])
        )
    ordered = sorted(
        (RoleGroup(roles[0].role_id, name, tuple(roles)) for name, roles in groups.items()), key=lambda g: g.group_id
    )
    return ordered[offset : offset + size], len(ordered) > offset + size


async def find_role(conn: Connection, corp_pk: int, role_id: int) -> RoleGroup | None:
    """One role, as its group (``group_id``, group name) with only this role in ``roles``."""
    rows = await conn.fetch(
        "SELECT r.role_id, r.name, r.group_name, (SELECT min(o.role_id) FROM role o WHERE o.corp_pk = r.corp_pk"
        " AND COALESCE(o.group_name, '') = COALESCE(r.group_name, '')) AS group_id"
        " FROM role r WHERE r.corp_pk = :c AND r.role_id = :r",
        {"c": corp_pk, "r": role_id},
    )
    if not rows:
        return None
    row = rows[0]
    return RoleGroup(
        int(row["group_id"]),
        row["group_name"] or "默认",
        (MemberRole(int(row["role_id"]), row["name"], row["group_name"]),),
    )


async def role_member_page(
    conn: Connection, corp_pk: int, role_id: int, *, offset: int, size: int
) -> tuple[list[tuple[str, str]], bool] | None:
    """A page of the role's active members ((user id, name) in join order) and whether more follow; None when the corp
    has no such role."""
    rows = await conn.fetch(
        "SELECT u.user_id, u.name FROM role r JOIN role_member m ON m.role_pk = r.id"
        " JOIN org_user u ON u.id = m.user_pk AND u.active WHERE r.corp_pk = :c AND r.role_id = :r"
        " ORDER BY u.id LIMIT :n OFFSET :o",
        {"c": corp_pk, "r": role_id, "n": size + 1, "o": offset},
    )
    if (
        not rows
        and await conn.fetchval("SELECT 1 FROM role WHERE corp_pk = :c AND role_id = :r", {"c": corp_pk, "r": role_id})
        is None
    ):
        return None
    return [(r["user_id"], r["name"]) for r in rows[:size]], len(rows) > size


async def search_users(
    conn: Connection, corp_pk: int, word: str, *, offset: int, size: int, exact: bool = False
) -> tuple[int, list[str]]:
    """(how many, a page of the user ids of) the active users whose name contains ``word`` (``exact``: is
    ``word``), in entry order."""
    params: dict[str, object] = {"c": corp_pk, "q": word, "n": size, "o": offset}
    if exact:
        matches = "SELECT id AS user_pk FROM org_user WHERE corp_pk = :c AND name = :q AND active"
    elif len(word) <= 2:
        matches = "SELECT user_pk FROM user_name_gram WHERE corp_pk = :c AND gram = lower(:q)"
    else:
        contains = (
            "instr(lower(u.name), lower(:q)) > 0"
            if conn.sql.name == "sqlite"
            else "strpos(lower(u.name), lower(:q)) > 0"
        )
        matches = (
            "SELECT g.user_pk FROM user_name_gram g JOIN org_user u ON u.id = g.user_pk"
            f" WHERE g.corp_pk = :c AND g.gram = substr(lower(:q), 1, 2) AND {contains}"
        )
    rows = await conn.fetch(
        "SELECT u.user_id, p.total FROM (SELECT user_pk, count(*) OVER () AS total FROM"
        f" ({matches}) m ORDER BY user_pk LIMIT :n OFFSET :o) p JOIN org_user u ON u.id = p.user_pk ORDER BY p.user_pk",
        params,
    )
    if rows:
        return int(rows[0]["total"]), [r["user_id"] for r in rows]
    total = await conn.fetchval(f"SELECT count(*) FROM ({matches}) m", params) if offset else 0
    return int(total or 0), []


async def search_departments(
    conn: Connection, corp_pk: int, word: str, *, offset: int, size: int
) -> tuple[int, list[int]]:
    """(how many, a page of the ids of) the corp's departments whose name contains ``word``, by dept id."""
    contains = (
        "instr(lower(name), lower(:q)) > 0" if conn.sql.name == "sqlite" else "strpos(lower(name), lower(:q)) > 0"
    )
    rows = await conn.fetch(
        "SELECT dept_id, count(*) OVER () AS total FROM department"
        f" WHERE corp_pk = :c AND {contains} ORDER BY dept_id LIMIT :n OFFSET :o",
        {"c": corp_pk, "q": word, "n": size, "o": offset},
    )
    if rows:
        return int(rows[0]["total"]), [int(r["dept_id"]) for r in rows]
    if not offset:
        return 0, []
    total = await conn.fetchval(
        f"SELECT count(*) FROM department WHERE corp_pk = :c AND {contains}", {"c": corp_pk, "q": word}
    )
    return int(total or 0), []
