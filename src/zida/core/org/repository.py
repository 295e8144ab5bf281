"""SQL for the org directory."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from zida.cache import TtlCache
from zida.core.org.models import Corp, Department, User
from zida.crypto import SecretBox
from zida.db import Connection, Row

__all__ = ["corp_org_secret", "find_corp", "find_departments", "find_users", "user_exists"]


async def find_corp(conn: Connection, corp_id: str) -> Corp | None:
    """The corp with the public id ``corp_id``."""
    row = await conn.fetchrow("SELECT id, corp_id, name FROM corp WHERE corp_id = :corp_id", {"corp_id": corp_id})
    return None if row is None else Corp(pk=row["id"], corp_id=row["corp_id"], name=row["name"])


async def corp_org_secret(conn: Connection, box: SecretBox, corp_pk: int) -> str | None:
    """The corp's org-level secret (what a dialect's org-level tokens are derived from), or None if it has none."""
    enc = await conn.fetchval("SELECT org_secret_enc FROM corp WHERE id = :c", {"c": corp_pk})
    return box.decrypt(enc) if enc else None


# Directory entries for rendering and reference checks (see zida.cache for the staleness bound).
_USERS: TtlCache[tuple[int, str], User] = TtlCache(scope="org")


def _in_clause(prefix: str, values: list[object]) -> tuple[str, dict[str, object]]:
    names = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{n}" for n in names), names


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
    )


async def find_users(conn: Connection, corp_pk: int, user_ids: Iterable[str]) -> dict[str, User]:
    """Users of the corp by user id (unknown ids are simply absent)."""
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
    placeholders, params = _in_clause("u", list(wanted))
    rows = await conn.fetch(
        "SELECT u.id, u.user_id, u.name, u.name_en, u.email, u.title, u.manager_user_id, u.union_id,"
        " d.dept_id, d.name AS dept_name, ud.position"
        " FROM org_user u"
        " LEFT JOIN user_department ud ON ud.user_pk = u.id"
        " LEFT JOIN department d ON d.id = ud.dept_pk"
        f" WHERE u.corp_pk = :corp_pk AND u.user_id IN ({placeholders})"
        " ORDER BY u.id, ud.position",
        {"corp_pk": corp_pk, **params},
    )
    grouped: dict[str, tuple[Row, list[tuple[int, str]]]] = {}
    for row in rows:
        entry = grouped.setdefault(row["user_id"], (row, []))
        if row["dept_id"] is not None:
            entry[1].append((row["dept_id"], row["dept_name"]))
    for uid, (row, depts) in grouped.items():
        out[uid] = _USERS.put((corp_pk, uid), _user(row, depts))
    return out


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
    placeholders, params = _in_clause("d", list(wanted))
    rows = await conn.fetch(
        "SELECT id, dept_id, name, name_en, parent_dept_id, manager_user_ids FROM department"
        f" WHERE corp_pk = :corp_pk AND dept_id IN ({placeholders})",
        {"corp_pk": corp_pk, **params},
    )
    return {
        row["dept_id"]: Department(
            pk=row["id"],
            dept_id=row["dept_id"],
            name=row["name"],
            name_en=row["name_en"],
            parent_dept_id=row["parent_dept_id"],
            manager_user_ids=tuple(orjson.loads(row["manager_user_ids"])),
        )
        for row in rows
    }
