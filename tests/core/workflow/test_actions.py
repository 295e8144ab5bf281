"""Approval actions at the core level (``zida.core.workflow.actions``), on the real database: start, agree and
refuse, or-sign (also raced), countersign, sequential, redirect, return and resubmission, terminate, withdraw,
delete, updates by running-task holders and executions that change values. After every test the stored workflow of
the corp keeps every rule (``zida.core.workflow.consistency``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from tests.core.corp import FLOW, LEAVE, OR, TWO, CorpCoreMain
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, ZidaError
from zida.core.events.outbox import pending_events
from zida.core.records import queries as record_queries
from zida.core.workflow import actions as workflow
from zida.core.workflow import queries as approvals
from zida.core.workflow.models import ProcessInstance

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("consistent_workflow")]

AND = "FORM-CORE-AND"  # countersign: zhao, qian
SEQ = "FORM-CORE-SEQ"  # sequential: wang, then chen
RESTART = "sid-restartevent"


class Corp(CorpCoreMain):
    """corpCoreMain in its flow app, with what its approvals' instances, tasks and operation records hold."""

    default_app = FLOW

    async def start(self, form_uuid: str, values: dict[str, Any], user: str = "li", **kwargs: Any) -> str:
        inst = await workflow.start_instance(self.db, await self.actor(user), form_uuid, values, **kwargs)
        return inst.instance_id

    async def running(self, instance_id: str) -> list[tuple[str, str]]:
        """(node, assignee) of the running tasks, sorted."""
        tasks = await approvals.running_tasks(self.db, await self.actor("adm"), [instance_id], strict=True)
        return sorted((t.node_id, t.assignee_user_id) for t in tasks)

    async def assignees(self, instance_id: str) -> list[str]:
        return [user for _, user in await self.running(instance_id)]

    async def instance(self, instance_id: str) -> ProcessInstance:
        return await approvals.get_instance(self.db, await self.actor("adm"), instance_id)

    async def outcome(self, instance_id: str) -> tuple[str, str | None]:
        inst = await self.instance(instance_id)
        return inst.status, inst.result

    async def tasks(self, instance_id: str) -> list[tuple[str, str, str | None]]:
        """(assignee, status, result) of every task, oldest first."""
        _, _, tasks = await approvals.inspect_instance(self.db, self.corp_pk, instance_id)
        return [(t.assignee_user_id, t.status, t.result) for t in tasks]

    async def history(self, instance_id: str) -> list[tuple[str, str | None]]:
        """(kind, actor) of the operation records, oldest first."""
        _, ops, _ = await approvals.inspect_instance(self.db, self.corp_pk, instance_id)
        return [(o.kind, o.actor_user_id) for o in ops]

    async def count(self, table_sql: str) -> int:
        return int(await self.db.fetchval(table_sql, {"c": self.corp_pk}))


async def raced(*calls: Any) -> list[ZidaError | None]:
    """Run the calls at once; None for each success, else the core error it raised."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, ZidaError):
            raise r
    return [r if isinstance(r, ZidaError) else None for r in results]


# --------------------------------------------------------------------------------------------------- start


async def test_starting_an_approval_creates_its_record_and_its_first_task(corp: Corp) -> None:
    inst = await workflow.start_instance(
        corp.db, await corp.actor("li"), TWO, {"textField_title": "发起", "numberField_amount": 10}
    )
    assert inst.instance_id.startswith("FINST-") and inst.record.process_instance_id == inst.instance_id
    assert (inst.status, inst.result, inst.originator_user_id, inst.process_code) == (
        "RUNNING",
        None,
        "li",
        "TPROC--CORE-TWO",
    )
    assert inst.title == "李员工发起的两级审批"
    assert await corp.running(inst.instance_id) == [("node_one", "wang")]
    record, _ = await record_queries.get_form_instance(corp.db, await corp.actor("li"), inst.instance_id)
    assert (record.instance_status, record.approved_result) == ("RUNNING", None)
    assert record.data == {"textField_title": "发起", "numberField_amount": 10}
    assert await corp.history(inst.instance_id) == [("start", "li")]


async def test_a_start_that_cannot_be_made_writes_nothing(corp: Corp) -> None:
    li = await corp.actor("li")
    instances = "SELECT count(*) FROM process_instance WHERE corp_pk = :c"
    records = "SELECT count(*) FROM form_instance WHERE corp_pk = :c"
    events = "SELECT count(*) FROM outbox_event WHERE corp_pk = :c"
    before = [await corp.count(q) for q in (instances, records, events)]
    cases: list[tuple[str, dict[str, Any], dict[str, Any], type[ZidaError], str]] = [
        ("FORM-CORE-PLAIN", {"textField_title": "x"}, {}, Conflict, "form.receipt_form_cannot_start"),
        ("FORM-CORE-NOPE", {"textField_title": "x"}, {}, NotFound, "form.not_found"),
        (LEAVE, {"numberField_days": "many"}, {}, InvalidArgument, "form_data.expect_number"),
        (LEAVE, {"textField_reason": "no days"}, {}, InvalidArgument, "form_data.required"),
        (LEAVE, {"numberField_days": 1}, {"process_code": "TPROC--OTHER"}, InvalidArgument, "process.code_mismatch"),
        (LEAVE, {"numberField_days": 1}, {"department_id": 20}, InvalidArgument, "process.unknown_department"),
        (LEAVE, {"numberField_days": 1}, {"department_id": 999}, InvalidArgument, "process.unknown_department"),
    ]
    for form_uuid, values, kwargs, error, reason in cases:
        with pytest.raises(error) as err:
            await workflow.start_instance(corp.db, li, form_uuid, values, **kwargs)
        assert err.value.reason == reason
    assert [await corp.count(q) for q in (instances, records, events)] == before


# ------------------------------------------------------------------------------------------------ deciding


async def test_agreeing_at_every_node_completes_the_approval(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "同意"})
    done = await corp.execute(iid, "wang", remark="一审通过")
    assert (done.status, await corp.running(iid)) == ("RUNNING", [("node_two", "chen")])
    done = await corp.execute(iid, "chen", remark="二审通过")
    assert (done.status, done.result, done.finished_at is not None) == ("COMPLETED", "agree", True)
    assert await corp.outcome(iid) == ("COMPLETED", "agree")
    record, _ = await record_queries.get_form_instance(corp.db, await corp.actor("li"), iid)
    assert (record.instance_status, record.approved_result) == ("COMPLETED", "agree")
    assert await corp.tasks(iid) == [("wang", "COMPLETED", "agree"), ("chen", "COMPLETED", "agree")]
    assert [kind for kind, _ in await corp.history(iid)] == ["start", "agree", "agree", "finish"]


async def test_a_refusal_ends_the_approval_as_disagree(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "拒绝"})
    await corp.execute(iid, "wang", agree=False, remark="不行")
    assert await corp.outcome(iid) == ("COMPLETED", "disagree")
    assert await corp.running(iid) == []
    assert await corp.tasks(iid) == [("wang", "COMPLETED", "disagree")]


async def test_only_its_assignee_decides_a_task_and_only_once(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "只一次"})
    other = await corp.start(TWO, {"textField_title": "别的实例"})
    task = await corp.task_of(iid, "wang")
    with pytest.raises(PermissionDenied) as err:
        await workflow.execute_task(corp.db, await corp.actor("chen"), iid, task, agree=True)
    assert err.value.reason == "task.not_assignee" and str(task) in err.value.message
    for wrong in (task + 999, await corp.task_of(other, "wang")):  # unknown, or another instance's
        with pytest.raises(NotFound):
            await workflow.execute_task(corp.db, await corp.actor("wang"), iid, wrong, agree=True)
    with pytest.raises(NotFound):
        await workflow.execute_task(corp.db, await corp.actor("wang"), "FINST-NOPE", task, agree=True)
    with pytest.raises(NotFound):  # an instance of another app does not exist for its actors
        await workflow.execute_task(corp.db, await corp.actor("wang", "APP_CORE_OTHER"), iid, task, agree=True)
    assert await corp.running(iid) == [("node_one", "wang")]
    await workflow.execute_task(corp.db, await corp.actor("wang"), iid, task, agree=True)
    with pytest.raises(Conflict):
        await workflow.execute_task(corp.db, await corp.actor("wang"), iid, task, agree=False)
    assert await corp.tasks(iid) == [("wang", "COMPLETED", "agree"), ("chen", "RUNNING", None)]


async def test_the_first_or_sign_decision_cancels_the_other_approvers(corp: Corp) -> None:
    iid = await corp.start(OR, {"textField_title": "或签"}, user="liu")
    assert await corp.assignees(iid) == ["chen", "wang", "zhao"]
    await corp.execute(iid, "zhao")
    assert await corp.tasks(iid) == [
        ("wang", "CANCELED", None),
        ("chen", "CANCELED", None),
        ("zhao", "COMPLETED", "agree"),
    ]
    assert await corp.outcome(iid) == ("COMPLETED", "agree")


async def test_of_many_simultaneous_executions_of_one_or_sign_task_exactly_one_wins(corp: Corp) -> None:
    iid = await corp.start(OR, {"textField_title": "并发或签"}, user="liu")
    task = await corp.task_of(iid, "wang")
    wang = await corp.actor("wang")
    mark = int(await corp.db.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox_event"))
    outcomes = await raced(
        *(workflow.execute_task(corp.db, wang, iid, task, agree=True, remark=f"抢{n}") for n in range(20))
    )
    assert Counter(type(o).__name__ for o in outcomes) == {"NoneType": 1, "Conflict": 19}
    assert await corp.tasks(iid) == [
        ("wang", "COMPLETED", "agree"),
        ("chen", "CANCELED", None),
        ("zhao", "CANCELED", None),
    ]
    assert [kind for kind, _ in await corp.history(iid)].count("agree") == 1
    events = await pending_events(corp.db, corp.corp_pk, after_id=mark, limit=1000)
    assert Counter(e.topic for e in events) == {"task.finished": 1, "task.cancelled": 2, "process.finished": 1}


async def test_when_every_or_sign_approver_decides_at_once_exactly_one_decision_counts(corp: Corp) -> None:
    iid = await corp.start(OR, {"textField_title": "三人同时"}, user="liu")
    users = ("wang", "chen", "zhao")
    tasks = {u: await corp.task_of(iid, u) for u in users}
    actors = {u: await corp.actor(u) for u in users}
    calls = [users[n % 3] for n in range(15)]
    outcomes = await raced(
        *(workflow.execute_task(corp.db, actors[u], iid, tasks[u], agree=n % 2 == 0) for n, u in enumerate(calls))
    )
    assert [o is None for o in outcomes].count(True) == 1
    assert all(isinstance(o, Conflict) for o in outcomes if o is not None)
    n = [o is None for o in outcomes].index(True)
    winner, agreed = calls[n], n % 2 == 0
    assert {u: s for u, s, _ in await corp.tasks(iid)} == {u: "COMPLETED" if u == winner else "CANCELED" for u in users}
    assert await corp.outcome(iid) == ("COMPLETED", "agree" if agreed else "disagree")


async def test_a_countersign_waits_for_every_approver(corp: Corp) -> None:
    iid = await corp.start(AND, {"textField_title": "会签"})
    assert await corp.assignees(iid) == ["qian", "zhao"]
    await corp.execute(iid, "zhao")
    assert (await corp.assignees(iid), await corp.outcome(iid)) == (["qian"], ("RUNNING", None))
    await corp.execute(iid, "qian")
    assert await corp.outcome(iid) == ("COMPLETED", "agree")


async def test_countersign_approvers_deciding_at_once_are_all_counted(corp: Corp) -> None:
    for _ in range(5):
        iid = await corp.start(AND, {"textField_title": "会签同时"})
        zhao, qian = await corp.task_of(iid, "zhao"), await corp.task_of(iid, "qian")
        outcomes = await raced(
            workflow.execute_task(corp.db, await corp.actor("zhao"), iid, zhao, agree=True),
            workflow.execute_task(corp.db, await corp.actor("qian"), iid, qian, agree=True),
        )
        assert outcomes == [None, None]
        assert await corp.outcome(iid) == ("COMPLETED", "agree")
        assert await corp.tasks(iid) == [("zhao", "COMPLETED", "agree"), ("qian", "COMPLETED", "agree")]


async def test_a_termination_racing_an_approval_either_wins_or_loses_whole(corp: Corp) -> None:
    for _ in range(5):
        iid = await corp.start(TWO, {"textField_title": "终止竞争"})
        task = await corp.task_of(iid, "wang")
        agreed, terminated = await raced(
            workflow.execute_task(corp.db, await corp.actor("wang"), iid, task, agree=True),
            workflow.terminate_instance(corp.db, await corp.actor("li"), iid),
        )
        assert terminated is None  # terminating a running instance always succeeds
        if agreed is None:  # the agreement came first: chen's task was created, then terminated
            assert await corp.tasks(iid) == [("wang", "COMPLETED", "agree"), ("chen", "TERMINATED", None)]
        else:
            assert isinstance(agreed, Conflict)
            assert await corp.tasks(iid) == [("wang", "TERMINATED", None)]
        assert await corp.outcome(iid) == ("TERMINATED", None)


async def test_a_countersign_refused_by_one_approver_is_refused(corp: Corp) -> None:
    iid = await corp.start(AND, {"textField_title": "会签拒绝"})
    await corp.execute(iid, "qian", agree=False)
    assert await corp.outcome(iid) == ("COMPLETED", "disagree")
    assert await corp.running(iid) == []


async def test_sequential_approvers_decide_one_after_another(corp: Corp) -> None:
    iid = await corp.start(SEQ, {"textField_title": "依次"})
    assert await corp.running(iid) == [("node_seq", "wang")]
    await corp.execute(iid, "wang")
    assert await corp.running(iid) == [("node_seq", "chen")]
    await corp.execute(iid, "chen")
    assert await corp.outcome(iid) == ("COMPLETED", "agree")


# ------------------------------------------------------------------------------------------- redirect, return


async def test_a_task_is_redirected_by_its_assignee_or_by_an_app_admin(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "转交"})
    task = await corp.task_of(iid, "wang")
    with pytest.raises(PermissionDenied):  # not his task
        await workflow.redirect_task(corp.db, await corp.actor("zhou"), iid, task, "sun")
    with pytest.raises(PermissionDenied):  # not an app admin
        await workflow.redirect_task(corp.db, await corp.actor("li"), iid, task, "sun", by_admin=True)
    with pytest.raises(NotFound) as err:
        await workflow.redirect_task(corp.db, await corp.actor("wang"), iid, task, "ghost")
    assert err.value.reason == "user.not_found"
    with pytest.raises(InvalidArgument):
        await workflow.redirect_task(corp.db, await corp.actor("wang"), iid, task, "")
    assert await corp.assignees(iid) == ["wang"]
    await workflow.redirect_task(corp.db, await corp.actor("wang"), iid, task, "sun", remark="出差")
    assert await corp.assignees(iid) == ["sun"]
    await workflow.redirect_task(
        corp.db, await corp.actor("adm"), iid, await corp.task_of(iid, "sun"), "zhou", by_admin=True
    )
    assert await corp.running(iid) == [("node_one", "zhou")]
    with pytest.raises(Conflict) as done:
        await workflow.redirect_task(corp.db, await corp.actor("wang"), iid, task, "chen")
    assert done.value.reason == "task.redirect_not_running"
    assert [k for k, _ in await corp.history(iid)] == ["start", "redirect", "redirect"]
    await corp.execute(iid, "zhou")
    assert await corp.tasks(iid) == [
        ("wang", "COMPLETED", "redirect"),
        ("sun", "COMPLETED", "redirect"),
        ("zhou", "COMPLETED", "agree"),
        ("chen", "RUNNING", None),
    ]


async def test_a_redirect_never_gives_a_sequential_approver_a_second_turn(corp: Corp) -> None:
    iid = await corp.start(SEQ, {"textField_title": "依次转交"})
    with pytest.raises(Conflict) as err:
        await workflow.redirect_task(corp.db, await corp.actor("wang"), iid, await corp.task_of(iid, "wang"), "chen")
    assert err.value.reason == "task.already_assignee"
    assert await corp.running(iid) == [("node_seq", "wang")]


async def test_a_return_sends_the_flow_back_to_an_earlier_approver(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "退回"})
    await corp.execute(iid, "wang")
    chen = await corp.task_of(iid, "chen")
    with pytest.raises(PermissionDenied) as err:
        await workflow.return_task(corp.db, await corp.actor("wang"), iid, chen, to_node="node_one")
    assert err.value.reason == "task.return_not_current_approver"
    with pytest.raises(InvalidArgument):
        await workflow.return_task(corp.db, await corp.actor("chen"), iid, chen, to_node="node_nope")
    with pytest.raises(InvalidArgument):
        await workflow.return_task(
            corp.db, await corp.actor("chen"), iid, chen, to_node="node_one", current_node="node_one"
        )
    await workflow.return_task(corp.db, await corp.actor("chen"), iid, chen, remark="金额不对")
    assert await corp.running(iid) == [("node_one", "wang")]
    assert (await corp.tasks(iid))[1] == ("chen", "COMPLETED", "return")
    await corp.execute(iid, "wang")
    await corp.execute(iid, "chen")
    assert await corp.outcome(iid) == ("COMPLETED", "agree")


async def test_returned_to_the_submitter_the_originator_changes_values_and_resubmits(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "退回发起人", "numberField_amount": 100})
    await corp.execute(iid, "wang")
    await workflow.return_task(
        corp.db, await corp.actor("chen"), iid, await corp.task_of(iid, "chen"), to_node=RESTART, remark="请补充"
    )
    assert await corp.running(iid) == [(RESTART, "li")]
    assert await corp.outcome(iid) == ("RUNNING", None)
    resubmission = await corp.task_of(iid, "li")
    with pytest.raises(PermissionDenied):  # nobody but the originator resubmits
        await workflow.execute_task(corp.db, await corp.actor("wang"), iid, resubmission, agree=True)
    with pytest.raises(Conflict):  # nor transfers the resubmission
        await workflow.redirect_task(corp.db, await corp.actor("li"), iid, resubmission, "liu")
    await workflow.update_instance(corp.db, await corp.actor("li"), iid, {"numberField_amount": 90})
    await corp.execute(iid, "li", remark="已补充", values={"textField_title": "已补充"})
    assert await corp.running(iid) == [("node_one", "wang")]  # the flow restarts from its first node
    assert await corp.data(iid) == {"textField_title": "已补充", "numberField_amount": 90}
    assert [k for k, _ in await corp.history(iid)] == ["start", "agree", "return", "resubmit"]
    await corp.execute(iid, "wang")
    await corp.execute(iid, "chen")
    assert await corp.outcome(iid) == ("COMPLETED", "agree")


async def test_returned_to_the_submitter_the_originator_may_give_up(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "放弃"})
    await workflow.return_task(corp.db, await corp.actor("wang"), iid, await corp.task_of(iid, "wang"), to_node=RESTART)
    await corp.execute(iid, "li", agree=False, remark="不再申请")
    assert await corp.outcome(iid) == ("TERMINATED", None)
    assert await corp.running(iid) == []


# ------------------------------------------------------------------------------- terminate, withdraw, delete


async def test_an_approval_is_terminated_by_its_originator_or_an_app_admin(corp: Corp) -> None:
    for who in ("li", "adm"):
        iid = await corp.start(TWO, {"textField_title": "终止"})
        for outsider in ("wang", "zhou"):  # its approver, a bystander
            with pytest.raises(PermissionDenied):
                await workflow.terminate_instance(corp.db, await corp.actor(outsider), iid)
        done = await workflow.terminate_instance(corp.db, await corp.actor(who), iid, remark="不办了")
        assert (done.status, done.result) == ("TERMINATED", None)
        assert await corp.tasks(iid) == [("wang", "TERMINATED", None)]
        assert (await corp.history(iid))[-1] == ("terminate", who)
        with pytest.raises(Conflict) as err:
            await workflow.terminate_instance(corp.db, await corp.actor("adm"), iid)
        assert err.value.reason == "instance.finished"


async def test_the_originator_withdraws_only_before_any_approver_acted(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "撤回"})
    with pytest.raises(PermissionDenied):
        await workflow.withdraw_instance(corp.db, await corp.actor("adm"), iid)
    await workflow.withdraw_instance(corp.db, await corp.actor("li"), iid, remark="填错了")
    assert await corp.outcome(iid) == ("TERMINATED", None)
    acted = await corp.start(TWO, {"textField_title": "已审不可撤回"})
    await corp.execute(acted, "wang")
    with pytest.raises(Conflict) as err:
        await workflow.withdraw_instance(corp.db, await corp.actor("li"), acted)
    assert err.value.reason == "instance.already_acted"
    assert await corp.running(acted) == [("node_two", "chen")]


async def test_an_approval_is_deleted_by_app_admins_only_and_a_running_one_is_terminated_first(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "删除"})
    for user in ("li", "wang"):
        with pytest.raises(PermissionDenied):
            await workflow.delete_instance(corp.db, await corp.actor(user), iid)
    assert await corp.running(iid) == [("node_one", "wang")]
    await workflow.delete_instance(corp.db, await corp.actor("adm"), iid)
    for read in (corp.instance(iid), corp.data(iid)):
        with pytest.raises(NotFound):
            await read
    with pytest.raises(NotFound):
        await approvals.inspect_instance(corp.db, corp.corp_pk, iid)
    with pytest.raises(NotFound):
        await workflow.delete_instance(corp.db, await corp.actor("adm"), iid)


async def test_the_approval_after_a_deleted_newest_one_has_task_ids_of_its_own(corp: Corp) -> None:
    # A task id is made from the instance's row id: the newest instance deleted, the next one must not take its
    # row id (on SQLite it would, without AUTOINCREMENT: migration 0022), or two tasks would share one taskId.
    deleted = await corp.start(TWO, {"textField_title": "最新的被删"})
    old_task = await corp.task_of(deleted, "wang")
    await workflow.delete_instance(corp.db, await corp.actor("adm"), deleted)
    following = await corp.start(TWO, {"textField_title": "之后"})
    assert await corp.task_of(following, "wang") > old_task


async def test_a_deletion_racing_an_approval_leaves_nothing_of_the_approval_behind(corp: Corp) -> None:
    for _ in range(5):
        mark = int(await corp.db.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox_event"))
        inst = await workflow.start_instance(corp.db, await corp.actor("li"), TWO, {"textField_title": "删除竞争"})
        task = await corp.task_of(inst.instance_id, "wang")
        agreed, deleted = await raced(
            workflow.execute_task(corp.db, await corp.actor("wang"), inst.instance_id, task, agree=True),
            workflow.delete_instance(corp.db, await corp.actor("adm"), inst.instance_id),
        )
        assert deleted is None
        assert agreed is None or isinstance(agreed, NotFound | Conflict), repr(agreed)
        for table in ("task", "operation_record", "process_notification"):
            left = await corp.db.fetchval(
                f"SELECT count(*) FROM {table} WHERE process_instance_pk = :pk", {"pk": inst.pk}
            )
            assert left == 0, table
        with pytest.raises(NotFound):
            await corp.data(inst.instance_id)
        events = await pending_events(corp.db, corp.corp_pk, after_id=mark, limit=1000)
        mine = [e.topic for e in events if inst.instance_id in (e.object_id, e.data.get("process_instance"))]
        assert mine[-2:] == ["process.deleted", "record.deleted"]  # nothing happened to it after its deletion


# ------------------------------------------------------------------------------------------ changing values


async def test_the_values_are_changed_by_running_task_holders_and_later_routes_read_them(corp: Corp) -> None:
    iid = await corp.start(LEAVE, {"numberField_days": 2, "textField_reason": "短假"})
    assert await corp.running(iid) == [("node_mgr", "wang")]  # li's manager
    before = (await corp.instance(iid)).lock_version
    for outsider in ("zhao", "sun"):
        with pytest.raises(PermissionDenied):
            await workflow.update_instance(corp.db, await corp.actor(outsider), iid, {"numberField_days": 9})
    with pytest.raises(InvalidArgument):
        await workflow.update_instance(corp.db, await corp.actor("li"), iid, {"numberField_days": "x"})
    assert (await corp.data(iid))["numberField_days"] == 2 and (await corp.instance(iid)).lock_version == before
    changed = await workflow.update_instance(corp.db, await corp.actor("wang"), iid, {"numberField_days": 9})
    assert changed.record.data["numberField_days"] == 9 and changed.lock_version > before
    await corp.execute(iid, "wang")
    assert await corp.running(iid) == [("node_fin", "zhao")]  # the route saw 9 days
    with pytest.raises(PermissionDenied):  # wang's turn is over
        await workflow.update_instance(corp.db, await corp.actor("wang"), iid, {"numberField_days": 1})


async def test_an_execution_may_change_values_the_next_route_reads(corp: Corp) -> None:
    iid = await corp.start(LEAVE, {"numberField_days": 1})
    with pytest.raises(InvalidArgument):
        await corp.execute(iid, "wang", values={"numberField_days": "many"})
    assert await corp.running(iid) == [("node_mgr", "wang")]  # the failed execution changed nothing
    await corp.execute(iid, "wang", values={"numberField_days": 5, "textField_reason": "延长"})
    assert await corp.data(iid) == {"numberField_days": 5, "textField_reason": "延长"}
    assert await corp.running(iid) == [("node_fin", "zhao")]
    await corp.execute(iid, "zhao")
    assert await corp.outcome(iid) == ("COMPLETED", "agree")


# ---------------------------------------------------------------------------------- batches and platform tasks


async def test_a_batch_of_executions_reports_each_item(corp: Corp) -> None:
    ids = [await corp.start(TWO, {"textField_title": f"批量{n}"}) for n in range(3)]
    items = [(i, await corp.task_of(i, "wang")) for i in ids]
    outcome = await workflow.execute_tasks(corp.db, await corp.actor("wang"), [*items, items[0]], agree=True)
    assert (outcome.total, outcome.succeeded, [(i, t) for i, t, _ in outcome.failed]) == (4, items, [items[0]])
    assert isinstance(outcome.failed[0][2], Conflict)
    assert [await corp.assignees(i) for i in ids] == [["chen"]] * 3
    with pytest.raises(InvalidArgument):
        await workflow.execute_tasks(corp.db, await corp.actor("wang"), [], agree=True)
    with pytest.raises(InvalidArgument):
        await workflow.execute_tasks(corp.db, await corp.actor("wang"), items * 34, agree=True)


async def test_an_app_admin_executes_the_one_running_task_for_its_assignee(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "平台任务"})
    with pytest.raises(PermissionDenied):
        await workflow.execute_platform_task(corp.db, await corp.actor("wang"), iid, agree=True)
    await workflow.execute_platform_task(
        corp.db, await corp.actor("adm"), iid, agree=True, remark="代办", values={"numberField_amount": 7}
    )
    assert (await corp.assignees(iid), (await corp.data(iid))["numberField_amount"]) == (["chen"], 7)
    assert (await corp.tasks(iid))[0] == ("wang", "COMPLETED", "agree")
    several = await corp.start(OR, {"textField_title": "多个任务"})
    with pytest.raises(Conflict) as err:
        await workflow.execute_platform_task(corp.db, await corp.actor("adm"), several, agree=True)
    assert err.value.reason == "process.expect_one_task"
    await workflow.execute_platform_task(corp.db, await corp.actor("adm"), iid, agree=False)
    assert await corp.outcome(iid) == ("COMPLETED", "disagree")
