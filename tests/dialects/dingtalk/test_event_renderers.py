"""DingTalk's three event formats (legacy callback, event subscription, Stream) for approval, contact and Zida's
opt-in record events (dingtalk-platform.md §4.6)."""

from __future__ import annotations

from dataclasses import replace

from zida.core.events.delivery import event_key
from zida.core.events.models import DomainEvent
from zida.core.events.subscriptions import CALLBACK, HTTP, STREAM, Subscription
from zida.dialects.dingtalk.events import render_for

SUB = Subscription(
    pk=1, corp_pk=1, corp_id="dingcorp", credential_pk=1, client_id="dingappkey", kind=CALLBACK, url="http://x/",
    token="t" * 6, aes_key="a" * 43, tags=("*",), schedule="dingtalk", start_event_id=0, failing_since=None,
    failures=0, retry_at=None, last_error=None, last_delivered_at=None, created_at=0, updated_at=0,
)  # fmt: skip
STARTED = DomainEvent(
    topic="process.started", corp_pk=1, object_id="FINST-1", actor="li", at=1700000000000, event_id=42,
    corp_id="dingcorp",
    data={"form": "FORM-1", "process": "TPROC--1", "title": "请假", "originator": "li", "started_at": 1700000000000},
)  # fmt: skip
USER = DomainEvent(topic="user.created", corp_pk=1, object_id="newbie", actor=None, at=1700000000001, event_id=43,
                   corp_id="dingcorp")  # fmt: skip
DEPT = DomainEvent(topic="department.deleted", corp_pk=1, object_id="77", actor=None, at=1700000000002, event_id=44,
                   corp_id="dingcorp")  # fmt: skip
RECORD = DomainEvent(topic="record.updated", corp_pk=1, object_id="FINST-9", actor="wang", at=1700000000003,
                     event_id=45, corp_id="dingcorp", app="APP_X", data={"form": "FORM-9", "changes": {}})  # fmt: skip


def test_legacy_callback_format() -> None:
    rendered = render_for(STARTED, SUB)
    assert rendered is not None and rendered.tag == "bpms_instance_change" and rendered.object_key == "process:FINST-1"
    assert rendered.payload["EventType"] == "bpms_instance_change" and rendered.payload["corpId"] == "dingcorp"
    user = render_for(USER, SUB)
    assert user is not None and user.payload == {
        "EventType": "user_add_org", "TimeStamp": "1700000000001", "UserId": ["newbie"], "CorpId": "dingcorp",
    }  # fmt: skip
    dept = render_for(DEPT, SUB)
    assert dept is not None and dept.payload["DeptId"] == [77] and dept.tag == "org_dept_remove"
    # An instance's url: its console page, absolute when the server knows its address (ZIDA_PUBLIC_URL).
    assert rendered.payload["url"] == "/console/approvals/FINST-1"
    public = render_for(STARTED, SUB, public_url="https://zida.example.com/")
    assert public is not None and public.payload["url"] == "https://zida.example.com/console/approvals/FINST-1"


def test_event_subscription_format() -> None:
    sub = replace(SUB, kind=HTTP)
    rendered = render_for(STARTED, sub)
    assert rendered is not None
    envelope = {"EventType": "bpms_instance_change", "EventTime": 1700000000000, "CorpId": "dingcorp",
                "BizId": "FINST-1", "eventId": event_key("dingcorp", 42)}  # fmt: skip
    assert {k: rendered.payload[k] for k in envelope} == envelope
    assert "corpId" not in rendered.payload and rendered.payload["type"] == "start"
    user = render_for(USER, sub)
    assert user is not None and (user.payload["userId"], user.payload["timeStamp"]) == (["newbie"], "1700000000001")


def test_stream_format() -> None:
    rendered = render_for(STARTED, replace(SUB, kind=STREAM))
    assert rendered is not None
    assert rendered.payload["headers"] == {
        "eventType": "bpms_instance_change", "eventId": event_key("dingcorp", 42), "eventBornTime": "1700000000000",
        "eventCorpId": "dingcorp", "eventUnifiedAppId": "dingappkey",
    }  # fmt: skip
    assert rendered.payload["data"]["processInstanceId"] == "FINST-1" and "EventType" not in rendered.payload["data"]


def test_tags_filter_and_record_events_are_opt_in() -> None:
    assert render_for(STARTED, replace(SUB, tags=("bpms_task_change",))) is None
    assert render_for(RECORD, SUB) is None  # "*" does not include the opt-in record event
    named = render_for(RECORD, replace(SUB, kind=HTTP, tags=("yida_form_instance_change",)))
    assert named is not None and named.object_key == "record:FINST-9"
    assert {k: named.payload[k] for k in ("appType", "formUuid", "formInstanceId", "type", "staffId")} == {
        "appType": "APP_X", "formUuid": "FORM-9", "formInstanceId": "FINST-9", "type": "update", "staffId": "wang",
    }  # fmt: skip
    credential = DomainEvent(topic="credential.created", corp_pk=1, object_id="k", actor=None, at=1, corp_id="c")
    assert render_for(credential, SUB) is None
