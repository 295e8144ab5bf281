"""The approval hot path sends a pinned number of SQL statements (the Zulip way: a regression shows up here first).

Counts are those of a warm server (form schema, definition, actor and directory caches filled, a block of
process instance keys reserved): startInstance writes in one transaction and reads nothing; getRunningTasks is
one query; executeTask reads the instance, then writes the step, and writes the record only when its status or
result changes. On PostgreSQL a write is one statement of data-modifying CTEs (a transaction by itself: the
whole of startInstance — record, its log, instance, tasks, history, events — and executeTask's whole write); on
SQLite, where a statement costs no round trip, they are separate statements in one transaction. If a change
needs more statements, change the pin and say why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import load_fixture_bundle
from zida.core.access.members import app_actor
from zida.core.errors import Conflict
from zida.core.principals import AppActor
from zida.core.workflow import actions as workflow
from zida.core.workflow import queries as approval_queries
from zida.db import Database, open_database

pytestmark = pytest.mark.anyio


@dataclass
class Log:
    """The statements one piece of work sent, and how many transactions it opened."""

    statements: list[str] = field(default_factory=list)
    transactions: int = 0

    def __str__(self) -> str:
        return f"{self.transactions} transaction(s):\n" + "\n".join("  " + s[:140] for s in self.statements)


class _Counted:
    """A connection that records each statement it is sent (executemany is one statement)."""

    def __init__(self, inner: Any, log: list[Log]) -> None:
        self._inner = inner
        self._log = log
        self.sql = inner.sql

    def _note(self, query: str) -> None:
        if self._log:
            self._log[-1].statements.append(" ".join(query.split()))

    async def fetch(self, query: str, params: Any = None) -> Any:
        self._note(query)
        return await self._inner.fetch(query, params)

    async def fetchrow(self, query: str, params: Any = None) -> Any:
        self._note(query)
        return await self._inner.fetchrow(query, params)

    async def fetchval(self, query: str, params: Any = None) -> Any:
        self._note(query)
        return await self._inner.fetchval(query, params)

    async def execute(self, query: str, params: Any = None) -> Any:
        self._note(query)
        return await self._inner.execute(query, params)

    async def executemany(self, query: str, params: Iterable[Any]) -> None:
        self._note(query)
        await self._inner.executemany(query, params)


class CountingDatabase(_Counted):
    """The real session database, seen through a window that counts what goes through it."""

    def __init__(self, inner: Database) -> None:
        self._logs: list[Log] = []
        super().__init__(inner, self._logs)
        self.url = inner.url

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Counted]:
        if self._logs:
            self._logs[-1].transactions += 1
        async with self._inner.transaction() as tx:
            yield _Counted(tx, self._logs)

    @contextmanager
    def counting(self) -> Iterator[Log]:
        log = Log()
        self._logs.append(log)
        try:
            yield log
        finally:
            self._logs.remove(log)


@pytest.fixture(scope="module")
def flow_url(loaded_url: str) -> str:
    load_fixture_bundle(loaded_url, "corp_flow.yaml")
    return loaded_url


@pytest.fixture
async def counted(flow_url: str) -> AsyncIterator[CountingDatabase]:
    db = await open_database(flow_url)
    try:
        yield CountingDatabase(db)
    finally:
        await db.close()


async def _actors(db: CountingDatabase, *users: str) -> list[AppActor]:
    row = await db.fetchrow("SELECT id, corp_pk FROM app WHERE app_type = 'APP_FLOW1'")
    assert row is not None
    return [await app_actor(db, row["corp_pk"], row["id"], user) for user in users]


async def _approve(db: CountingDatabase, instance_id: str, approver: AppActor) -> None:
    (task,) = [
        t
        for t in await approval_queries.running_tasks(db, approver, [instance_id], strict=True)
        if t.assignee_user_id == approver.user_id
    ]
    await workflow.execute_task(db, approver, instance_id, task.task_id, agree=True, remark="ok")


async def test_start_and_two_approvals_send_a_pinned_number_of_statements(counted: CountingDatabase) -> None:
    li, wang, chen = await _actors(counted, "li", "wang", "chen")
    values = {"textField_title": "statement counts", "numberField_amount": 12}
    # FORM-FLOW-TWO: wang, then chen. A first instance fills the caches a running server has filled long ago.
    warm = await workflow.start_instance(counted, li, "FORM-FLOW-TWO", values)
    await _approve(counted, warm.instance_id, wang)
    await _approve(counted, warm.instance_id, chen)

    pg = counted.sql.name == "postgresql"
    with counted.counting() as start:
        inst = await workflow.start_instance(counted, li, "FORM-FLOW-TWO", values)
    # the record, its CREATE log, the instance, its task, the start record and the outbox events (PostgreSQL: as
    # one statement, the instance's key reserved ahead); on SQLite also the assignee's notification and its inbox
    # row (zida.core.messages.approvals), which on PostgreSQL are CTEs of the one statement. The task's to-do is
    # the task row itself (zida.core.todos.approvals): nothing more.
    assert (start.transactions, len(start.statements)) == ((0, 1) if pg else (1, 8)), start
    if pg:
        assert start.statements[0].startswith("WITH record AS (INSERT INTO form_instance"), start
    else:
        assert [s.split()[0] for s in start.statements] == ["INSERT"] * 8, start

    with counted.counting() as running:
        tasks = await approval_queries.running_tasks(counted, wang, [inst.instance_id], strict=True)
    assert [t.assignee_user_id for t in tasks] == ["wang"]
    assert (running.transactions, len(running.statements)) == (0, 1), running

    with counted.counting() as first:
        await workflow.execute_task(counted, wang, inst.instance_id, tasks[0].task_id, agree=True, remark="ok")
    # read the instance; then the instance (guarded by its lock_version), the new task, the finished task
    # (RETURNING its creation time for the events), the history, the outbox; the record is not written: its
    # status (RUNNING) and result stay
    # (SQLite: and the new assignee's notification: two statements)
    assert (first.transactions, len(first.statements)) == ((0, 2) if pg else (1, 8)), first
    assert not any("UPDATE form_instance" in s for s in first.statements), first
    assert first.statements[0].startswith("SELECT")
    assert first.statements[1].startswith("WITH guard AS (UPDATE process_instance" if pg else "UPDATE process_instance")

    (task,) = await approval_queries.running_tasks(counted, chen, [inst.instance_id], strict=True)
    with counted.counting() as last:
        done = await workflow.execute_task(counted, chen, inst.instance_id, task.task_id, agree=True, remark="ok")
    # as above without a new task (the finish record goes in the same history insert), and the record's status
    # (SQLite: the originator's notification)
    assert (last.transactions, len(last.statements)) == ((0, 2) if pg else (1, 8)), last
    assert any("UPDATE form_instance" in s for s in last.statements), last
    assert (done.status, done.result) == ("COMPLETED", "agree")


async def test_a_refused_execution_reads_once_and_writes_nothing(counted: CountingDatabase) -> None:
    li, wang = await _actors(counted, "li", "wang")
    inst = await workflow.start_instance(counted, li, "FORM-FLOW-TWO", {"textField_title": "race"})
    (task,) = await approval_queries.running_tasks(counted, wang, [inst.instance_id], strict=True)
    await workflow.execute_task(counted, wang, inst.instance_id, task.task_id, agree=True, remark="first")
    # Agreeing again reads the instance, sees the task is done, and writes nothing.
    with counted.counting() as again, pytest.raises(Conflict):
        await workflow.execute_task(counted, wang, inst.instance_id, task.task_id, agree=True, remark="again")
    assert (again.transactions, len(again.statements)) == (0, 1), again


async def test_the_record_changes_only_when_its_approval_status_does(counted: CountingDatabase) -> None:
    li, wang, chen = await _actors(counted, "li", "wang", "chen")
    inst = await workflow.start_instance(counted, li, "FORM-FLOW-TWO", {"textField_title": "modified"})

    async def record() -> tuple[str, str | None, int]:
        row = await counted.fetchrow(
            "SELECT instance_status, approved_result, modified_at FROM form_instance WHERE instance_id = :i",
            {"i": inst.instance_id},
        )
        assert row is not None
        return row["instance_status"], row["approved_result"], row["modified_at"]

    started = await record()
    await _approve(counted, inst.instance_id, wang)  # the first node: the instance keeps RUNNING, no result
    assert await record() == started
    await _approve(counted, inst.instance_id, chen)
    status, result, modified = await record()
    assert (status, result) == ("COMPLETED", "agree")
    assert modified >= started[2]
    done = await approval_queries.get_instance(counted, li, inst.instance_id)
    assert (done.record.instance_status, done.record.modified_at) == ("COMPLETED", modified)


async def test_a_page_of_instances_reads_its_histories_and_tasks_in_two_statements(counted: CountingDatabase) -> None:
    li, wang = await _actors(counted, "li", "wang")
    page = [
        await workflow.start_instance(counted, li, "FORM-FLOW-TWO", {"textField_title": f"page {n}"}) for n in range(5)
    ]
    await _approve(counted, page[0].instance_id, wang)
    page = await approval_queries.get_instances(counted, li, [i.instance_id for i in page])
    await approval_queries.instances_histories(counted, page[:1])  # the process definition cached, as in a server
    with counted.counting() as read:
        histories = await approval_queries.instances_histories(counted, page)
    assert (read.transactions, len(read.statements)) == (0, 2), read
    for inst, (definition, history, tasks) in zip(page, histories, strict=True):
        alone = await approval_queries.instance_history(counted, li, inst.instance_id)
        assert (definition, history, tasks) == alone[1:]
    assert [len(tasks) for _, _, tasks in histories] == [2, 1, 1, 1, 1]
