"""Directory reads of the contacts APIs at the core level: member pages stay right while members join, leave and
change between pages; name search through the gram index follows renames, deactivation and reactivation; chains,
sub-departments and roles; each read is one or two statements whatever the page size."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.core.org.conftest import ACTOR, Org
from zida.core.org import actions, queries
from zida.core.org.actions import DepartmentSpec, RoleSpec, UserSpec
from zida.db import Database

pytestmark = pytest.mark.anyio


class Counting:
    """A connection that counts the statements it is sent."""

    def __init__(self, db: Database) -> None:
        self.db, self.sql, self.count = db, db.sql, 0

    async def fetch(self, query: str, params: Any = None) -> Any:
        self.count += 1
        return await self.db.fetch(query, params)

    async def fetchrow(self, query: str, params: Any = None) -> Any:
        self.count += 1
        return await self.db.fetchrow(query, params)

    async def fetchval(self, query: str, params: Any = None) -> Any:
        self.count += 1
        return await self.db.fetchval(query, params)


async def _hire(org: Org, *user_ids: str, dept: int = 10, name: str = "员工") -> None:
    for user_id in user_ids:
        await actions.create_user(
            org.db, org.corp, UserSpec(user_id, f"{name}{user_id}", departments=(dept,)), actor=ACTOR
        )


async def _read_all(org: Org, order: str, size: int, between: Any = None) -> list[str]:
    seen: list[str] = []
    cursor, pages = 0, 0
    while True:
        page = await queries.member_page(org.db, org.corp.pk, 10, order=order, cursor=cursor, size=size)
        assert page is not None
        seen += [user_id for _, user_id, _ in page.members]
        pages += 1
        if page.next_cursor is None:
            return seen
        if between is not None:
            await between(pages)
        cursor = page.next_cursor


async def test_entry_order_pages_stay_right_while_members_join_leave_and_change(org: Org) -> None:
    await _hire(org, *(f"p{n:02}" for n in range(20)))
    before = [u for _, u, _ in (await queries.member_page(org.db, org.corp.pk, 10, size=100)).members]  # type: ignore[union-attr]
    assert before[:5] == ["mgr", "li", "sun", "zhou", "chen"] and len(before) == 25
    left = {"p03", "p15"}

    async def churn(page: int) -> None:
        if page == 1:
            await actions.deactivate_user(org.db, org.corp, "p03", actor=ACTOR)  # already served: nothing moves
            await actions.deactivate_user(org.db, org.corp, "p15", actor=ACTOR)  # not served yet: never shown
            await _hire(org, "late1")  # joins after: shown at the end
            await actions.update_user(org.db, org.corp, "p10", {"name": "改名"}, actor=ACTOR)  # a change moves no one
        if page == 2:
            await actions.update_user(org.db, org.corp, "p12", {"departments": (1,)}, actor=ACTOR)  # moved away
            await _hire(org, "late2")

    seen = await _read_all(org, "custom", 7, churn)
    stayed = [u for u in before if u not in left and u != "p12"]
    assert len(seen) == len(set(seen))
    assert [u for u in seen if u in stayed] == stayed
    assert "p15" not in seen and seen[-2:] == ["late1", "late2"]
    assert await _read_all(org, "entry_asc", 5) == [u for u in [*before, "late1", "late2"] if u not in {*left, "p12"}]


async def test_newest_first_pages_never_repeat_or_skip_a_member_who_stayed(org: Org) -> None:
    await _hire(org, *(f"q{n:02}" for n in range(12)))

    async def churn(page: int) -> None:
        await _hire(org, f"new{page}")  # newer than the cursor: belongs to pages already read
        if page == 1:
            await actions.deactivate_user(org.db, org.corp, "q02", actor=ACTOR)

    seen = await _read_all(org, "entry_desc", 4, churn)
    assert seen[:4] == ["q11", "q10", "q09", "q08"]
    assert seen[4:] == ["q07", "q06", "q05", "q04", "q03", "q01", "q00", "chen", "zhou", "sun", "li", "mgr"]


async def test_modification_order_pages_by_offset(org: Org) -> None:
    await _hire(org, "m1", "m2")
    await asyncio.sleep(0.002)  # li's change in a later millisecond than the hires (a tie goes by row id: li first)
    await actions.update_user(org.db, org.corp, "li", {"title": "组长"}, actor=ACTOR)
    newest = await _read_all(org, "modify_desc", 3)
    oldest = await _read_all(org, "modify_asc", 3)
    assert newest[0] == "li" and oldest[-1] == "li" and list(reversed(newest)) == oldest
    first = await queries.member_page(org.db, org.corp.pk, 10, order="modify_asc", cursor=0, size=3)
    assert first is not None and first.next_cursor == 3


async def test_an_unknown_department_is_none_and_an_empty_one_an_empty_page(org: Org) -> None:
    assert await queries.member_page(org.db, org.corp.pk, 99, size=10) is None
    assert await queries.department_member_ids(org.db, org.corp.pk, 99) is None
    await actions.create_department(org.db, org.corp, DepartmentSpec(30, "空部门", parent_id=1), actor=ACTOR)
    empty = await queries.member_page(org.db, org.corp.pk, 30, size=10)
    assert empty is not None and empty.members == () and empty.next_cursor is None


async def test_name_search_follows_renames_deactivation_and_reactivation(org: Org) -> None:
    await _hire(org, "z1", "z2", name="张")
    await actions.create_user(org.db, org.corp, UserSpec("z3", "张伟明", departments=(10,)), actor=ACTOR)
    await actions.create_user(org.db, org.corp, UserSpec("en", "Zhang Wei", departments=(10,)), actor=ACTOR)
    pk = org.corp.pk
    assert await queries.search_users(org.db, pk, "张", offset=0, size=10) == (3, ["z1", "z2", "z3"])
    assert await queries.search_users(org.db, pk, "张", offset=1, size=1) == (3, ["z2"])
    assert await queries.search_users(org.db, pk, "张", offset=5, size=1) == (3, [])
    assert await queries.search_users(org.db, pk, "伟明", offset=0, size=10) == (1, ["z3"])
    assert await queries.search_users(org.db, pk, "张伟明", offset=0, size=10) == (1, ["z3"])
    assert await queries.search_users(org.db, pk, "zhang w", offset=0, size=10) == (1, ["en"])
    assert await queries.search_users(org.db, pk, "张伟", offset=0, size=10, exact=True) == (0, [])
    assert await queries.search_users(org.db, pk, "张伟明", offset=0, size=10, exact=True) == (1, ["z3"])
    await actions.update_user(org.db, org.corp, "z3", {"name": "王伟明"}, actor=ACTOR)
    assert await queries.search_users(org.db, pk, "张", offset=0, size=10) == (2, ["z1", "z2"])
    assert await queries.search_users(org.db, pk, "王伟", offset=0, size=10) == (1, ["z3"])
    await actions.deactivate_user(org.db, org.corp, "z1", actor=ACTOR)
    assert await queries.search_users(org.db, pk, "张", offset=0, size=10) == (1, ["z2"])
    await actions.update_user(org.db, org.corp, "z1", {"active": True}, actor=ACTOR)
    assert await queries.search_users(org.db, pk, "张", offset=0, size=10) == (2, ["z1", "z2"])
    assert await queries.search_users(org.db, pk, "经", offset=0, size=10) == (1, ["mgr"])


async def test_search_sees_only_its_own_corp(org: Org, db: Database) -> None:
    other = await db.fetchval("SELECT id FROM corp WHERE corp_id = 'corpA'")
    assert await queries.search_users(org.db, org.corp.pk, "张三", offset=0, size=10) == (0, [])
    assert (await queries.search_users(org.db, int(other), "张三", offset=0, size=10))[1] == ["u1"]
    assert await queries.search_departments(org.db, org.corp.pk, "研发", offset=0, size=10) == (0, [])
    assert await queries.search_departments(org.db, org.corp.pk, "销", offset=0, size=10) == (1, [10])


async def test_chains_subdepartments_and_roles(org: Org) -> None:
    await actions.create_department(org.db, org.corp, DepartmentSpec(11, "华东", parent_id=10, order=2), actor=ACTOR)
    await actions.create_department(org.db, org.corp, DepartmentSpec(12, "华北", parent_id=10, order=1), actor=ACTOR)
    await actions.create_department(org.db, org.corp, DepartmentSpec(13, "上海", parent_id=11), actor=ACTOR)
    await actions.update_user(org.db, org.corp, "li", {"departments": (13, 1)}, actor=ACTOR)
    pk = org.corp.pk
    assert await queries.parent_chain(org.db, pk, 13) == [13, 11, 10, 1]
    assert await queries.parent_chain(org.db, pk, 99) is None
    assert await queries.user_parent_chains(org.db, pk, "li") == [[13, 11, 10, 1], [1]]
    assert await queries.user_parent_chains(org.db, pk, "nobody") is None
    subs = await queries.sub_departments(org.db, pk, 10)
    assert subs is not None and [d.dept_id for d in subs] == [12, 11]
    tree = await queries.sub_departments(org.db, pk, 1, recursive=True)
    assert tree is not None and [d.dept_id for d in tree] == [10, 12, 11, 13]
    groups, more = await queries.role_groups(org.db, pk, offset=0, size=10)
    assert not more and [(g.group_id, g.name, [r.role_id for r in g.roles]) for g in groups] == [(1, "默认", [1])]
    assert await queries.role_member_page(org.db, pk, 1, offset=0, size=1) == ([("li", "李")], True)
    assert await queries.role_member_page(org.db, pk, 2, offset=0, size=1) is None
    assert await queries.app_admins(org.db, pk) == ["adm"]


async def test_reads_are_one_or_two_statements_whatever_their_size(org: Org) -> None:
    await _hire(org, *(f"s{n:02}" for n in range(30)))
    conn = Counting(org.db)
    page = await queries.member_page(conn, org.corp.pk, 10, size=20)  # type: ignore[arg-type]
    assert page is not None and len(page.members) == 20 and conn.count == 1
    conn.count = 0
    found = await queries.members(conn, org.corp.pk, pks=[pk for pk, _, _ in page.members])  # type: ignore[arg-type]
    assert [m.user_id for m in found] == [u for _, u, _ in page.members] and conn.count == 1
    conn.count = 0
    (mgr,) = await queries.members(conn, org.corp.pk, user_ids=["mgr"])  # type: ignore[arg-type]
    assert conn.count == 1
    assert [(d.dept_id, d.leader) for d in mgr.departments] == [(10, True)] and mgr.manager_user_id == "boss"
    conn.count = 0
    assert (await queries.search_users(conn, org.corp.pk, "员工", offset=0, size=10))[0] == 30  # type: ignore[arg-type]
    assert conn.count == 1


async def test_members_come_in_the_order_named_with_departments_by_position_and_roles_by_id(org: Org) -> None:
    """The statement has no ORDER BY (PostgreSQL sorted for a tenth of its time): the order is made in Python."""
    await actions.create_department(org.db, org.corp, DepartmentSpec(11, "华东", parent_id=10), actor=ACTOR)
    await actions.create_department(org.db, org.corp, DepartmentSpec(12, "华北", parent_id=10), actor=ACTOR)
    await actions.update_user(org.db, org.corp, "zhou", {"departments": (12, 1, 11, 10)}, actor=ACTOR)
    await actions.update_user(org.db, org.corp, "chen", {"departments": (11, 12)}, actor=ACTOR)
    for role_id in (7, 3, 5):
        await actions.create_role(
            org.db, org.corp, RoleSpec(role_id, f"角色{role_id}", members=("zhou", "chen")), actor=ACTOR
        )
    named = ["chen", "boss", "zhou", "nobody", "li", "chen"]
    found = await queries.members(org.db, org.corp.pk, user_ids=named)
    assert [m.user_id for m in found] == ["chen", "boss", "zhou", "li"]
    chen, _, zhou, li = found
    assert [d.dept_id for d in zhou.departments] == [12, 1, 11, 10]
    assert [(d.dept_id, d.leader) for d in chen.departments] == [(11, False), (12, False)]
    assert [r.role_id for r in zhou.roles] == [3, 5, 7] == [r.role_id for r in chen.roles]
    assert [r.role_id for r in li.roles] == [1]
    by_pk = await queries.members(org.db, org.corp.pk, pks=[zhou.pk, li.pk, chen.pk])
    assert [m.user_id for m in by_pk] == ["zhou", "li", "chen"]
    (one,) = await queries.members(org.db, org.corp.pk, pks=[zhou.pk])
    assert one == zhou


async def test_a_corp_admin_administers_every_app_of_the_corp(org: Org, db: Database) -> None:
    assert await queries.is_corp_admin(org.db, org.corp.pk, "adm")  # the one app's admin
    assert not await queries.is_corp_admin(org.db, org.corp.pk, "li")
    assert not await queries.is_corp_admin(org.db, org.corp.pk, "nobody")
    corp_a = int(await db.fetchval("SELECT id FROM corp WHERE corp_id = 'corpA'"))
    # corpA's two apps have an admin each: neither administers the corp
    assert [await queries.is_corp_admin(db, corp_a, u) for u in ("admin1", "u1")] == [False, False]
    await actions.deactivate_user(org.db, org.corp, "adm", actor=ACTOR)
    assert not await queries.is_corp_admin(org.db, org.corp.pk, "adm")  # a deactivated admin is none
