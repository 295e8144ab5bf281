"""Whoever takes part in an approval reads its record the way the access policy says everywhere: an approver may
read the record, comment on it, and read its comments and operation log through the form API (one rule for every
read path); someone who takes no part may do none of it."""

from __future__ import annotations

from tests.conformance.sdk import expect_error
from tests.conformance.workflow.conftest import Flow

FORM = "FORM-FLOW-TWO"


def test_an_approver_comments_on_the_record_and_reads_its_comments_and_log(flow: Flow) -> None:
    iid = flow.start(FORM, {"textField_title": "审批人评论"})
    remark = flow.call("save_form_remark", user="wang", form_instance_id=iid, content="金额请再核对").body.result
    assert isinstance(remark, int)
    remarks = flow.call("list_form_remarks", user="wang", form_uuid=FORM, form_instance_id_list=[iid]).body
    assert [r["content"] for r in remarks.form_remark_vo_map[iid]] == ["金额请再核对"]
    logs = flow.call("list_operation_logs", user="wang", form_uuid=FORM, form_instance_id_list=[iid]).body
    assert [e["operationType"] for e in logs.operation_log_map[iid]] == ["CREATE"]
    # The originator sees the approver's comment too.
    mine = flow.call("list_form_remarks", user="li", form_uuid=FORM, form_instance_id_list=[iid]).body
    assert [(r["content"], r["creator"]) for r in mine.form_remark_vo_map[iid]] == [("金额请再核对", "wang")]


def test_an_approver_keeps_reading_after_deciding(flow: Flow) -> None:
    iid = flow.start(FORM, {"textField_title": "审批后仍可读"})
    flow.execute(iid, "wang")
    assert flow.call("save_form_remark", user="wang", form_instance_id=iid, content="已同意").body.result
    logs = flow.call("list_operation_logs", user="wang", form_uuid=FORM, form_instance_id_list=[iid]).body
    assert iid in logs.operation_log_map


def test_someone_who_takes_no_part_reads_and_comments_nothing(flow: Flow) -> None:
    iid = flow.start(FORM, {"textField_title": "旁观者"})
    expect_error(
        lambda: flow.call("save_form_remark", user="sun", form_instance_id=iid, content="路过"),
        "noPermission.permission.deny",
        400,
    )
    remarks = flow.call("list_form_remarks", user="sun", form_uuid=FORM, form_instance_id_list=[iid]).body
    assert not (remarks.form_remark_vo_map or {}).get(iid)
    logs = flow.call("list_operation_logs", user="sun", form_uuid=FORM, form_instance_id_list=[iid]).body
    assert not (logs.operation_log_map or {}).get(iid)
    # chen's node has not come yet: he has no task, so he takes no part either.
    expect_error(
        lambda: flow.call("save_form_remark", user="chen", form_instance_id=iid, content="太早"),
        "noPermission.permission.deny",
        400,
    )
    assert flow.sql("SELECT id FROM form_remark WHERE instance_id = :i", {"i": iid}) == []  # nothing was written
    commented = flow.sql(
        "SELECT id FROM outbox_event WHERE event_type = 'record.commented' AND CAST(payload AS TEXT) LIKE :p",
        {"p": f"%{iid}%"},
    )
    assert commented == []
