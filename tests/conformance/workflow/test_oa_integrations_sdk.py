"""DingTalk's OA workflow API (workflow_1_0) as integrations call it, through the official client: what an instance's
detail reports about the approvers and CC users named when it started."""

from __future__ import annotations

from alibabacloud_dingtalk.workflow_1_0 import models as wf

from tests.conformance.workflow.oa_support import Oa, components


def test_approver_user_ids_are_only_the_approvers_named_at_start(oa: Oa) -> None:
    # Only CC users named: the instance keeps its process's flow (wang, then boss for more than 3 days) and no
    # approver was named when it started, exactly as one started with neither.
    plain = oa.start(form_component_values=components(事由="家事", 天数="5"))
    cc_only = oa.start(form_component_values=components(事由="家事", 天数="5"), cc_list=["zhao"])
    assert oa.get(plain).approver_user_ids == []
    got = oa.get(cc_only)
    assert got.approver_user_ids == []
    assert "zhao" in got.cc_user_ids
    assert [t.user_id for t in got.tasks] == ["wang"]
    # Named approvers are listed, in the order of their steps.
    steps = [
        wf.StartProcessInstanceRequestApprovers(action_type="OR", user_ids=["boss", "wang"]),
        wf.StartProcessInstanceRequestApprovers(action_type="NONE", user_ids=["liu"]),
    ]
    named = oa.start(form_component_values=components(事由="家事"), approvers=steps, cc_list=["zhao"])
    assert oa.get(named).approver_user_ids == ["boss", "wang", "liu"]
