"""The OA workflow API's refusals through the official client: every route's auth matrix (no token, a bad token, a
token without the route's permission point, another corp's token) and bad input, which changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_dingtalk.workflow_1_0 import models as wf

from tests.conformance.sdk import A_ALL, expect_error
from tests.conformance.workflow.oa_support import LEAVE, OA_FORMS, OA_INSTANCE_READ, OA_WORKFLOW, Oa, components

MISSING = ("AuthenticationFailed.MissingParameter", 400)
INVALID = ("InvalidAuthentication", 400)
DENIED = ("Forbidden.AccessDenied.AccessTokenPermissionDenied", 403)
NO_INSTANCE = ("processInstanceNotExist", 400)
NO_PROCESS = ("processCodeError", 400)
NO_USER = ("invalidParameter", 400)


# route → (permission point, a valid call given (oa, instance id, task id, credential, token), what another corp gets)
Route = Callable[[Oa, str, int, Any, Any], Any]


def _routes() -> dict[str, tuple[str, Route, tuple[str, int]]]:
    def call(api: str, **fields: Any) -> Route:
        return lambda oa, inst, task, cred, token: oa.call(
            api, cred, token, **{k: (v(inst, task) if callable(v) else v) for k, v in fields.items()}
        )

    return {
        "start": (
            "Workflow.Instance.Write",
            call(
                "start_process_instance",
                process_code=LEAVE,
                originator_user_id="li",
                form_component_values=components(事由="x"),
            ),
            NO_PROCESS,
        ),
        "get": (
            "Workflow.Instance.Read",
            call("get_process_instance", process_instance_id=lambda i, t: i),
            NO_INSTANCE,
        ),
        "execute": (
            "Workflow.Task.Write",
            call(
                "execute_process_instance",
                process_instance_id=lambda i, t: i,
                task_id=lambda i, t: t,
                actioner_user_id="wang",
                result="agree",
            ),
            NO_INSTANCE,
        ),
        "batch": (
            "Workflow.Task.Write",
            lambda oa, inst, task, cred, token: oa.call(
                "batch_execute_process_instances",
                cred,
                token,
                actioner_user_id="wang",
                result="agree",
                task_info_list=[
                    wf.BatchExecuteProcessInstancesRequestTaskInfoList(process_instance_id=inst, task_id=task)
                ],
            ),
            ("", 200),
        ),
        "terminate": (
            "Workflow.Instance.Write",
            call("terminate_process_instance", process_instance_id=lambda i, t: i, operating_user_id="li"),
            NO_INSTANCE,
        ),
        "comment": (
            "Workflow.Instance.Write",
            call("add_process_instance_comment", process_instance_id=lambda i, t: i, comment_user_id="li", text="hi"),
            NO_INSTANCE,
        ),
        "redirect": (
            "Workflow.Task.Write",
            call("redirect_workflow_task", task_id=lambda i, t: t, to_user_id="liu", operate_user_id="wang"),
            NO_USER,
        ),
        "ids": (
            "Workflow.Instance.Read",
            call("list_process_instance_ids", process_code=LEAVE, start_time=lambda i, t: _now() - 60_000),
            NO_PROCESS,
        ),
        "pages": (
            "Workflow.Instance.Read",
            call("query_all_process_instances", process_code=LEAVE, start_time_in_mills=lambda i, t: _now() - 60_000),
            NO_PROCESS,
        ),
        "schema": ("Workflow.Form.Read", call("query_schema_by_process_code", process_code=LEAVE), NO_PROCESS),
        "forecast": (
            "Workflow.Instance.Read",
            call("process_forecast", process_code=LEAVE, user_id="li", form_component_values=[]),
            NO_PROCESS,
        ),
        "todo-sum": ("Workflow.Instance.Read", call("get_user_todo_task_sum", user_id="wang"), NO_USER),
        "work-records": ("Workflow.Instance.Read", call("list_todo_work_records", user_id="wang"), NO_USER),
        "templates": ("Workflow.Form.Read", call("list_user_visible_bpms_processes", user_id="li"), NO_USER),
    }


def _now() -> int:
    return int(time.time() * 1000)


ROUTES = _routes()


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_auth_matrix(oa: Oa, route: str) -> None:
    permission, make, other_corp = ROUTES[route]
    instance_id = oa.start()
    task_id = oa.running(instance_id)["wang"]
    before = oa.counts()
    expect_error(lambda: make(oa, instance_id, task_id, None, None), *MISSING)
    expect_error(lambda: make(oa, instance_id, task_id, None, "not-a-token"), *INVALID)
    err = expect_error(lambda: make(oa, instance_id, task_id, OA_FORMS, None), *DENIED)
    assert permission in json.dumps(err.data)
    if permission != "Workflow.Instance.Read":
        expect_error(lambda: make(oa, instance_id, task_id, OA_INSTANCE_READ, None), *DENIED)
    if route == "batch":
        # Another corp's token sees no such instance: the batch reports the task as failed.
        body = make(oa, instance_id, task_id, A_ALL, None)
        assert body.result[str(task_id)].result is False
    else:
        expect_error(lambda: make(oa, instance_id, task_id, A_ALL, None), *other_corp)
    assert oa.counts() == before
    assert make(oa, instance_id, task_id, OA_WORKFLOW, None) is not None


def test_unknown_process_user_and_instance(oa: Oa) -> None:
    before = oa.counts()
    expect_error(lambda: oa.start(code="TPROC--NOPE"), *NO_PROCESS)
    err = expect_error(lambda: oa.start(originator="ghost"), *NO_USER)
    assert "ghost" in err.message
    expect_error(lambda: oa.start(originator="qian"), *NO_USER)  # deactivated
    expect_error(lambda: oa.get("FINST-NOPE"), *NO_INSTANCE)
    # A client's value is quoted briefly, never whole (a megabyte came back in the message).
    err = expect_error(lambda: oa.start(code="TPROC--" + "f" * 1_000_000), *NO_PROCESS)
    assert len(err.message) < 300 and "1000007 characters" in err.message
    assert len(expect_error(lambda: oa.get("FINST-" + "x" * 5_000), *NO_INSTANCE).message) < 300
    expect_error(
        lambda: oa.start(approvers=[wf.StartProcessInstanceRequestApprovers(action_type="OR", user_ids=["ghost"])]),
        *NO_USER,
    )
    expect_error(lambda: oa.start(cc_list=["ghost"]), *NO_USER)
    expect_error(lambda: oa.start(cc_list=["sun"], cc_position="SOMETIME"), "invalidParameter", 400)
    expect_error(
        lambda: oa.start(
            form_component_values=components(事由="x", 代理人='["ghost"]'),
        ),
        "formConverterError",
        400,
    )
    expect_error(
        lambda: oa.start(form_component_values=components(事由="x", 部门="999")),
        "formConverterError",
        400,
    )
    expect_error(
        lambda: oa.call("start_process_instance", process_code="TPROC--OA-PLAIN", originator_user_id="li"),
        *NO_PROCESS,
    )
    assert oa.counts() == before


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"事由": "x", "不存在的控件": "1"}, "不存在的控件"),
        ({"事由": "x", "天数": "三天"}, "天数"),
        ({"事由": "x", "类型": "病假"}, "类型"),
        ({"事由": "x", "标签": '["紧急"'}, "标签"),
        ({"事由": "x", "开始日期": "明天"}, "开始日期"),
        ({"事由": "x", "请假区间": '["2025-01-01"]'}, "请假区间"),
        ({"事由": "x", "明细": '[[{"name": "没有这列", "value": "1"}]]'}, "明细.没有这列"),
        ({"事由": "x", "附件": '[{"fileName": "a.pdf"}]'}, "附件"),
        ({"事由": "x", "附件": '[{"fileId": ["a"], "spaceId": {"b": 1}}]'}, "附件"),  # was stored as Python reprs
        ({"事由": "x", "附件": '[{"url": {"a": 1}}]'}, "附件"),
        ({"天数": "1"}, "事由"),
    ],
)
def test_malformed_form_component_values_write_nothing(oa: Oa, values: dict[str, str], named: str) -> None:
    before = oa.counts()
    err = expect_error(lambda: oa.start(form_component_values=components(**values)), "formConverterError", 400)
    assert err.data["message"].startswith("表单数据校验失败，失败控件")
    assert named in err.data["message"] or named.replace("事由", "textField_reason") in err.data["message"]
    assert oa.counts() == before


def test_finished_and_foreign_tasks_cannot_be_executed(oa: Oa) -> None:
    instance_id = oa.start()
    task_id = oa.running(instance_id)["wang"]
    expect_error(
        lambda: oa.call(
            "execute_process_instance",
            process_instance_id=instance_id,
            task_id=task_id,
            actioner_user_id="liu",
            result="agree",
        ),
        "forbidden.accessDenied",
        403,
    )
    expect_error(
        lambda: oa.call(
            "execute_process_instance",
            process_instance_id=instance_id,
            task_id=task_id,
            actioner_user_id="wang",
            result="maybe",
        ),
        "invalidParameter",
        400,
    )
    oa.execute(instance_id, "wang")
    before = oa.counts()
    expect_error(
        lambda: oa.call(
            "execute_process_instance",
            process_instance_id=instance_id,
            task_id=task_id,
            actioner_user_id="wang",
            result="refuse",
        ),
        "aflowProcessInstStatusException",
        400,
    )
    expect_error(
        lambda: oa.call("redirect_workflow_task", task_id=task_id, to_user_id="liu", operate_user_id="wang"),
        "aflowProcessInstCanNotBeExecuted",
        400,
    )
    assert oa.counts() == before
    assert (oa.get(instance_id).status, oa.get(instance_id).result) == ("COMPLETED", "agree")


def test_a_finished_task_of_a_running_instance(oa: Oa) -> None:
    instance_id = oa.start(form_component_values=components(事由="长假", 天数="5"))
    first = oa.running(instance_id)["wang"]
    oa.execute(instance_id, "wang")
    expect_error(
        lambda: oa.call(
            "execute_process_instance",
            process_instance_id=instance_id,
            task_id=first,
            actioner_user_id="wang",
            result="agree",
        ),
        "aflowProcessInstCanNotBeExecuted",
        400,
    )
    assert list(oa.running(instance_id)) == ["boss"]


def test_template_changes_are_not_supported(oa: Oa) -> None:
    err = expect_error(
        lambda: oa.call("form_create", name="新模板", form_components=[]),
        "invalidParameter.operation.notSupported",
        400,
    )
    assert "bundle" in err.data["message"]
