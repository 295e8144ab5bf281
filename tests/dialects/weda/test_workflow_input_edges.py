"""WeDa workflow actions at the edges of their parameters, as a WeDa integration sends them over plain HTTP: page
numbers past every page, whole numbers written as doubles, booleans where a number goes, task lists of users who do
not exist. Every refusal is ``Response.Error`` at HTTP 200 and changes nothing."""

from __future__ import annotations

from tests.dialects.weda.conftest import Weda
from tests.dialects.weda.test_workflow import as_user, flow, flow_error, tag


def test_a_page_number_past_what_a_number_holds_is_refused_not_a_server_error(weda: Weda) -> None:
    for action, more in (
        ("DescribeDeployedProcessList", {}),
        ("DescribeFlowTaskList", {"PageType": "TODO", **as_user("wuser2")}),
        ("DescribeFlowTaskList", {"PageType": "DRAFT", **as_user("wuser2")}),
    ):
        for page_no in (10**30, 2**63, 1_000_001):
            error = flow_error(weda, action, {**more, "PageNo": page_no})
            assert error["Code"] == "InvalidParameter" and "PageNo" in error["Message"], (action, page_no, error)
        assert flow(weda, action, {**more, "PageNo": 1_000_000})["PageNo"] == 1_000_000  # the last page allowed


def test_page_numbers_and_sizes_written_as_whole_doubles_are_read(weda: Weda) -> None:
    """README: page numbers and sizes are whole numbers (``1.5`` is refused, ``2.0`` is 2)."""
    data = flow(weda, "DescribeDeployedProcessList", {"PageNo": 1.0, "PageSize": 100.0})
    assert data["PageNo"] == 1 and data["PageSize"] == 100 and isinstance(data["PageSize"], int)
    assert data["Total"] == len(data["ProcessList"])
    listed = flow(weda, "DescribeFlowTaskList", {"PageType": "CREATE", "PageNo": 2.0, **as_user("wuser1")})
    assert listed["PageNo"] == 2 and isinstance(listed["PageNo"], int)
    for bad in (1.5, 100.5, 101.0, 0.0, True, "2.0", [1], {"n": 1}):
        error = flow_error(weda, "DescribeDeployedProcessList", {"PageSize": bad})
        assert error["Code"] == "InvalidParameter", (bad, error)


def test_a_boolean_button_action_is_refused_and_starts_nothing(weda: Weda, zhangsan: Weda) -> None:
    reason = tag()
    values = [{"Type": 1, "Value": {"entityCode": "leave", "fieldValueMap": {"reason": reason, "days": 1}}}]
    for button in (True, False):
        body = {"ButtonAction": button, "ProcessKey": "leave_approval", "VariableInfos": values}
        error = flow_error(zhangsan, "CompleteTask", body)
        assert error["Code"] == "InvalidParameter" and "ButtonAction" in error["Message"], (button, error)
    assert flow(zhangsan, "DescribeFlowTaskList", {"PageType": "CREATE", "Keyword": reason})["Total"] == 0
    drafts = flow(zhangsan, "DescribeFlowTaskList", {"PageType": "DRAFT", "PageSize": 100})["List"]
    assert all(d["FieldValueMap"].get("reason") != reason for d in drafts)
    # The number itself still works (1 submits the start form at once).
    started = flow(
        zhangsan, "CompleteTask", {"ButtonAction": 1, "ProcessKey": "leave_approval", "VariableInfos": values}
    )
    assert started["Status"] is True and isinstance(started["InstanceId"], str)


def test_every_task_list_of_a_user_who_does_not_exist_is_refused_alike(weda: Weda) -> None:
    for page_type in ("TODO", "DONE", "CREATE", "CC", "DRAFT"):
        error = flow_error(weda, "DescribeFlowTaskList", {"PageType": page_type, **as_user("ghost-" + tag())})
        assert error["Code"] == "ResourceNotFound", (page_type, error)
