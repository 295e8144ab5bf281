"""HTTP callbacks registered with DingTalk's legacy API through the dingtalk-sdk package's client, receiving the
approvals driven through the official SDK, decrypted by the same package's DingTalkCrypto."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from alibabacloud_dingtalk.event_1_0 import models as event_models
from alibabacloud_dingtalk.event_1_0.client import Client as Event1Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models
from dingtalk.core.exceptions import DingTalkClientException

from tests.conformance.events.conftest import APPROVAL_EVENTS, CORP, EV_DOWN, EV_NOSUB, Events
from tests.conformance.events.receiver import AES_KEY, TOKEN, Receiver
from tests.conformance.workflow.conftest import run

TAGS = ["bpms_instance_change", "bpms_task_change"]


def test_register_then_receive_an_approval_in_order(events: Events, receiver: Receiver) -> None:
    client = events.oapi()
    answer = client.callback.register_call_back(TAGS, TOKEN, AES_KEY, receiver.url)
    assert answer["errcode"] == 0
    try:
        assert receiver.messages[0] == {"EventType": "check_url"}
        query = receiver.queries[0]
        assert query["msg_signature"] == query["signature"] and len(query["timestamp"][0]) == 13
        iid = events.approve()
        got = receiver.wait_for(6)
        assert [(e["EventType"], e["type"], e["staffId"]) for e in got] == APPROVAL_EVENTS
        assert all(e["processInstanceId"] == iid and e["corpId"] == CORP for e in got)
        assert got[-1]["result"] == "agree" and got[2]["result"] == "agree"
        registered = client.callback.get_call_back()
        assert (registered["call_back_tag"], registered["token"], registered["aes_key"], registered["url"]) == (
            TAGS, TOKEN, AES_KEY, receiver.url,
        )  # fmt: skip
    finally:
        client.callback.delete_call_back()


def _error(call: Callable[[], Any]) -> tuple[int, str]:
    try:
        call()
    except DingTalkClientException as exc:
        return int(exc.errcode), str(exc.errmsg)
    raise AssertionError("expected an errcode, the call succeeded")


def _subscriptions(events: Events, client_id: str) -> list[dict[str, Any]]:
    return run(
        events.url,
        "SELECT s.kind FROM event_subscription s JOIN credential c ON c.id = s.credential_pk WHERE c.app_key = :k",
        {"k": client_id},
    )


def test_bad_registrations_answer_errcodes_and_store_nothing(events: Events, receiver: Receiver) -> None:
    client = events.oapi(EV_DOWN)
    cases = [
        ((TAGS, TOKEN, AES_KEY[:42], receiver.url), 900004),  # 42-character aes_key
        ((TAGS, "12345", AES_KEY, receiver.url), 40035),  # token shorter than 6
        ((TAGS, "x" * 65, AES_KEY, receiver.url), 40035),  # token longer than 64
        ((TAGS, TOKEN, AES_KEY, "ftp://127.0.0.1/callback"), 40035),  # not http(s)
        # Hosts and ports no request can go to (these were 500s, or went to port 80), a URL not in ASCII.
        ((TAGS, TOKEN, AES_KEY, "http://[::1/callback"), 40035),
        ((TAGS, TOKEN, AES_KEY, "http://[zz]/callback"), 40035),
        ((TAGS, TOKEN, AES_KEY, "http://a..b/callback"), 40035),
        ((TAGS, TOKEN, AES_KEY, "http://127.0.0.1:0/callback"), 40035),
        ((TAGS, TOKEN, AES_KEY, receiver.url + "/回调"), 40035),
        ((TAGS, TOKEN, AES_KEY, "http://例子.测试/callback"), 40035),
    ]
    for args, code in cases:
        assert _error(lambda a=args: client.callback.register_call_back(*a))[0] == code, args
    # The package's client drops tags it does not know: send those as other clients would.
    for tags in (["bpms_instance_change", "no_such_event"], [], [1]):
        body = {"call_back_tag": tags, "token": TOKEN, "aes_key": AES_KEY, "url": receiver.url}
        answer = httpx.post(
            f"{events.base}/call_back/register_call_back", params={"access_token": events.token(EV_DOWN)}, json=body
        ).json()
        assert answer["errcode"] == 40035, (tags, answer)
    # the receiver does not answer check_url right (the last two were 500s: a malformed answer is a wrong one)
    for mode in ("redirect", "plain", "down", "slow", "non_ascii_signature", "cut"):
        receiver.mode = mode
        errcode, errmsg = _error(lambda: client.callback.register_call_back(TAGS, TOKEN, AES_KEY, receiver.url))
        assert errcode == 71009, (mode, errmsg)
    receiver.mode = "ok"
    assert _subscriptions(events, EV_DOWN[0]) == []
    # Nothing to update: 71007 before anything is sent to the URL.
    checked = len(receiver.queries)
    assert _error(lambda: client.callback.update_call_back(TAGS, TOKEN, AES_KEY, receiver.url))[0] == 71007
    assert len(receiver.queries) == checked
    assert _error(client.callback.get_call_back)[0] == 71007
    assert _error(client.callback.delete_call_back)[0] == 71007


def test_register_twice_update_and_delete(events: Events, receiver: Receiver) -> None:
    client = events.oapi(EV_DOWN)
    other = Receiver(CORP, token="another-token-1")
    try:
        assert client.callback.register_call_back(TAGS, TOKEN, AES_KEY, receiver.url)["errcode"] == 0
        assert _error(lambda: client.callback.register_call_back(TAGS, TOKEN, AES_KEY, receiver.url))[0] == 71006
        # Updating checks the new receiver, then the events go there.
        assert (
            client.callback.update_call_back(["bpms_instance_change"], other.token, AES_KEY, other.url)["errcode"] == 0
        )
        assert other.messages == [{"EventType": "check_url"}]
        iid = events.approve()
        got = other.wait_for(2)
        assert [(e["EventType"], e["type"], e["processInstanceId"]) for e in got] == [
            ("bpms_instance_change", "start", iid),
            ("bpms_instance_change", "finish", iid),
        ]
        assert receiver.events() == []
        assert client.callback.delete_call_back()["errcode"] == 0
        assert _subscriptions(events, EV_DOWN[0]) == []
        events.approve()
        assert len(other.events()) == 2
    finally:
        other.close()
        with contextlib.suppress(DingTalkClientException):
            client.callback.delete_call_back()


def test_permission_token_and_method(events: Events) -> None:
    assert _error(events.oapi(EV_NOSUB).callback.get_call_back)[0] == 60011
    answer = httpx.get(f"{events.base}/call_back/get_call_back", params={"access_token": "nope"}).json()
    assert answer["errcode"] == 40014
    answer = httpx.get(f"{events.base}/call_back/get_call_back").json()
    assert answer["errcode"] == 40014
    token = events.token()
    answer = httpx.post(f"{events.base}/call_back/get_call_back", params={"access_token": token}).json()
    assert answer["errcode"] == 43001
    answer = httpx.get(f"{events.base}/call_back/register_call_back", params={"access_token": token}).json()
    assert answer["errcode"] == 43002
    answer = httpx.post(f"{events.base}/topapi/callback/failrecord/list", params={"access_token": "nope"}).json()
    assert (answer["errcode"], answer["sub_code"]) == (88, "40014") and answer["request_id"]
    answer = httpx.get(f"{events.base}/call_back/no_such_api", params={"access_token": token}).json()
    assert answer["errcode"] == 22
    # The gateway's words under /topapi/, as probed on DingTalk: a missing token, an unknown method.
    answer = httpx.post(f"{events.base}/topapi/callback/failrecord/list").json()
    assert (answer["errcode"], answer["sub_code"], answer["sub_msg"]) == (88, "40000", "access_token is blank")
    answer = httpx.post(f"{events.base}/topapi/v2/user/notexist", params={"access_token": token}).json()
    assert answer["errcode"] == 22 and answer["request_id"]
    assert answer["sub_msg"] == "不合法ApiName，ApiName = dingtalk.oapi.v2.user.notexist"
    assert answer["errmsg"] == f"Invalid method[submsg={answer['sub_msg']}]"


def test_failed_pushes_are_retried_then_listed(events: Events) -> None:
    receiver = Receiver(CORP)
    client = events.oapi(EV_DOWN)
    try:
        client.callback.register_call_back(TAGS, TOKEN, AES_KEY, receiver.url)
        receiver.mode = "down"
        iid = events.approve()
        token = events.token(EV_DOWN)

        def failrecords() -> dict[str, Any]:
            return httpx.post(
                f"{events.base}/topapi/callback/failrecord/list", params={"access_token": token}, json={"req": {}}
            ).json()

        deadline = time.monotonic() + 20
        while len(failrecords()["failed_list"]) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        listed = failrecords()
        assert listed["errcode"] == 0 and listed["has_more"] is False
        assert [r["call_back_tag"] for r in listed["failed_list"]] == [
            "bpms_instance_change", "bpms_task_change", "bpms_task_change", "bpms_task_change", "bpms_task_change",
            "bpms_instance_change",
        ]  # fmt: skip
        first = json.loads(listed["failed_list"][0]["call_back_data"])
        assert (first["processInstanceId"], first["type"], listed["failed_list"][0]["corpid"]) == (iid, "start", CORP)
        assert receiver.refused == 6 * 3  # each push tried three times: at once, +0.3 s, +0.6 s (DingTalk: 10, 30)
        # failrecord/confirm takes two out of the lists.
        ids = [r["id"] for r in listed["failed_list"]]
        confirmed = httpx.post(
            f"{events.base}/topapi/callback/failrecord/confirm", params={"access_token": token},
            json={"id_list": ids[:2]},
        ).json()  # fmt: skip
        assert confirmed["confirm_list"] == ids[:2]
        nulls = httpx.post(
            f"{events.base}/topapi/callback/failrecord/confirm", params={"access_token": token},
            json={"id_list": [None]},
        ).json()  # fmt: skip
        assert nulls["errcode"] == 40035, nulls
        assert [r["id"] for r in failrecords()["failed_list"]] == ids[2:]
        # The v1.0 list through the official SDK: every failed event of the period, not consumed.
        sdk = Event1Client(open_api_models.Config(protocol="http"))
        sdk._endpoint = events.server.endpoint
        headers = event_models.GetCallBackFaileResultHeaders(x_acs_dingtalk_access_token=token)
        v1 = sdk.get_call_back_faile_result_with_options(
            event_models.GetCallBackFaileResultRequest(begin_time=0, end_time=int(time.time() * 1000) + 1000),
            headers, util_models.RuntimeOptions(),
        ).body  # fmt: skip
        assert len(v1.failed_list) == 6 and v1.has_more is False
        assert {f.corp_id for f in v1.failed_list} == {CORP}
        assert json.loads(v1.failed_list[-1].call_back_data)["type"] == "finish"
        # get_call_back_failed_result consumes what it returns.
        failed = client.callback.get_call_back_failed_result()
        assert failed["has_more"] is False
        assert [f["call_back_tag"] for f in failed["failed_list"]] == [
            r["call_back_tag"] for r in listed["failed_list"][2:]
        ]
        item = failed["failed_list"][0]
        assert item["bpms_task_change"]["corpid"] == CORP
        assert item["bpms_task_change"]["bpmsCallBackData"]["processInstanceId"] == iid
        assert client.callback.get_call_back_failed_result()["failed_list"] == []
        assert failrecords()["failed_list"] == []
        # Once failed, an event stays failed: the receiver back up gets only new events.
        receiver.mode = "ok"
        events.approve()
        assert len(receiver.wait_for(6)) == 6
    finally:
        client.callback.delete_call_back()
        receiver.close()
