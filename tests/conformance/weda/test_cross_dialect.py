"""One server, both dialects, the real clients of each: an approval started through WeDa is decided with the official
DingTalk SDK and read back by WeDa's guide example; a record saved with the SDK is a WeDa model record and one
created through WeDa is read with the SDK."""

from __future__ import annotations

import json
import shutil
from typing import Any

import httpx
import pytest

from tests.conformance.sdk import Sdk
from tests.conformance.weda.test_weda_clients import run_node, secret_env, started_leave
from tests.dialects.weda.conftest import credential_token

DINGTALK = ("weda-dingtalk-key", "weda-dingtalk-secret")
APP = {"app_type": "APP_WEDA_MAIN", "system_token": "ST-WEDA-MAIN-APP"}


class Yida:
    """The official DingTalk SDK at the same server, calling with the WeDa corp's DingTalk credential."""

    def __init__(self, endpoint: str) -> None:
        self.sdk = Sdk(endpoint)

    def call(self, api: str, *path: str, **fields: Any) -> Any:
        return self.sdk.call(api, *path, token=self.sdk.token(DINGTALK), **APP, **fields)


@pytest.fixture(scope="module")
def sdk(weda_base: str, server: Any) -> Yida:
    return Yida(server.endpoint)


def weda_call(base_url: str, path: str, body: dict[str, Any]) -> Any:
    reply = httpx.post(
        f"{base_url}{path}", json=body, headers={"authorization": f"Bearer {credential_token(base_url)}"}
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed (make test needs it)")
def test_an_approval_started_through_weda_is_decided_with_the_dingtalk_sdk(weda_base: str, sdk: Yida) -> None:
    instance_id = started_leave(weda_base)  # WeDa: StartProcessWithParams as wuser1
    running = sdk.call("get_running_tasks", user_id="wuser2", process_instance_id=instance_id).body.result
    [task] = [t for t in running if t.actual_actioner_id == "wuser2"]
    sdk.call(
        "execute_task",
        user_id="wuser2",
        process_instance_id=instance_id,
        task_id=int(task.task_id),
        out_result="AGREE",
        remark="SDK 同意",
    )
    assert sdk.call("get_instance_by_id", instance_id, user_id="wadmin").body.instance_status == "COMPLETED"
    # WeDa's guide example (Koa + node-fetch) sees the decision.
    body = run_node(
        "run_koa_example.js", {**secret_env(weda_base), "WEDA_ENV_TYPE": "prod", "WEDA_INSTANCE_ID": instance_id}
    )
    [approver] = body["Response"]["Data"]["ApproverList"]
    assert approver["UserId"] == "wuser2" and approver["TaskStatus"] == 2 and approver["Result"] == "agree"


def test_records_are_shared_between_the_sdk_and_weda_models(weda_base: str, sdk: Yida) -> None:
    saved = sdk.call(
        "save_form_data",
        user_id="wadmin",
        form_uuid="FORM-WEDA-EXPENSE",
        form_data_json=json.dumps({"textField_title": "钉钉保存", "numberField_amount": 88}, ensure_ascii=False),
    ).body.result
    record = weda_call(weda_base, "/v1/model/prod/expense/get", {"filter": {"where": {"_id": {"$eq": saved}}}})
    assert record["data"]["record"]["title"] == "钉钉保存" and record["data"]["record"]["amount"] == 88

    created = weda_call(weda_base, "/v1/model/prod/expense/create", {"data": {"title": "微搭创建", "amount": 9}})
    record_id = created["data"]["id"]
    got = sdk.call("get_form_data_by_id", record_id, user_id="wadmin").body
    assert got.form_data["textField_title"] == "微搭创建" and got.form_data["numberField_amount"] == 9
