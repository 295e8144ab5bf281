"""Races on one approval through the official SDK against the live server: exactly one decision wins, every other
caller gets a clear error, and the stored workflow stays consistent (checked after each test by the conftest)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from Tea.exceptions import TeaException

from tests.conformance.sdk import Sdk
from tests.conformance.workflow.conftest import APP1, FLOW_ALL, Flow

RACERS = 50
LOST = ("invalidState.instance.instanceStatusHasChanged", 400)


def race(flow: Flow, calls: list[dict[str, Any]]) -> list[tuple[str, int] | None]:
    """Run every executeTask call at once, each from its own SDK client; None for a success, else (code, status)."""
    token = flow.sdk.token(FLOW_ALL)
    clients = []
    for _ in calls:
        client = Sdk(flow.sdk.yida._endpoint)
        client._tokens[FLOW_ALL] = token
        clients.append(client)
    start = threading.Barrier(len(calls))

    def one(args: tuple[Sdk, dict[str, Any]]) -> tuple[str, int] | None:
        client, fields = args
        start.wait()
        try:
            client.call("execute_task", token=token, **APP1, out_result="AGREE", remark="抢", **fields)
        except TeaException as err:
            return (str(err.code), int(err.data.get("statusCode", 0)))
        return None

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, zip(clients, calls, strict=True)))


def test_fifty_simultaneous_executions_of_one_or_sign_task(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-OR", {"textField_title": "并发或签"}, user="liu")
    task = flow.task_of(iid, "wang")
    outcomes = race(flow, [{"user_id": "wang", "process_instance_id": iid, "task_id": task}] * RACERS)
    assert Counter(outcomes) == {None: 1, LOST: RACERS - 1}
    body = flow.instance(iid)
    assert (body.instance_status, body.approved_result, body.action_executor) == ("COMPLETED", "agree", [])
    tasks = flow.sql(
        "SELECT t.assignee_user_id, t.status, t.result FROM task t JOIN process_instance pi"
        " ON pi.id = t.process_instance_pk WHERE pi.instance_id = :i ORDER BY t.id",
        {"i": iid},
    )
    assert [(t["assignee_user_id"], t["status"], t["result"]) for t in tasks] == [
        ("wang", "COMPLETED", "agree"),
        ("chen", "CANCELED", None),
        ("zhao", "CANCELED", None),
    ]
    agreed = [r for r in flow.call("get_operation_records", process_instance_id=iid).body.result if r.type == "HISTORY"]
    assert [r.operate_type for r in agreed].count("EXECUTE_TASK_NORMAL") == 1
    finishes = [e for e in flow.events(iid) if e["EventType"] == "bpms_instance_change" and e["type"] == "finish"]
    assert len(finishes) == 1


def test_every_approver_of_an_or_sign_node_at_once(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-OR", {"textField_title": "并发三人"}, user="liu")
    tasks = {user: flow.task_of(iid, user) for user in ("wang", "chen", "zhao")}
    calls = [
        {"user_id": user, "process_instance_id": iid, "task_id": tasks[user]}
        for n in range(RACERS)
        for user in [("wang", "chen", "zhao")[n % 3]]
    ]
    outcomes = race(flow, calls)
    assert Counter(outcomes) == {None: 1, LOST: RACERS - 1}
    winner = calls[outcomes.index(None)]["user_id"]
    statuses = {
        r["assignee_user_id"]: r["status"]
        for r in flow.sql(
            "SELECT t.assignee_user_id, t.status FROM task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
            " WHERE pi.instance_id = :i",
            {"i": iid},
        )
    }
    assert statuses == {u: "COMPLETED" if u == winner else "CANCELED" for u in tasks}
    assert flow.instance(iid).approved_result == "agree"


def test_record_updates_racing_approval_steps_never_fail_obscurely(flow: Flow) -> None:
    # A batch update of a process record locks the instance before the record, as an approval step does:
    # the two never deadlock; each either succeeds or answers a clear conflict, and the instance stays whole.
    from concurrent.futures import ThreadPoolExecutor

    from Tea.exceptions import TeaException

    outcomes: list[str] = []
    for _ in range(12):
        iid = flow.start("FORM-FLOW-TWO", {"textField_title": "race"})
        task_id = flow.task_of(iid, "wang")

        def update(iid: str = iid) -> None:
            flow.call(
                "batch_update_form_data_by_instance_map",
                form_uuid="FORM-FLOW-TWO",
                update_form_data_json_map={iid: '{"numberField_amount": 7}'},
            )

        def approve(iid: str = iid, task_id: int = task_id) -> None:
            flow.call(
                "execute_task",
                user="wang",
                process_instance_id=iid,
                task_id=task_id,
                out_result="AGREE",
                remark="ok",
            )

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(update), pool.submit(approve)]
        for future in futures:
            try:
                future.result()
                outcomes.append("ok")
            except TeaException as err:
                assert err.code in ("invalidState.data.conflict", "invalidState.instance.instanceStatusHasChanged")
                assert err.data.get("statusCode") == 400, err.data
                outcomes.append(err.code)
        assert flow.instance(iid).instance_status == "RUNNING"
    assert outcomes.count("ok") >= 12  # most calls go through; none is a 500
