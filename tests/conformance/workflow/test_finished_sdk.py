"""A finished approval's record is read-only for everyone but app admins, whichever route tries to change it:
updateInstance, UpdateFormData, the batch updates; an app admin's change is logged like any other."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conformance.sdk import expect_error
from tests.conformance.workflow.conftest import Flow

FORM = "FORM-FLOW-TWO"
FINISHED = ("invalidState.instance.instanceStatusHasChanged", 400)


def finished(flow: Flow, title: str, *, refuse: bool = False) -> str:
    iid = flow.start(FORM, {"textField_title": title})
    if refuse:
        flow.execute(iid, "wang", "DISAGREE", "不行")
    else:
        flow.execute(iid, "wang")
        flow.execute(iid, "chen")
    return iid


def routes(flow: Flow, iid: str, user: str) -> dict[str, Callable[[], Any]]:
    values = json.dumps({"textField_title": "改了"}, ensure_ascii=False)
    return {
        "updateInstance": lambda: flow.call(
            "update_instance", user=user, process_instance_id=iid, update_form_data_json=values
        ),
        "UpdateFormData": lambda: flow.call(
            "update_form_data", user=user, form_instance_id=iid, update_form_data_json=values
        ),
        "BatchUpdateFormDataByInstanceId": lambda: flow.call(
            "batch_update_form_data_by_instance_id",
            user=user,
            form_uuid=FORM,
            form_instance_id_list=[iid],
            update_form_data_json=values,
        ),
    }


@pytest.mark.parametrize("route", ["updateInstance", "UpdateFormData", "BatchUpdateFormDataByInstanceId"])
@pytest.mark.parametrize("refuse", [False, True])
def test_the_originator_cannot_change_a_finished_approval(flow: Flow, route: str, refuse: bool) -> None:
    iid = finished(flow, f"已结束 {route}", refuse=refuse)
    expect_error(routes(flow, iid, "li")[route], *FINISHED)
    assert flow.instance(iid).data["textField_title"] == f"已结束 {route}"


def test_a_terminated_approval_is_read_only_too(flow: Flow) -> None:
    iid = flow.start(FORM, {"textField_title": "已终止"})
    flow.call("terminate_instance", user="li", process_instance_id=iid)
    expect_error(routes(flow, iid, "li")["updateInstance"], *FINISHED)


def test_an_app_admin_may_still_correct_it_and_the_change_is_logged(flow: Flow) -> None:
    iid = finished(flow, "管理员更正")
    routes(flow, iid, "adm")["UpdateFormData"]()
    assert flow.instance(iid).data["textField_title"] == "改了"
    logs = flow.call("list_operation_logs", user="adm", form_uuid=FORM, form_instance_id_list=[iid]).body
    update = [e for e in logs.operation_log_map[iid] if e["operationType"] == "UPDATE"]
    assert update and update[-1]["operator"]["userId"] == "adm"


def test_while_it_runs_the_originator_still_may(flow: Flow) -> None:
    iid = flow.start(FORM, {"textField_title": "进行中"})
    routes(flow, iid, "li")["updateInstance"]()
    assert flow.instance(iid).data["textField_title"] == "改了"
