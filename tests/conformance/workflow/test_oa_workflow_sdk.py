"""DingTalk's OA workflow API (workflow_1_0) through the official client: start, read, decide, transfer, comment,
revoke and list approvals on the engine and data the Yida process API uses, and both APIs finishing each other's."""

from __future__ import annotations

import json
import re
import time

from alibabacloud_dingtalk.workflow_1_0 import models as wf

from tests.conformance.sdk import expect_error
from tests.conformance.workflow.oa_support import LEAVE, PICK, Oa, components

UTC_MINUTE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")


def _values(result: wf.GetProcessInstanceResponseBodyResult) -> dict[str, tuple[str, str]]:
    return {v.name: (v.component_type, v.value) for v in result.form_component_values}


def test_a_leave_with_every_component_round_trips_and_is_approved(oa: Oa) -> None:
    table = json.dumps([[{"name": "项目", "value": "机票"}, {"name": "金额", "value": "1200"}]], ensure_ascii=False)
    values = components(
        事由="探亲",
        天数="2",
        类型="年假",
        标签='["紧急","出差"]',
        开始日期="2025-03-01",
        请假区间='["2025-03-01","2025-03-02"]',
        代理人='["liu"]',
        部门="100",
        备注="多行\n文本",
        地址="北京,北京市,东城区",
        附件=json.dumps([{"spaceId": "1", "fileId": "f1", "fileName": "a.pdf", "fileSize": "333", "fileType": "pdf"}]),
        图片='["http://img.example/1.png"]',
        明细=table,
    )
    instance_id = oa.start(form_component_values=values)
    got = oa.get(instance_id)
    assert (got.status, got.result, got.originator_user_id, got.finish_time) == ("RUNNING", "", "li", "")
    assert UTC_MINUTE.match(got.create_time)
    assert got.originator_dept_id == "100" and got.originator_dept_name == "销售部"
    shown = _values(got)
    assert shown["事由"] == ("TextField", "探亲")
    assert shown["天数"] == ("NumberField", "2")
    assert shown["类型"] == ("DDSelectField", "年假")
    assert shown["标签"] == ("DDMultiSelectField", '["紧急","出差"]')
    assert shown["开始日期"] == ("DDDateField", "2025-03-01")
    assert shown["请假区间"] == ("DDDateRangeField", '["2025-03-01","2025-03-02"]')
    assert shown["代理人"] == ("InnerContactField", '["liu"]')
    assert shown["部门"] == ("DepartmentField", "100")
    assert shown["地址"] == ("AddressField", "北京,北京市,东城区")
    assert json.loads(shown["附件"][1]) == [
        {"spaceId": "1", "fileId": "f1", "fileName": "a.pdf", "fileSize": "333", "fileType": "pdf"}
    ]
    assert shown["图片"] == ("DDPhotoField", '["http://img.example/1.png"]')
    assert json.loads(shown["明细"][1]) == [[{"name": "项目", "value": "机票"}, {"name": "金额", "value": "1200"}]]
    agent = next(v for v in got.form_component_values if v.name == "代理人")
    assert json.loads(agent.ext_value) == [{"emplId": "liu", "name": "刘员工"}]
    [task] = got.tasks
    assert (task.user_id, task.status, task.result, task.activity_id) == ("wang", "RUNNING", "NONE", "node_mgr")
    assert isinstance(task.task_id, int)
    assert [r.type for r in got.operation_records] == ["START_PROCESS_INSTANCE"]

    assert oa.execute(instance_id, "wang", remark="同意请假").result is True
    done = oa.get(instance_id)
    assert (done.status, done.result) == ("COMPLETED", "agree")
    assert UTC_MINUTE.match(done.finish_time)
    assert done.cc_user_ids == ["sun"]
    records = [(r.type, r.result, r.user_id) for r in done.operation_records]
    assert records[:2] == [("START_PROCESS_INSTANCE", "NONE", "li"), ("EXECUTE_TASK_NORMAL", "AGREE", "wang")]
    assert ("PROCESS_CC", "NONE", "") in records
    assert done.operation_records[1].remark == "同意请假"
    assert [(t.status, t.result) for t in done.tasks] == [("COMPLETED", "AGREE")]


def test_a_long_leave_takes_the_route_to_the_boss(oa: Oa) -> None:
    instance_id = oa.start(form_component_values=components(事由="长假", 天数="5"))
    oa.execute(instance_id, "wang")
    assert list(oa.running(instance_id)) == ["boss"]
    oa.execute(instance_id, "boss", result="refuse", remark="太长")
    got = oa.get(instance_id)
    assert (got.status, got.result) == ("COMPLETED", "refuse")
    assert got.operation_records[-1].result == "REFUSE" or any(r.result == "REFUSE" for r in got.operation_records)


def test_started_through_oa_and_finished_through_yida(oa: Oa) -> None:
    instance_id = oa.start()
    tasks = oa.yida("get_running_tasks", "adm", process_instance_id=instance_id).body.result
    [task] = tasks
    assert task.actual_actioner_id == "wang"
    assert int(task.task_id) == oa.running(instance_id)["wang"]
    oa.yida(
        "execute_task",
        "wang",
        process_instance_id=instance_id,
        task_id=int(task.task_id),
        out_result="AGREE",
        remark="yida同意",
    )
    got = oa.get(instance_id)
    assert (got.status, got.result) == ("COMPLETED", "agree")
    assert any(r.type == "EXECUTE_TASK_NORMAL" and r.remark == "yida同意" for r in got.operation_records)


def test_started_through_yida_and_finished_through_oa(oa: Oa) -> None:
    data = {"textField_reason": "从宜搭发起", "numberField_days": 1, "employeeField_agent": ["liu"]}
    started = oa.yida("start_instance", "li", form_uuid="FORM-OA-LEAVE", form_data_json=json.dumps(data))
    instance_id = started.body.result
    got = oa.get(instance_id)
    assert (got.status, got.originator_user_id, got.approver_user_ids) == ("RUNNING", "li", [])
    assert _values(got)["事由"] == ("TextField", "从宜搭发起")
    assert _values(got)["代理人"] == ("InnerContactField", '["liu"]')
    oa.execute(instance_id, "wang", result="refuse", remark="不批")
    assert (oa.get(instance_id).status, oa.get(instance_id).result) == ("COMPLETED", "refuse")
    yida = oa.yida("get_instance_by_id", "li", instance_id).body
    assert (yida.instance_status, yida.approved_result) == ("COMPLETED", "disagree")


def test_approvers_and_cc_list_replace_the_template_flow(oa: Oa) -> None:
    instance_id = oa.start(
        approvers=[
            wf.StartProcessInstanceRequestApprovers(action_type="AND", user_ids=["wang", "zhao"]),
            wf.StartProcessInstanceRequestApprovers(action_type="NONE", user_ids=["boss"]),
        ],
        cc_list=["sun", "liu"],
        cc_position="START_FINISH",
        form_component_values=components(事由="自定义审批人", 天数="9"),
    )
    got = oa.get(instance_id)
    assert got.approver_user_ids == ["wang", "zhao", "boss"]
    assert sorted(oa.running(instance_id)) == ["wang", "zhao"]
    assert set(got.cc_user_ids) == {"sun", "liu"}
    oa.execute(instance_id, "wang")
    assert sorted(oa.running(instance_id)) == ["zhao"]
    # The Yida API sees the same tasks of the instance's own flow.
    yida_tasks = oa.yida("get_running_tasks", "adm", process_instance_id=instance_id).body.result
    assert [t.actual_actioner_id for t in yida_tasks] == ["zhao"]
    oa.execute(instance_id, "zhao")
    assert list(oa.running(instance_id)) == ["boss"]
    oa.execute(instance_id, "boss")
    done = oa.get(instance_id)
    assert (done.status, done.result) == ("COMPLETED", "agree")
    assert [r.type for r in done.operation_records].count("PROCESS_CC") == 2
    assert '"flow"' in oa.instance_state(instance_id)


def test_target_select_actioners_fill_the_originator_choice_node(oa: Oa) -> None:
    before = oa.counts()
    err = expect_error(
        lambda: oa.start(code=PICK, form_component_values=components(标题="自选")),
        "targetSelectApproverMissing",
        400,
    )
    assert "node_pick" in err.message
    assert oa.counts() == before
    forecast = oa.call("process_forecast", process_code=PICK, user_id="li", form_component_values=[]).result
    rules = {r.activity_id: r for r in forecast.workflow_activity_rules}
    assert rules["node_pick"].is_target_select is True
    assert rules["node_pick"].workflow_actor.actor_key == "node_pick"
    assert [a.user_id for a in rules["node_fixed"].activity_actioners] == ["zhao"]
    instance_id = oa.start(
        code=PICK,
        form_component_values=components(标题="自选"),
        target_select_actioners=[
            wf.StartProcessInstanceRequestTargetSelectActioners(
                actioner_key="node_pick", actioner_user_ids=["liu", "sun"]
            )
        ],
    )
    assert sorted(oa.running(instance_id)) == ["liu", "sun"]


def test_terminate_by_the_originator_or_the_system(oa: Oa) -> None:
    instance_id = oa.start()
    expect_error(
        lambda: oa.call(
            "terminate_process_instance", process_instance_id=instance_id, operating_user_id="wang", is_system=False
        ),
        "forbidden.accessDenied",
        403,
    )
    body = oa.call(
        "terminate_process_instance", process_instance_id=instance_id, operating_user_id="li", remark="不请了"
    )
    assert body.result is True
    got = oa.get(instance_id)
    assert (got.status, got.result) == ("TERMINATED", "")
    assert got.operation_records[-1].type == "TERMINATE_PROCESS_INSTANCE"
    assert [t.status for t in got.tasks] == ["TERMINATED"]
    expect_error(
        lambda: oa.call("terminate_process_instance", process_instance_id=instance_id, is_system=True),
        "aflowProcessInstStatusException",
        400,
    )
    other = oa.start()
    oa.call("terminate_process_instance", process_instance_id=other, is_system=True)
    assert oa.get(other).status == "TERMINATED"


def test_comments_show_as_add_remark_records(oa: Oa) -> None:
    instance_id = oa.start()
    oa.call("add_process_instance_comment", process_instance_id=instance_id, comment_user_id="wang", text="请补材料")
    got = oa.get(instance_id)
    remark = [r for r in got.operation_records if r.type == "ADD_REMARK"]
    assert [(r.user_id, r.remark) for r in remark] == [("wang", "请补材料")]
    before = oa.counts()
    expect_error(
        lambda: oa.call(
            "add_process_instance_comment", process_instance_id=instance_id, comment_user_id="nobody", text="x"
        ),
        "invalidParameter",
        400,
    )
    expect_error(
        lambda: oa.call(
            "add_process_instance_comment",
            process_instance_id=instance_id,
            comment_user_id="wang",
            text="附件",
            file=wf.AddProcessInstanceCommentRequestFile(
                attachments=[wf.AddProcessInstanceCommentRequestFileAttachments(file_id="f", space_id="1")]
            ),
        ),
        "invalidParameter.operation.notSupported",
        400,
    )
    assert oa.counts() == before


def test_redirect_hands_the_task_over(oa: Oa) -> None:
    instance_id = oa.start()
    task_id = oa.running(instance_id)["wang"]
    expect_error(
        lambda: oa.call("redirect_workflow_task", task_id=task_id, to_user_id="liu", operate_user_id="sun"),
        "forbidden.accessDenied",
        403,
    )
    assert oa.call("redirect_workflow_task", task_id=task_id, to_user_id="liu", operate_user_id="wang").result
    got = oa.get(instance_id)
    assert [(t.user_id, t.status, t.result) for t in got.tasks] == [
        ("wang", "COMPLETED", "REDIRECTED"),
        ("liu", "RUNNING", "NONE"),
    ]
    assert any(r.type == "REDIRECT_TASK" for r in got.operation_records)
    oa.execute(instance_id, "liu")
    assert oa.get(instance_id).status == "COMPLETED"


def test_batch_execute_reports_each_task(oa: Oa) -> None:
    first, second = oa.start(), oa.start()
    tasks = [oa.running(first)["wang"], oa.running(second)["wang"]]
    body = oa.call(
        "batch_execute_process_instances",
        actioner_user_id="wang",
        result="agree",
        remark="批量",
        task_info_list=[
            wf.BatchExecuteProcessInstancesRequestTaskInfoList(process_instance_id=first, task_id=tasks[0]),
            wf.BatchExecuteProcessInstancesRequestTaskInfoList(process_instance_id=second, task_id=tasks[1]),
            wf.BatchExecuteProcessInstancesRequestTaskInfoList(process_instance_id=first, task_id=tasks[0]),
        ],
    )
    assert body.success is True
    # Listed twice, the first task was executed once: that is its answer (its second listing found it done).
    assert body.result[str(tasks[0])].result is True and body.result[str(tasks[1])].result is True
    assert oa.get(first).result == "agree" and oa.get(second).result == "agree"
    # A task of one instance listed under another too: executed once, reported as executed, in either order.
    third, fourth = oa.start(), oa.start()
    task = oa.running(third)["wang"]
    body = oa.call(
        "batch_execute_process_instances",
        actioner_user_id="wang",
        result="agree",
        task_info_list=[
            wf.BatchExecuteProcessInstancesRequestTaskInfoList(process_instance_id=third, task_id=task),
            wf.BatchExecuteProcessInstancesRequestTaskInfoList(process_instance_id=fourth, task_id=task),
        ],
    )
    assert body.result[str(task)].result is True and oa.get(third).result == "agree"
    assert oa.get(fourth).status == "RUNNING"


def test_instance_ids_and_pages_list_a_window(oa: Oa) -> None:
    since = int(time.time() * 1000) - 1000
    ids = [oa.start(originator="liu") for _ in range(3)]
    oa.call("terminate_process_instance", process_instance_id=ids[0], is_system=True)
    page = oa.call(
        "list_process_instance_ids", process_code=LEAVE, start_time=since, max_results=2, user_ids=["liu"]
    ).result
    assert page.list == ids[:2] and page.next_token == "2"
    rest = oa.call(
        "list_process_instance_ids",
        process_code=LEAVE,
        start_time=since,
        max_results=2,
        next_token=int(page.next_token),
        user_ids=["liu"],
    ).result
    assert rest.list == ids[2:] and rest.next_token == ""
    running = oa.call(
        "list_process_instance_ids", process_code=LEAVE, start_time=since, user_ids=["liu"], statuses=["RUNNING"]
    ).result
    assert running.list == ids[1:]
    # other tests' instances of the last second may come first: every page, followed to the end
    items, token = [], None
    while True:
        listed = oa.call(
            "query_all_process_instances", process_code=LEAVE, start_time_in_mills=since, max_results=20,
            **({"next_token": token} if token else {}),
        ).result  # fmt: skip
        items += listed.list
        if not listed.has_more:
            break
        token = listed.next_token
    mine = [i for i in items if i.process_instance_id in ids]
    assert [i.status for i in mine] == ["TERMINATED", "RUNNING", "RUNNING"]
    assert all(i.create_time >= since and i.originator_userid == "liu" for i in mine)
    assert mine[1].tasks[0].user_id == "wang" and mine[1].tasks[0].create_timestamp >= since
    expect_error(
        lambda: oa.call("list_process_instance_ids", process_code=LEAVE, start_time=since, end_time=since - 1),
        "invalidEndTime",
        400,
    )


def test_user_lists_schema_and_forecast(oa: Oa) -> None:
    before = oa.call("get_user_todo_task_sum", user_id="wang").result
    instance_id = oa.start()
    assert oa.call("get_user_todo_task_sum", user_id="wang").result == before + 1
    records = oa.call("list_todo_work_records", user_id="wang", max_results=100).result
    item = next(i for i in records.list if i.instance_id == instance_id)
    assert item.task_id == oa.running(instance_id)["wang"]
    assert {f.title: f.content for f in item.forms}["发起人"] == "李员工"
    oa.execute(instance_id, "wang")
    done = oa.call("list_todo_work_records", user_id="wang", status=1, max_results=100).result
    assert instance_id in [i.instance_id for i in done.list]
    visible = oa.call("list_user_visible_bpms_processes", user_id="li", max_results=100).result
    codes = {p.process_code: p.name for p in visible.process_list}
    assert codes[LEAVE] == "请假审批" and codes[PICK] == "发起人自选"
    schema = oa.call("query_schema_by_process_code", process_code=LEAVE).result
    assert schema.form_uuid == "FORM-OA-LEAVE" and schema.name == "请假审批"
    items = {i.props.label: i for i in schema.schema_content.items}
    assert items["类型"].component_name == "DDSelectField" and items["类型"].props.options == ["年假", "事假"]
    assert [c.props.label for c in items["明细"].children] == ["项目", "金额"]
    forecast = oa.call(
        "process_forecast", process_code=LEAVE, user_id="li", form_component_values=components(天数="5")
    ).result
    assert [r.activity_id for r in forecast.workflow_activity_rules] == ["node_mgr", "node_boss"]
    assert forecast.is_static_workflow is False
    short = oa.call(
        "process_forecast", process_code=LEAVE, user_id="li", form_component_values=components(天数="1")
    ).result
    assert [r.activity_id for r in short.workflow_activity_rules] == ["node_mgr"]
