"""Actions on the org directory: corps, users, departments, roles and role members.

Each change is one function. ``upsert_*`` work inside the caller's transaction (``zida load`` runs a whole bundle as
one); the others open their own, and after it committed empty the directory caches of every worker
(``zida.cache.invalidate``). Every change writes its row(s), its audit row and its domain event together
(``zida.core.audit``); input that changes nothing writes nothing.

Rules (each tested):

* **Bad input changes nothing.** An unknown id of the object acted on is ``NotFound`` (another corp's too); a
  duplicate id on create is ``Conflict``; an invalid value or a reference to a department, manager or parent the
  corp does not have is ``InvalidArgument`` naming the field. The department tree and the manager chain stay
  acyclic. ``upsert_*`` called with ``references_checked`` trust the caller to have checked references and cycles
  for the whole set it writes (a bundle, whose objects may refer to ones written after them).
* **A department** that still has members or sub-departments cannot be deleted (the error says how many). **A
  role** that the current process of a form names cannot be deleted (the error names the forms).
* **Deactivating a user** (``active`` false; :func:`deactivate_user`) keeps him and his history: records,
  approvals and audit rows that name him still render him. He can no longer act (a dialect no longer finds him as
  an app member, so his app-admin links stay but give him nothing), cannot be named anew in a record, and is never
  resolved as a new approver or CC (an approver node whose people are all deactivated follows its empty-approver
  policy). His department, manager, head-of-department and role positions stay as they are (so reactivating him,
  ``active: true`` through an update, restores everything); org structure may name deactivated users.
* **His open tasks** (running or waiting for signers): deactivation is refused (``user.holds_tasks``, naming how
  many and in which instances) unless a successor is named (``hand_over_to``: an active user of the corp, not
  himself). Then every open task is transferred to the successor in the same transaction (an engine transfer made
  by ``acting_user`` or, when none is named, by the caller's ``actor``, on the assignee's behalf); if one cannot be
  transferred (a task waiting for signers, the user's own resubmission, a node where the successor already has a
  turn) nothing changes and the error says why. Tasks that reach him later (a sequential line resolved at start)
  are created as usual: an app admin transfers them, or deactivating him again with a successor hands them over.
  Instances he originated keep running.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import orjson

from zida.cache import invalidate
from zida.clock import now_ms
from zida.core.apps.actions import named_people
from zida.core.audit import SECRET_CHANGED, Outcome, changed_fields, created_fields, record_change, removed_fields
from zida.core.errors import Conflict, InvalidArgument, NotFound, ZidaError
from zida.core.org.models import CorpRef, Department, Role, User
from zida.core.org.repository import (
    ORG_CACHE_SCOPE,
    department_chain,
    find_departments,
    find_roles,
    get_user,
    manager_chain,
    user_pks,
)
from zida.core.workflow.actions import hand_over_tasks
from zida.core.workflow.store import open_tasks_of
from zida.crypto import SecretBox, hash_secret, verify_secret
from zida.db import Connection, Database, Row, in_list
from zida.ids import new_token

__all__ = [
    "BULK_DIRECTORY_ROWS",
    "MAX_ID",
    "CorpSpec",
    "Deactivation",
    "DepartmentSpec",
    "RoleSpec",
    "UserBatch",
    "UserSpec",
    "create_department",
    "create_role",
    "create_user",
    "deactivate_user",
    "delete_department",
    "delete_role",
    "find_cycle",
    "lock_corp",
    "read_user_batch",
    "refresh_directory_statistics",
    "set_role_members",
    "update_department",
    "update_role",
    "update_user",
    "upsert_corp",
    "upsert_department",
    "upsert_role",
    "upsert_user",
]

MAX_ID = 2**63 - 1
# WeDa's rule for sign-in names: 2-48 characters, letters, digits and -_.:+@, starting with a letter or digit.
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_.:+@]{1,47}")
_MAX_TEXT_ID = 64
# Caches that hold directory facts: the directory itself, and app members (``apps``: who is an active member).
_USER_SCOPES = (ORG_CACHE_SCOPE, "apps")

K = TypeVar("K", bound=Hashable)


# ------------------------------------------------------------------------------------------------ specs


@dataclass(frozen=True, slots=True)
class CorpSpec:
    """A corp as an action writes it (``org_secret`` None: keep the current one)."""

    corp_id: str
    name: str
    org_secret: str | None = None
    env_id: str | None = None  # None: keep the current one
    env_type: str | None = None  # the environment's data this corp holds, ENV_TYPES; None: keep (new: prod)


ENV_TYPES = ("prod", "pre")


@dataclass(frozen=True, slots=True)
class UserSpec:
    """A user as an action writes it. ``union_id``, ``password`` and ``active`` None: keep the current value (a new
    user gets a generated union id, no password, and is active). A new password ends every session of the user
    (``zida.core.access.sessions``): whoever signed in with the old one must sign in again."""

    user_id: str
    name: str
    name_en: str | None = None
    departments: tuple[int, ...] = ()
    manager: str | None = None
    title: str | None = None
    mobile: str | None = None
    email: str | None = None
    union_id: str | None = None
    password: str | None = None
    active: bool | None = None
    username: str | None = None  # the sign-in name (None: the userId)


@dataclass(frozen=True, slots=True)
class DepartmentSpec:
    """A department as an action writes it (``dept_id`` None on create: the next free id)."""

    dept_id: int | None
    name: str
    name_en: str | None = None
    parent_id: int | None = None
    managers: tuple[str, ...] = ()
    order: int = 0


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A role as an action writes it (``role_id`` None on create: the next free id)."""

    role_id: int | None
    name: str
    group: str | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Deactivation:
    """A deactivated user and the ids of the tasks handed over to his successor."""

    user: User
    handed_over: tuple[int, ...] = ()


# ------------------------------------------------------------------------------------------ bulk writes

# A write of at least this many directory rows (``zida load`` of an org, ``zida users import``) refreshes the
# query planner's statistics once it has committed.
BULK_DIRECTORY_ROWS = 1_000
_DIRECTORY_TABLES = ("department", "org_user", "user_department", "user_name_gram", "role", "role_member", "app_admin")


async def refresh_directory_statistics(db: Database) -> None:
    """Refresh the planner's statistics and visibility maps of the directory tables after a bulk write.

    PostgreSQL plans from statistics that autovacuum refreshes only a while after a commit, or never where it is
    off: a freshly loaded org of 100,000 users was read as if it were empty, and a department's first page
    (``topapi/user/listsimple``) hashed the whole corp's users, 23 ms instead of 0.1 (158 requests/s instead of
    about 6,000, BENCHMARKS.md, contacts). Until a VACUUM marks the new pages all-visible, an index-only scan
    (a name's users for ``users/search``) still reads every row it finds from the table: 3.6 ms instead of 0.7
    for a common character. So on PostgreSQL this is ``VACUUM (ANALYZE)``: admin commands run it, without a
    statement budget, after their transaction has committed. SQLite plans these lookups from its indexes alone,
    without statistics, and well (ANALYZE made it scan the role table): nothing is done there."""
    if db.sql.name == "postgresql":
        await db.execute(f"VACUUM (ANALYZE) {', '.join(_DIRECTORY_TABLES)}")


# ----------------------------------------------------------------------------------------------- checks


def find_cycle(links: Mapping[K, K | None], start: K) -> list[K] | None:
    """The loop met following ``links`` from ``start`` (``[a, b, a]``), or None when the walk ends."""
    path: list[K] = []
    seen: set[K] = set()
    current: K | None = start
    while current is not None:
        if current in seen:
            return [*path[path.index(current) :], current]
        seen.add(current)
        path.append(current)
        current = links.get(current)
    return None


def _invalid(message: str, param: str, reason: str = "argument.invalid") -> InvalidArgument:
    return InvalidArgument(message, reason=reason, param=param)


def _text_id(value: Any, param: str, what: str) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > _MAX_TEXT_ID:
        raise _invalid(f"{what} must be 1 to {_MAX_TEXT_ID} characters without surrounding spaces", param)
    if not value.isprintable():
        raise _invalid(f"{what} {value!r} contains control characters", param)
    if "/" in value:  # it is a path segment of the admin API (/admin/v1/users/{userId}), where a / would split it
        raise _invalid(f"{what} {value!r} contains a /", param)
    return value


def _number_id(value: Any, param: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise _invalid(f"{what} must be a number between 1 and {MAX_ID}, got {value!r}", param)
    return value


_Spec = TypeVar("_Spec", "UserSpec", "DepartmentSpec", "RoleSpec")


def _name(value: Any, param: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("{param} must be a non-empty text", param)
    return value


def _trimmed(spec: _Spec, *names: str) -> _Spec:
    """``spec`` with these texts stored without surrounding blanks (what a bundle does to every text), whichever way
    the change came: a dump then loads back as it was."""
    changes = {n: getattr(spec, n).strip() for n in names if isinstance(getattr(spec, n), str)}
    return replace(spec, **changes) if changes else spec


def _optional_text(value: Any, param: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _invalid("{param} must be a text", param)
    return value


def _no_duplicates(values: Sequence[Any], param: str) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise _invalid(f"{{param}} names {value!r} twice", param)
        seen.add(value)


def _check_user_spec(spec: UserSpec) -> None:
    _text_id(spec.user_id, "user", "a userId")
    _name(spec.name)
    for param in ("name_en", "title", "mobile", "email", "union_id", "password", "username"):
        _optional_text(getattr(spec, param), param)
    if spec.username is not None and not _USERNAME.fullmatch(spec.username):
        raise _invalid(
            f"{{param}} {spec.username!r} must be 2-48 letters, digits or -_.:+@, starting with a letter or digit",
            "username",
        )
    for dept in spec.departments:
        _number_id(dept, "departments", "a department id")
    _no_duplicates(spec.departments, "departments")
    if spec.manager is not None:
        _text_id(spec.manager, "manager", "the manager's userId")
        if spec.manager == spec.user_id:
            raise _invalid(f"user {spec.user_id} cannot be his own manager", "manager", "user.manager_cycle")
    if spec.active is not None and not isinstance(spec.active, bool):
        raise _invalid("{param} must be true or false", "active")


def _check_department_spec(spec: DepartmentSpec) -> int:
    dept_id = _number_id(spec.dept_id, "department", "a department id")
    _name(spec.name)
    _optional_text(spec.name_en, "name_en")
    if spec.parent_id is not None:
        _number_id(spec.parent_id, "parent", "the parent department id")
        if spec.parent_id == dept_id:
            raise _invalid(f"department {dept_id} cannot be its own parent", "parent", "department.cycle")
    for user_id in spec.managers:
        _text_id(user_id, "managers", "a manager's userId")
    _no_duplicates(spec.managers, "managers")
    if isinstance(spec.order, bool) or not isinstance(spec.order, int) or abs(spec.order) > 2**31 - 1:
        raise _invalid("{param} must be a whole number", "order")
    return dept_id


def _check_role_spec(spec: RoleSpec) -> int:
    role_id = _number_id(spec.role_id, "role", "a role id")
    _name(spec.name)
    _optional_text(spec.group, "group")
    for user_id in spec.members:
        _text_id(user_id, "members", "a member's userId")
    _no_duplicates(spec.members, "members")
    return role_id


async def _user_pks(tx: Connection, corp: CorpRef, user_ids: Sequence[str], param: str) -> list[int]:
    """The pks of these users, in order; a user the corp does not have is refused."""
    pks = await user_pks(tx, corp.pk, user_ids)
    for user_id in user_ids:
        if user_id not in pks:
            raise InvalidArgument(
                f"{{param}}: user {user_id} does not exist in this corp", reason="user.unknown", param=param
            )
    return [pks[u] for u in user_ids]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _cycle_text(cycle: Sequence[Any]) -> str:
    return " → ".join(str(c) for c in cycle)


# ------------------------------------------------------------------------------------------------- corp


async def upsert_corp(
    tx: Connection, box: SecretBox, spec: CorpSpec, *, actor: str | None, now: int
) -> tuple[CorpRef, Outcome]:
    """Inside the caller's transaction: create or update a corp (its org secret encrypted with the server key)."""
    _text_id(spec.corp_id, "corp", "a corpId")
    _name(spec.name)
    row = await tx.fetchrow(
        # Not FOR UPDATE: every write of the corp's rows checks its foreign key to the corp (KEY SHARE), and a load
        # holding FOR UPDATE while it waited for a user row such a write held was a deadlock (PostgreSQL).
        f"SELECT id, name, org_secret_enc, env_id, env_type FROM corp WHERE corp_id = :c{tx.sql.for_no_key_update}",
        {"c": spec.corp_id},
    )
    if spec.env_type is not None and spec.env_type not in ENV_TYPES:
        raise InvalidArgument(
            f"the environment type must be one of {', '.join(ENV_TYPES)}, not {spec.env_type!r}",
            reason="argument.invalid",
            param="env_type",
        )
    env_type = spec.env_type or (row["env_type"] if row is not None else "prod")
    if spec.env_id is not None:
        _text_id(spec.env_id, "env_id", "an environment id")
    env_id = spec.env_id or (row["env_id"] if row is not None else None)
    if env_id is not None:
        await _env_id_free(tx, env_id, env_type, spec.corp_id)
    if row is None:
        enc = box.encrypt(spec.org_secret) if spec.org_secret is not None else None
        pk = await tx.fetchval(
            "INSERT INTO corp (corp_id, name, org_secret_enc, env_id, env_type, created_at, updated_at)"
            " VALUES (:c, :name, :enc, :env, :env_type, :now, :now) ON CONFLICT (corp_id) DO NOTHING RETURNING id",
            {"c": spec.corp_id, "name": spec.name, "enc": enc, "env": env_id, "env_type": env_type, "now": now},
        )
        if pk is None:
            raise Conflict(f"corp {spec.corp_id} was created concurrently", reason="corp.exists", param="corp")
        corp = CorpRef(int(pk), spec.corp_id)
        changes: dict[str, Any] = created_fields({"name": spec.name, "env_id": env_id, "env_type": env_type})
        if enc is not None:
            changes["org_secret"] = SECRET_CHANGED
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="corp",
            object_id=corp.corp_id,
            action="created",
            changes=changes,
            actor=actor,
            at=now,
        )
        return corp, Outcome.CREATED
    corp = CorpRef(int(row["id"]), spec.corp_id)
    current = {"name": row["name"], "env_id": row["env_id"], "env_type": row["env_type"]}
    wanted = {"name": spec.name, "env_id": env_id, "env_type": env_type}
    changes = changed_fields(current, wanted)
    sets: dict[str, Any] = {name: wanted[name] for name in changes}
    if spec.org_secret is not None and (
        row["org_secret_enc"] is None or box.decrypt(row["org_secret_enc"]) != spec.org_secret
    ):
        sets["org_secret_enc"] = box.encrypt(spec.org_secret)
        changes["org_secret"] = SECRET_CHANGED
    if not changes:
        return corp, Outcome.UNCHANGED
    await tx.execute(
        f"UPDATE corp SET {', '.join(f'{c} = :{c}' for c in sets)}, updated_at = :now WHERE id = :pk",
        {**sets, "now": now, "pk": corp.pk},
    )
    await record_change(
        tx, corp_pk=corp.pk, kind="corp", object_id=corp.corp_id, action="updated", changes=changes, actor=actor, at=now
    )
    return corp, Outcome.UPDATED


async def _env_id_free(tx: Connection, env_id: str, env_type: str, corp_id: str) -> None:
    """Refuse an environment's data (its id and type) another corp holds."""
    other = await tx.fetchval(
        "SELECT corp_id FROM corp WHERE env_id = :e AND env_type = :t AND corp_id <> :c",
        {"e": env_id, "t": env_type, "c": corp_id},
    )
    if other is not None:
        raise Conflict(
            f"the {env_type} data of environment {env_id} is already corp {other}'s",
            reason="corp.env_taken",
            param="env_id",
        )


# ------------------------------------------------------------------------------------------------ users


@dataclass(frozen=True, slots=True)
class _StoredUser:
    pk: int
    values: dict[str, Any]
    password_hash: str | None

    def spec(self, user_id: str) -> UserSpec:
        v = self.values
        return UserSpec(
            user_id=user_id,
            name=v["name"],
            name_en=v["name_en"],
            departments=tuple(v["departments"]),
            manager=v["manager"],
            title=v["title"],
            mobile=v["mobile"],
            email=v["email"],
            union_id=v["union_id"],
            active=v["active"],
            username=v["username"],
        )


# Neutral field name → org_user column.
_USER_COLUMNS = {
    "name": "name",
    "name_en": "name_en",
    "title": "title",
    "mobile": "mobile",
    "email": "email",
    "union_id": "union_id",
    "manager": "manager_user_id",
    "active": "active",
    "username": "username",
}


_STORED_USER_COLUMNS = (
    "id, user_id, name, name_en, title, mobile, email, union_id, manager_user_id, password_hash, active, username"
)


async def _stored_users(tx: Connection, corp: CorpRef, user_ids: Sequence[str]) -> dict[str, _StoredUser]:
    """The named users of the corp as stored, locked in row order (two statements; unknown ids are absent)."""
    placeholders, params = in_list("u", list(user_ids))
    rows = await tx.fetch(
        f"SELECT {_STORED_USER_COLUMNS} FROM org_user WHERE corp_pk = :c AND user_id IN ({placeholders})"
        f" ORDER BY id{tx.sql.for_update}",  # locked in one order, as zida users import locks the corp's users
        {"c": corp.pk, **params},
    )
    if not rows:
        return {}
    pk_list, pk_params = in_list("p", [int(r["id"]) for r in rows])
    links = await tx.fetch(
        "SELECT ud.user_pk, d.dept_id FROM user_department ud JOIN department d ON d.id = ud.dept_pk"
        f" WHERE ud.user_pk IN ({pk_list}) ORDER BY ud.user_pk, ud.position",
        pk_params,
    )
    depts: dict[int, list[int]] = {}
    for link in links:
        depts.setdefault(int(link["user_pk"]), []).append(int(link["dept_id"]))
    stored = {}
    for row in rows:
        values = {name: row[column] for name, column in _USER_COLUMNS.items()}
        values["active"] = bool(row["active"])
        values["departments"] = depts.get(int(row["id"]), [])
        stored[row["user_id"]] = _StoredUser(int(row["id"]), values, row["password_hash"])
    return stored


async def _stored_user(tx: Connection, corp: CorpRef, user_id: str) -> _StoredUser | None:
    return (await _stored_users(tx, corp, [user_id])).get(user_id)


_BATCH_READ = 1_000  # user ids (or department ids) per statement of ``read_user_batch``


@dataclass
class UserBatch:
    """What a write of many users (``zida load``, ``zida users import``) reads once instead of per user: the stored
    users it names, locked, and the row ids of the departments it names. Each user is taken from it once; a user
    named again is read afresh (he may have been written meanwhile)."""

    stored: dict[str, _StoredUser | None]
    dept_pks: dict[int, int]

    def take(self, user_id: str) -> tuple[bool, _StoredUser | None]:
        """(whether the batch read him, what it read), forgetting him."""
        if user_id not in self.stored:
            return False, None
        return True, self.stored.pop(user_id)


async def read_user_batch(tx: Connection, corp: CorpRef, user_ids: Iterable[str], dept_ids: Iterable[int]) -> UserBatch:
    """Inside the caller's transaction: read (and lock) the named users and the named departments' row ids, a
    thousand to a statement, for ``upsert_user(..., batch=)``."""
    wanted = list(dict.fromkeys(user_ids))
    stored: dict[str, _StoredUser | None] = dict.fromkeys(wanted)
    for start in range(0, len(wanted), _BATCH_READ):
        stored.update(await _stored_users(tx, corp, wanted[start : start + _BATCH_READ]))
    named = sorted(set(dept_ids))
    dept_pks: dict[int, int] = {}
    for start in range(0, len(named), _BATCH_READ):
        found = await find_departments(tx, corp.pk, named[start : start + _BATCH_READ])
        dept_pks.update({dept_id: d.pk for dept_id, d in found.items()})
    return UserBatch(stored, dept_pks)


async def _department_pks(
    tx: Connection, corp: CorpRef, dept_ids: Sequence[int], param: str, known: Mapping[int, int] | None = None
) -> list[int]:
    """The row ids of ``dept_ids`` (``known``: read already, by ``read_user_batch``), all of which must exist."""
    found = known
    if found is None:
        found = {dept_id: d.pk for dept_id, d in (await find_departments(tx, corp.pk, dept_ids)).items()}
    for dept_id in dept_ids:
        if dept_id not in found:
            raise InvalidArgument(
                f"{{param}}: department {dept_id} does not exist in this corp",
                reason="department.unknown",
                param=param,
            )
    return [found[d] for d in dept_ids]


async def _check_manager(tx: Connection, corp: CorpRef, spec: UserSpec) -> None:
    if spec.manager is None:
        return
    chain = await manager_chain(tx, corp.pk, spec.manager)
    if spec.manager not in chain:
        raise InvalidArgument(
            f"{{param}}: user {spec.manager} does not exist in this corp", reason="user.unknown", param="manager"
        )
    cycle = find_cycle({**chain, spec.user_id: spec.manager}, spec.user_id)
    if cycle is not None:
        raise InvalidArgument(
            f"the manager chain would have a cycle: {_cycle_text(cycle)}", reason="user.manager_cycle", param="manager"
        )


async def _active_user(tx: Connection, corp: CorpRef, user_id: str, param: str) -> None:
    """Refuse a user the corp does not have (``NotFound``) or has deactivated."""
    found = await get_user(tx, corp.pk, user_id)
    if found is None:
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found", param=param)
    if not found.active:
        raise InvalidArgument(f"user {user_id} is deactivated", reason="user.inactive", param=param)


@dataclass(frozen=True, slots=True)
class _HandOver:
    successor: str | None
    by: str
    remark: str


async def _hand_over(tx: Connection, corp: CorpRef, user_id: str, hand_over: _HandOver) -> list[int]:
    """The open tasks of a user being deactivated: refused without a successor, else transferred."""
    open_tasks = await open_tasks_of(tx, corp.pk, user_id)
    if hand_over.successor is None:
        if not open_tasks:
            return []
        count = sum(len(t) for t in open_tasks.values())
        instances = sorted(open_tasks)
        shown = ", ".join(instances[:5]) + (f" and {len(instances) - 5} more" if len(instances) > 5 else "")
        raise Conflict(
            f"user {user_id} holds {count} open task{'s' if count != 1 else ''} in {len(instances)} process"
            f" instance{'s' if len(instances) != 1 else ''} ({shown}): name the user who takes them over"
            " ({param}) to deactivate him",
            reason="user.holds_tasks",
            param="hand_over_to",
            tasks=count,
            instances=instances,
        )
    try:
        return await hand_over_tasks(
            tx, corp.pk, user_id, hand_over.successor, by=hand_over.by, remark=hand_over.remark
        )
    except ZidaError as exc:
        raise type(exc)(
            f"the open tasks of {user_id} cannot be handed over to {hand_over.successor}: {exc.template}",
            reason=exc.reason,
            **exc.details,
        ) from None


async def _write_user(
    tx: Connection,
    corp: CorpRef,
    spec: UserSpec,
    stored: _StoredUser | None,
    *,
    actor: str | None,
    now: int,
    references_checked: bool,
    hand_over: _HandOver | None = None,
    unique_contacts: bool = False,
    known_departments: Mapping[int, int] | None = None,
    corp_locked: bool = False,
) -> tuple[Outcome, list[int]]:
    _check_user_spec(spec)
    spec = _trimmed(spec, "name", "name_en", "title", "mobile", "email")
    dept_pks = await _department_pks(tx, corp, spec.departments, "departments", known_departments)
    if not references_checked:
        await _check_manager(tx, corp, spec)
    current = stored.values if stored is not None else {}
    new: dict[str, Any] = {
        "name": spec.name,
        "name_en": spec.name_en,
        "title": spec.title,
        "mobile": spec.mobile,
        "email": spec.email,
        "union_id": spec.union_id or current.get("union_id") or new_token(),
        "manager": spec.manager,
        "departments": list(spec.departments),
        "active": spec.active if spec.active is not None else current.get("active", True),
        "username": spec.username,
    }
    # The sign-in name is the username, else the userId: a new userId (or a username given up) may be another
    # user's username, and then neither could sign in as himself and no dump would load back.
    signs_in_as = spec.username or spec.user_id
    name_check = stored is None or signs_in_as != (current.get("username") or spec.user_id)
    union_check = spec.union_id is not None and spec.union_id != current.get("union_id")
    contacts = [c for c in ("mobile", "email") if unique_contacts and new[c] and new[c] != current.get(c)]
    # Checked, then written: on PostgreSQL two writes at once would both pass the check (a new userId and another
    # user's new username alike, or one unionId twice) without the corp's lock, which every caller takes before any
    # user's row (the order every writer keeps: taken here, after _stored_user's row lock, it could deadlock).
    assert corp_locked or not (name_check or union_check or contacts), "lock_corp first: a user's names are checked"
    if name_check:
        await _username_free(tx, corp, signs_in_as, spec.user_id)
    if union_check:
        await _union_id_free(tx, corp, str(spec.union_id), spec.user_id)
    for contact in contacts:
        await _contact_free(tx, corp, contact, new[contact], spec.user_id)
    password_hash = stored.password_hash if stored is not None else None
    password_changed = False
    same_password = password_hash is not None and spec.password is not None
    if same_password:
        same_password = await asyncio.to_thread(verify_secret, str(spec.password), str(password_hash))
    if spec.password is not None and not same_password:
        password_hash = await asyncio.to_thread(hash_secret, spec.password)
        password_changed = True
    if stored is None:
        pk = await tx.fetchval(
            "INSERT INTO org_user (corp_pk, user_id, name, name_en, title, mobile, email, union_id, manager_user_id,"
            " password_hash, active, username, created_at, updated_at) VALUES (:c, :u, :name, :name_en, :title,"
            " :mobile, :email, :union_id, :manager, :password_hash, :active, :username, :now, :now)"
            " ON CONFLICT (corp_pk, user_id) DO NOTHING RETURNING id",
            {"c": corp.pk, "u": spec.user_id, **new, "password_hash": password_hash, "now": now},
        )
        if pk is None:
            raise Conflict(f"user {spec.user_id} already exists", reason="user.exists", param="user")
        await _link_departments(tx, int(pk), dept_pks)
        changes: dict[str, Any] = created_fields(new)
        if password_changed:
            changes["password"] = SECRET_CHANGED
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="user",
            object_id=spec.user_id,
            action="created",
            changes=changes,
            actor=actor,
            at=now,
        )
        return Outcome.CREATED, []
    changes = changed_fields(current, new)
    if password_changed:
        changes["password"] = SECRET_CHANGED
    if not changes:
        return Outcome.UNCHANGED, []
    moved: list[int] = []
    deactivating = "active" in changes and not new["active"]
    if deactivating:
        moved = await _hand_over(tx, corp, spec.user_id, hand_over or _HandOver(None, spec.user_id, ""))
    sets = {_USER_COLUMNS[name]: new[name] for name in changes if name in _USER_COLUMNS}
    if password_changed:
        sets["password_hash"] = password_hash
        # Every session the old password opened ends (someone who signed in with it, leaked, keeps nothing).
        await tx.execute("DELETE FROM user_session WHERE user_pk = :pk", {"pk": stored.pk})
    if sets:
        await tx.execute(
            f"UPDATE org_user SET {', '.join(f'{c} = :{c}' for c in sets)}, updated_at = :now WHERE id = :pk",
            {**sets, "now": now, "pk": stored.pk},
        )
    if "departments" in changes:
        await tx.execute("DELETE FROM user_department WHERE user_pk = :pk", {"pk": stored.pk})
        await _link_departments(tx, stored.pk, dept_pks)
    action = "updated"
    if "active" in changes:
        action = "reactivated" if new["active"] else "deactivated"
    await record_change(
        tx, corp_pk=corp.pk, kind="user", object_id=spec.user_id, action=action, changes=changes, actor=actor, at=now
    )
    return Outcome.UPDATED, moved


# Who else signs in with :n: two lookups, each by its own index (with OR, SQLite scanned every user: a bulk import,
# which checks each new user, became quadratic). Pinned by tests/core/org/test_users.py.
SIGN_IN_NAME_HOLDER = (
    "SELECT user_id FROM org_user WHERE corp_pk = :c AND username = :n AND user_id <> :u"
    " UNION ALL SELECT user_id FROM org_user WHERE corp_pk = :c AND user_id = :n AND username IS NULL"
    " AND user_id <> :u LIMIT 1"
)


async def _username_free(tx: Connection, corp: CorpRef, username: str, user_id: str) -> None:
    """Refuse a sign-in name another user of the corp has (as his username, or as his userId with none)."""
    other = await tx.fetchval(SIGN_IN_NAME_HOLDER, {"c": corp.pk, "u": user_id, "n": username})
    if other is not None:
        raise Conflict(
            f"the sign-in name {username} is already user {other}'s", reason="user.username_taken", param="username"
        )


async def _union_id_free(tx: Connection, corp: CorpRef, union_id: str, user_id: str) -> None:
    """Refuse a unionId another user of the corp has: it names one person (getbyunionid, to-dos' participants)."""
    other = await tx.fetchval(
        "SELECT user_id FROM org_user WHERE corp_pk = :c AND union_id = :n AND user_id <> :u LIMIT 1",
        {"c": corp.pk, "u": user_id, "n": union_id},
    )
    if other is not None:
        raise Conflict(f"the unionId {union_id} is already user {other}'s", reason="user.union_taken", param="union_id")


async def _contact_free(tx: Connection, corp: CorpRef, contact: str, value: str, user_id: str) -> None:
    """Refuse a mobile number or email another active user of the corp has."""
    column = _USER_COLUMNS[contact]
    other = await tx.fetchval(
        f"SELECT user_id FROM org_user WHERE corp_pk = :c AND user_id <> :u AND active AND {column} = :v LIMIT 1",
        {"c": corp.pk, "u": user_id, "v": value},
    )
    if other is not None:
        raise Conflict(f"the {contact} {value} is already user {other}'s", reason="user.contact_taken", param=contact)


async def _link_departments(tx: Connection, user_pk: int, dept_pks: Sequence[int]) -> None:
    if dept_pks:
        await tx.executemany(
            "INSERT INTO user_department (user_pk, dept_pk, position) VALUES (:u, :d, :p)",
            [{"u": user_pk, "d": d, "p": n} for n, d in enumerate(dept_pks)],
        )


async def upsert_user(
    tx: Connection,
    corp: CorpRef,
    spec: UserSpec,
    *,
    actor: str | None,
    now: int,
    references_checked: bool = False,
    batch: UserBatch | None = None,
    corp_locked: bool = False,
) -> Outcome:
    """Inside the caller's transaction: create or update a user (deactivating one who holds tasks is refused);
    ``batch`` (``read_user_batch``) holds what a write of many users has read for him already; ``corp_locked``: the
    transaction holds the corp's lock (``lock_corp``) already, else it is taken here (before his row)."""
    if not corp_locked:
        await lock_corp(tx, corp)
    read, stored = batch.take(spec.user_id) if batch is not None else (False, None)
    if not read:
        stored = await _stored_user(tx, corp, spec.user_id)
    outcome, _ = await _write_user(
        tx,
        corp,
        spec,
        stored,
        actor=actor,
        now=now,
        references_checked=references_checked,
        known_departments=batch.dept_pks if batch is not None else None,
        corp_locked=True,
    )
    return outcome


async def _current_user(db: Database, corp: CorpRef, user_id: str) -> User:
    user = await get_user(db, corp.pk, user_id)
    if user is None:  # cannot happen: the action just wrote him
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found", param="user")
    return user


async def create_user(
    db: Database,
    corp: CorpRef,
    spec: UserSpec,
    *,
    actor: str | None,
    roles: Sequence[int] | None = None,
    unique_contacts: bool = False,
) -> User:
    """Create a user (a member of ``roles`` when given); an existing userId is a ``Conflict``, and with
    ``unique_contacts`` so is a mobile number or email another active user has (WeDa's rule)."""
    async with db.transaction() as tx:
        # His sign-in name is checked, then written: two such writes at once must not both pass the check. The corp
        # first, then users, as every writer of both takes them (a load, the users import).
        await lock_corp(tx, corp)
        if await _stored_user(tx, corp, spec.user_id) is not None:
            raise Conflict(f"user {spec.user_id} already exists", reason="user.exists", param="user")
        now = now_ms()
        await _write_user(
            tx,
            corp,
            spec,
            None,
            actor=actor,
            now=now,
            references_checked=False,
            unique_contacts=unique_contacts,
            corp_locked=True,
        )
        if roles is not None:
            await _put_user_roles(tx, corp, spec.user_id, roles, actor=actor, now=now)
    invalidate(*_USER_SCOPES)
    return await _current_user(db, corp, spec.user_id)


async def _put_user_roles(
    tx: Connection, corp: CorpRef, user_id: str, role_ids: Sequence[int], *, actor: str | None, now: int
) -> bool:
    """Inside the caller's transaction: make the user a member of exactly ``role_ids``; whether anything changed."""
    wanted = set(role_ids)
    current = await tx.fetch(
        "SELECT r.role_id FROM role_member m JOIN role r ON r.id = m.role_pk JOIN org_user u ON u.id = m.user_pk"
        " WHERE r.corp_pk = :c AND u.user_id = :u",
        {"c": corp.pk, "u": user_id},
    )
    changed = False
    for role_id in sorted(wanted ^ {int(r["role_id"]) for r in current}):
        stored = await _stored_role(tx, corp, role_id)
        if stored is None:
            raise NotFound(f"role {role_id} does not exist", reason="role.not_found", param="role")
        row, members = stored
        members = [m for m in members if m != user_id] + ([user_id] if role_id in wanted else [])
        spec = RoleSpec(role_id, row["name"], row["group_name"], tuple(members))
        changed |= await _write_role(tx, corp, spec, stored, actor=actor, now=now) is not Outcome.UNCHANGED
    return changed


def _patched(spec: Any, changes: Mapping[str, Any], *, fixed: str) -> Any:
    allowed = {f.name for f in fields(spec)} - {fixed}
    for name in changes:
        if name not in allowed:
            raise InvalidArgument(f"{name} cannot be changed", reason="argument.invalid", param=name)
    return replace(spec, **changes)


async def update_user(
    db: Database,
    corp: CorpRef,
    user_id: str,
    changes: Mapping[str, Any],
    *,
    actor: str | None,
    roles: Sequence[int] | None = None,
    unique_contacts: bool = False,
) -> User:
    """Change some fields of a user (``UserSpec`` names; ``active`` true reactivates him, false deactivates him
    unless he holds open tasks); ``roles``, when given, are the roles he is a member of from now on;
    ``unique_contacts`` as for ``create_user``."""
    # A change of what names him (checked, then written) takes the corp's lock, before his row (create_user).
    names = unique_contacts or "username" in changes or "union_id" in changes
    async with db.transaction() as tx:
        if names:
            await lock_corp(tx, corp)
        stored = await _stored_user(tx, corp, user_id)
        if stored is None:
            raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found", param="user")
        spec = _patched(stored.spec(user_id), changes, fixed="user_id")
        now = now_ms()
        outcome, _ = await _write_user(
            tx,
            corp,
            spec,
            stored,
            actor=actor,
            now=now,
            references_checked=False,
            unique_contacts=unique_contacts,
            corp_locked=names,
        )
        if roles is not None and await _put_user_roles(tx, corp, user_id, roles, actor=actor, now=now):
            outcome = Outcome.UPDATED
    if outcome is not Outcome.UNCHANGED:
        invalidate(*_USER_SCOPES)
    return await _current_user(db, corp, user_id)


async def deactivate_user(
    db: Database,
    corp: CorpRef,
    user_id: str,
    *,
    actor: str | None,
    hand_over_to: str | None = None,
    acting_user: str | None = None,
    remark: str = "",
) -> Deactivation:
    """Deactivate a user, handing his open tasks over to ``hand_over_to`` (required when he holds any).

    ``acting_user`` (a user of the corp) is recorded as the one who transferred the tasks; else the leaving user
    himself, on whose behalf they go (never ``actor``, which names a credential: the approval's history names users). An
    already deactivated user changes nothing, except that tasks which reached him since are handed over when a
    successor is named.
    """
    now = now_ms()
    async with db.transaction() as tx:
        stored = await _stored_user(tx, corp, user_id)
        if stored is None:
            raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found", param="user")
        if hand_over_to is not None:
            if hand_over_to == user_id:
                raise InvalidArgument(
                    f"user {user_id} cannot hand his tasks over to himself",
                    reason="user.hand_over_to_self",
                    param="hand_over_to",
                )
            await _active_user(tx, corp, hand_over_to, "hand_over_to")
        if acting_user is not None:
            await _active_user(tx, corp, acting_user, "acting_user")
        hand_over = _HandOver(hand_over_to, acting_user or user_id, remark)
        if stored.values["active"]:
            spec = replace(stored.spec(user_id), active=False)
            _, moved = await _write_user(
                tx, corp, spec, stored, actor=actor, now=now, references_checked=True, hand_over=hand_over
            )
        else:
            moved = await _hand_over(tx, corp, user_id, hand_over) if hand_over_to is not None else []
    invalidate(*_USER_SCOPES)
    return Deactivation(await _current_user(db, corp, user_id), tuple(moved))


# ------------------------------------------------------------------------------------------ departments


def _department_values(spec: DepartmentSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "name_en": spec.name_en,
        "parent_id": spec.parent_id,
        "managers": list(spec.managers),
        "order": spec.order,
    }


def _stored_department_values(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "name_en": row["name_en"],
        "parent_id": int(row["parent_dept_id"]) if row["parent_dept_id"] is not None else None,
        "managers": list(orjson.loads(row["manager_user_ids"])),
        "order": int(row["sort_order"] or 0),
    }


async def _stored_department(tx: Connection, corp: CorpRef, dept_id: int) -> Row | None:
    return await tx.fetchrow(
        "SELECT id, dept_id, name, name_en, parent_dept_id, manager_user_ids, sort_order FROM department"
        f" WHERE corp_pk = :c AND dept_id = :d{tx.sql.for_update}",
        {"c": corp.pk, "d": dept_id},
    )


async def _check_department_references(tx: Connection, corp: CorpRef, dept_id: int, spec: DepartmentSpec) -> None:
    if spec.parent_id is not None:
        chain = await department_chain(tx, corp.pk, spec.parent_id)
        if spec.parent_id not in chain:
            raise InvalidArgument(
                f"{{param}}: department {spec.parent_id} does not exist in this corp",
                reason="department.unknown",
                param="parent",
            )
        cycle = find_cycle({**chain, dept_id: spec.parent_id}, dept_id)
        if cycle is not None:
            raise InvalidArgument(
                f"the department tree would have a cycle: {_cycle_text(cycle)}",
                reason="department.cycle",
                param="parent",
            )
    await _user_pks(tx, corp, spec.managers, "managers")


async def _write_department(
    tx: Connection,
    corp: CorpRef,
    spec: DepartmentSpec,
    row: Row | None,
    *,
    actor: str | None,
    now: int,
    references_checked: bool,
) -> Outcome:
    dept_id = _check_department_spec(spec)
    spec = _trimmed(spec, "name", "name_en")
    if not references_checked:
        await _check_department_references(tx, corp, dept_id, spec)
    new = _department_values(spec)
    columns = {
        "name": spec.name,
        "name_en": spec.name_en,
        "parent_dept_id": spec.parent_id,
        "manager_user_ids": _json(list(spec.managers)),
        "sort_order": spec.order,
    }
    if row is None:
        pk = await tx.fetchval(
            "INSERT INTO department (corp_pk, dept_id, name, name_en, parent_dept_id, manager_user_ids, sort_order)"
            f" VALUES (:c, :d, :name, :name_en, :parent_dept_id, {tx.sql.json_param('manager_user_ids')}, :sort_order)"
            " ON CONFLICT (corp_pk, dept_id) DO NOTHING RETURNING id",
            {"c": corp.pk, "d": dept_id, **columns},
        )
        if pk is None:
            raise Conflict(f"department {dept_id} already exists", reason="department.exists", param="department")
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="department",
            object_id=str(dept_id),
            action="created",
            changes=created_fields(new),
            actor=actor,
            at=now,
        )
        return Outcome.CREATED
    changes = changed_fields(_stored_department_values(row), new)
    if not changes:
        return Outcome.UNCHANGED
    await tx.execute(
        "UPDATE department SET name = :name, name_en = :name_en, parent_dept_id = :parent_dept_id,"
        f" manager_user_ids = {tx.sql.json_param('manager_user_ids')}, sort_order = :sort_order WHERE id = :pk",
        {**columns, "pk": row["id"]},
    )
    await record_change(
        tx,
        corp_pk=corp.pk,
        kind="department",
        object_id=str(dept_id),
        action="updated",
        changes=changes,
        actor=actor,
        at=now,
    )
    return Outcome.UPDATED


async def upsert_department(
    tx: Connection,
    corp: CorpRef,
    spec: DepartmentSpec,
    *,
    actor: str | None,
    now: int,
    references_checked: bool = False,
) -> Outcome:
    """Inside the caller's transaction: create or update a department."""
    dept_id = _number_id(spec.dept_id, "department", "a department id")
    row = await _stored_department(tx, corp, dept_id)
    return await _write_department(tx, corp, spec, row, actor=actor, now=now, references_checked=references_checked)


async def _current_department(db: Database, corp: CorpRef, dept_id: int) -> Department:
    found = await find_departments(db, corp.pk, [dept_id])
    if dept_id not in found:  # cannot happen: the action just wrote it
        raise NotFound(f"department {dept_id} does not exist", reason="department.not_found", param="department")
    return found[dept_id]


async def lock_corp(tx: Connection, corp: CorpRef) -> None:
    """Take the corp's row lock that orders changes of its department tree, of its ids and of what names one user
    (PostgreSQL; SQLite's writes are one at a time): two creates do not compute one next id, a move does not miss
    another move (a cycle) and a child is not created under a department deleted meanwhile; two users do not both
    take one sign-in name, unionId or (WeDa) mobile number. A load (``upsert_corp``) takes the same lock."""
    await tx.fetchval(f"SELECT id FROM corp WHERE id = :c{tx.sql.for_no_key_update}", {"c": corp.pk})


async def _next_id(tx: Connection, table: str, column: str, corp: CorpRef) -> int:
    """One above the corp's highest id of ``table``, deleted ones included (their audit rows keep them): an id once
    given, and sent in events (``org_dept_remove``…), never names another department or role."""
    value = await tx.fetchval(f"SELECT COALESCE(MAX({column}), 0) FROM {table} WHERE corp_pk = :c", {"c": corp.pk})
    gone = await tx.fetchval(
        "SELECT MAX(CAST(object_id AS BIGINT)) FROM audit_log WHERE corp_pk = :c AND object_kind = :k"
        " AND action = 'deleted'",
        {"c": corp.pk, "k": table},
    )
    return max(int(value), int(gone or 0)) + 1


async def create_department(db: Database, corp: CorpRef, spec: DepartmentSpec, *, actor: str | None) -> Department:
    """Create a department (``dept_id`` None: one above the corp's highest); an existing id is a ``Conflict``."""
    async with db.transaction() as tx:
        await lock_corp(tx, corp)
        dept_id = spec.dept_id if spec.dept_id is not None else await _next_id(tx, "department", "dept_id", corp)
        spec = replace(spec, dept_id=dept_id)
        _number_id(dept_id, "department", "a department id")
        if await _stored_department(tx, corp, dept_id) is not None:
            raise Conflict(f"department {dept_id} already exists", reason="department.exists", param="department")
        await _write_department(tx, corp, spec, None, actor=actor, now=now_ms(), references_checked=False)
    invalidate(ORG_CACHE_SCOPE)
    return await _current_department(db, corp, dept_id)


def _department_spec(row: Row) -> DepartmentSpec:
    values = _stored_department_values(row)
    return DepartmentSpec(
        dept_id=int(row["dept_id"]),
        name=values["name"],
        name_en=values["name_en"],
        parent_id=values["parent_id"],
        managers=tuple(values["managers"]),
        order=values["order"],
    )


async def update_department(
    db: Database, corp: CorpRef, dept_id: int, changes: Mapping[str, Any], *, actor: str | None
) -> Department:
    """Change some fields of a department (``DepartmentSpec`` names)."""
    async with db.transaction() as tx:
        await lock_corp(tx, corp)
        row = await _stored_department(tx, corp, dept_id)
        if row is None:
            raise NotFound(f"department {dept_id} does not exist", reason="department.not_found", param="department")
        spec = _patched(_department_spec(row), changes, fixed="dept_id")
        outcome = await _write_department(tx, corp, spec, row, actor=actor, now=now_ms(), references_checked=False)
    if outcome is not Outcome.UNCHANGED:
        invalidate(ORG_CACHE_SCOPE)
    return await _current_department(db, corp, dept_id)


async def delete_department(db: Database, corp: CorpRef, dept_id: int, *, actor: str | None) -> None:
    """Delete a department that has no members and no sub-departments."""
    async with db.transaction() as tx:
        await lock_corp(tx, corp)
        row = await _stored_department(tx, corp, dept_id)
        if row is None:
            raise NotFound(f"department {dept_id} does not exist", reason="department.not_found", param="department")
        members = int(await tx.fetchval("SELECT count(*) FROM user_department WHERE dept_pk = :d", {"d": row["id"]}))
        children = await tx.fetch(
            "SELECT dept_id FROM department WHERE corp_pk = :c AND parent_dept_id = :d ORDER BY dept_id",
            {"c": corp.pk, "d": dept_id},
        )
        if members or children:
            held = []
            if members:
                held.append(f"{members} member{'s' if members != 1 else ''}")
            if children:
                ids = ", ".join(str(c["dept_id"]) for c in children)
                held.append(f"{len(children)} sub-department{'s' if len(children) != 1 else ''} ({ids})")
            raise Conflict(
                f"department {dept_id} ({row['name']}) still has {' and '.join(held)}: move them first",
                reason="department.not_empty",
                param="department",
            )
        await tx.execute("DELETE FROM department WHERE id = :pk", {"pk": row["id"]})
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="department",
            object_id=str(dept_id),
            action="deleted",
            changes=removed_fields(_stored_department_values(row)),
            actor=actor,
            at=now_ms(),
        )
    invalidate(ORG_CACHE_SCOPE)


# ------------------------------------------------------------------------------------------------ roles


async def _stored_role(tx: Connection, corp: CorpRef, role_id: int) -> tuple[Row, list[str]] | None:
    row = await tx.fetchrow(
        f"SELECT id, role_id, name, group_name FROM role WHERE corp_pk = :c AND role_id = :r{tx.sql.for_update}",
        {"c": corp.pk, "r": role_id},
    )
    if row is None:
        return None
    members = await tx.fetch(
        "SELECT u.user_id FROM role_member m JOIN org_user u ON u.id = m.user_pk WHERE m.role_pk = :r ORDER BY u.id",
        {"r": row["id"]},
    )
    return row, [m["user_id"] for m in members]


def _role_values(name: str, group: str | None, members: Sequence[str]) -> dict[str, Any]:
    return {"name": name, "group": group, "members": sorted(members)}


async def _write_role(
    tx: Connection,
    corp: CorpRef,
    spec: RoleSpec,
    stored: tuple[Row, list[str]] | None,
    *,
    actor: str | None,
    now: int,
) -> Outcome:
    role_id = _check_role_spec(spec)
    spec = _trimmed(spec, "name", "group")
    member_pks = await _user_pks(tx, corp, spec.members, "members")
    new = _role_values(spec.name, spec.group, spec.members)
    if stored is None:
        pk = await tx.fetchval(
            "INSERT INTO role (corp_pk, role_id, name, group_name) VALUES (:c, :r, :name, :g)"
            " ON CONFLICT (corp_pk, role_id) DO NOTHING RETURNING id",
            {"c": corp.pk, "r": role_id, "name": spec.name, "g": spec.group},
        )
        if pk is None:
            raise Conflict(f"role {role_id} already exists", reason="role.exists", param="role")
        await _link_members(tx, int(pk), member_pks)
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="role",
            object_id=str(role_id),
            action="created",
            changes=created_fields(new),
            actor=actor,
            at=now,
        )
        return Outcome.CREATED
    row, members = stored
    changes = changed_fields(_role_values(row["name"], row["group_name"], members), new)
    if not changes:
        return Outcome.UNCHANGED
    if "name" in changes or "group" in changes:
        await tx.execute(
            "UPDATE role SET name = :name, group_name = :g WHERE id = :pk",
            {"name": spec.name, "g": spec.group, "pk": row["id"]},
        )
    if "members" in changes:
        await tx.execute("DELETE FROM role_member WHERE role_pk = :pk", {"pk": row["id"]})
        await _link_members(tx, int(row["id"]), member_pks)
    await record_change(
        tx, corp_pk=corp.pk, kind="role", object_id=str(role_id), action="updated", changes=changes, actor=actor, at=now
    )
    return Outcome.UPDATED


async def _link_members(tx: Connection, role_pk: int, user_pks: Sequence[int]) -> None:
    if user_pks:
        await tx.executemany(
            "INSERT INTO role_member (role_pk, user_pk) VALUES (:r, :u)", [{"r": role_pk, "u": u} for u in user_pks]
        )


async def upsert_role(
    tx: Connection, corp: CorpRef, spec: RoleSpec, *, actor: str | None, now: int, references_checked: bool = False
) -> Outcome:
    """Inside the caller's transaction: create or update a role and its members."""
    role_id = _number_id(spec.role_id, "role", "a role id")
    return await _write_role(tx, corp, spec, await _stored_role(tx, corp, role_id), actor=actor, now=now)


async def _current_role(db: Database, corp: CorpRef, role_id: int) -> Role:
    found = await find_roles(db, corp.pk, [role_id])
    if role_id not in found:  # cannot happen: the action just wrote it
        raise NotFound(f"role {role_id} does not exist", reason="role.not_found", param="role")
    return found[role_id]


async def create_role(db: Database, corp: CorpRef, spec: RoleSpec, *, actor: str | None) -> Role:
    """Create a role (``role_id`` None: one above the corp's highest); an existing id is a ``Conflict``."""
    async with db.transaction() as tx:
        await lock_corp(tx, corp)
        role_id = spec.role_id if spec.role_id is not None else await _next_id(tx, "role", "role_id", corp)
        spec = replace(spec, role_id=role_id)
        _number_id(role_id, "role", "a role id")
        if await _stored_role(tx, corp, role_id) is not None:
            raise Conflict(f"role {role_id} already exists", reason="role.exists", param="role")
        await _write_role(tx, corp, spec, None, actor=actor, now=now_ms())
    invalidate(ORG_CACHE_SCOPE)
    return await _current_role(db, corp, role_id)


async def update_role(
    db: Database, corp: CorpRef, role_id: int, changes: Mapping[str, Any], *, actor: str | None
) -> Role:
    """Change some fields of a role (``RoleSpec`` names: ``name``, ``group``, ``members``)."""
    async with db.transaction() as tx:
        stored = await _stored_role(tx, corp, role_id)
        if stored is None:
            raise NotFound(f"role {role_id} does not exist", reason="role.not_found", param="role")
        row, members = stored
        current = RoleSpec(role_id, row["name"], row["group_name"], tuple(members))
        spec = _patched(current, changes, fixed="role_id")
        outcome = await _write_role(tx, corp, spec, stored, actor=actor, now=now_ms())
    if outcome is not Outcome.UNCHANGED:
        invalidate(ORG_CACHE_SCOPE)
    return await _current_role(db, corp, role_id)


async def set_role_members(
    db: Database, corp: CorpRef, role_id: int, members: Sequence[str], *, actor: str | None
) -> Role:
    """Make ``members`` the role's members (users of the corp)."""
    return await update_role(db, corp, role_id, {"members": tuple(members)}, actor=actor)


async def _forms_naming_role(tx: Connection, corp: CorpRef, role_id: int) -> list[str]:
    rows = await tx.fetch(
        "SELECT f.form_uuid, f.title_zh, v.process FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        " WHERE a.corp_pk = :c AND v.process IS NOT NULL ORDER BY f.id",
        {"c": corp.pk},
    )
    out = []
    for row in rows:
        process = orjson.loads(row["process"])
        if any(kind == "role" and str(value) == str(role_id) for _, kind, value in named_people(process)):
            out.append(f"{row['form_uuid']} ({row['title_zh']})")
    return out


async def delete_role(db: Database, corp: CorpRef, role_id: int, *, actor: str | None) -> None:
    """Delete a role that no form's current process names."""
    async with db.transaction() as tx:
        stored = await _stored_role(tx, corp, role_id)
        if stored is None:
            raise NotFound(f"role {role_id} does not exist", reason="role.not_found", param="role")
        row, members = stored
        forms = await _forms_naming_role(tx, corp, role_id)
        if forms:
            raise Conflict(
                f"role {role_id} ({row['name']}) is named by the current process of {', '.join(forms)}:"
                " change those processes first",
                reason="role.in_use",
                param="role",
            )
        await tx.execute("DELETE FROM role WHERE id = :pk", {"pk": row["id"]})
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="role",
            object_id=str(role_id),
            action="deleted",
            changes=removed_fields(_role_values(row["name"], row["group_name"], members)),
            actor=actor,
            at=now_ms(),
        )
    invalidate(ORG_CACHE_SCOPE)
