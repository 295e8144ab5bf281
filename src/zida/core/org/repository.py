"""SQL for reading the org directory (its writes are the actions of ``zida.core.org.actions``).

``find_users`` serves rendering and reference checks from a cache of scope ``org`` (``zida.cache``): it finds
deactivated users too (with ``active`` false), since records and approvals that name them must still render; callers
that name a user anew check ``User.active``. The other reads here are uncached (admin views and the actions' checks).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from zida.cache import TtlCache
from zida.core.errors import InvalidArgument, NotFound
from zida.core.org.models import Corp, Department, Role, User
from zida.crypto import SecretBox
from zida.db import Connection, Row, in_list

__all__ = [
    "ORG_CACHE_SCOPE",
    "corp_of_environment",
    "corp_org_secret",
    "department_chain",
    "environment_corp",
    "environment_id",
    "find_corp",
    "find_departments",
    "find_roles",
    "find_users",
    "get_user",
    "list_departments",
    "list_users",
    "manager_chain",
    "only_corp",
    "page_users",
    "user_exists",
    "user_pks",
]

ORG_CACHE_SCOPE = "org"  # what ``zida.cache.invalidate`` names after a change of users, departments or roles


async def corp_of_environment(conn: Connection, env_id: str | None) -> int:
    """The pk of the corp a client names by its environment id (its prod data, else its preview data); with no id,
    of the only environment on the server."""
    prod_first = "ORDER BY CASE env_type WHEN 'prod' THEN 0 ELSE 1 END LIMIT 1"
    if env_id:
        pk = await conn.fetchval(f"SELECT id FROM corp WHERE env_id = :e {prod_first}", {"e": env_id})
        if pk is None:
            raise NotFound(f"no environment {env_id} on this server", reason="env.not_found")
        return int(pk)
    rows = await conn.fetch("SELECT DISTINCT env_id FROM corp WHERE env_id IS NOT NULL LIMIT 2")
    if len(rows) != 1:
        raise InvalidArgument(
            "the environment id is required: this server has "
            + ("no environment" if not rows else "several environments"),
            reason="env.required",
        )
    return await corp_of_environment(conn, str(rows[0]["env_id"]))


async def environment_id(conn: Connection, corp_pk: int) -> str | None:
    """The WeDa environment id of a corp (None: it answers no WeDa client)."""
    value = await conn.fetchval("SELECT env_id FROM corp WHERE id = :c", {"c": corp_pk})
    return str(value) if value is not None else None


# The corp holding one type of data of a corp's environment: (corp pk, env type) → that corp.
_ENVIRONMENTS: TtlCache[tuple[int, str], Corp] = TtlCache(scope="org")


async def environment_corp(conn: Connection, corp_pk: int, env_type: str) -> Corp | None:
    """The corp holding the ``env_type`` data (prod or pre) of the environment corp ``corp_pk`` belongs to: itself
    when it holds that type (a corp without an environment id holds prod data), None when there is no such corp."""
    key = (corp_pk, env_type)
    cached = _ENVIRONMENTS.get(key)
    if cached is not None:
        return cached
    row = await conn.fetchrow("SELECT id, corp_id, name, env_id, env_type FROM corp WHERE id = :c", {"c": corp_pk})
    if row is not None and row["env_type"] != env_type:
        row = (
            None
            if row["env_id"] is None
            else await conn.fetchrow(
                "SELECT id, corp_id, name FROM corp WHERE env_id = :e AND env_type = :t",
                {"e": row["env_id"], "t": env_type},
            )
        )
    if row is None:
        return None
    return _ENVIRONMENTS.put(key, Corp(pk=row["id"], corp_id=row["corp_id"], name=row["name"]))


async def find_corp(conn: Connection, corp_id: str) -> Corp | None:
    """The corp with the public id ``corp_id``."""
    row = await conn.fetchrow("SELECT id, corp_id, name FROM corp WHERE corp_id = :corp_id", {"corp_id": corp_id})
    return None if row is None else Corp(pk=row["id"], corp_id=row["corp_id"], name=row["name"])


async def only_corp(conn: Connection) -> Corp | None:
    """The server's corp when it has exactly one (None: none, or several)."""
    rows = await conn.fetch("SELECT id, corp_id, name FROM corp ORDER BY id LIMIT 2")
    return Corp(pk=rows[0]["id"], corp_id=rows[0]["corp_id"], name=rows[0]["name"]) if len(rows) == 1 else None


async def corp_org_secret(conn: Connection, box: SecretBox, corp_pk: int) -> str | None:
    """The corp's org-level secret (what a dialect's org-level tokens are derived from), or None if it has none."""
    enc = await conn.fetchval("SELECT org_secret_enc FROM corp WHERE id = :c", {"c": corp_pk})
    return box.decrypt(enc) if enc else None


# Directory entries for rendering and reference checks (see zida.cache for the staleness bound).
_USERS: TtlCache[tuple[int, str], User] = TtlCache(scope="org")


def _user(row: Row, depts: list[tuple[int, str]]) -> User:
    return User(
        pk=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        name_en=row["name_en"],
        email=row["email"],
        title=row["title"],
        manager_user_id=row["manager_user_id"],
        union_id=row["union_id"],
        dept_ids=tuple(d for d, _ in depts),
        main_dept_name=depts[0][1] if depts else None,
        mobile=row["mobile"],
        active=bool(row["active"]),
        username=row["username"],
    )


async def find_users(conn: Connection, corp_pk: int, user_ids: Iterable[str]) -> dict[str, User]:
    """Users of the corp by user id, deactivated ones included (unknown ids are simply absent)."""
    out: dict[str, User] = {}
    wanted = []
    for user_id in sorted({u for u in user_ids if u}):
        cached = _USERS.get((corp_pk, user_id))
        if cached is not None:
            out[user_id] = cached
        else:
            wanted.append(user_id)
    if not wanted:
        return out
    placeholders, params = in_list("u", list(wanted))
    found = await _users(conn, corp_pk, f"u.user_id IN ({placeholders})", params)
    for user in found:
        out[user.user_id] = _USERS.put((corp_pk, user.user_id), user)
    return out


async def _users(conn: Connection, corp_pk: int, where: str, params: dict[str, object]) -> list[User]:
    rows = await conn.fetch(
        "SELECT u.id, u.user_id, u.name, u.name_en, u.email, u.title, u.mobile, u.manager_user_id, u.union_id,"
        " u.active, u.username, d.dept_id, d.name AS dept_name, ud.position"
        " FROM org_user u"
        " LEFT JOIN user_department ud ON ud.user_pk = u.id"
        " LEFT JOIN department d ON d.id = ud.dept_pk"
        f" WHERE u.corp_pk = :corp_pk AND {where}"
        " ORDER BY u.user_id, ud.position",
        {"corp_pk": corp_pk, **params},
    )
    grouped: dict[str, tuple[Row, list[tuple[int, str]]]] = {}
    for row in rows:
        entry = grouped.setdefault(row["user_id"], (row, []))
        if row["dept_id"] is not None:
            entry[1].append((row["dept_id"], row["dept_name"]))
    return [_user(row, depts) for row, depts in grouped.values()]


async def get_user(conn: Connection, corp_pk: int, user_id: str) -> User | None:
    """One user of the corp as stored now (uncached), deactivated or not."""
    found = await _users(conn, corp_pk, "u.user_id = :user_id", {"user_id": user_id})
    return found[0] if found else None


async def list_users(
    conn: Connection, corp_pk: int, *, after: str = "", limit: int = 100, active: bool | None = None
) -> list[User]:
    """The corp's users ordered by user id, from the first after ``after``; optionally only (in)active ones."""
    page = "corp_pk = :corp_pk AND user_id > :after"
    params: dict[str, object] = {"after": after, "limit": limit}
    if active is not None:
        page += " AND active = :active"
        params["active"] = active
    return await _users(
        conn, corp_pk, f"u.id IN (SELECT id FROM org_user WHERE {page} ORDER BY user_id LIMIT :limit)", params
    )


async def page_users(
    conn: Connection, corp_pk: int, *, offset: int, limit: int, user_ids: Iterable[str] | None = None
) -> tuple[int, list[User]]:
    """(how many, one page of) the corp's users ordered by user id, optionally only these ids."""
    where = "corp_pk = :corp_pk"
    params: dict[str, object] = {"corp_pk": corp_pk, "offset": offset, "limit": limit}
    if user_ids is not None:
        wanted = sorted(set(user_ids))
        if not wanted:
            return 0, []
        placeholders, named = in_list("u", list(wanted))
        where += f" AND user_id IN ({placeholders})"
        params.update(named)
    total = await conn.fetchval(f"SELECT count(*) FROM org_user WHERE {where}", params)
    users = await _users(
        conn,
        corp_pk,
        f"u.id IN (SELECT id FROM org_user WHERE {where} ORDER BY user_id LIMIT :limit OFFSET :offset)",
        params,
    )
    return int(total), users


async def user_pks(conn: Connection, corp_pk: int, user_ids: Iterable[str]) -> dict[str, int]:
    """The row ids of these users of the corp, deactivated ones included (unknown ids are absent)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    placeholders, params = in_list("u", list(wanted))
    rows = await conn.fetch(
        f"SELECT id, user_id FROM org_user WHERE corp_pk = :corp_pk AND user_id IN ({placeholders})",
        {"corp_pk": corp_pk, **params},
    )
    return {r["user_id"]: int(r["id"]) for r in rows}


async def user_exists(conn: Connection, corp_pk: int, user_id: str) -> bool:
    """Whether ``user_id`` is a member of the corp."""
    value = await conn.fetchval(
        "SELECT 1 FROM org_user WHERE corp_pk = :corp_pk AND user_id = :user_id",
        {"corp_pk": corp_pk, "user_id": user_id},
    )
    return value is not None


async def find_departments(conn: Connection, corp_pk: int, dept_ids: Iterable[int]) -> dict[int, Department]:
    """Departments of the corp by dept id (unknown ids are absent)."""
    wanted = sorted({int(d) for d in dept_ids})
    if not wanted:
        return {}
    placeholders, params = in_list("d", list(wanted))
    rows = await conn.fetch(
        "SELECT id, dept_id, name, name_en, parent_dept_id, manager_user_ids, sort_order FROM department"
        f" WHERE corp_pk = :corp_pk AND dept_id IN ({placeholders})",
        {"corp_pk": corp_pk, **params},
    )
    return {row["dept_id"]: _department(row) for row in rows}


def _department(row: Row) -> Department:
    return Department(
        pk=row["id"],
        dept_id=row["dept_id"],
        name=row["name"],
        name_en=row["name_en"],
        parent_dept_id=row["parent_dept_id"],
        manager_user_ids=tuple(orjson.loads(row["manager_user_ids"])),
        order=int(row["sort_order"] or 0),
    )


async def list_departments(conn: Connection, corp_pk: int) -> list[Department]:
    """Every department of the corp, ordered by dept id."""
    rows = await conn.fetch(
        "SELECT id, dept_id, name, name_en, parent_dept_id, manager_user_ids, sort_order FROM department"
        " WHERE corp_pk = :corp_pk ORDER BY dept_id",
        {"corp_pk": corp_pk},
    )
    return [_department(row) for row in rows]


async def find_roles(conn: Connection, corp_pk: int, role_ids: Iterable[int] | None = None) -> dict[int, Role]:
    """Roles of the corp with their members (every role when ``role_ids`` is None; unknown ids are absent)."""
    where = "r.corp_pk = :corp_pk"
    params: dict[str, object] = {"corp_pk": corp_pk}
    if role_ids is not None:
        wanted = sorted({int(r) for r in role_ids})
        if not wanted:
            return {}
        placeholders, names = in_list("r", list(wanted))
        where += f" AND r.role_id IN ({placeholders})"
        params.update(names)
    rows = await conn.fetch(
        "SELECT r.id, r.role_id, r.name, r.group_name, u.user_id FROM role r"
        " LEFT JOIN role_member m ON m.role_pk = r.id LEFT JOIN org_user u ON u.id = m.user_pk"
        f" WHERE {where} ORDER BY r.role_id, u.id",
        params,
    )
    grouped: dict[int, tuple[Row, list[str]]] = {}
    for row in rows:
        entry = grouped.setdefault(int(row["role_id"]), (row, []))
        if row["user_id"] is not None:
            entry[1].append(row["user_id"])
    return {
        role_id: Role(pk=row["id"], role_id=role_id, name=row["name"], group=row["group_name"], members=tuple(members))
        for role_id, (row, members) in grouped.items()
    }


_MAX_CHAIN = 1000  # deeper than any real hierarchy; bounds the walk over a chain that loops


async def manager_chain(conn: Connection, corp_pk: int, user_id: str) -> dict[str, str | None]:
    """The manager links met walking up from ``user_id`` (``{user: his manager}``; stops at a loop)."""
    rows = await conn.fetch(
        "WITH RECURSIVE chain(user_id, manager, depth) AS ("
        " SELECT user_id, manager_user_id, 0 FROM org_user WHERE corp_pk = :c AND user_id = :u"
        " UNION ALL"
        " SELECT o.user_id, o.manager_user_id, chain.depth + 1 FROM org_user o"
        " JOIN chain ON o.corp_pk = :c AND o.user_id = chain.manager WHERE chain.depth < :n"
        ") SELECT user_id, manager FROM chain",
        {"c": corp_pk, "u": user_id, "n": _MAX_CHAIN},
    )
    return {r["user_id"]: r["manager"] for r in rows}


async def department_chain(conn: Connection, corp_pk: int, dept_id: int) -> dict[int, int | None]:
    """The parent links met walking up from ``dept_id`` (``{dept: its parent}``; stops at a loop)."""
    rows = await conn.fetch(
        "WITH RECURSIVE chain(dept_id, parent, depth) AS ("
        " SELECT dept_id, parent_dept_id, 0 FROM department WHERE corp_pk = :c AND dept_id = :d"
        " UNION ALL"
        " SELECT d.dept_id, d.parent_dept_id, chain.depth + 1 FROM department d"
        " JOIN chain ON d.corp_pk = :c AND d.dept_id = chain.parent WHERE chain.depth < :n"
        ") SELECT dept_id, parent FROM chain",
        {"c": corp_pk, "d": dept_id, "n": _MAX_CHAIN},
    )
    return {int(r["dept_id"]): (int(r["parent"]) if r["parent"] is not None else None) for r in rows}
