"""WeDa environments: an environment's prod and pre (preview) data are two corps; a token of the environment reaches
both through the path's envType (dev is pre), and nothing written in one is seen in the other."""

from __future__ import annotations

import uuid

from tests.dialects.weda.conftest import OTHER_SECRET, Weda, credential_token
from tests.dialects.weda.test_workflow import flow, flow_error


def tag() -> str:
    return uuid.uuid4().hex[:10]


def titles(client: Weda, env: str, t: str) -> list[str]:
    reply = client.call("POST", f"/v1/model/{env}/expense/list", {"filter": {"where": {"title": {"$search": t}}}})
    assert reply.status_code == 200 and "code" not in reply.json(), reply.text
    return sorted(r["title"] for r in reply.json()["data"]["records"])


def create(client: Weda, env: str, title: str) -> str:
    reply = client.call("POST", f"/v1/model/{env}/expense/create", {"data": {"title": title, "amount": 1}})
    assert reply.status_code == 200 and "code" not in reply.json(), reply.text
    record_id: str = reply.json()["data"]["id"]
    return record_id


def test_pre_and_prod_data_are_apart(weda: Weda, zhangsan: Weda) -> None:
    t = tag()
    in_prod = create(weda, "prod", f"{t}-prod")
    in_pre = create(weda, "pre", f"{t}-pre")
    create(zhangsan, "dev", f"{t}-dev")  # dev is pre; a signed-in user acts as his namesake there
    assert titles(weda, "prod", t) == [f"{t}-prod"]
    assert titles(weda, "pre", t) == titles(weda, "dev", t) == [f"{t}-dev", f"{t}-pre"]
    missing = weda.call("GET", f"/v1/model/prod/expense/{in_pre}/get").json()
    assert missing["code"] == "RESOURCE_NOT_FOUND"
    assert weda.call("GET", f"/v1/model/pre/expense/{in_prod}/get").json()["code"] == "RESOURCE_NOT_FOUND"
    record = weda.call("GET", f"/v1/model/pre/expense/{in_pre}/get").json()
    assert record["data"]["record"]["createBy"] == "wadmin"  # the preview app's first admin
    mine = titles(zhangsan, "pre", t)  # the access policy holds in the preview data too: his own records only
    assert mine == [f"{t}-dev"]


def test_a_process_started_in_pre_stays_in_pre(weda: Weda, zhangsan: Weda) -> None:
    body = {"ProcessKey": "leave_approval", "StartParams": [{"paramCode": "leave", "fieldValueMap": {"days": 9}}]}
    instance_id = flow(zhangsan, "StartProcessWithParams", body, env="pre")["InstanceId"]
    details = flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": instance_id}, env="dev")
    assert details["StartUserId"] == "wuser1" and details["StartAppCode"] == "APP_WEDA_PRE"
    assert details["CurrentNodes"] == [{"NodeId": "node_lead", "NodeName": "组长审批"}]  # the preview's process
    lost = flow_error(weda, "DescribeProcessInstanceDetails", {"InstanceId": instance_id})
    assert lost["Code"] == "ResourceNotFound"
    names = {p["ProcessName"] for p in flow(weda, "DescribeDeployedProcessList", {}, env="pre")["ProcessList"]}
    assert names == {"请假审批（预览）"}


def test_an_environment_without_preview_data_refuses_pre(weda_base: str) -> None:
    other = Weda(weda_base, credential_token(weda_base, OTHER_SECRET))
    for env in ("pre", "dev"):
        reply = other.call("POST", f"/v1/model/{env}/expense/list", {})
        assert reply.status_code == 200 and reply.json()["code"] == "INVALID_ENV", env
        assert "no pre data" in reply.json()["message"]
        assert flow_error(other, "DescribeDeployedProcessList", {}, env=env)["Code"] == "InvalidParameterValue.Env"
