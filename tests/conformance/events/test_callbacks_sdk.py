"""HTTP callbacks registered with DingTalk's legacy API through the dingtalk-sdk package's client, receiving the
approvals driven through the official SDK, decrypted by the same package's DingTalkCrypto."""

from __future__ import annotations

from tests.conformance.events.conftest import CORP, Events
from tests.conformance.events.receiver import AES_KEY, TOKEN, Receiver

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
        assert [(e["EventType"], e["type"], e["staffId"]) for e in got] == [
            ("bpms_instance_change", "start", "li"),
            ("bpms_task_change", "start", "wang"),
            ("bpms_task_change", "finish", "wang"),
            ("bpms_task_change", "start", "boss"),
            ("bpms_task_change", "finish", "boss"),
            ("bpms_instance_change", "finish", "li"),
        ]
        assert all(e["processInstanceId"] == iid and e["corpId"] == CORP for e in got)
        assert got[-1]["result"] == "agree" and got[2]["result"] == "agree"
        registered = client.callback.get_call_back()
        assert (registered["call_back_tag"], registered["token"], registered["aes_key"], registered["url"]) == (
            TAGS, TOKEN, AES_KEY, receiver.url,
        )  # fmt: skip
    finally:
        client.callback.delete_call_back()
