"""Department and role actions at the core level: create (given or next id), update, delete; the tree stays
acyclic, a department with members or sub-departments and a role a process names cannot be deleted; every change
has its audit row and event, bad input changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.core.org.conftest import ACTOR, Org
from zida.clock import now_ms
from zida.core.audit import record_change
from zida.core.errors import Conflict, InvalidArgument, NotFound, ZidaError
from zida.core.org import actions
from zida.core.org.actions import CorpSpec, DepartmentSpec, RoleSpec, find_cycle
from zida.core.org.repository import find_departments, find_roles, find_users
from zida.core.workflow.directory import load_directory

pytestmark = pytest.mark.anyio


def test_find_cycle_names_the_loop() -> None:
    assert find_cycle({1: 2, 2: 3, 3: None}, 1) is None
    assert find_cycle({1: 2, 2: 3, 3: 2}, 1) == [2, 3, 2]
    assert find_cycle({"a": "a"}, "a") == ["a", "a"]


async def test_departments_are_created_changed_and_deleted_with_their_audit_rows(org: Org) -> None:
    dept = await actions.create_department(
        org.db, org.corp, DepartmentSpec(None, "华东", parent_id=10, managers=("li",), order=3), actor=ACTOR
    )
    assert (dept.dept_id, dept.parent_dept_id, dept.manager_user_ids, dept.order) == (11, 10, ("li",), 3)
    same = await actions.update_department(org.db, org.corp, 11, {"name": "华东"}, actor=ACTOR)
    assert same == dept
    moved = await actions.update_department(
        org.db, org.corp, 11, {"parent_id": 1, "name_en": "East", "managers": ()}, actor=ACTOR
    )
    assert (moved.parent_dept_id, moved.name_en, moved.manager_user_ids) == (1, "East", ())
    await actions.delete_department(org.db, org.corp, 11, actor=ACTOR)
    assert await find_departments(org.db, org.corp.pk, [11]) == {}
    entries = await org.audit("department", "11")
    assert [e.topic for e in entries] == ["department.created", "department.updated", "department.deleted"]
    assert entries[1].changes == {
        "name_en": {"old": None, "new": "East"},
        "parent_id": {"old": 10, "new": 1},
        "managers": {"old": ["li"], "new": []},
    }
    assert entries[2].changes["name"] == {"old": "华东"}
    topics = [e.topic for e in await org.events() if e.object_id == "11"]
    assert topics == ["department.created", "department.updated", "department.deleted"]
    # An id once given (and sent in org_dept_remove) never names another department: the next is 12, not 11 again.
    after = await actions.create_department(org.db, org.corp, DepartmentSpec(None, "华南", parent_id=1), actor=ACTOR)
    assert after.dept_id == 12
    await actions.delete_department(org.db, org.corp, 12, actor=ACTOR)


@pytest.mark.parametrize(
    ("spec", "error", "reason", "words"),
    [
        (DepartmentSpec(10, "重复"), Conflict, "department.exists", "already exists"),
        (DepartmentSpec(30, "孤儿", parent_id=404), InvalidArgument, "department.unknown", "404"),
        (DepartmentSpec(31, "自己", parent_id=31), InvalidArgument, "department.cycle", "own parent"),
        (DepartmentSpec(32, "无主", managers=("ghost",)), InvalidArgument, "user.unknown", "ghost"),
        (DepartmentSpec(33, ""), InvalidArgument, "argument.invalid", "name"),
        (DepartmentSpec(0, "零"), InvalidArgument, "argument.invalid", "between 1"),
    ],
)
async def test_bad_new_departments_change_nothing(
    org: Org, spec: DepartmentSpec, error: type[ZidaError], reason: str, words: str
) -> None:
    before = await org.marks()
    with pytest.raises(error) as raised:
        await actions.create_department(org.db, org.corp, spec, actor=ACTOR)
    assert raised.value.reason == reason and words in raised.value.message, raised.value.message
    assert await org.marks() == before


@pytest.mark.parametrize(
    ("dept_id", "changes", "error", "reason"),
    [
        (404, {"name": "无"}, NotFound, "department.not_found"),
        (1, {"parent_id": 10}, InvalidArgument, "department.cycle"),  # 10 → 1 → 10
        (10, {"managers": ("mgr", "mgr")}, InvalidArgument, "argument.invalid"),
        (10, {"dept_id": 12}, InvalidArgument, "argument.invalid"),
    ],
)
async def test_bad_department_updates_change_nothing(
    org: Org, dept_id: int, changes: dict[str, Any], error: type[ZidaError], reason: str
) -> None:
    before = await org.marks()
    with pytest.raises(error) as raised:
        await actions.update_department(org.db, org.corp, dept_id, changes, actor=ACTOR)
    assert raised.value.reason == reason, raised.value.message
    assert await org.marks() == before


async def test_a_department_with_members_or_sub_departments_stays(org: Org) -> None:
    before = await org.marks()
    with pytest.raises(Conflict) as raised:
        await actions.delete_department(org.db, org.corp, 1, actor=ACTOR)
    assert raised.value.reason == "department.not_empty"
    assert "2 members" in raised.value.message and "1 sub-department (10)" in raised.value.message
    with pytest.raises(Conflict) as raised:
        await actions.delete_department(org.db, org.corp, 10, actor=ACTOR)
    assert "5 members" in raised.value.message and "sub-department" not in raised.value.message
    with pytest.raises(NotFound):
        await actions.delete_department(org.db, org.corp, 404, actor=ACTOR)
    assert await org.marks() == before and set(await find_departments(org.db, org.corp.pk, [1, 10])) == {1, 10}


async def test_roles_and_their_members(org: Org) -> None:
    role = await actions.create_role(org.db, org.corp, RoleSpec(None, "财务", "职能", ("zhou",)), actor=ACTOR)
    assert (role.role_id, role.members) == (2, ("zhou",))
    role = await actions.set_role_members(org.db, org.corp, 2, ["chen", "zhou"], actor=ACTOR)
    assert sorted(role.members) == ["chen", "zhou"]
    before = await org.marks()
    assert await actions.set_role_members(org.db, org.corp, 2, ["zhou", "chen"], actor=ACTOR) == role  # same set
    assert await org.marks() == before
    role = await actions.update_role(org.db, org.corp, 2, {"name": "财务部", "group": None}, actor=ACTOR)
    assert (role.name, role.group) == ("财务部", None)
    entries = await org.audit("role", "2")
    assert [e.action for e in entries] == ["created", "updated", "updated"]
    assert entries[1].changes == {"members": {"old": ["zhou"], "new": ["chen", "zhou"]}}
    await actions.delete_role(org.db, org.corp, 2, actor=ACTOR)
    assert 2 not in await find_roles(org.db, org.corp.pk)
    assert (await org.audit("role", "2"))[-1].changes["members"] == {"old": ["chen", "zhou"]}
    again = await actions.create_role(org.db, org.corp, RoleSpec(None, "法务"), actor=ACTOR)
    assert again.role_id == 3  # not 2 again
    await actions.delete_role(org.db, org.corp, 3, actor=ACTOR)


@pytest.mark.parametrize(
    ("call", "error", "reason"),
    [
        (lambda o: actions.create_role(o.db, o.corp, RoleSpec(1, "重复"), actor=ACTOR), Conflict, "role.exists"),
        (
            lambda o: actions.create_role(o.db, o.corp, RoleSpec(5, "鬼", members=("ghost",)), actor=ACTOR),
            InvalidArgument,
            "user.unknown",
        ),
        (
            lambda o: actions.set_role_members(o.db, o.corp, 1, ["li", "li"], actor=ACTOR),
            InvalidArgument,
            "argument.invalid",
        ),
        (lambda o: actions.set_role_members(o.db, o.corp, 404, ["li"], actor=ACTOR), NotFound, "role.not_found"),
        (lambda o: actions.delete_role(o.db, o.corp, 404, actor=ACTOR), NotFound, "role.not_found"),
    ],
)
async def test_bad_role_input_changes_nothing(org: Org, call: Any, error: type[ZidaError], reason: str) -> None:
    before = await org.marks()
    with pytest.raises(error) as raised:
        await call(org)
    assert raised.value.reason == reason, raised.value.message
    assert await org.marks() == before
    assert (await find_roles(org.db, org.corp.pk, [1]))[1].members == ("li", "sun")


async def test_a_role_a_process_names_cannot_be_deleted(org: Org) -> None:
    with pytest.raises(Conflict) as raised:
        await actions.delete_role(org.db, org.corp, 1, actor=ACTOR)
    assert raised.value.reason == "role.in_use" and org.form("ROLE") in raised.value.message
    assert 1 in await find_roles(org.db, org.corp.pk, [1])


async def test_directory_changes_are_seen_by_the_next_approval_at_once(org: Org) -> None:
    """The directory caches of this process are emptied by the actions (other workers: through the cache sync)."""
    iid = await org.start("ROLE")
    assert await org.running(iid) == ["li", "sun"]
    await actions.set_role_members(org.db, org.corp, 1, ["zhou"], actor=ACTOR)
    assert await org.running(await org.start("ROLE")) == ["zhou"]
    await actions.update_user(org.db, org.corp, "li", {"manager": "boss"}, actor=ACTOR)
    assert await org.running(await org.start("MGR", user="li")) == ["boss"]
    assert (await find_users(org.db, org.corp.pk, ["li"]))["li"].manager_user_id == "boss"
    assert await org.problems() == []


async def test_the_directory_of_an_approval_reads_only_active_users(org: Org) -> None:
    await actions.update_user(org.db, org.corp, "sun", {"active": False}, actor=ACTOR)
    definition_row = await org.db.fetchrow(
        "SELECT f.id, f.current_version FROM form f WHERE f.form_uuid = :u", {"u": org.form("ROLE")}
    )
    assert definition_row is not None
    from zida.core.workflow.definitions import load_definition

    definition = await load_definition(org.db, int(definition_row["id"]), int(definition_row["current_version"]))
    directory = await load_directory(
        org.db,
        corp_pk=org.corp.pk,
        app_pk=org.app_pk,
        definition=definition,
        originator="boss",
        department_id=None,
        form_data={},
        chosen={},
    )
    assert list(directory.role_members(1)) == ["li"] and not directory.user_exists("sun")


async def test_concurrent_changes_of_the_tree_are_ordered(org: Org) -> None:
    """Each change of the tree takes the corp's lock on PostgreSQL (SQLite writes one at a time): concurrent creates
    get ids of their own (they used to compute one next id: "already exists"), two opposite moves cannot both pass
    the cycle check, and a department is never created under one deleted meanwhile (an orphan no dump could load)."""
    made = await asyncio.gather(
        *(
            actions.create_department(org.db, org.corp, DepartmentSpec(None, f"并发{i}", parent_id=1), actor=ACTOR)
            for i in range(12)
        )
    )
    assert len({d.dept_id for d in made}) == 12
    a, b = made[0].dept_id, made[1].dept_id
    moves = await asyncio.gather(
        actions.update_department(org.db, org.corp, a, {"parent_id": b}, actor=ACTOR),
        actions.update_department(org.db, org.corp, b, {"parent_id": a}, actor=ACTOR),
        return_exceptions=True,
    )
    refused = [m for m in moves if isinstance(m, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], InvalidArgument), moves
    assert refused[0].reason == "department.cycle"
    parent = made[2].dept_id
    await asyncio.gather(
        actions.create_department(org.db, org.corp, DepartmentSpec(None, "子", parent_id=parent), actor=ACTOR),
        actions.delete_department(org.db, org.corp, parent, actor=ACTOR),
        return_exceptions=True,
    )
    orphans = await org.db.fetchval(
        "SELECT count(*) FROM department d WHERE d.corp_pk = :c AND d.parent_dept_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM department p WHERE p.corp_pk = d.corp_pk AND p.dept_id = d.parent_dept_id)",
        {"c": org.corp.pk},
    )
    assert orphans == 0
    roles = await asyncio.gather(
        *(actions.create_role(org.db, org.corp, RoleSpec(None, f"角色{i}"), actor=ACTOR) for i in range(6))
    )
    assert len({r.role_id for r in roles}) == 6


async def test_a_load_s_corp_lock_lets_other_writes_of_the_corp_check_their_foreign_keys(org: Org) -> None:
    """A load holds the corp's row for its whole transaction; it used to take FOR UPDATE, which every write naming the
    corp (its audit row's foreign key) waits for, so a load waiting on a user row such a write held was a deadlock."""
    if org.db.sql.name != "postgresql":
        pytest.skip("SQLite writes one transaction at a time: no row locks")
    async with org.db.transaction() as load:
        await actions.upsert_corp(load, org.box, CorpSpec(org.corp.corp_id, "组织测试"), actor=ACTOR, now=now_ms())

        async def audited_write() -> None:
            async with org.db.transaction() as tx:
                await record_change(
                    tx, corp_pk=org.corp.pk, kind="user", object_id="li", action="updated", changes={}, actor=ACTOR,
                    at=now_ms(),
                )  # fmt: skip

        await asyncio.wait_for(audited_write(), timeout=10)  # not blocked until the load's commit
