"""Instances that run a flow of their own (``zida.core.workflow.own_flow``): approvers and CC users named at start,
kept in the instance's state and run by every later step; the forecast of a new instance; processes by code."""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.corp import FLOW, LEAVE, TWO, CorpCoreMain
from zida.core.errors import InvalidArgument, NotFound
from zida.core.workflow import actions as workflow
from zida.core.workflow import definitions, engine, own_flow
from zida.core.workflow import queries as approvals
from zida.core.workflow.definition import parse_process
from zida.core.workflow.own_flow import ApproverStep

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("consistent_workflow")]


class Corp(CorpCoreMain):
    """corpCoreMain in its flow app."""

    default_app = FLOW

    async def running(self, instance_id: str) -> list[str]:
        tasks = await approvals.running_tasks(self.db, await self.actor("adm"), [instance_id], strict=True)
        return sorted(t.assignee_user_id for t in tasks)

    async def history(self, instance_id: str) -> list[tuple[str, tuple[str, ...]]]:
        _, ops, _ = await approvals.inspect_instance(self.db, self.corp_pk, instance_id)
        return [(o.kind, o.user_ids) for o in ops]

    async def instances(self) -> int:
        return int(
            await self.db.fetchval("SELECT count(*) FROM process_instance WHERE corp_pk = :c", {"c": self.corp_pk})
        )


async def _start(corp: Corp, **kwargs: Any) -> str:
    inst = await workflow.start_instance(corp.db, await corp.actor("li"), TWO, {"textField_title": "own"}, **kwargs)
    return inst.instance_id


async def test_approver_steps_replace_the_form_flow_and_every_step_runs_them(corp: Corp) -> None:
    instance_id = await _start(
        corp,
        approvers=[ApproverStep(("zhao", "qian"), "and"), ApproverStep(("boss",), "sequential")],
        cc_users=["sun"],
        cc_at="finish",
    )
    inst = await approvals.get_instance(corp.db, await corp.actor("adm"), instance_id)
    assert inst.state.flow is not None
    definition = await definitions.definition_of(corp.db, inst)
    assert [n.node_id for n in definition.walk()] == ["own_approver_1", "own_approver_2", "own_cc_finish"]
    assert (definition.process_code, definition.version) == ("TPROC--CORE-TWO", inst.form_version)
    assert await corp.running(instance_id) == ["qian", "zhao"]
    await corp.execute(instance_id, "zhao")
    await corp.execute(instance_id, "qian")
    assert await corp.running(instance_id) == ["boss"]
    done = await corp.execute(instance_id, "boss")
    assert (done.status, done.result) == ("COMPLETED", "agree")
    assert ("cc", ("sun",)) in await corp.history(instance_id)


async def test_cc_users_alone_are_copied_around_the_form_flow(corp: Corp) -> None:
    instance_id = await _start(corp, cc_users=["sun", "zhou"], cc_at="start")
    history = await corp.history(instance_id)
    assert history[:2] == [("start", ()), ("cc", ("sun", "zhou"))]
    assert await corp.running(instance_id) == ["wang"]  # the form's own first approver
    await corp.execute(instance_id, "wang", agree=False)
    inst = await approvals.get_instance(corp.db, await corp.actor("adm"), instance_id)
    assert (inst.status, inst.result) == ("COMPLETED", "disagree")


async def test_unknown_or_empty_approvers_start_nothing(corp: Corp) -> None:
    before = await corp.instances()
    with pytest.raises(NotFound) as unknown:
        await _start(corp, approvers=[ApproverStep(("ghost",), "or")])
    assert unknown.value.reason == "user.not_found"
    with pytest.raises(NotFound):
        await _start(corp, cc_users=["ghost"])
    with pytest.raises(InvalidArgument) as empty:
        await _start(corp, approvers=[ApproverStep((), "or")])
    assert empty.value.reason == "process.invalid_approvers"
    with pytest.raises(InvalidArgument):
        await _start(corp, approvers=[ApproverStep(("wang",), "vote")])
    with pytest.raises(InvalidArgument):
        await _start(corp, approvers=[ApproverStep(("wang",), "or")] * (own_flow.MAX_APPROVER_STEPS + 1))
    with pytest.raises(InvalidArgument, match="at most 100 users"):  # a step's users are bounded too
        many = tuple(f"u{n}" for n in range(own_flow.MAX_STEP_USERS + 1))
        await _start(corp, approvers=[ApproverStep(many, "and")])
    with pytest.raises(InvalidArgument) as moment:
        await _start(corp, cc_users=["sun"], cc_at="later")
    assert moment.value.reason == "process.invalid_cc"
    assert await corp.instances() == before


async def test_an_own_flow_instance_can_be_deleted(corp: Corp) -> None:
    instance_id = await _start(corp, approvers=[ApproverStep(("zhao",), "or")])
    await workflow.delete_instance(corp.db, await corp.actor("adm"), instance_id)
    with pytest.raises(NotFound):
        await approvals.get_instance(corp.db, await corp.actor("adm"), instance_id)


async def test_forecast_follows_the_routes_and_writes_nothing(corp: Corp) -> None:
    before = await corp.instances()
    actor = await corp.actor("li")
    _, long_leave = await approvals.forecast_instance(corp.db, actor, LEAVE, {"numberField_days": 5})
    assert len(long_leave) == 2
    assert (long_leave[0].node.node_id, long_leave[0].user_ids) == ("node_mgr", ("wang",))
    _, short_leave = await approvals.forecast_instance(corp.db, actor, LEAVE, {})
    assert [s.node.node_id for s in short_leave] == ["node_mgr"]
    with pytest.raises(InvalidArgument):
        await approvals.forecast_instance(corp.db, actor, LEAVE, {"numberField_days": "many"})
    assert await corp.instances() == before


async def test_processes_are_found_by_code_in_the_corp(corp: Corp) -> None:
    app_pk, form_uuid = await definitions.find_process_by_code(corp.db, corp.corp_pk, "TPROC--CORE-TWO")
    assert (app_pk, form_uuid) == (corp.app_pks[FLOW], TWO)
    with pytest.raises(NotFound) as missing:
        await definitions.find_process_by_code(corp.db, corp.corp_pk, "TPROC--NOPE")
    assert missing.value.reason == "process.not_found"


async def test_choices_required_names_the_node_without_users() -> None:
    definition = parse_process(
        {
            "processCode": "TPROC--PICK",
            "name": "自选",
            "nodes": [{"approver": {"id": "node_pick", "name": "自选", "who": {"originatorChooses": True}}}],
        },
        path="process",
        fields=(),
    )
    assert [n.node_id for n in engine.forecast(definition, {})] == ["node_pick"]
    with pytest.raises(InvalidArgument) as missing:
        workflow._check_choices(definition, {}, {})
    assert missing.value.reason == "process.choice_missing"
    workflow._check_choices(definition, {}, {"node_pick": ["wang"]})
    nodes = own_flow.flow_nodes(definition, [], ["sun"], "start_finish")
    assert [next(iter(n.values()))["id"] for n in nodes] == ["own_cc_start", "node_pick", "own_cc_finish"]
    assert own_flow.with_flow(definition, nodes) is own_flow.with_flow(definition, nodes)
