"""Every mutation writes its domain events to the outbox in its own transaction (``zida.core.events``): topics and
data as ``zida.core.events.models`` says — ``record.*`` with their ``changes``, ``process.*`` and ``task.*`` with the
right assignees and results — in the order things happened, and a failing action writes none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.core.corp import FLOW, LEAVE, OR, RECORDS, STOCK, TWO, CorpCoreMain
from zida.core import forms
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, ZidaError
from zida.core.events.models import DomainEvent
from zida.core.events.outbox import pending_events
from zida.core.records import actions as records
from zida.core.records.filters import Condition
from zida.core.records.remarks import save_remark
from zida.core.workflow import actions as workflow
from zida.core.workflow import queries as approvals
from zida.core.workflow.models import ProcessInstance, TaskView
from zida.db import Database

pytestmark = pytest.mark.anyio


class Corp(CorpCoreMain):
    """corpCoreMain with the events it writes to the outbox and approvals run in its flow app."""

    mark: int = 0  # the id of the last outbox event already seen

    async def new_events(self) -> list[DomainEvent]:
        """The corp's events written since the last call (or since the test began), oldest first."""
        events = await pending_events(self.db, self.corp_pk, after_id=self.mark, limit=10_000)
        if events:
            self.mark = events[-1].event_id
        return events

    async def start(self, form_uuid: str, values: dict[str, Any], user: str = "li") -> str:
        return (await workflow.start_instance(self.db, await self.actor(user, FLOW), form_uuid, values)).instance_id

    async def tasks(self, instance_id: str) -> dict[str, TaskView]:
        """Every task of the instance by assignee (the latest one per person)."""
        _, _, tasks = await approvals.inspect_instance(self.db, self.corp_pk, instance_id)
        return {t.assignee_user_id: t for t in tasks}

    async def execute(
        self, instance_id: str, user: str, *, agree: bool = True, remark: str = "", values: Any = None
    ) -> ProcessInstance:
        task = (await self.tasks(instance_id))[user].task_id
        return await workflow.execute_task(
            self.db, await self.actor(user, FLOW), instance_id, task, agree=agree, remark=remark, values=values
        )


@pytest.fixture(autouse=True)
async def events_from_here(corp: Corp) -> None:
    """``corp.new_events`` starts with what the test itself writes."""
    corp.mark = int(await corp.db.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox_event"))


def summary(events: list[DomainEvent]) -> list[tuple[str, str | None, Any]]:
    """(topic, actor, assignee or result) of each event."""
    return [(e.topic, e.actor, e.data.get("assignee", e.data.get("result"))) for e in events]


# ------------------------------------------------------------------------------------------------ records


async def test_a_saved_record_writes_record_created_with_every_value_as_new(corp: Corp) -> None:
    li = await corp.actor("li")
    saved = await records.save_form_instance(corp.db, li, STOCK, {"textField_sku": "事件", "numberField_qty": "3"})
    (event,) = await corp.new_events()
    assert (event.topic, event.object_id, event.actor, event.app, event.corp_id) == (
        "record.created",
        saved.instance_id,
        "li",
        RECORDS,
        "corpCoreMain",
    )
    assert event.data == {"form": STOCK, "changes": {"textField_sku": {"new": "事件"}, "numberField_qty": {"new": 3}}}
    assert event.at == saved.created_at


async def test_an_update_writes_record_updated_with_only_the_changed_fields(corp: Corp) -> None:
    saved = await records.save_form_instance(
        corp.db, await corp.actor("li"), STOCK, {"textField_sku": "改前", "numberField_qty": 1}
    )
    await corp.new_events()
    await records.update_form_instance(
        corp.db, await corp.actor("adm"), saved.instance_id, {"textField_sku": "改前", "numberField_qty": 2}
    )
    (event,) = await corp.new_events()
    assert (event.topic, event.object_id, event.actor) == ("record.updated", saved.instance_id, "adm")
    assert event.data == {"form": STOCK, "changes": {"numberField_qty": {"old": 1, "new": 2}}}


async def test_a_delete_writes_record_deleted(corp: Corp) -> None:
    saved = await records.save_form_instance(corp.db, await corp.actor("li"), STOCK, {"textField_sku": "删"})
    await corp.new_events()
    await records.delete_form_instance(corp.db, await corp.actor("li"), saved.instance_id)
    (event,) = await corp.new_events()
    assert (event.topic, event.object_id, event.actor, event.data) == (
        "record.deleted",
        saved.instance_id,
        "li",
        {"form": STOCK},
    )


async def test_batches_write_one_event_per_record_in_order(corp: Corp) -> None:
    adm = await corp.actor("adm")
    form = await corp.form(STOCK)
    items: list[Any] = [
        {"textField_sku": "批0"},
        {"textField_sku": "批1", "numberField_qty": "x"},
        {"textField_sku": "批2"},
    ]
    saved = await records.save_form_instances(corp.db, adm, STOCK, items, keep_running=True)
    created = await corp.new_events()
    assert [(e.topic, e.object_id) for e in created] == [("record.created", i) for i in saved.ids]
    assert [e.data["changes"]["textField_sku"]["new"] for e in created] == ["批0", "批2"]
    await records.update_form_instances(corp.db, adm, form, [(i, {"numberField_qty": 5}) for i in saved.ids])
    updated = await corp.new_events()
    assert [(e.topic, e.object_id, e.data["changes"]) for e in updated] == [
        ("record.updated", i, {"numberField_qty": {"old": None, "new": 5}}) for i in saved.ids
    ]
    await records.delete_form_instances(corp.db, adm, form, saved.ids)
    assert [(e.topic, e.object_id) for e in await corp.new_events()] == [("record.deleted", i) for i in saved.ids]


async def test_an_upsert_writes_created_then_updated(corp: Corp) -> None:
    adm, form = await corp.actor("adm"), await corp.form(STOCK)
    condition = Condition("textField_sku", "eq", "插入或更新事件")
    (iid,) = await records.upsert_form_instance(corp.db, adm, form, condition, {"textField_sku": "插入或更新事件"})
    await records.upsert_form_instance(corp.db, adm, form, condition, {"numberField_qty": 9})
    assert [(e.topic, e.object_id, e.data["changes"]) for e in await corp.new_events()] == [
        ("record.created", iid, {"textField_sku": {"new": "插入或更新事件"}}),
        ("record.updated", iid, {"numberField_qty": {"old": None, "new": 9}}),
    ]


async def test_a_sub_table_row_update_writes_the_tables_old_and_new_rows(corp: Corp) -> None:
    saved = await records.save_form_instance(
        corp.db,
        await corp.actor("adm"),
        STOCK,
        {"textField_sku": "子表事件", "tableField_moves": [{"numberField_delta": 1}]},
    )
    (row,) = saved.data["tableField_moves"]
    await corp.new_events()
    await records.update_sub_table_rows(
        corp.db,
        await corp.actor("adm"),
        saved.instance_id,
        "tableField_moves",
        [{"rowId": row["__rowId"], "numberField_delta": 2}],
    )
    (event,) = await corp.new_events()
    assert event.topic == "record.updated"
    assert event.data["changes"] == {"tableField_moves": {"old": [row], "new": [{**row, "numberField_delta": 2}]}}


async def test_a_comment_writes_record_commented(corp: Corp) -> None:
    saved = await records.save_form_instance(corp.db, await corp.actor("li"), STOCK, {"textField_sku": "评论事件"})
    first = await save_remark(corp.db, await corp.actor("li"), saved.instance_id, "请看", at_user_ids=("adm",))
    reply = await save_remark(corp.db, await corp.actor("adm"), saved.instance_id, "已看", reply_id=first)
    events = await corp.new_events()
    assert [(e.topic, e.object_id, e.actor, e.data) for e in events[1:]] == [
        (
            "record.commented",
            saved.instance_id,
            "li",
            {"form": STOCK, "comment": first, "content": "请看", "reply_to": None, "mentions": ["adm"]},
        ),
        (
            "record.commented",
            saved.instance_id,
            "adm",
            {"form": STOCK, "comment": reply, "content": "已看", "reply_to": first, "mentions": []},
        ),
    ]


async def test_a_failing_action_writes_no_event(corp: Corp) -> None:
    li, adm = await corp.actor("li"), await corp.actor("adm")
    form = await corp.form(STOCK)
    saved = await records.save_form_instance(corp.db, adm, STOCK, {"textField_sku": "失败"})
    await records.save_form_instances(corp.db, adm, STOCK, [{"textField_sku": "失败-双胞胎"}] * 2)
    flow = await corp.start(TWO, {"textField_title": "失败"})
    wang_task = (await corp.tasks(flow))["wang"].task_id
    li_flow, chen = await corp.actor("li", FLOW), await corp.actor("chen", FLOW)
    await corp.new_events()
    failing: list[tuple[Callable[[], Awaitable[Any]], type[ZidaError]]] = [
        (
            lambda: records.save_form_instances(
                corp.db, adm, STOCK, [{"textField_sku": "a"}, {"numberField_qty": "x"}]
            ),
            InvalidArgument,
        ),
        (
            lambda: records.update_form_instance(corp.db, adm, saved.instance_id, {"numberField_qty": "x"}),
            InvalidArgument,
        ),
        (
            lambda: records.update_form_instance(corp.db, li, saved.instance_id, {"numberField_qty": 1}),
            PermissionDenied,
        ),
        (
            lambda: records.update_form_instances(
                corp.db,
                adm,
                form,
                [(saved.instance_id, {"numberField_qty": 1}), ("FINST-NOPE", {"numberField_qty": 1})],
            ),
            NotFound,
        ),
        (lambda: records.delete_form_instances(corp.db, adm, form, [saved.instance_id, "FINST-NOPE"]), NotFound),
        (
            lambda: records.upsert_form_instance(
                corp.db, adm, form, Condition("textField_sku", "eq", "失败-双胞胎"), {"numberField_qty": 1}
            ),
            Conflict,
        ),
        (
            lambda: records.update_sub_table_rows(
                corp.db, adm, saved.instance_id, "tableField_moves", [{"rowId": "x"}]
            ),
            NotFound,
        ),
        (lambda: save_remark(corp.db, li, saved.instance_id, "看不到"), PermissionDenied),
        (lambda: workflow.start_instance(corp.db, li_flow, LEAVE, {"numberField_days": "x"}), InvalidArgument),
        (lambda: workflow.execute_task(corp.db, chen, flow, wang_task, agree=True), PermissionDenied),
        (lambda: workflow.terminate_instance(corp.db, chen, flow), PermissionDenied),
        (lambda: workflow.update_instance(corp.db, chen, flow, {"textField_title": "x"}), PermissionDenied),
        (lambda: workflow.update_instance(corp.db, li_flow, flow, {"numberField_amount": "x"}), InvalidArgument),
        (lambda: workflow.redirect_task(corp.db, chen, flow, wang_task, "sun"), PermissionDenied),
        (lambda: forms.delete_record(corp.db, chen, flow), PermissionDenied),
    ]
    for n, (call, error) in enumerate(failing):
        with pytest.raises(error):
            await call()
        assert await corp.new_events() == [], n


# ---------------------------------------------------------------------------------------------- approvals


async def test_starting_and_agreeing_to_the_end_writes_the_approvals_story(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "事件同意"})
    started = await corp.new_events()
    assert summary(started) == [
        ("record.created", "li", None),
        ("process.started", "li", None),
        ("task.created", "li", "wang"),
    ]
    facts = {"form": TWO, "process": "TPROC--CORE-TWO", "title": "李员工发起的两级审批"}
    inst = await approvals.inspect_instance(corp.db, corp.corp_pk, iid)
    assert started[1].object_id == iid and started[1].data == {
        **facts,
        "originator": "li",
        "started_at": inst[0].created_at,
    }
    wang = (await corp.tasks(iid))["wang"]
    assert (started[2].object_id, started[2].app) == (str(wang.task_id), FLOW)
    assert started[2].data == {
        **facts,
        "process_instance": iid,
        "node": "node_one",
        "assignee": "wang",
        "created_at": wang.created_at,
    }
    await corp.execute(iid, "wang", remark="一审通过")
    await corp.execute(iid, "chen", remark="二审通过")
    steps = await corp.new_events()
    assert summary(steps) == [
        ("task.finished", "wang", "wang"),
        ("task.created", "wang", "chen"),
        ("task.finished", "chen", "chen"),
        ("process.finished", "chen", "agree"),
    ]
    tasks = await corp.tasks(iid)
    first_done, _, last_done, finished = steps
    assert (first_done.data["result"], first_done.data["remark"], first_done.data["node"]) == (
        "agree",
        "一审通过",
        "node_one",
    )
    assert first_done.data["created_at"] == tasks["wang"].created_at  # the task's creation, not the step's time
    assert first_done.data["finished_at"] == tasks["wang"].finished_at
    assert (last_done.object_id, last_done.data["remark"]) == (str(tasks["chen"].task_id), "二审通过")
    assert finished.object_id == iid and finished.data["finished_at"] == (await corp.tasks(iid))["chen"].finished_at


async def test_a_refusal_finishes_the_task_and_the_process_as_disagree(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "事件拒绝"})
    await corp.new_events()
    await corp.execute(iid, "wang", agree=False, remark="不行")
    events = await corp.new_events()
    assert summary(events) == [("task.finished", "wang", "wang"), ("process.finished", "wang", "disagree")]
    assert (events[0].data["result"], events[0].data["remark"]) == ("disagree", "不行")


async def test_an_or_sign_decision_cancels_the_other_tasks_with_their_assignees(corp: Corp) -> None:
    iid = await corp.start(OR, {"textField_title": "事件或签"}, user="liu")
    assert summary(await corp.new_events())[2:] == [
        ("task.created", "liu", "wang"),
        ("task.created", "liu", "chen"),
        ("task.created", "liu", "zhao"),
    ]
    tasks = await corp.tasks(iid)
    await corp.execute(iid, "chen")
    events = await corp.new_events()
    assert summary(events) == [
        ("task.finished", "chen", "chen"),
        ("task.cancelled", "chen", "wang"),
        ("task.cancelled", "chen", "zhao"),
        ("process.finished", "chen", "agree"),
    ]
    assert [e.object_id for e in events[1:3]] == [str(tasks["wang"].task_id), str(tasks["zhao"].task_id)]
    assert "result" not in events[1].data


async def test_a_redirect_finishes_one_task_and_creates_another(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "事件转交"})
    await corp.new_events()
    task = (await corp.tasks(iid))["wang"].task_id
    await workflow.redirect_task(corp.db, await corp.actor("wang", FLOW), iid, task, "sun", remark="出差中")
    events = await corp.new_events()
    assert summary(events) == [("task.finished", "wang", "wang"), ("task.created", "wang", "sun")]
    assert (events[0].data["result"], events[0].data["remark"]) == ("redirect", "出差中")
    assert events[1].object_id == str((await corp.tasks(iid))["sun"].task_id)


async def test_a_return_to_the_submitter_and_the_resubmission(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "事件退回"})
    await corp.new_events()
    task = (await corp.tasks(iid))["wang"].task_id
    await workflow.return_task(corp.db, await corp.actor("wang", FLOW), iid, task, to_node="sid-restartevent")
    await corp.execute(iid, "li", remark="重新提交")
    events = await corp.new_events()
    assert summary(events) == [
        ("task.finished", "wang", "wang"),
        ("task.created", "wang", "li"),
        ("task.finished", "li", "li"),
        ("task.created", "li", "wang"),
    ]
    assert [e.data.get("result") for e in events] == ["return", None, "agree", None]


async def test_terminating_cancels_the_open_tasks_then_terminates(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "事件终止"})
    await corp.new_events()
    await workflow.terminate_instance(corp.db, await corp.actor("li", FLOW), iid)
    events = await corp.new_events()
    assert summary(events) == [("task.cancelled", "li", "wang"), ("process.terminated", "li", None)]
    assert "result" not in events[1].data and events[1].data["finished_at"] >= events[1].data["started_at"]


async def test_a_withdrawal_cancels_the_open_tasks_then_terminates(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "事件撤回"})
    await corp.new_events()
    await workflow.withdraw_instance(corp.db, await corp.actor("li", FLOW), iid)
    assert summary(await corp.new_events()) == [("task.cancelled", "li", "wang"), ("process.terminated", "li", None)]


async def test_deleting_a_running_approval_terminates_then_deletes_it(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "事件删除"})
    await corp.new_events()
    await workflow.delete_instance(corp.db, await corp.actor("adm", FLOW), iid)
    events = await corp.new_events()
    assert summary(events) == [
        ("task.cancelled", "adm", "wang"),
        ("process.terminated", "adm", None),
        ("process.deleted", "adm", None),
        ("record.deleted", "adm", None),
    ]
    assert {e.object_id for e in events[1:]} == {iid} and events[2].data["originator"] == "li"


async def test_changing_an_approvals_values_writes_record_updated(corp: Corp) -> None:
    iid = await corp.start(LEAVE, {"numberField_days": 1})
    await corp.new_events()
    await workflow.update_instance(corp.db, await corp.actor("li", FLOW), iid, {"numberField_days": 2})
    (updated,) = await corp.new_events()
    assert (updated.topic, updated.object_id, updated.data) == (
        "record.updated",
        iid,
        {"form": LEAVE, "changes": {"numberField_days": {"old": 1, "new": 2}}},
    )
    task = (await corp.tasks(iid))["wang"].task_id
    await workflow.execute_task(
        corp.db, await corp.actor("wang", FLOW), iid, task, agree=True, values={"numberField_days": 5}
    )
    assert summary(await corp.new_events()) == [
        ("record.updated", "wang", None),
        ("task.finished", "wang", "wang"),
        ("task.created", "wang", "zhao"),
    ]


async def test_a_corps_events_are_its_own(corp: Corp, db: Database) -> None:
    iid = await corp.start(TWO, {"textField_title": "只属于本公司"})
    mine = await corp.new_events()
    assert {e.corp_id for e in mine} == {"corpCoreMain"} and iid in {e.object_id for e in mine}
    other = int(await db.fetchval("SELECT id FROM corp WHERE corp_id = 'corpCoreOther'"))
    theirs = await pending_events(db, other, after_id=mine[0].event_id - 1)
    assert not {e.event_id for e in theirs} & {e.event_id for e in mine}
