"""The admin workflow API over HTTP (withdraw, urge, return, add signers, transfer, events), with its errors and
corp isolation; the Yida side of each instance is checked through the official SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conformance.sdk import A_ALL
from tests.conformance.workflow.conftest import FLOW_ADMIN, FLOW_READ, Flow

MAX = 2**63 - 1


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    message: str = body["message"]
    return message


def task_path(flow: Flow, iid: str, user: str, action: str) -> str:
    return f"/admin/v1/tasks/{flow.task_of(iid, user)}/{action}"


def urges(flow: Flow, iid: str) -> list[tuple[str, str | None]]:
    rows = flow.sql(
        "SELECT n.user_id, n.sender_user_id FROM process_notification n JOIN process_instance pi"
        " ON pi.id = n.process_instance_pk WHERE pi.instance_id = :i AND n.kind = 'urge' ORDER BY n.id",
        {"i": iid},
    )
    return [(r["user_id"], r["sender_user_id"]) for r in rows]


# ------------------------------------------------------------------------------------------ authentication


def test_the_admin_api_needs_a_zida_admin_token(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "管理鉴权"})
    path = f"/admin/v1/process-instances/{iid}"
    missing = httpx.get(flow.base + path, timeout=10)
    error(missing, 401, "auth.token_missing")
    error(flow.admin("GET", path, token="not-a-token"), 401, "auth.token_invalid")
    error(flow.admin("GET", path, token=flow.sdk.token(FLOW_READ)), 403, "auth.scope_missing")
    body = ok(flow.admin("GET", path))
    assert (body["instanceId"], body["status"], body["currentNodes"]) == (iid, "RUNNING", ["node_one"])
    assert [(t["assignee"], t["status"]) for t in body["tasks"]] == [("wang", "RUNNING")]
    assert [h["kind"] for h in body["history"]] == ["start"]


def test_another_corp_sees_nothing_of_this_corp(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "隔离"})
    other = flow.sdk.token(A_ALL)  # corp A's credential holds "*" (Zida.Admin included)
    error(flow.admin("GET", f"/admin/v1/process-instances/{iid}", token=other), 404, "record.not_found")
    error(
        flow.admin("POST", f"/admin/v1/process-instances/{iid}/withdraw", {"userId": "li"}, token=other),
        404,
        "record.not_found",
    )
    error(
        flow.admin(
            "POST", task_path(flow, iid, "wang", "transfer"), {"userId": "wang", "toUserId": "sun"}, token=other
        ),
        404,
        "task.not_found",
    )
    events = ok(flow.admin("GET", "/admin/v1/events?limit=1000", token=other))["events"]
    assert all(e["app"] not in ("APP_FLOW1", "APP_FLOW2") and e["object"] != iid for e in events)
    assert flow.assignees(iid) == ["wang"]


# ---------------------------------------------------------------------------------------------- withdraw


def test_withdraw_by_the_originator_before_anyone_acted(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "撤回"})
    path = f"/admin/v1/process-instances/{iid}/withdraw"
    error(flow.admin("POST", path, {"userId": "adm"}), 403, "instance.not_originator")  # not even an admin
    error(flow.admin("POST", path, {}), 400, "argument.missing")
    error(flow.admin("POST", path, {"userId": "ghost"}), 404, "user.not_found")
    body = ok(flow.admin("POST", path, {"userId": "li", "remark": "填错了"}))["instance"]
    assert (body["status"], body["result"], body["currentNodes"]) == ("TERMINATED", None, [])
    assert [t["status"] for t in body["tasks"]] == ["TERMINATED"]
    assert flow.instance(iid).instance_status == "TERMINATED"
    records = flow.call("get_operation_records", process_instance_id=iid).body.result
    assert (records[-1].operate_type, records[-1].remark) == ("TERMINATE_PROCESS_INSTANCE", "填错了")
    error(flow.admin("POST", path, {"userId": "li"}), 409, "instance.finished")
    error(
        flow.admin("POST", "/admin/v1/process-instances/FINST-NOPE/withdraw", {"userId": "li"}), 404, "record.not_found"
    )


def test_withdraw_after_an_approver_acted_is_refused(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "撤回太晚"})
    flow.execute(iid, "wang")
    error(
        flow.admin("POST", f"/admin/v1/process-instances/{iid}/withdraw", {"userId": "li"}),
        409,
        "instance.already_acted",
    )
    assert flow.assignees(iid) == ["chen"]


# -------------------------------------------------------------------------------------------------- urge


def test_urge_reminds_the_running_assignees(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-OR", {"textField_title": "催办"}, user="liu")
    path = f"/admin/v1/process-instances/{iid}/urge"
    ok(flow.admin("POST", path, {"userId": "liu", "remark": "急"}))
    assert sorted(urges(flow, iid)) == [("chen", "liu"), ("wang", "liu"), ("zhao", "liu")]
    ok(flow.admin("POST", path, {"userId": "adm", "taskId": str(flow.task_of(iid, "zhao"))}))
    assert urges(flow, iid)[-1] == ("zhao", "adm")
    error(flow.admin("POST", path, {"userId": "zhou"}), 403, "permission.denied")
    error(flow.admin("POST", path, {"userId": "liu", "taskId": "12"}), 404, "task.not_found")
    error(flow.admin("POST", path, {"userId": "liu", "taskId": "x"}), 400, "argument.invalid")
    records = flow.call("get_operation_records", process_instance_id=iid).body.result
    assert [r.operate_type for r in records if r.type == "HISTORY"][-2:] == ["URGE_TASK", "URGE_TASK"]
    flow.execute(iid, "zhao")
    error(flow.admin("POST", path, {"userId": "liu"}), 409, "instance.finished")


# ------------------------------------------------------------------------------------------------ return


def test_return_to_an_earlier_node_and_to_the_submitter(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "管理退回"})
    error(flow.admin("POST", task_path(flow, iid, "wang", "return"), {"userId": "wang"}), 400, "task.no_return_target")
    flow.execute(iid, "wang")
    path = task_path(flow, iid, "chen", "return")
    error(flow.admin("POST", path, {"userId": "wang"}), 403, "task.return_not_current_approver")
    error(flow.admin("POST", path, {"userId": "li", "onBehalf": True}), 403, "permission.denied")
    error(flow.admin("POST", path, {"userId": "chen", "toNode": "node_two"}), 400, "task.invalid_return_target")
    error(flow.admin("POST", path, {"userId": "chen", "onBehalf": "yes"}), 400, "argument.invalid")
    body = ok(flow.admin("POST", path, {"userId": "chen", "remark": "重审"}))["instance"]
    assert body["currentNodes"] == ["node_one"] and flow.assignees(iid) == ["wang"]
    flow.execute(iid, "wang")
    path = task_path(flow, iid, "chen", "return")
    body = ok(flow.admin("POST", path, {"userId": "adm", "toNode": "sid-restartevent", "onBehalf": True}))["instance"]
    assert body["currentNodes"] == ["sid-restartevent"]
    assert [t["assignee"] for t in body["tasks"] if t["status"] == "RUNNING"] == ["li"]
    history = ok(flow.admin("GET", f"/admin/v1/process-instances/{iid}"))["history"]
    assert (history[-1]["kind"], history[-1]["actor"], history[-1]["onBehalf"]) == ("return", "adm", True)
    # Withdrawing is possible again while the flow waits for the originator.
    ok(flow.admin("POST", f"/admin/v1/process-instances/{iid}/withdraw", {"userId": "li"}))
    assert flow.instance(iid).instance_status == "TERMINATED"


# -------------------------------------------------------------------------------------------- add signers


def test_add_signers_before_and_after(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "加签"})
    path = task_path(flow, iid, "wang", "signers")
    error(flow.admin("POST", path, {"userId": "wang"}), 400, "argument.invalid")
    error(flow.admin("POST", path, {"userId": "wang", "userIds": ["ghost"]}), 404, "user.not_found")
    error(
        flow.admin("POST", path, {"userId": "wang", "userIds": ["sun"], "position": "beside"}),
        400,
        "task.invalid_position",
    )
    error(flow.admin("POST", path, {"userId": "sun", "userIds": ["zhou"]}), 403, "task.not_assignee")
    body = ok(flow.admin("POST", path, {"userId": "wang", "userIds": ["sun"], "remark": "请先看"}))["instance"]
    assert {t["assignee"]: t["status"] for t in body["tasks"]} == {"wang": "PAUSED", "sun": "RUNNING"}
    assert flow.assignees(iid) == ["sun"]
    error(flow.admin("POST", path, {"userId": "wang", "userIds": ["zhou"]}), 409, "task.not_running")  # paused
    flow.execute(iid, "sun")
    assert flow.assignees(iid) == ["wang"]  # resumed
    ok(flow.admin("POST", path, {"userId": "wang", "userIds": ["zhou"], "position": "after"}))
    assert flow.assignees(iid) == ["zhou"]
    flow.execute(iid, "zhou")
    assert flow.assignees(iid) == ["chen"]
    kinds = [r.operate_type for r in flow.call("get_operation_records", process_instance_id=iid).body.result]
    assert "APPEND_TASK_BEFORE" in kinds and "APPEND_TASK_AFTER" in kinds


def test_add_signers_in_sequential_mode(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-SEQ", {"textField_title": "依次加签"})
    path = task_path(flow, iid, "wang", "signers")
    message = error(flow.admin("POST", path, {"userId": "wang", "userIds": ["chen"]}), 409, "task.already_assignee")
    assert "chen already has a turn at node node_seq" in message
    ok(flow.admin("POST", path, {"userId": "adm", "userIds": ["sun"], "position": "after", "onBehalf": True}))
    assert flow.assignees(iid) == ["sun"]
    flow.execute(iid, "sun")
    assert flow.assignees(iid) == ["chen"]  # the line goes on in its order
    ok(flow.admin("POST", task_path(flow, iid, "chen", "signers"), {"userId": "chen", "userIds": ["zhou"]}))
    flow.execute(iid, "zhou")
    flow.execute(iid, "chen")
    assert flow.assignees(iid) == ["qian", "sun", "zhao", "zhou"]  # the vote node


# ----------------------------------------------------------------------------------------------- transfer


def test_transfer(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "管理转交"})
    path = task_path(flow, iid, "wang", "transfer")
    error(flow.admin("POST", path, {"userId": "wang"}), 400, "argument.missing")
    error(flow.admin("POST", path, {"userId": "zhou", "toUserId": "sun"}), 403, "task.not_assignee")
    error(flow.admin("POST", path, {"userId": "zhou", "toUserId": "sun", "onBehalf": True}), 403, "permission.denied")
    error(flow.admin("POST", path, {"userId": "wang", "toUserId": "wang"}), 400, "task.redirect_to_assignee")
    error(flow.admin("POST", path, {"userId": "wang", "toUserId": "nobody"}), 404, "user.not_found")
    body = ok(flow.admin("POST", path, {"userId": "wang", "toUserId": "sun", "remark": "休假"}))["instance"]
    assert [(t["assignee"], t["result"]) for t in body["tasks"]] == [("wang", "redirect"), ("sun", None)]
    ok(
        flow.admin(
            "POST", task_path(flow, iid, "sun", "transfer"), {"userId": "adm", "toUserId": "zhou", "onBehalf": True}
        )
    )
    assert flow.assignees(iid) == ["zhou"]
    error(flow.admin("POST", path, {"userId": "wang", "toUserId": "chen"}), 409, "task.redirect_not_running")


def test_transfer_in_sequential_mode_refuses_a_second_turn(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-SEQ", {"textField_title": "依次管理转交"})
    path = task_path(flow, iid, "wang", "transfer")
    error(flow.admin("POST", path, {"userId": "wang", "toUserId": "chen"}), 409, "task.already_assignee")
    ok(flow.admin("POST", path, {"userId": "wang", "toUserId": "sun"}))
    flow.execute(iid, "sun")
    assert flow.assignees(iid) == ["chen"]


# ------------------------------------------------------------------------------------------------ events


def test_events_of_the_corp_oldest_first_with_paging(flow: Flow) -> None:
    latest = ok(flow.admin("GET", "/admin/v1/events?limit=1000"))["events"]
    after = max([e["id"] for e in latest], default=0)
    while len(latest) == 1000:  # skip past everything earlier tests wrote
        latest = ok(flow.admin("GET", f"/admin/v1/events?after={after}&limit=1000"))["events"]
        after = max([e["id"] for e in latest], default=after)
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "事件"})
    flow.execute(iid, "wang")
    events = ok(flow.admin("GET", f"/admin/v1/events?after={after}"))["events"]
    assert [(e["topic"], e["actor"]) for e in events] == [
        ("record.created", "li"),
        ("process.started", "li"),
        ("task.created", "li"),
        ("task.finished", "wang"),
        ("task.created", "wang"),
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert all(e["app"] == "APP_FLOW1" for e in events)
    assert [e["object"] for e in events[:2]] == [iid, iid]
    assert all(e["data"]["process_instance"] == iid for e in events[2:])
    assert [e["data"]["assignee"] for e in events[2:]] == ["wang", "wang", "chen"]
    assert events[3]["data"]["result"] == "agree" and events[1]["data"]["originator"] == "li"
    two = ok(flow.admin("GET", f"/admin/v1/events?after={after}&limit=2"))["events"]
    assert [e["id"] for e in two] == [e["id"] for e in events[:2]]
    rest = ok(flow.admin("GET", f"/admin/v1/events?after={two[-1]['id']}"))["events"]
    assert [e["id"] for e in rest] == [e["id"] for e in events[2:]]


@pytest.mark.parametrize(
    "query", ["after=-1", "after=x", f"after={MAX + 1}", "limit=0", "limit=1001", f"limit={MAX + 1}"]
)
def test_events_reject_bad_paging(flow: Flow, query: str) -> None:
    error(flow.admin("GET", f"/admin/v1/events?{query}"), 400, "argument.invalid")


@pytest.mark.parametrize("task_id", [str(MAX + 1), "99999999999999999999999", "0", "-5", "abc"])
def test_out_of_range_task_ids_are_bad_input(flow: Flow, task_id: str) -> None:
    for action in ("signers", "transfer", "return"):
        response = flow.admin("POST", f"/admin/v1/tasks/{task_id}/{action}", {"userId": "wang", "userIds": ["sun"]})
        error(response, 400, "argument.invalid")


def test_the_largest_task_id_is_simply_unknown(flow: Flow) -> None:
    error(
        flow.admin("POST", f"/admin/v1/tasks/{MAX}/signers", {"userId": "wang", "userIds": ["sun"]}),
        404,
        "task.not_found",
    )


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("where", ["remark", "userId"])
def test_a_nul_character_in_a_body_is_refused_and_changes_nothing(flow: Flow, where: str) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "催办空字符"})
    before = flow.sql("SELECT id FROM process_notification")
    body = {"userId": "li", "remark": "请尽快"}
    body[where] = body[where] + "\u0000x"
    response = httpx.post(
        flow.base + f"/admin/v1/process-instances/{iid}/urge",
        content=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {flow.sdk.token(FLOW_ADMIN)}", "content-type": "application/json"},
        timeout=10,
    )
    error(response, 400, "request.nul_character")
    assert response.headers["x-request-id"]
    assert flow.sql("SELECT id FROM process_notification") == before


def test_unknown_admin_routes_and_methods_answer_in_the_admin_format(flow: Flow) -> None:
    error(flow.admin("GET", "/admin/v1/nope"), 404, "route.not_found")
    error(flow.admin("POST", "/admin/v1/nope", {"x": 1}), 404, "route.not_found")
    error(flow.admin("DELETE", "/admin/v1/events"), 405, "request.method_not_allowed")
    # Without a token too: the route does not exist before anyone is asked who they are.
    error(httpx.get(flow.base + "/admin/v1/nope", timeout=10), 404, "route.not_found")
