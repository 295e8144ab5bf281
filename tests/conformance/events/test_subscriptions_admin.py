"""Event subscriptions made with the admin API: the event-subscription push format, the persistent retry schedule
(a receiver that was down gets everything, in order, once it is back), delivery state and redelivery, contact
events from org changes, opt-in Yida record events, and two servers sharing one database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.events.conftest import APP, CORP, EV_HTTP, EV_RECORDS, FAST, Events
from tests.conformance.events.receiver import AES_KEY, TOKEN, Receiver
from tests.conftest import ServerProcess

ENVELOPE = {"EventType", "EventTime", "CorpId", "BizId", "eventId"}


def subscribe(events: Events, app_key: str, receiver: Receiver, tags: list[str], **extra: Any) -> dict[str, Any]:
    body = {"appKey": app_key, "kind": "http", "url": receiver.url, "token": TOKEN, "aesKey": AES_KEY, "tags": tags}
    answer = events.admin("POST", "/admin/v1/event-subscriptions", {**body, **extra})
    assert answer.status_code == 201, answer.text
    view: dict[str, Any] = answer.json()
    return view


@pytest.fixture
def http_receiver(events: Events) -> Iterator[Receiver]:
    """A receiver for ev-http's event subscription (owner key: the appKey); the subscription is removed after."""
    receiver = Receiver(EV_HTTP[0])
    yield receiver
    for sub in events.admin("GET", "/admin/v1/event-subscriptions").json()["subscriptions"]:
        if sub["appKey"] in (EV_HTTP[0], EV_RECORDS[0]) and sub["kind"] == "http":
            events.admin("DELETE", f"/admin/v1/event-subscriptions/{sub['id']}")
    receiver.close()


def state(events: Events, pk: int) -> dict[str, Any]:
    view: dict[str, Any] = events.admin("GET", f"/admin/v1/event-subscriptions/{pk}").json()
    return view


def test_event_subscription_format_and_persistent_retries(events: Events, http_receiver: Receiver) -> None:
    view = subscribe(events, EV_HTTP[0], http_receiver, ["bpms_instance_change", "bpms_task_change"])
    assert (view["kind"], view["schedule"], view["deliveries"]) == (
        "http", "persistent", {"pending": 0, "delivered": 0, "failed": 0},
    )  # fmt: skip
    assert "token" not in view and "aesKey" not in view
    assert http_receiver.messages == [{"EventType": "check_url"}]
    first = events.approve()
    got = http_receiver.wait_for(6)
    assert all(set(e) >= ENVELOPE and e["CorpId"] == CORP and e["BizId"] == first for e in got)
    assert "corpId" not in got[0] and got[0]["processInstanceId"] == first
    assert len({e["eventId"] for e in got}) == 6
    # Down: the subscription backs off and probes; everything waits, nothing is lost or reordered.
    http_receiver.mode = "down"
    second = events.approve()
    deadline = time.monotonic() + 15
    # Failing once its first push is refused; the approval's later events are fanned out in the rounds after that.
    failing = state(events, view["id"])
    while not (failing["failingSince"] and failing["deliveries"]["pending"] == 6) and time.monotonic() < deadline:
        time.sleep(0.05)
        failing = state(events, view["id"])
    assert failing["failingSince"] and "503" in failing["lastError"] and failing["deliveries"]["pending"] == 6
    time.sleep(1.5)  # a few probes
    assert http_receiver.refused >= 2
    assert state(events, view["id"])["deliveries"]["failed"] == 0
    http_receiver.mode = "ok"
    got = http_receiver.wait_for(12)
    assert [(e["BizId"], e["EventType"], e["type"]) for e in got[6:]] == [
        (second, "bpms_instance_change", "start"),
        (second, "bpms_task_change", "start"),
        (second, "bpms_task_change", "finish"),
        (second, "bpms_task_change", "start"),
        (second, "bpms_task_change", "finish"),
        (second, "bpms_instance_change", "finish"),
    ]
    deadline = time.monotonic() + 10
    while state(events, view["id"])["failingSince"] is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    healthy = state(events, view["id"])
    assert healthy["failingSince"] is None and healthy["deliveries"] == {"pending": 0, "delivered": 12, "failed": 0}
    delivered = events.admin("GET", f"/admin/v1/event-subscriptions/{view['id']}/deliveries?status=delivered")
    assert [d["payload"]["eventId"] for d in delivered.json()["deliveries"]] == [e["eventId"] for e in got]


def test_redelivery_of_failed_events(events: Events, http_receiver: Receiver) -> None:
    view = subscribe(events, EV_HTTP[0], http_receiver, ["bpms_instance_change"], schedule="dingtalk")
    http_receiver.mode = "down"
    iid = events.approve()
    path = f"/admin/v1/event-subscriptions/{view['id']}"
    deadline = time.monotonic() + 15
    while state(events, view["id"])["deliveries"]["failed"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    failed = events.admin("GET", f"{path}/deliveries").json()["deliveries"]
    assert [(d["status"], d["attempts"], d["payload"]["type"]) for d in failed] == [
        ("failed", 3, "start"), ("failed", 3, "finish"),
    ]  # fmt: skip
    http_receiver.mode = "ok"
    answer = events.admin("POST", f"{path}/redeliver", {"ids": [failed[0]["id"]]})
    assert answer.json() == {"redelivered": 1}
    assert [(e["BizId"], e["type"]) for e in http_receiver.wait_for(1)] == [(iid, "start")]
    assert events.admin("POST", f"{path}/redeliver", {}).json() == {"redelivered": 1}
    got = http_receiver.wait_for(2)
    assert [e["type"] for e in got] == ["start", "finish"] and got[0]["eventId"] == failed[0]["payload"]["eventId"]


def test_admin_refuses_bad_subscriptions(events: Events, http_receiver: Receiver) -> None:
    base = {"appKey": EV_HTTP[0], "kind": "http", "url": http_receiver.url, "token": TOKEN, "aesKey": AES_KEY}
    cases = [
        ({**base, "tags": ["nope"]}, 400, "event.bad_tags"),
        ({**base, "tags": ["*"], "aesKey": AES_KEY[:42]}, 400, "event.bad_aes_key"),
        ({**base, "tags": ["*"], "url": "file:///etc/passwd"}, 400, "event.bad_url"),
        ({**base, "tags": ["*"], "appKey": "no-such-key"}, 404, "credential.not_found"),
        ({**base, "tags": ["*"], "extra": 1}, 400, "argument.invalid"),
    ]
    for body, status, code in cases:
        answer = events.admin("POST", "/admin/v1/event-subscriptions", body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (body, answer.text)
    http_receiver.mode = "redirect"
    answer = events.admin("POST", "/admin/v1/event-subscriptions", {**base, "tags": ["*"]})
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "event.check_url_failed")
    subs = events.admin("GET", "/admin/v1/event-subscriptions").json()["subscriptions"]
    assert [s for s in subs if s["appKey"] == EV_HTTP[0]] == []


def test_contact_events_from_org_changes(events: Events, http_receiver: Receiver) -> None:
    subscribe(events, EV_HTTP[0], http_receiver, ["user_add_org", "user_modify_org", "user_leave_org",
                                                  "org_dept_create", "org_dept_modify", "org_dept_remove"])  # fmt: skip
    assert (
        events.admin("POST", "/admin/v1/departments", {"deptId": 77, "name": "新部门", "parentId": 1}).status_code
        == 201
    )
    answer = events.admin("POST", "/admin/v1/users", {"userId": "newbie", "name": "新人", "departments": [77]})
    assert answer.status_code == 201, answer.text
    assert events.admin("PATCH", "/admin/v1/users/newbie", {"title": "工程师"}).status_code == 200
    assert events.admin("POST", "/admin/v1/users/newbie/deactivate").status_code == 200
    assert events.admin("PATCH", "/admin/v1/departments/77", {"name": "改名部门"}).status_code == 200
    got = http_receiver.wait_for(5)
    # In order per object (the user's, the department's); the two objects' events may interleave.
    assert [(e["EventType"], e["userId"]) for e in got if "userId" in e] == [
        ("user_add_org", ["newbie"]),
        ("user_modify_org", ["newbie"]),
        ("user_leave_org", ["newbie"]),
    ]
    assert [(e["EventType"], e["deptId"]) for e in got if "deptId" in e] == [
        ("org_dept_create", [77]),
        ("org_dept_modify", [77]),
    ]
    assert all(set(e) >= ENVELOPE and e["timeStamp"].isdigit() for e in got)


def test_record_events_are_opt_in(events: Events, http_receiver: Receiver) -> None:
    everything = Receiver(EV_RECORDS[0])
    try:
        subscribe(events, EV_HTTP[0], http_receiver, ["yida_form_instance_change"])
        subscribe(events, EV_RECORDS[0], everything, ["*"])
        saved = events.sdk.call(
            "save_form_data", token=events.token(), user_id="li", form_uuid="FORM-EV-NOTE",
            form_data_json=json.dumps({"textField_note": "一条记录"}), **APP,
        ).body.result  # fmt: skip
        got = http_receiver.wait_for(1)
        assert got[0]["EventType"] == "yida_form_instance_change"
        assert {k: got[0][k] for k in ("appType", "formUuid", "formInstanceId", "type", "staffId")} == {
            "appType": "APP_EVENTS", "formUuid": "FORM-EV-NOTE", "formInstanceId": saved, "type": "create",
            "staffId": "li",
        }  # fmt: skip
        events.approve()
        assert len(everything.wait_for(6)) == 6
        assert everything.events("yida_form_instance_change") == []
        # An approval's start form is a record too.
        got = http_receiver.wait_for(2)
        assert sorted((e["EventType"], e["formUuid"], e["type"]) for e in got) == [
            ("yida_form_instance_change", "FORM-EV-LEAVE", "create"),
            ("yida_form_instance_change", "FORM-EV-NOTE", "create"),
        ]
    finally:
        everything.close()


def test_two_servers_deliver_each_event_once(events: Events, http_receiver: Receiver) -> None:
    other = ServerProcess(events.url, **FAST)
    try:
        subscribe(events, EV_HTTP[0], http_receiver, ["bpms_instance_change", "bpms_task_change"])
        ids = [events.approve(reason=f"并发{i}") for i in range(5)]
        got = http_receiver.wait_for(30)
        time.sleep(1)  # anything sent twice would have arrived by now
        got = http_receiver.events()
        assert len(got) == 30 and len({e["eventId"] for e in got}) == 30
        for iid in ids:
            mine = [e["type"] for e in got if e["BizId"] == iid]
            assert mine == ["start", "start", "finish", "start", "finish", "finish"]
    finally:
        other.stop()


def test_a_slow_receiver_holds_up_nobody_else(events: Events, http_receiver: Receiver) -> None:
    slow = Receiver(EV_RECORDS[0])
    try:
        subscribe(events, EV_RECORDS[0], slow, ["bpms_instance_change", "bpms_task_change"])
        subscribe(events, EV_HTTP[0], http_receiver, ["bpms_instance_change", "bpms_task_change"])
        slow.mode = "slow"  # answers after 2.5 s: past the deadline, each push is a failed attempt
        iid = events.approve()  # the API answers while pushes to the slow receiver hang
        got = http_receiver.wait_for(6)
        assert {e["BizId"] for e in got} == {iid}
        assert len(slow.events()) < 6  # still working through its first pushes
    finally:
        slow.mode = "ok"
        slow.close()
