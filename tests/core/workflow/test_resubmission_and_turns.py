"""The engine's return to the submitter (退回发起人) and its one-turn-per-person rule, step by step through JSON."""

from __future__ import annotations

from tests.core.workflow.test_engine import ORG, PARALLEL, Run, approver, define, expect, of, users
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from zida.core.workflow.definition import START_ACTIVITY_ID
from zida.core.workflow.engine import (
    AddSigner,
    Agree,
    Disagree,
    EventEmitted,
    OperationRecorded,
    Redirect,
    Return,
    StaticDirectory,
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    Urge,
    Withdraw,
    act,
)


def returned(run: Run, user: str) -> int:
    """``user`` returns their running task to the originator; the originator's resubmission task id."""
    run.do(Return(run.task(user), user, to_node=START_ACTIVITY_ID, remark="请补充"))
    return run.task("li")


# ------------------------------------------------------------------------------------- return to start


def test_return_to_the_submitter_waits_for_the_originator_and_resubmitting_restarts_the_flow() -> None:
    run = Run(define(approver("n1", users("wang")), approver("n2", users("chen"))))
    run.agree("wang")
    chen = run.task("chen")
    effects = run.do(Return(chen, "chen", to_node=START_ACTIVITY_ID, remark="请补充"))
    assert of(effects, TaskCompleted) == [TaskCompleted(chen, "chen", "return")]
    resubmission = run.task("li")
    assert of(effects, TaskCreated) == [TaskCreated(resubmission, START_ACTIVITY_ID, "li")]
    assert (
        OperationRecorded(
            "return", actor="chen", node_id="n2", task_id=chen, remark="请补充", target_node_id=START_ACTIVITY_ID
        )
        in effects
    )
    assert run.running() == [(START_ACTIVITY_ID, "li")]
    assert run.state.current_node_ids() == [START_ACTIVITY_ID]
    assert run.state.status == "running"
    effects = run.agree("li", remark="已补充")
    assert (
        OperationRecorded("resubmit", actor="li", node_id=START_ACTIVITY_ID, task_id=resubmission, remark="已补充")
        in effects
    )
    assert run.running() == [("n1", "wang")]  # from the first node again
    run.agree("wang")
    run.agree("chen")
    assert run.outcome == ("completed", "agree")


def test_only_the_originator_resubmits_unless_on_behalf() -> None:
    run = Run(define(approver("n1", users("wang"))))
    task = returned(run, "wang")
    expect(PermissionDenied, "task.not_assignee", lambda: run.do(Agree(task, "wang")))
    run.do(Agree(task, "adm", on_behalf=True))
    assert run.running() == [("n1", "wang")]


def test_the_resubmission_task_cannot_be_transferred_returned_or_given_signers() -> None:
    run = Run(define(approver("n1", users("wang"))))
    task = returned(run, "wang")
    expect(Conflict, "task.resubmission", lambda: run.do(Redirect(task, "li", "chen")))
    expect(Conflict, "task.resubmission", lambda: run.do(Return(task, "li")))
    expect(Conflict, "task.resubmission", lambda: run.do(AddSigner(task, "li", ("chen",))))
    run.do(Urge("adm", task_id=task))  # reminding the originator is fine


def test_refusing_to_resubmit_or_withdrawing_ends_the_instance_terminated() -> None:
    run = Run(define(approver("n1", users("wang"))))
    task = returned(run, "wang")
    effects = run.do(Disagree(task, "li", "不再申请"))
    assert OperationRecorded("withdraw", actor="li", node_id=START_ACTIVITY_ID, task_id=task, remark="不再申请") in (
        effects
    )
    assert run.outcome == ("terminated", None)
    assert [e.topic for e in of(effects, EventEmitted)] == ["task.finished", "process.terminated"]

    again = Run(define(approver("n1", users("wang"))))
    returned(again, "wang")
    expect(PermissionDenied, "instance.not_originator", lambda: again.do(Withdraw("wang")))
    effects = again.do(Withdraw("li"))  # an approver acted, but the flow is back with the originator
    assert [c.status for c in of(effects, TaskCancelled)] == ["terminated"]
    assert again.outcome == ("terminated", None)


def test_return_to_the_submitter_from_a_parallel_branch_undoes_every_branch() -> None:
    run = Run(define(*PARALLEL))
    run.agree("wang")
    effects = run.do(Return(run.task("zhou"), "zhou", to_node=START_ACTIVITY_ID))
    assert sorted(c.user_id for c in of(effects, TaskCancelled)) == ["qian", "zhao"]
    assert [b.branch_id for b in run.state.branches] == [0]
    assert run.running() == [(START_ACTIVITY_ID, "li")]
    run.agree("li")
    assert run.running() == [("n_first", "wang")]
    run.agree("wang")
    assert len(run.state.branches) == 3  # forked again


def test_resubmission_with_a_directory_resolves_the_approvers_from_the_new_values() -> None:
    definition = define(approver("n1", {"field": "employeeField_agent"}, empty="fail"), approver("n2", users("boss")))
    run = Run(definition, form_data={"employeeField_agent": ["zhao"]})
    task = returned(run, "zhao")
    # The new values name nobody for a node that may not be empty: the resubmission is refused, nothing changes.
    expect(
        InvalidArgument,
        "process.no_approver",
        lambda: act(definition, run.state, Agree(task, "li"), form_data={}, directory=ORG),
    )
    run.do(Agree(task, "li"), form_data={"employeeField_agent": ["qian"]}, directory=ORG)
    assert run.running() == [("n1", "qian")]


def test_resubmission_without_a_directory_keeps_the_approvers_of_the_start() -> None:
    definition = define(approver("n1", {"field": "employeeField_agent"}))
    run = Run(definition, form_data={"employeeField_agent": ["zhao"]})
    task = returned(run, "zhao")
    run.do(Agree(task, "li"), form_data={"employeeField_agent": ["qian"]})
    assert run.running() == [("n1", "zhao")]


def test_originator_choices_survive_a_resubmission() -> None:
    definition = define(approver("n1", users("wang")), approver("n2", {"originatorChooses": True}))
    directory = StaticDirectory(ORG.user_ids, admin_ids=("adm",))
    run = Run(definition, chosen_approvers={"n2": ["sun"]}, directory=directory)
    task = returned(run, "wang")
    run.do(Agree(task, "li"), form_data={}, directory=directory)
    run.agree("wang")
    assert run.running() == [("n2", "sun")]


# -------------------------------------------------------------------------------- one turn per person


def test_a_transfer_in_sequential_mode_cannot_give_a_later_approver_a_second_turn() -> None:
    run = Run(define(approver("n1", users("wang", "chen", "zhao"), "sequential")))
    wang = run.task("wang")
    err = expect(Conflict, "task.already_assignee", lambda: run.do(Redirect(wang, "wang", "chen")))
    assert "chen" in str(err) and "n1" in str(err)
    run.do(Redirect(wang, "wang", "sun"))
    run.agree("sun")
    run.agree("chen")
    # Who already decided at the node does not get another turn either.
    expect(Conflict, "task.already_assignee", lambda: run.do(Redirect(run.task("zhao"), "zhao", "chen")))
    run.agree("zhao")
    assert run.outcome == ("completed", "agree")


def test_a_transfer_back_to_the_one_who_transferred_is_allowed() -> None:
    run = Run(define(approver("n1", users("wang", "chen"), "sequential")))
    run.do(Redirect(run.task("wang"), "wang", "sun"))
    run.do(Redirect(run.task("sun"), "sun", "wang"))
    assert run.running() == [("n1", "wang")]


def test_an_added_signer_cannot_be_someone_with_a_turn_at_the_node() -> None:
    run = Run(define(approver("n1", users("wang", "chen"), "sequential")))
    wang = run.task("wang")
    for position in ("before", "after"):
        expect(Conflict, "task.already_assignee", lambda p=position: run.do(AddSigner(wang, "wang", ("chen",), p)))  # type: ignore[misc]
    run.do(AddSigner(wang, "wang", ("sun",), "after"))
    assert run.running() == [("n1", "sun")]
    # sun's turn is taken; chen (later in line) may not be handed it, nor can sun be added again.
    expect(Conflict, "task.already_assignee", lambda: run.do(Redirect(run.task("sun"), "sun", "chen")))
    expect(Conflict, "task.already_assignee", lambda: run.do(AddSigner(run.task("sun"), "sun", ("wang",))))


def test_a_transfer_to_an_added_signer_or_to_who_decided_another_seat_is_refused() -> None:
    run = Run(define(approver("n1", users("zhao", "qian"), "and")))
    run.do(AddSigner(run.task("zhao"), "zhao", ("sun",), "after"))  # zhao agreed; sun decides next in the seat
    expect(Conflict, "task.already_assignee", lambda: run.do(Redirect(run.task("qian"), "qian", "sun")))
    expect(Conflict, "task.already_assignee", lambda: run.do(Redirect(run.task("qian"), "qian", "zhao")))


# -------------------------------------------------------------------------------------- public task ids


def test_errors_name_the_public_task_id() -> None:
    definition = define(approver("n1", users("wang")))
    run = Run(definition)
    task = run.task("wang")

    def public(n: int) -> int:
        return 7_000_000 + n

    err = expect(
        PermissionDenied,
        "task.not_assignee",
        lambda: act(definition, run.state, Agree(task, "chen"), public_task_id=public),
    )
    assert f"task {public(task)} is assigned to wang" in str(err)
    assert getattr(err, "details", {})["task_id"] == public(task)
    err = expect(
        NotFound, "task.not_found", lambda: act(definition, run.state, Agree(9, "wang"), public_task_id=public)
    )
    assert f"task {public(9)} " in str(err)
    run.agree("wang")
