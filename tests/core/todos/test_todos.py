"""To-do semantics through the core functions: people, done, roles and paging, and the to-dos of approval tasks."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from typing import ClassVar

import pytest

from tests.core.corp import FLOW, TWO, CorpCoreMain
from zida.core.errors import Conflict, InvalidArgument, NotFound
from zida.core.org.models import CorpRef
from zida.core.todos import actions, queries
from zida.core.todos.models import CREATOR, EXECUTOR, PARTICIPANT, TodoChanges, TodoQuery, TodoSpec
from zida.core.workflow import actions as workflow

pytestmark = pytest.mark.anyio


class Corp(CorpCoreMain):
    """corpCoreMain acting in its approvals app."""

    default_app: ClassVar[str] = FLOW


def _ref(corp: CorpCoreMain) -> CorpRef:
    return CorpRef(corp.corp_pk, "corpCoreMain")


async def _count(corp: CorpCoreMain, table: str) -> int:
    return int(await corp.db.fetchval(f"SELECT count(*) FROM {table}"))


async def test_people_must_be_active_users_and_bad_input_writes_nothing(corp: CorpCoreMain) -> None:
    before = [await _count(corp, t) for t in ("todo_task", "todo_member", "audit_log", "outbox_event")]
    bad = [
        TodoSpec(subject="x", creator_user_id="li", executors=["wang", "nobody"]),
        TodoSpec(subject="x", creator_user_id="nobody"),
        TodoSpec(subject=" ", creator_user_id="li"),
        TodoSpec(subject="x", creator_user_id="li", priority=11),
        TodoSpec(subject="x", creator_user_id="li", app_url="ftp://x"),
        TodoSpec(subject="x", creator_user_id="li", due_time=-1),
        TodoSpec(subject="x", creator_user_id="li", details={"content_fields": [{"key": ""}]}),
    ]
    for spec in bad:
        with pytest.raises(InvalidArgument):
            await actions.create_todo(corp.db, _ref(corp), spec, source="test", actor="test")
    assert [await _count(corp, t) for t in ("todo_task", "todo_member", "audit_log", "outbox_event")] == before


async def test_done_follows_the_executors_and_each_change_is_audited(corp: CorpCoreMain) -> None:
    spec = TodoSpec(
        subject="盘点",
        creator_user_id="li",
        executors=["wang", "chen", "wang"],
        participants=["sun"],
        source_id="s-" + secrets.token_hex(3),
    )
    todo = await actions.create_todo(corp.db, _ref(corp), spec, source="test", actor="test")
    assert [e.user_id for e in todo.executors] == ["wang", "chen"]  # repeated names count once
    with pytest.raises(Conflict):
        await actions.create_todo(corp.db, _ref(corp), spec, source="test", actor="test")
    # the same key for another creator is another to-do
    await actions.create_todo(
        corp.db,
        _ref(corp),
        TodoSpec(subject="盘点", creator_user_id="liu", source_id=spec.source_id),
        source="test",
        actor="t",
    )

    half = await actions.set_executor_status(
        corp.db, _ref(corp), todo.todo_id, [("wang", True)], user_id="li", operator=None, actor="test"
    )
    assert (half.done, [e.done for e in half.executors]) == (False, [True, False])
    done = await actions.set_executor_status(
        corp.db, _ref(corp), todo.todo_id, [("chen", True)], user_id="chen", operator=None, actor="test"
    )
    assert done.done and done.finished_at is not None
    # a new executor reopens it; marking it undone reopens every executor
    more = await actions.update_todo(
        corp.db,
        _ref(corp),
        todo.todo_id,
        TodoChanges(executors=["wang", "chen", "liu"]),
        user_id="li",
        operator="sun",
        actor="test",
    )
    assert (more.done, more.finished_at, more.modifier_user_id) == (False, None, "sun")
    again = await actions.update_todo(
        corp.db, _ref(corp), todo.todo_id, TodoChanges(done=True), user_id="li", operator=None, actor="test"
    )
    assert again.done and all(e.done for e in again.executors)
    stored = await queries.get_todo(corp.db, corp.corp_pk, todo.todo_id, "liu")
    assert stored.done and [e.done for e in stored.executors] == [True, True, True]
    # an update that changes nothing records nothing
    mark = await _count(corp, "audit_log")
    await actions.update_todo(
        corp.db, _ref(corp), todo.todo_id, TodoChanges(done=True), user_id="li", operator=None, actor="test"
    )
    assert await _count(corp, "audit_log") == mark
    actions_seen = await corp.db.fetch(
        "SELECT action FROM audit_log WHERE object_kind = 'todo' AND object_id = :t ORDER BY id", {"t": todo.todo_id}
    )
    assert [r["action"] for r in actions_seen] == ["created", "updated", "updated", "updated", "updated"]
    events = await corp.db.fetch(
        "SELECT event_type FROM outbox_event WHERE event_type LIKE 'todo.%' ORDER BY id DESC LIMIT 5"
    )
    assert [r["event_type"] for r in events] == ["todo.updated"] * 4 + ["todo.created"]

    # zhou takes no part: he does not see it, nor change it
    with pytest.raises(NotFound):
        await queries.get_todo(corp.db, corp.corp_pk, todo.todo_id, "zhou")
    with pytest.raises(NotFound):
        await actions.delete_todo(corp.db, _ref(corp), todo.todo_id, user_id="zhou", operator=None, actor="test")
    await actions.delete_todo(corp.db, _ref(corp), todo.todo_id, user_id="sun", operator=None, actor="test")
    with pytest.raises(NotFound):
        await queries.get_todo(corp.db, corp.corp_pk, todo.todo_id, "li")
    assert not await corp.db.fetch("SELECT 1 FROM todo_member WHERE todo_pk = :p", {"p": todo.pk})


async def test_a_users_todos_by_role_in_keyset_pages(corp: CorpCoreMain) -> None:
    tag = secrets.token_hex(3)
    made = []
    for n in range(4):
        spec = TodoSpec(
            subject=f"{tag}-{n}",
            creator_user_id="boss",
            executors=["qian"] if n % 2 else ["zhao"],
            participants=["qian"] if n == 0 else [],
            due_time=1000 + (3 - n),
        )
        made.append(await actions.create_todo(corp.db, _ref(corp), spec, source="test", actor="test"))

    async def ids(user: str, **kw: object) -> list[str]:
        page = await queries.query_todos(corp.db, corp.corp_pk, user, TodoQuery(subject=tag, **kw))  # type: ignore[arg-type]
        return [t.todo_id for t in page.todos]

    assert await ids("qian") == [made[3].todo_id, made[1].todo_id, made[0].todo_id]
    assert await ids("qian", roles=((EXECUTOR,),)) == [made[3].todo_id, made[1].todo_id]
    assert await ids("qian", roles=((PARTICIPANT,),)) == [made[0].todo_id]
    assert await ids("qian", roles=((EXECUTOR, PARTICIPANT),)) == []
    assert await ids("boss", roles=((CREATOR,),), order_by="due", descending=False) == [
        t.todo_id for t in reversed(made)
    ]
    seen, cursor = [], None
    while True:
        page = await queries.query_todos(corp.db, corp.corp_pk, "boss", TodoQuery(subject=tag, limit=3, after=cursor))
        seen += [t.todo_id for t in page.todos]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [t.todo_id for t in reversed(made)]
    with pytest.raises(InvalidArgument):
        await queries.query_todos(corp.db, corp.corp_pk, "boss", TodoQuery(after="x.y"))


async def test_an_approval_task_has_a_todo_that_ends_with_it(corp: CorpCoreMain) -> None:
    li = await corp.actor("li", FLOW)
    inst = await workflow.start_instance(corp.db, li, TWO, {"textField_title": "待办 " + secrets.token_hex(3)})
    task = await corp.task_of(inst.instance_id, "wang")
    todo = await queries.get_todo_by_source(corp.db, corp.corp_pk, str(task), "wang")
    assert (todo.approval_task_id, todo.creator_user_id, todo.subject, todo.done) == (task, "li", inst.title, False)
    assert [e.user_id for e in todo.executors] == ["wang"]
    with pytest.raises(Conflict):
        await actions.update_todo(
            corp.db, _ref(corp), todo.todo_id, TodoChanges(done=True), user_id="wang", operator=None, actor="test"
        )

    # transferred: wang's to-do is done, liu has his own
    await workflow.redirect_task(corp.db, await corp.actor("wang", FLOW), inst.instance_id, task, "liu")
    assert (await queries.get_todo(corp.db, corp.corp_pk, todo.todo_id, "wang")).done
    liu_task = await corp.task_of(inst.instance_id, "liu")
    liu = await queries.get_todo_by_source(corp.db, corp.corp_pk, str(liu_task), "liu")
    assert not liu.done
    open_ids = await queries.query_todos(corp.db, corp.corp_pk, "liu", TodoQuery(done=False, roles=((EXECUTOR,),)))
    assert liu.todo_id in [t.todo_id for t in open_ids.todos]

    await corp.execute(inst.instance_id, "liu")
    chen_task = await corp.task_of(inst.instance_id, "chen")
    await corp.execute(inst.instance_id, "chen", agree=False)
    for user, task_id in (("liu", liu_task), ("chen", chen_task)):
        done = await queries.get_todo_by_source(corp.db, corp.corp_pk, str(task_id), user)
        assert done.done and done.executors[0].done and done.finished_at is not None


async def _all_pages(corp: CorpCoreMain, user: str, query: TodoQuery) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = await queries.query_todos(corp.db, corp.corp_pk, user, replace(query, after=cursor))
        seen += [t.todo_id for t in page.todos]
        cursor = page.next_cursor
        if cursor is None:
            return seen


async def test_approval_todos_are_the_tasks_read_in_one_keyset_with_clients_todos(corp: CorpCoreMain) -> None:
    li = await corp.actor("li", FLOW)
    mine: list[str] = []
    for n in range(3):
        spec = TodoSpec(subject=f"client {n}", creator_user_id="boss", executors=["wang"])
        mine.append((await actions.create_todo(corp.db, _ref(corp), spec, source="test", actor="test")).todo_id)
        await asyncio.sleep(0.002)  # each created in a millisecond of its own: the order is the order of creation
        inst = await workflow.start_instance(corp.db, li, TWO, {"textField_title": f"keyset {n}"})
        task = await corp.task_of(inst.instance_id, "wang")
        mine.append(f"approval-{task}")
        await asyncio.sleep(0.002)
        todo = await queries.get_todo(corp.db, corp.corp_pk, f"approval-{task}", "wang")
        assert (todo.source, todo.source_id, todo.executors[0].user_id, todo.creator_user_id) == (
            "approval",
            str(task),
            "wang",
            "li",
        )
    await corp.approve(inst.instance_id, "wang")  # the last one done

    for descending in (True, False):
        everything = await queries.query_todos(
            corp.db, corp.corp_pk, "wang", TodoQuery(limit=500, descending=descending)
        )
        full = [t.todo_id for t in everything.todos]
        assert everything.next_cursor is None
        assert [t for t in full if t in mine] == (list(reversed(mine)) if descending else mine)
        assert await _all_pages(corp, "wang", TodoQuery(limit=2, descending=descending)) == full
    # filters: done, role, due (approval to-dos have none), kind, order by modification
    open_ids = await _all_pages(corp, "wang", TodoQuery(limit=2, done=False))
    done_ids = await _all_pages(corp, "wang", TodoQuery(limit=2, done=True))
    assert mine[-1] in done_ids and mine[-1] not in open_ids and {mine[1], mine[3]} <= set(open_ids)
    assert not [t for t in await _all_pages(corp, "wang", TodoQuery(limit=3, roles=((PARTICIPANT,),))) if t in mine]
    assert not [t for t in await _all_pages(corp, "wang", TodoQuery(due_from=0)) if t.startswith("approval-")]
    assert not [t for t in await _all_pages(corp, "wang", TodoQuery(kind="meeting")) if t.startswith("approval-")]
    assert mine[1] in await _all_pages(corp, "wang", TodoQuery(kind="todo", limit=2))
    by_change = await _all_pages(corp, "wang", TodoQuery(order_by="modified", limit=2))
    assert by_change[0] == mine[-1]  # finished last
    # the originator holds them as their creator; others do not see them at all
    created = await _all_pages(corp, "li", TodoQuery(roles=((CREATOR,),), limit=2))
    assert {mine[1], mine[3], mine[5]} <= set(created)
    assert not [t for t in await _all_pages(corp, "zhao", TodoQuery(limit=50)) if t in mine]
    with pytest.raises(NotFound):
        await queries.get_todo(corp.db, corp.corp_pk, mine[1], "zhao")
    with pytest.raises(NotFound):
        await queries.get_todo(corp.db, corp.corp_pk, mine[1] + "0" * 19, "wang")
    assert await queries.find_todo(corp.db, corp.corp_pk + 1000, mine[1]) is None
