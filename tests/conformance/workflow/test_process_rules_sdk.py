"""Rules of process instances through the official SDK: who sees an instance in every query, what the form API
may do to a process record, out-of-range ids, and parameters the SDK marks optional."""

from __future__ import annotations

import json
import secrets

import pytest
from Tea.exceptions import TeaException

from tests.conformance.sdk import expect_error
from tests.conformance.workflow.conftest import APP1, Flow

HUGE = "99999999999999999999999"
BAD = ("invalidParameter.parameter.error", 400)
EMPTY_PARAM = ("invalidParameter.parameter.parameterIsEmpty", 400)


def seen_by(flow: Flow, user: str, iid: str, form: str, marker: str) -> dict[str, bool]:
    """Whether ``user`` finds the instance through each process query."""
    search = (
        json.dumps({"textField_title": marker})
        if form != "FORM-FLOW-LEAVE"
        else json.dumps({"textField_reason": marker})
    )
    ids = flow.call("get_instance_id_list", user=user, form_uuid=form, search_field_json=search).body.data
    found = flow.call("get_instances", user=user, form_uuid=form, search_field_json=search).body
    v2 = flow.call("get_instance_id_list", version=2, user=user, form_uuid=form, search_field_json=search).body.data
    listed = flow.call("get_instances_by_id_list", user=user, process_instance_ids=iid).body.result
    try:
        flow.instance(iid, user=user)
        by_id = True
    except TeaException as err:
        assert err.code == "noPermission.permission.deny", err.data
        by_id = False
    assert found.total_count == len(found.data)
    return {
        "ids": iid in ids,
        "instances": iid in [d.process_instance_id for d in found.data],
        "v2": iid in v2,
        "by_ids": iid in [r.process_instance_id for r in listed],
        "by_id": by_id,
    }


# -------------------------------------------------------------------------------------------- visibility


def test_an_instance_is_visible_to_admins_originator_approvers_and_cc(flow: Flow) -> None:
    marker = "可见性" + secrets.token_hex(4)
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": marker})
    everywhere = dict.fromkeys(("ids", "instances", "v2", "by_ids", "by_id"), True)
    nowhere = dict.fromkeys(everywhere, False)
    assert seen_by(flow, "adm", iid, "FORM-FLOW-TWO", marker) == everywhere
    assert seen_by(flow, "li", iid, "FORM-FLOW-TWO", marker) == everywhere
    assert seen_by(flow, "wang", iid, "FORM-FLOW-TWO", marker) == everywhere  # has a task
    assert seen_by(flow, "chen", iid, "FORM-FLOW-TWO", marker) == nowhere  # the flow has not reached chen
    assert seen_by(flow, "sun", iid, "FORM-FLOW-TWO", marker) == nowhere
    flow.call(
        "redirect_task",
        user="wang",
        process_instance_id=iid,
        task_id=flow.task_of(iid, "wang"),
        now_action_executor_id="sun",
        remark="",
    )
    assert seen_by(flow, "sun", iid, "FORM-FLOW-TWO", marker) == everywhere
    assert seen_by(flow, "wang", iid, "FORM-FLOW-TWO", marker) == everywhere  # had a task
    assert seen_by(flow, "zhou", iid, "FORM-FLOW-TWO", marker) == nowhere


def test_a_cc_makes_the_instance_visible(flow: Flow) -> None:
    marker = "抄送可见" + secrets.token_hex(4)
    iid = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 1, "textField_reason": marker})
    assert seen_by(flow, "sun", iid, "FORM-FLOW-LEAVE", marker)["ids"] is False
    flow.execute(iid, "chen")  # passes the CC node (sun)
    assert set(seen_by(flow, "sun", iid, "FORM-FLOW-LEAVE", marker).values()) == {True}


# ---------------------------------------------------------------------------- the form API on process data


def test_the_form_api_reads_process_records_by_the_process_rule(flow: Flow) -> None:
    # An approver reads the approval's record through the form API as through the process API.
    marker = "表单读" + secrets.token_hex(4)
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": marker})
    got = flow.call("get_form_data_by_id", iid, user="wang").body
    assert got.form_inst_id == iid and got.form_data["textField_title"] == marker
    found = flow.call(
        "search_form_datas",
        user="wang",
        form_uuid="FORM-FLOW-TWO",
        search_field_json=json.dumps({"textField_title": marker}, ensure_ascii=False),
    ).body
    assert [d.form_instance_id for d in found.data] == [iid] and found.total_count == 1
    ids = flow.call(
        "search_form_data_id_list",
        "APP_FLOW1",
        "FORM-FLOW-TWO",
        app={"system_token": APP1["system_token"]},
        user="wang",
        search_field_json=json.dumps({"textField_title": marker}, ensure_ascii=False),
    ).body
    assert list(ids.data) == [iid]
    # chen takes no part yet: neither API shows it to him.
    expect_error(lambda: flow.call("get_form_data_by_id", iid, user="chen"), "noPermission.permission.deny", 400)
    hidden = flow.call(
        "search_form_datas",
        user="chen",
        form_uuid="FORM-FLOW-TWO",
        search_field_json=json.dumps({"textField_title": marker}, ensure_ascii=False),
    ).body
    assert hidden.data == [] and hidden.total_count == 0


def test_update_form_data_on_a_process_record_is_an_instance_update(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "before"})
    (row,) = flow.sql("SELECT lock_version FROM process_instance WHERE instance_id = :i", {"i": iid})
    # Someone with no part in the approval may not change it through the form API either.
    expect_error(
        lambda: flow.call(
            "update_form_data",
            user="zhou",
            form_instance_id=iid,
            update_form_data_json=json.dumps({"textField_title": "x"}),
        ),
        "noPermission.permission.deny",
        400,
    )
    flow.call(
        "update_form_data",
        user="wang",
        form_instance_id=iid,
        update_form_data_json=json.dumps({"textField_title": "after"}),
    )
    assert flow.instance(iid).data["textField_title"] == "after"
    (after,) = flow.sql("SELECT lock_version FROM process_instance WHERE instance_id = :i", {"i": iid})
    assert after["lock_version"] > row["lock_version"]  # the instance knows its record changed
    flow.execute(iid, "wang")
    flow.execute(iid, "chen")


def test_delete_form_data_on_a_process_record_deletes_the_instance_as_delete_instance_does(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "表单接口删除"})
    # The originator may delete their own plain records, but not an approval: only app admins delete those.
    expect_error(
        lambda: flow.call("delete_form_data", user="li", form_instance_id=iid), "noPermission.permission.deny", 400
    )
    assert flow.assignees(iid) == ["wang"]
    flow.call("delete_form_data", user="adm", form_instance_id=iid)
    expect_error(lambda: flow.instance(iid), "invalidState.form.dataDoesNotExistOrIsDeleted", 400)
    assert flow.sql("SELECT id FROM process_instance WHERE instance_id = :i", {"i": iid}) == []
    assert [(e["type"], e["staffId"]) for e in flow.events(iid)][-3:] == [
        ("cancel", "wang"),
        ("terminate", "li"),
        ("delete", "adm"),
    ]
    logs = flow.sql(
        "SELECT operation_type, operator_user_id FROM form_operation_log WHERE instance_id = :i ORDER BY id",
        {"i": iid},
    )
    assert logs[-1] == {"operation_type": "DELETE", "operator_user_id": "adm"}


def test_batch_remove_refuses_process_data_with_the_documented_code(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "批量删除"})
    expect_error(
        lambda: flow.call(
            "batch_removal_by_form_instance_id_list", form_uuid="FORM-FLOW-TWO", form_instance_id_list=[iid]
        ),
        "failure.operation.onlyReceiptDataCanBeDeletedInBatches",
        400,
    )
    assert flow.assignees(iid) == ["wang"]


# ------------------------------------------------------------------------------------ out-of-range ids


@pytest.mark.parametrize("api", ["get_instance_id_list", "get_instances"])
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("task_id", [HUGE, str(2**63), "0", "-1", "12x", "²", "١٢"])
def test_task_id_filters_out_of_range_are_bad_input(flow: Flow, api: str, version: int, task_id: str) -> None:
    err = expect_error(lambda: flow.call(api, version=version, form_uuid="FORM-FLOW-TWO", task_id=task_id), *BAD)
    assert "taskId" in err.message


def test_the_largest_task_id_finds_nothing(flow: Flow) -> None:
    body = flow.call("get_instance_id_list", form_uuid="FORM-FLOW-TWO", task_id=str(2**63 - 1)).body
    assert (body.total_count, body.data) == (0, [])


@pytest.mark.parametrize("department", [HUGE, str(2**63), "0", "-1"])
def test_start_with_an_out_of_range_department_is_bad_input(flow: Flow, department: str) -> None:
    err = expect_error(lambda: flow.start("FORM-FLOW-TWO", {"textField_title": "部门"}, department_id=department), *BAD)
    assert "departmentId" in err.message


def test_task_ids_beyond_64_bits_are_bad_input_everywhere(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "超大任务号"})
    huge = 10**25
    expect_error(
        lambda: flow.call(
            "execute_task", user="wang", process_instance_id=iid, task_id=huge, out_result="AGREE", remark=""
        ),
        *BAD,
    )
    expect_error(
        lambda: flow.call(
            "redirect_task",
            user="wang",
            process_instance_id=iid,
            task_id=huge,
            now_action_executor_id="sun",
            remark="",
        ),
        *BAD,
    )
    expect_error(
        lambda: flow.call(
            "execute_batch_task",
            user="wang",
            out_result="agree",
            task_information_list=json.dumps([{"taskId": HUGE, "formInstId": iid}]),
        ),
        *BAD,
    )
    assert flow.assignees(iid) == ["wang"]


# ----------------------------------------------------------------------- parameters the SDK marks optional


def test_get_running_tasks_without_its_parameters(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "可选参数"})
    # appType may be left out: the instance names its app.
    tasks = flow.call("get_running_tasks", app={"system_token": APP1["system_token"]}, process_instance_id=iid)
    assert [t.actual_actioner_id for t in tasks.body.result] == ["wang"]
    err = expect_error(lambda: flow.call("get_running_tasks"), *EMPTY_PARAM)
    assert "processInstanceId" in err.message
    err = expect_error(lambda: flow.call("get_running_tasks", app=None, process_instance_id=iid), *EMPTY_PARAM)
    assert "systemToken" in err.message
    err = expect_error(lambda: flow.call("get_running_tasks", user=None, process_instance_id=iid), *EMPTY_PARAM)
    assert "userId" in err.message
    expect_error(
        lambda: flow.call("get_running_tasks", process_instance_id="FINST-NOPE"),
        "invalidState.form.dataDoesNotExistOrIsDeleted",
        400,
    )


def test_get_activity_list_without_its_parameters(flow: Flow) -> None:
    err = expect_error(lambda: flow.call("get_activity_list"), *EMPTY_PARAM)
    assert "processCode" in err.message
    err = expect_error(
        lambda: flow.call(
            "get_activity_list", app={"system_token": APP1["system_token"]}, process_code="TPROC--FLOW-TWO"
        ),
        *EMPTY_PARAM,
    )
    assert "appType" in err.message
    err = expect_error(lambda: flow.call("get_activity_list", user=None, process_code="TPROC--FLOW-TWO"), *EMPTY_PARAM)
    assert "userId" in err.message
    acts = flow.call("get_activity_list", process_code="TPROC--FLOW-TWO").body.result
    assert [a.activity_id for a in acts] == ["sid-restartevent", "node_one", "node_two"]
