"""The pure workflow engine, driven step by step; the state goes through JSON and the invariants after every step."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from zida.core.apps.models import Field
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from zida.core.workflow.definition import ProcessDefinition, parse_process
from zida.core.workflow.engine import (
    Action,
    AddSigner,
    Agree,
    CcSent,
    Disagree,
    Effect,
    EventEmitted,
    InstanceFinished,
    InstanceState,
    OperationRecorded,
    Redirect,
    Return,
    StaticDirectory,
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    TaskPaused,
    TaskResumed,
    TaskUrged,
    Terminate,
    Urge,
    Withdraw,
    act,
    assert_invariants,
    start,
)

FIELDS = (
    Field("numberField_days", "NumberField", "天数"),
    Field("employeeField_agent", "EmployeeField", "代理人"),
    Field("textField_reason", "TextField", "事由"),
)

# 示例科技: boss heads the root (1); wang heads sales (100); chen heads east sales (110), where li works.
ORG = StaticDirectory(
    user_ids=frozenset({"boss", "wang", "chen", "li", "zhao", "qian", "sun", "zhou", "wu", "adm"}),
    user_managers={"li": "chen", "chen": "wang", "wang": "boss"},
    user_departments={"boss": 1, "wang": 100, "chen": 110, "li": 110, "zhao": 1, "qian": 1},
    department_parents={1: None, 100: 1, 110: 100},
    department_heads={1: ("boss",), 100: ("wang",), 110: ("chen",)},
    role_users={9001: ("zhao", "qian", "gone"), 9002: ()},
    admin_ids=("adm",),
)
NO_ADMINS = StaticDirectory(
    ORG.user_ids,
    ORG.user_managers,
    ORG.user_departments,
    ORG.department_parents,
    ORG.department_heads,
    ORG.role_users,
    (),
)

E = TypeVar("E")


def approver(node_id: str, who: dict[str, Any], mode: str = "or", **extra: Any) -> dict[str, Any]:
    return {"approver": {"id": node_id, "name": f"审批 {node_id}", "who": who, "mode": mode, **extra}}


def users(*user_ids: str) -> dict[str, Any]:
    return {"users": list(user_ids)}


def define(*nodes: dict[str, Any], version: int = 1) -> ProcessDefinition:
    raw = {"processCode": "TPROC--TEST0001", "name": "测试流程", "nodes": list(nodes)}
    return parse_process(raw, path="apps[0].forms[0].process", fields=FIELDS, version=version)


def of(effects: list[Effect], kind: type[E]) -> list[E]:
    return [e for e in effects if isinstance(e, kind)]


def kinds(effects: list[Effect]) -> list[str]:
    return [r.kind for r in of(effects, OperationRecorded)]


class Run:
    """One instance under test: every state goes through JSON and the invariants before it is used again."""

    def __init__(
        self,
        definition: ProcessDefinition,
        originator: str = "li",
        *,
        form_data: dict[str, Any] | None = None,
        directory: StaticDirectory = ORG,
        **options: Any,
    ) -> None:
        self.definition = definition
        state, self.effects = start(
            definition, originator=originator, form_data=form_data or {}, directory=directory, **options
        )
        self.state = self.restore(state)

    def restore(self, state: InstanceState) -> InstanceState:
        text = state.to_json()
        restored = InstanceState.from_json(text)
        assert restored == state
        assert restored.to_json() == text
        assert_invariants(restored, self.definition)
        return restored

    def do(self, action: Action, **options: Any) -> list[Effect]:
        before = self.state.to_json()
        state, self.effects = act(self.definition, self.state, action, **options)
        assert self.state.to_json() == before, "act must not change the state it was given"
        self.state = self.restore(state)
        return self.effects

    def running(self) -> list[tuple[str, str]]:
        """(node, user) of every running task, in creation order."""
        return [(t.node_id, t.user_id) for t in self.state.tasks if t.status == "running"]

    def task(self, user: str, node: str | None = None) -> int:
        found = [
            t.task_id
            for t in self.state.tasks
            if t.status == "running" and t.user_id == user and node in (None, t.node_id)
        ]
        assert len(found) == 1, f"{user} has running tasks {found}"
        return found[0]

    def agree(self, user: str, node: str | None = None, remark: str = "") -> list[Effect]:
        return self.do(Agree(self.task(user, node), user, remark))

    def disagree(self, user: str, node: str | None = None, remark: str = "") -> list[Effect]:
        return self.do(Disagree(self.task(user, node), user, remark))

    @property
    def outcome(self) -> tuple[str, str | None]:
        return self.state.status, self.state.result


def expect(error: type[Exception], reason: str, call: Callable[[], object]) -> Exception:
    with pytest.raises(error) as raised:
        call()
    assert getattr(raised.value, "reason", None) == reason
    return raised.value


# -------------------------------------------------------------------------------------- a whole run


def test_one_approver_agrees_and_the_instance_completes() -> None:
    run = Run(define(approver("n1", users("wang"))))
    assert run.effects == [
        OperationRecorded("start", actor="li"),
        EventEmitted("process.started", "li"),
        TaskCreated(1, "n1", "wang"),
        EventEmitted("task.created", "wang", 1),
    ]
    assert run.state.current_node_ids() == ["n1"]
    run.agree("wang", remark="同意")
    assert run.effects == [
        OperationRecorded("agree", actor="wang", node_id="n1", task_id=1, result="agree", remark="同意"),
        TaskCompleted(1, "wang", "agree"),
        EventEmitted("task.finished", "wang", 1, "agree", "同意"),
        OperationRecorded("finish", result="agree"),
        InstanceFinished("completed", "agree"),
        EventEmitted("process.finished", "li", result="agree"),
    ]
    assert run.outcome == ("completed", "agree")
    assert run.state.open_tasks() == [] and run.state.branches == []


def test_a_process_without_nodes_completes_at_start() -> None:
    run = Run(define())
    assert run.outcome == ("completed", "agree")
    assert of(run.effects, InstanceFinished) == [InstanceFinished("completed", "agree")]


def test_refusal_ends_the_instance_disagree_with_a_refuse_event() -> None:
    run = Run(define(approver("n1", users("wang")), approver("n2", users("chen"))))
    run.disagree("wang", remark="不同意")
    assert run.outcome == ("completed", "disagree")
    assert EventEmitted("task.finished", "wang", 1, "disagree", "不同意") in run.effects
    assert run.effects[-1] == EventEmitted("process.finished", "li", result="disagree")
    assert not of(run.effects, TaskCreated)  # n2 never started


# ------------------------------------------------------------------------------------ approver kinds


def test_fixed_users_who_left_are_skipped() -> None:
    run = Run(define(approver("n1", users("gone", "wang"), "and")))
    assert run.running() == [("n1", "wang")]


@pytest.mark.parametrize(("level", "expected"), [(1, "chen"), (2, "wang"), (3, "boss")])
def test_manager_at_level(level: int, expected: str) -> None:
    run = Run(define(approver("n1", {"manager": level})))
    assert run.running() == [("n1", expected)]


def test_manager_above_the_top_resolves_to_nobody_and_is_skipped() -> None:
    run = Run(define(approver("n1", {"manager": 4}), approver("n2", users("zhao"))))
    assert run.running() == [("n2", "zhao")]
    assert OperationRecorded("skip", node_id="n1") in run.effects


@pytest.mark.parametrize(("level", "expected"), [(1, ["chen"]), (2, ["wang"]), (3, ["boss"]), (4, [])])
def test_department_head_at_level(level: int, expected: list[str]) -> None:
    run = Run(define(approver("n1", {"deptHead": level}), approver("end", users("zhao"))))
    assert [u for n, u in run.running() if n == "n1"] == expected


def test_department_head_of_a_head_is_the_head_above() -> None:
    run = Run(define(approver("n1", {"deptHead": 1})), originator="chen")
    assert run.running() == [("n1", "wang")]


def test_department_head_starts_from_the_chosen_department() -> None:
    run = Run(define(approver("n1", {"deptHead": 1})), originator="li", department_id=100)
    assert run.running() == [("n1", "wang")]


def test_role_members_who_exist() -> None:
    run = Run(define(approver("n1", {"role": 9001}, "and")))
    assert run.running() == [("n1", "zhao"), ("n1", "qian")]


def test_employee_field_of_the_form() -> None:
    run = Run(
        define(approver("n1", {"field": "employeeField_agent"}, "and")),
        form_data={"employeeField_agent": ["sun", "nobody", "zhou", "sun"]},
    )
    assert run.running() == [("n1", "sun"), ("n1", "zhou")]


def test_employee_field_holding_one_user_id() -> None:
    run = Run(define(approver("n1", {"field": "employeeField_agent"})), form_data={"employeeField_agent": "sun"})
    assert run.running() == [("n1", "sun")]


def test_originator_chooses_at_start() -> None:
    definition = define(approver("n1", {"originatorChooses": True}, "sequential"), approver("n2", users("wang")))
    run = Run(definition, chosen_approvers={"n1": ["zhou", "wu"]})
    assert run.running() == [("n1", "zhou")]
    run.agree("zhou")
    assert run.running() == [("n1", "wu")]


def test_originator_choices_are_checked() -> None:
    definition = define(approver("n1", {"originatorChooses": True}), approver("n2", users("wang")))

    def begin(chosen: Any) -> object:
        return start(definition, originator="li", form_data={}, directory=ORG, chosen_approvers=chosen)

    expect(InvalidArgument, "process.invalid_choice", lambda: begin({"n2": ["zhou"]}))
    expect(InvalidArgument, "process.invalid_choice", lambda: begin({"nope": ["zhou"]}))
    expect(InvalidArgument, "process.invalid_choice", lambda: begin({"n1": "zhou"}))
    expect(InvalidArgument, "process.unknown_user", lambda: begin({"n1": ["ghost"]}))


def test_originator_who_chooses_nobody_meets_the_empty_policy() -> None:
    definition = define(approver("n1", {"originatorChooses": True}, empty="fail"))
    expect(InvalidArgument, "process.no_approver", lambda: Run(definition))
    assert Run(definition, chosen_approvers={"n1": ["wu"]}).running() == [("n1", "wu")]


def test_originator_approves_themself() -> None:
    run = Run(define(approver("n1", {"originator": True})))
    assert run.running() == [("n1", "li")]


def test_unknown_originator_cannot_start() -> None:
    expect(
        InvalidArgument,
        "process.unknown_user",
        lambda: start(define(), originator="ghost", form_data={}, directory=ORG),
    )


# ------------------------------------------------------------------------------------------- modes


def test_or_sign_one_agrees_and_the_others_are_cancelled() -> None:
    run = Run(define(approver("n1", users("zhao", "qian", "sun"))))
    zhao, qian, sun = (run.task(u) for u in ("zhao", "qian", "sun"))
    effects = run.agree("qian")
    assert of(effects, TaskCancelled) == [
        TaskCancelled(zhao, "zhao", "cancelled"),
        TaskCancelled(sun, "sun", "cancelled"),
    ]
    assert EventEmitted("task.cancelled", "zhao", zhao) in effects
    assert run.outcome == ("completed", "agree")
    # A second approver racing on the same node finds the task closed.
    expect(Conflict, "instance.finished", lambda: run.do(Agree(zhao, "zhao")))
    won = run.state.task(qian)
    assert won is not None and won.result == "agree"


def test_or_sign_the_loser_of_a_race_gets_a_clear_error() -> None:
    run = Run(define(approver("n1", users("zhao", "qian")), approver("n2", users("wang"))))
    zhao = run.task("zhao")
    run.agree("qian")
    error = expect(Conflict, "task.not_running", lambda: run.do(Agree(zhao, "zhao")))
    assert "cancelled" in str(error)


def test_or_sign_one_refusal_decides() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"))))
    run.disagree("zhao")
    assert run.outcome == ("completed", "disagree")


def test_countersign_needs_everyone() -> None:
    run = Run(define(approver("n1", users("zhao", "qian", "sun"), "and"), approver("n2", users("wang"))))
    run.agree("zhao")
    run.agree("sun")
    assert run.running() == [("n1", "qian")]
    run.agree("qian")
    assert run.running() == [("n2", "wang")]


def test_countersign_one_refusal_refuses_and_cancels_the_rest() -> None:
    run = Run(define(approver("n1", users("zhao", "qian", "sun"), "and")))
    run.agree("zhao")
    effects = run.disagree("qian")
    assert [(c.user_id, c.status) for c in of(effects, TaskCancelled)] == [("sun", "cancelled")]
    assert run.outcome == ("completed", "disagree")


def test_sequential_one_after_another() -> None:
    run = Run(define(approver("n1", users("zhao", "qian", "sun"), "sequential")))
    assert run.running() == [("n1", "zhao")]
    run.agree("zhao")
    assert run.running() == [("n1", "qian")]
    run.agree("qian")
    assert run.running() == [("n1", "sun")]
    run.agree("sun")
    assert run.outcome == ("completed", "agree")


def test_sequential_refusal_stops_the_line() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "sequential")))
    effects = run.disagree("zhao")
    assert not of(effects, TaskCreated)
    assert run.outcome == ("completed", "disagree")


def test_vote_passes_when_the_ratio_is_reached() -> None:
    run = Run(
        define(approver("n1", users("zhao", "qian", "sun", "zhou"), "vote", ratio=0.5), approver("n2", users("wang")))
    )
    run.disagree("zhou")
    run.agree("zhao")
    assert run.state.current_node_ids() == ["n1"]
    effects = run.agree("sun")  # 2 of 4 = 0.5
    assert [c.user_id for c in of(effects, TaskCancelled)] == ["qian"]
    assert run.running() == [("n2", "wang")]


def test_vote_refuses_once_the_ratio_is_out_of_reach() -> None:
    run = Run(define(approver("n1", users("zhao", "qian", "sun", "zhou"), "vote", ratio=0.75)))
    run.agree("zhao")
    run.disagree("qian")
    assert run.state.status == "running"  # 3 of 4 still possible
    run.disagree("sun")
    assert run.outcome == ("completed", "disagree")


# -------------------------------------------------------------------------------- routes, parallel, cc


ROUTED = (
    approver("n_mgr", users("wang")),
    {
        "route": {
            "id": "r_days",
            "branches": [
                {
                    "when": {"field": "numberField_days", "op": "gt", "value": 10},
                    "nodes": [approver("n_boss", users("boss"))],
                },
                {
                    "when": {"field": "numberField_days", "op": "gt", "value": 3},
                    "nodes": [approver("n_hr", {"role": 9001}, "and")],
                },
                {"default": True, "nodes": []},
            ],
        }
    },
    {"cc": {"id": "c_fin", "name": "抄送财务", "who": users("zhao", "qian")}},
)


@pytest.mark.parametrize(("days", "expected"), [(30, "n_boss"), (5, "n_hr"), (1, None), (None, None)])
def test_condition_route_first_match_wins_else_default(days: int | None, expected: str | None) -> None:
    run = Run(define(*ROUTED), form_data={} if days is None else {"numberField_days": days})
    run.agree("wang")
    assert run.state.current_node_ids() == ([expected] if expected else [])
    if expected is None:
        assert run.outcome == ("completed", "agree")


def test_route_reads_the_values_current_when_it_is_reached() -> None:
    run = Run(define(*ROUTED), form_data={"numberField_days": 1, "textField_reason": "病"})
    assert run.state.route_data == {"numberField_days": 1}
    run.do(Agree(run.task("wang"), "wang"), form_data={"numberField_days": 12, "textField_reason": "病"})
    assert run.running() == [("n_boss", "boss")]


def test_the_flow_continues_after_the_route_when_its_branch_ends() -> None:
    run = Run(define(*ROUTED), form_data={"numberField_days": 30})
    run.agree("wang")
    effects = run.agree("boss")
    assert of(effects, CcSent) == [CcSent("c_fin", ("zhao", "qian"))]
    assert run.outcome == ("completed", "agree")


def test_routes_nest() -> None:
    inner = {
        "route": {
            "id": "r_inner",
            "branches": [
                {
                    "when": {"field": "textField_reason", "op": "like", "value": "病"},
                    "nodes": [approver("n_doc", users("wu"))],
                },
                {"default": True, "nodes": [approver("n_other", users("sun"))]},
            ],
        }
    }
    outer = {
        "route": {
            "id": "r_outer",
            "branches": [
                {"when": {"field": "numberField_days", "op": "ge", "value": 2}, "nodes": [inner]},
            ],
        }
    }
    definition = define(outer, approver("n_end", users("wang")))
    run = Run(definition, form_data={"numberField_days": 2, "textField_reason": "生病"})
    assert run.running() == [("n_doc", "wu")]
    run.agree("wu")
    assert run.running() == [("n_end", "wang")]
    assert Run(definition, form_data={"numberField_days": 2}).running() == [("n_other", "sun")]
    assert Run(definition, form_data={"numberField_days": 1}).running() == [("n_end", "wang")]


def test_route_without_a_match_or_default_continues() -> None:
    definition = define(
        {
            "route": {
                "id": "r",
                "branches": [
                    {
                        "when": {"field": "numberField_days", "op": "gt", "value": 3},
                        "nodes": [approver("n_hr", users("zhao"))],
                    }
                ],
            }
        },
        approver("n_end", users("wang")),
    )
    assert Run(definition, form_data={"numberField_days": 1}).running() == [("n_end", "wang")]


def test_cc_nodes_send_and_continue() -> None:
    run = Run(define(*ROUTED), form_data={"numberField_days": 1})
    effects = run.agree("wang")
    assert of(effects, CcSent) == [CcSent("c_fin", ("zhao", "qian"))]
    assert OperationRecorded("cc", node_id="c_fin", user_ids=("zhao", "qian")) in effects
    assert run.outcome == ("completed", "agree")


def test_cc_to_nobody_sends_nothing() -> None:
    run = Run(define({"cc": {"id": "c", "name": "抄送", "who": {"role": 9002}}}, approver("n", users("wang"))))
    assert not of(run.effects, CcSent)
    assert run.running() == [("n", "wang")]


PARALLEL = (
    approver("n_first", users("wang")),
    {
        "parallel": {
            "id": "p",
            "branches": [
                [approver("n_fin", {"role": 9001}), approver("n_fin2", users("sun"))],
                [approver("n_legal", users("zhou"))],
                [{"cc": {"id": "c_hr", "name": "抄送", "who": users("wu")}}],
            ],
        }
    },
    approver("n_last", users("boss")),
)


def test_parallel_branches_join_when_all_finish() -> None:
    run = Run(define(*PARALLEL))
    effects = run.agree("wang")
    assert run.running() == [("n_fin", "zhao"), ("n_fin", "qian"), ("n_legal", "zhou")]
    assert of(effects, CcSent) == [CcSent("c_hr", ("wu",))]  # a branch with no approver finishes at once
    run.agree("zhou")
    assert sorted(run.state.current_node_ids()) == ["n_fin"]
    run.agree("qian")
    assert run.running() == [("n_fin2", "sun")]
    run.agree("sun")
    assert run.running() == [("n_last", "boss")]
    run.agree("boss")
    assert run.outcome == ("completed", "agree")


def test_refusal_in_one_parallel_branch_ends_everything() -> None:
    run = Run(define(*PARALLEL))
    run.agree("wang")
    effects = run.disagree("zhou")
    assert sorted(c.user_id for c in of(effects, TaskCancelled)) == ["qian", "zhao"]
    assert run.outcome == ("completed", "disagree")


def test_parallel_of_empty_branches_is_passed_through() -> None:
    definition = define({"parallel": {"id": "p", "branches": [[], []]}}, approver("n", users("wang")))
    assert Run(definition).running() == [("n", "wang")]


def test_an_error_in_one_branch_stops_the_fork() -> None:
    strict = {
        "route": {
            "id": "r",
            "branches": [
                {
                    "when": {"field": "numberField_days", "op": "gt", "value": 3},
                    "nodes": [approver("n_strict", {"role": 9002}, empty="fail")],
                },
            ],
        }
    }
    definition = define(
        approver("n1", users("wang")),
        {"parallel": {"id": "p", "branches": [[strict], [approver("n_b", users("zhou"))]]}},
    )
    run = Run(definition, form_data={"numberField_days": 1}, directory=NO_ADMINS)
    effects = run.do(Agree(run.task("wang"), "wang"), form_data={"numberField_days": 9})
    assert run.outcome == ("error", None)
    assert not of(effects, TaskCreated)


def test_parallel_whose_branches_have_no_approvers_joins_at_once() -> None:
    definition = define(
        {"parallel": {"id": "p", "branches": [[approver("a", {"role": 9002})], []]}}, approver("n", users("wang"))
    )
    assert Run(definition).running() == [("n", "wang")]


# ------------------------------------------------------------------------------- empty approvers


def test_empty_skip_records_the_skip() -> None:
    run = Run(define(approver("n1", {"role": 9002}), approver("n2", users("wang"))))
    assert OperationRecorded("skip", node_id="n1") in run.effects


def test_empty_admin_routes_to_the_app_admins() -> None:
    run = Run(define(approver("n1", {"role": 9002}, empty="admin")))
    assert run.running() == [("n1", "adm")]
    assert OperationRecorded("fallback_to_admin", node_id="n1", user_ids=("adm",)) in run.effects


def test_empty_admin_without_admins_fails_the_start() -> None:
    error = expect(
        InvalidArgument,
        "process.no_approver",
        lambda: Run(define(approver("n1", {"role": 9002}, empty="admin")), directory=NO_ADMINS),
    )
    assert "no administrator" in str(error)


def test_empty_fail_fails_the_start_naming_the_node() -> None:
    definition = define(approver("n1", users("wang")), approver("n2", {"field": "employeeField_agent"}, empty="fail"))
    error = expect(InvalidArgument, "process.no_approver", lambda: Run(definition))
    assert isinstance(error, InvalidArgument) and error.details["node"] == "n2"
    assert "审批 n2" in str(error)
    assert Run(definition, form_data={"employeeField_agent": ["sun"]}).running() == [("n1", "wang")]


def test_empty_fail_off_the_forecast_path_does_not_fail_the_start() -> None:
    definition = define(
        approver("n1", users("wang")),
        {
            "route": {
                "id": "r",
                "branches": [
                    {
                        "when": {"field": "numberField_days", "op": "gt", "value": 3},
                        "nodes": [approver("n_strict", {"role": 9002}, empty="fail")],
                    },
                    {"default": True, "nodes": []},
                ],
            }
        },
    )
    run = Run(definition, form_data={"numberField_days": 1})
    # The values change on the way so that the route takes the strict branch: its node goes to the admins.
    run.do(Agree(run.task("wang"), "wang"), form_data={"numberField_days": 5})
    assert run.running() == [("n_strict", "adm")]
    # Without admins the instance cannot go on and ends in error.
    run = Run(definition, form_data={"numberField_days": 1}, directory=NO_ADMINS)
    effects = run.do(Agree(run.task("wang"), "wang"), form_data={"numberField_days": 5})
    assert run.outcome == ("error", None)
    assert OperationRecorded("error", node_id="n_strict") in effects
    assert effects[-1] == EventEmitted("process.terminated", "li")


# --------------------------------------------------------------------------------------- refusal


def test_a_node_may_let_the_flow_continue_after_a_refusal() -> None:
    run = Run(define(approver("n1", users("zhao"), onRefuse="continue"), approver("n2", users("wang"))))
    run.disagree("zhao")
    assert run.running() == [("n2", "wang")]
    run.agree("wang")
    assert run.outcome == ("completed", "agree")


def test_a_node_may_return_to_the_previous_approver_on_refusal() -> None:
    run = Run(define(approver("n1", users("wang")), approver("n2", users("zhao"), onRefuse="return")))
    run.agree("wang")
    effects = run.disagree("zhao")
    assert OperationRecorded("return", node_id="n2", target_node_id="n1") in effects
    assert run.running() == [("n1", "wang")]
    run.agree("wang")
    run.agree("zhao")
    assert run.outcome == ("completed", "agree")


def test_return_on_refusal_with_nowhere_to_go_refuses() -> None:
    run = Run(define(approver("n1", users("zhao"), onRefuse="return")))
    run.disagree("zhao")
    assert run.outcome == ("completed", "disagree")


# ---------------------------------------------------------------------------------- instance actions


def test_terminate_closes_every_open_task() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "and")))
    effects = run.do(Terminate("adm", remark="作废"))
    assert [(c.user_id, c.status) for c in of(effects, TaskCancelled)] == [
        ("zhao", "terminated"),
        ("qian", "terminated"),
    ]
    assert OperationRecorded("terminate", actor="adm", remark="作废") in effects
    assert effects[-2:] == [
        InstanceFinished("terminated", None),
        EventEmitted("process.terminated", "li"),
    ]
    assert run.outcome == ("terminated", None)
    expect(Conflict, "instance.finished", lambda: run.do(Terminate("adm")))
    expect(Conflict, "instance.finished", lambda: run.do(Urge("li")))


def test_withdraw_before_anyone_acted() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "and")))
    expect(PermissionDenied, "instance.not_originator", lambda: run.do(Withdraw("zhao")))
    effects = run.do(Withdraw("li", remark="填错了"))
    assert OperationRecorded("withdraw", actor="li", remark="填错了") in effects
    assert run.outcome == ("terminated", None)


@pytest.mark.parametrize(
    "first_step",
    [
        lambda run: run.agree("zhao"),
        lambda run: run.do(Redirect(run.task("zhao"), "zhao", "sun")),
        lambda run: run.do(AddSigner(run.task("zhao"), "zhao", ("sun",))),
    ],
)
def test_withdraw_after_an_approver_acted_is_refused(first_step: Callable[[Run], object]) -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "and")))
    run.do(Urge("li"))  # a reminder is not an approver acting
    first_step(run)
    expect(Conflict, "instance.already_acted", lambda: run.do(Withdraw("li")))


def test_urge_reminds_running_assignees() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "and")))
    zhao, qian = run.task("zhao"), run.task("qian")
    effects = run.do(Urge("li", remark="急"))
    assert of(effects, TaskUrged) == [TaskUrged(zhao, "zhao", "li"), TaskUrged(qian, "qian", "li")]
    assert OperationRecorded("urge", actor="li", remark="急", user_ids=("zhao", "qian")) in effects
    assert of(run.do(Urge("li", task_id=qian)), TaskUrged) == [TaskUrged(qian, "qian", "li")]
    expect(NotFound, "task.not_found", lambda: run.do(Urge("li", task_id=999)))
    run.do(AddSigner(zhao, "zhao", ("sun",)))
    expect(Conflict, "task.not_running", lambda: run.do(Urge("li", task_id=zhao)))  # paused
    assert run.state.status == "running"


# -------------------------------------------------------------------------------------- task actions


def test_only_the_assignee_acts_unless_on_behalf() -> None:
    run = Run(define(approver("n1", users("zhao"))))
    task = run.task("zhao")
    expect(PermissionDenied, "task.not_assignee", lambda: run.do(Agree(task, "qian")))
    expect(NotFound, "task.not_found", lambda: run.do(Agree(404, "zhao")))
    effects = run.do(Agree(task, "adm", on_behalf=True))
    assert (
        OperationRecorded("agree", actor="adm", node_id="n1", task_id=task, result="agree", on_behalf=True) in effects
    )
    assert run.outcome == ("completed", "agree")


def test_redirect_hands_the_task_to_another_user() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "and")))
    zhao = run.task("zhao")
    expect(InvalidArgument, "task.redirect_to_assignee", lambda: run.do(Redirect(zhao, "zhao", "zhao")))
    expect(Conflict, "task.already_assignee", lambda: run.do(Redirect(zhao, "zhao", "qian")))
    expect(PermissionDenied, "task.not_assignee", lambda: run.do(Redirect(zhao, "sun", "sun")))
    effects = run.do(Redirect(zhao, "zhao", "sun", remark="出差"))
    assert of(effects, TaskCompleted) == [TaskCompleted(zhao, "zhao", "redirect")]
    assert EventEmitted("task.finished", "zhao", zhao, "redirect", "出差") in effects
    assert (
        OperationRecorded("redirect", actor="zhao", node_id="n1", task_id=zhao, remark="出差", user_ids=("sun",))
        in effects
    )
    assert run.running() == [("n1", "qian"), ("n1", "sun")]
    run.agree("sun")
    run.agree("qian")
    assert run.outcome == ("completed", "agree")


def test_return_to_the_previous_approver_node() -> None:
    run = Run(define(approver("n1", users("wang")), approver("n2", users("chen")), approver("n3", users("zhao"))))
    run.agree("wang")
    run.agree("chen")
    task = run.task("zhao")
    effects = run.do(Return(task, "zhao", remark="补材料"))
    assert of(effects, TaskCompleted) == [TaskCompleted(task, "zhao", "return")]
    assert (
        OperationRecorded("return", actor="zhao", node_id="n3", task_id=task, remark="补材料", target_node_id="n2")
        in effects
    )
    assert run.running() == [("n2", "chen")]
    run.agree("chen")
    run.agree("zhao")
    assert run.outcome == ("completed", "agree")


def test_return_to_a_named_earlier_node() -> None:
    run = Run(
        define(
            approver("n1", users("wang")), approver("n2", users("chen", "sun"), "and"), approver("n3", users("zhao"))
        )
    )
    run.agree("wang")
    run.agree("chen")
    effects = run.do(Return(run.task("sun"), "sun", to_node="n1"))
    assert [c.user_id for c in of(effects, TaskCancelled)] == []
    assert run.running() == [("n1", "wang")]
    run.agree("wang")
    assert run.running() == [("n2", "chen"), ("n2", "sun")]  # the node is decided again from scratch


def test_return_targets_are_checked() -> None:
    run = Run(define(approver("n1", users("wang")), approver("n2", users("zhao")), approver("n3", users("boss"))))
    expect(InvalidArgument, "task.no_return_target", lambda: run.do(Return(run.task("wang"), "wang")))
    run.agree("wang")
    zhao = run.task("zhao")
    expect(InvalidArgument, "task.invalid_return_target", lambda: run.do(Return(zhao, "zhao", to_node="n3")))
    expect(InvalidArgument, "task.invalid_return_target", lambda: run.do(Return(zhao, "zhao", to_node="n2")))
    expect(InvalidArgument, "task.invalid_return_target", lambda: run.do(Return(zhao, "zhao", to_node="zz")))


def test_return_from_a_parallel_branch_to_before_the_fork_cancels_the_other_branches() -> None:
    run = Run(define(*PARALLEL))
    run.agree("wang")
    run.agree("zhao")
    effects = run.do(Return(run.task("sun"), "sun"))  # n_fin was passed in this branch: the latest
    assert run.running() == [("n_legal", "zhou"), ("n_fin", "zhao"), ("n_fin", "qian")]
    assert not of(effects, TaskCancelled)
    effects = run.do(Return(run.task("zhou"), "zhou", to_node="n_first"))
    assert sorted(c.user_id for c in of(effects, TaskCancelled)) == ["qian", "zhao"]
    assert run.running() == [("n_first", "wang")]
    assert [b.branch_id for b in run.state.branches] == [0]
    run.agree("wang")
    assert len(run.state.branches) == 3  # forked again
    run.agree("zhou")
    run.agree("qian")  # or-sign: zhao's task is cancelled
    run.agree("sun")
    run.agree("boss")
    assert run.outcome == ("completed", "agree")


def test_return_cannot_reach_into_a_sibling_branch() -> None:
    run = Run(define(*PARALLEL))
    run.agree("wang")
    run.agree("zhao")
    # The targets a return may pick are those of the task's own branch and the flow above it, never a sibling's.
    assert run.state.return_targets(run.task("zhou")) == ["n_first"]
    assert run.state.return_targets(run.task("sun")) == ["n_first", "n_fin"]  # the last: a return's default
    assert run.state.return_targets(999) == []
    expect(
        InvalidArgument, "task.invalid_return_target", lambda: run.do(Return(run.task("zhou"), "zhou", to_node="n_fin"))
    )


# ----------------------------------------------------------------------------------------- add signer


def test_add_signer_before_pauses_the_assignee_until_the_signer_agrees() -> None:
    run = Run(define(approver("n1", users("zhao")), approver("n2", users("boss"))))
    zhao = run.task("zhao")
    effects = run.do(AddSigner(zhao, "zhao", ("sun", "zhou"), "before", remark="请先看"))
    assert (
        OperationRecorded(
            "add_signer_before", actor="zhao", node_id="n1", task_id=zhao, remark="请先看", user_ids=("sun", "zhou")
        )
        in effects
    )
    assert of(effects, TaskPaused) == [TaskPaused(zhao, "zhao")]
    assert run.running() == [("n1", "sun")]
    run.agree("sun")
    assert run.running() == [("n1", "zhou")]
    effects = run.agree("zhou")
    assert of(effects, TaskResumed) == [TaskResumed(zhao, "zhao")]
    assert run.task("zhao") == zhao  # the same task, resumed
    run.agree("zhao")
    assert run.running() == [("n2", "boss")]


def test_add_signer_after_needs_the_signer_to_agree_too() -> None:
    run = Run(define(approver("n1", users("zhao")), approver("n2", users("boss"))))
    zhao = run.task("zhao")
    effects = run.do(AddSigner(zhao, "zhao", ("sun",), "after"))
    assert of(effects, TaskCompleted) == [TaskCompleted(zhao, "zhao", "agree")]
    assert run.running() == [("n1", "sun")]
    run.agree("sun")
    assert run.running() == [("n2", "boss")]


def test_add_signer_in_sequential_mode_keeps_the_order() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "sequential")))
    run.do(AddSigner(run.task("zhao"), "zhao", ("sun",), "before"))
    run.agree("sun")
    run.do(AddSigner(run.task("zhao"), "zhao", ("zhou",), "after"))
    assert run.running() == [("n1", "zhou")]
    run.agree("zhou")
    assert run.running() == [("n1", "qian")]
    run.do(AddSigner(run.task("qian"), "qian", ("wu",), "after"))
    run.agree("wu")
    assert run.outcome == ("completed", "agree")


def test_add_signer_after_in_or_mode_takes_the_node() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"))))
    effects = run.do(AddSigner(run.task("zhao"), "zhao", ("sun",), "after"))
    assert [c.user_id for c in of(effects, TaskCancelled)] == ["qian"]
    assert run.running() == [("n1", "sun")]


def test_add_signer_before_in_or_mode_leaves_the_others_open() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"))))
    zhao = run.task("zhao")
    run.do(AddSigner(zhao, "zhao", ("sun",), "before"))
    effects = run.agree("qian")
    assert sorted(c.user_id for c in of(effects, TaskCancelled)) == ["sun", "zhao"]
    assert run.outcome == ("completed", "agree")


def test_an_added_signer_who_refuses_refuses_the_seat() -> None:
    run = Run(define(approver("n1", users("zhao"))))
    zhao = run.task("zhao")
    run.do(AddSigner(zhao, "zhao", ("sun",), "before"))
    effects = run.disagree("sun")
    assert TaskCancelled(zhao, "zhao", "cancelled") in effects
    assert run.outcome == ("completed", "disagree")


def test_added_signers_vote_as_one_seat() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "vote", ratio=1)))
    run.do(AddSigner(run.task("zhao"), "zhao", ("sun",), "after"))
    run.agree("qian")
    assert run.state.status == "running"  # zhao's seat waits for sun
    run.agree("sun")
    assert run.outcome == ("completed", "agree")


def test_add_signer_is_checked() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "and")))
    zhao = run.task("zhao")
    expect(InvalidArgument, "task.no_signer", lambda: run.do(AddSigner(zhao, "zhao", ())))
    expect(InvalidArgument, "task.invalid_position", lambda: run.do(AddSigner(zhao, "zhao", ("sun",), "beside")))
    expect(Conflict, "task.already_assignee", lambda: run.do(AddSigner(zhao, "zhao", ("zhao",))))
    expect(Conflict, "task.already_assignee", lambda: run.do(AddSigner(zhao, "zhao", ("qian",))))
    expect(PermissionDenied, "task.not_assignee", lambda: run.do(AddSigner(zhao, "qian", ("sun",))))
    run.do(AddSigner(zhao, "zhao", ("sun",)))
    expect(Conflict, "task.not_running", lambda: run.do(Agree(zhao, "zhao")))  # paused


# ------------------------------------------------------------------------------- versions, ids, JSON


def test_state_keeps_the_version_it_started_with() -> None:
    run = Run(define(approver("n1", users("zhao")), version=2))
    assert run.state.definition_version == 2
    newer = define(approver("n1", users("zhao")), approver("n2", users("wang")), version=3)
    expect(Conflict, "process.version_mismatch", lambda: act(newer, run.state, Agree(run.task("zhao"), "zhao")))
    run.agree("zhao")  # with its own version
    assert run.outcome == ("completed", "agree")


def test_task_ids_can_come_from_the_caller() -> None:
    ids = itertools.count(5000, 7)
    definition = define(approver("n1", users("zhao", "qian"), "and"), approver("n2", users("wang")))
    run = Run(definition, new_task_id=lambda: next(ids))
    assert [t.task_id for t in run.state.tasks] == [5000, 5007]
    run.do(Agree(5000, "zhao"), new_task_id=lambda: next(ids))
    run.do(Agree(5007, "qian"), new_task_id=lambda: next(ids))
    assert run.running() == [("n2", "wang")] and run.task("wang") == 5014


def test_task_ids_are_unique_and_deterministic() -> None:
    def ids() -> list[int]:
        run = Run(define(*PARALLEL))
        run.agree("wang")
        run.do(Redirect(run.task("zhou"), "zhou", "wu"))
        return [t.task_id for t in run.state.tasks]

    assert ids() == ids() == [1, 2, 3, 4, 5]


def test_state_json_shape() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "sequential")), form_data={"numberField_days": 2})
    assert run.state.to_dict() == {
        "schema": 1,
        "process_code": "TPROC--TEST0001",
        "definition_version": 1,
        "originator": "li",
        "status": "running",
        "result": None,
        "acted": False,
        "route_data": {},
        "assignees": {"n1": ["zhao", "qian"]},
        "admins": ["adm"],
        "branches": [
            {
                "id": 0,
                "parent": None,
                "node": "n1",
                "history": [],
                "approval": {
                    "node": "n1",
                    "mode": "sequential",
                    "seats": [
                        {"chain": ["zhao"], "at": 0, "outcome": None},
                        {"chain": ["qian"], "at": 0, "outcome": None},
                    ],
                },
            }
        ],
        "tasks": [{"id": 1, "node": "n1", "branch": 0, "seat": 0, "user": "zhao", "status": "running", "result": None}],
        "next_task_id": 2,
        "next_branch_id": 1,
    }
    with pytest.raises(ValueError, match="schema"):
        InstanceState.from_dict({**run.state.to_dict(), "schema": 99})


# ---------------------------------------------------------------------------------------- invariants


def broken_states() -> list[tuple[str, Callable[[InstanceState], None]]]:
    def finished_with_open_task(s: InstanceState) -> None:
        s.status, s.result, s.branches = "completed", "agree", []

    def orphan_task(s: InstanceState) -> None:
        s.tasks[0].node_id = "n2"

    def nobody_waits(s: InstanceState) -> None:
        for task in s.tasks:
            task.status = "cancelled"

    def two_tasks_for_a_seat(s: InstanceState) -> None:
        s.tasks.append(s.tasks[0].__class__(99, "n1", 0, 0, "zhao"))

    def result_without_completion(s: InstanceState) -> None:
        s.tasks[0].result = "agree"

    def decided_but_waiting(s: InstanceState) -> None:
        assert s.branches[0].approval is not None
        s.branches[0].approval.seats[1].outcome = "agree"

    def two_main_branches(s: InstanceState) -> None:
        s.branches.append(s.branches[0].__class__(7, None, "n2"))

    def joins_at_an_approver(s: InstanceState) -> None:
        s.branches[0].approval = None
        s.branches.append(s.branches[0].__class__(1, 0, "n2"))

    def paused_outside_the_chain(s: InstanceState) -> None:
        s.tasks[0].status = "paused"

    def passed_a_route(s: InstanceState) -> None:
        s.branches[0].history.append("nope")

    return [
        ("joins at n1, not a parallel node", joins_at_an_approver),
        ("paused task 1 is not waiting", paused_outside_the_chain),
        ("passed nope, not an approver node", passed_a_route),
        ("has open tasks", finished_with_open_task),
        ("belongs to no current node", orphan_task),
        ("waits for nobody", nobody_waits),
        ("should have one running task", two_tasks_for_a_seat),
        ("with result 'agree'", result_without_completion),
        ("is decided but still waits", decided_but_waiting),
        ("exactly one main branch", two_main_branches),
    ]


@pytest.mark.parametrize(("words", "damage"), broken_states())
def test_invariants_catch_broken_states(words: str, damage: Callable[[InstanceState], None]) -> None:
    definition = define(approver("n1", users("zhao", "qian")), approver("n2", users("wang")))
    state = Run(definition).state.copy()
    damage(state)
    with pytest.raises(AssertionError, match=words):
        assert_invariants(state, definition)


def test_invariants_check_the_definition_too() -> None:
    definition = define(approver("n1", users("zhao")))
    state = Run(definition).state
    assert_invariants(state)
    with pytest.raises(AssertionError, match="version"):
        assert_invariants(state, define(approver("n1", users("zhao")), version=2))
