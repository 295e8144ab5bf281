"""Domain events as DingTalk delivers them: approval, contact and (Zida's own, opt-in) Yida record events.

The outbox keeps Zida's neutral events (``zida.core.events.models``); an approval's ``process.*`` and ``task.*``
events render to the payloads of DingTalk's approval callbacks (dingtalk-platform.md §4.6): ``EventType``,
``processInstanceId``, ``corpId``, ``processCode``, ``bizCategoryId`` (empty), ``title``, ``type`` (start, finish,
terminate, delete; task: start, finish, cancel), ``staffId`` (the originator — who deleted, for delete — or the
task's assignee), ``result`` (agree / refuse / redirect / return) and a task's ``remark``, ``createTime`` (the
instance's or task's creation), ``finishTime`` when it ended, and an instance's ``url`` (its page in the console:
absolute under ``ZIDA_PUBLIC_URL`` when set, else the path).
Other topics have no DingTalk approval payload (``None``).

:func:`render_for` renders an event for one subscription (``zida.core.events.subscriptions``) in the format of its
kind — the three formats of dingtalk-platform.md §4.6, whose casing differs:

=============== ======================================================================================================
kind            payload (the plaintext JSON of a push; for Stream, the frame's headers and ``data``)
=============== ======================================================================================================
``callback``    legacy (``register_call_back``): approvals as above; contacts ``{"EventType", "TimeStamp", "UserId":
                [userId]`` or ``"DeptId": [deptId]``, ``"CorpId"}``
``http``        event subscription: ``{"EventType", "EventTime", "CorpId", "BizId", "eventId"}`` and the business fields
                flattened (approvals without ``EventType``/``corpId``; contacts ``timeStamp`` and ``userId``/``deptId``)
``stream``      Stream mode: headers ``eventType, eventId, eventBornTime, eventCorpId, eventUnifiedAppId`` (the appKey),
                ``data`` the business fields as in ``http``
=============== ======================================================================================================

Topics → event types: ``process.*`` → ``bpms_instance_change``; ``task.*`` → ``bpms_task_change``; ``user.created``
and ``user.reactivated`` → ``user_add_org``, ``user.updated`` → ``user_modify_org``, ``user.deleted`` and
``user.deactivated`` → ``user_leave_org``; ``department.created|updated|deleted`` → ``org_dept_create|modify|remove``;
``record.created|updated|deleted|commented`` → ``yida_form_instance_change`` (``type`` ``create``, ``update``,
``delete``, ``comment``). DingTalk has no event for Yida records, so this one is Zida's, named in DingTalk's style
and **opt-in**: a subscription receives it only when it names the type (``*`` does not include it). Its business
fields: ``appType, formUuid, formInstanceId, type, staffId`` (who made the change), ``eventTime`` (ms), and for
``comment`` the ``content``. Every other DingTalk tag (``chat_*``, ``check_in``…) may be subscribed to, as on
DingTalk, and never fires: Zida has nothing that emits it.

An event's ``eventId`` is stable (``zida.core.events.delivery.event_key``): a redelivered event has the same id.
Events of one approval (instance and task events), one user, one department or one record keep their order.
"""

from __future__ import annotations

from typing import Any

from zida.core.events.delivery import Rendered, event_key
from zida.core.events.models import DomainEvent
from zida.core.events.subscriptions import CALLBACK, STREAM, Subscription
from zida.core.todos.approvals import instance_url
from zida.ids import is_decimal

__all__ = ["INSTANCE_EVENT", "KNOWN_TAGS", "OPT_IN_TAGS", "RECORD_EVENT", "TASK_EVENT", "render", "render_for"]

INSTANCE_EVENT = "bpms_instance_change"
TASK_EVENT = "bpms_task_change"

_INSTANCE_TYPES = {
    "process.started": "start",
    "process.finished": "finish",
    "process.terminated": "terminate",
    "process.deleted": "delete",
}
_TASK_TYPES = {"task.created": "start", "task.finished": "finish", "task.cancelled": "cancel"}
_RESULTS = {"agree": "agree", "disagree": "refuse", "redirect": "redirect", "return": "return"}


def _common(event_type: str, instance_id: str, event: DomainEvent) -> dict[str, Any]:
    data = event.data
    return {
        "EventType": event_type,
        "processInstanceId": instance_id,
        "corpId": event.corp_id,
        "processCode": data.get("process"),
        "bizCategoryId": "",
        "title": data.get("title"),
    }


def render(event: DomainEvent, public_url: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """(EventType, payload) of an approval event as DingTalk sends it; None for events it has no payload for
    (``public_url``: the server's address, which makes an instance's ``url`` absolute)."""
    data = event.data
    kind = _INSTANCE_TYPES.get(event.topic)
    if kind is not None:
        payload = _common(INSTANCE_EVENT, event.object_id, event)
        payload["type"] = kind
        payload["staffId"] = event.actor if kind == "delete" else data.get("originator")
        if "result" in data:
            payload["result"] = _RESULTS.get(data["result"], data["result"])
        payload["createTime"] = data.get("started_at")
        payload["url"] = (public_url or "").rstrip("/") + instance_url(event.object_id)
        if "finished_at" in data:
            payload["finishTime"] = data["finished_at"]
        return INSTANCE_EVENT, payload
    kind = _TASK_TYPES.get(event.topic)
    if kind is not None:
        payload = _common(TASK_EVENT, str(data.get("process_instance")), event)
        payload["type"] = kind
        payload["staffId"] = data.get("assignee")
        payload["taskId"] = int(event.object_id)
        if "result" in data:
            payload["result"] = _RESULTS.get(data["result"], data["result"])
            payload["remark"] = data.get("remark", "")
        payload["createTime"] = data.get("created_at")
        if "finished_at" in data:
            payload["finishTime"] = data["finished_at"]
        return TASK_EVENT, payload
    return None


RECORD_EVENT = "yida_form_instance_change"
OPT_IN_TAGS = frozenset({RECORD_EVENT})
# DingTalk's callback tags (the dingtalk-sdk package's Callback.ALL_CALL_BACK_TAGS) and Zida's record event.
KNOWN_TAGS = frozenset(
    {
        "user_add_org", "user_modify_org", "user_leave_org", "user_active_org", "org_admin_add", "org_admin_remove",
        "org_dept_create", "org_dept_modify", "org_dept_remove", "org_change", "org_remove", "label_user_change",
        "label_conf_add", "label_conf_modify", "label_conf_del", "edu_user_insert", "edu_user_update",
        "edu_user_delete", "edu_user_relation_insert", "edu_user_relation_update", "edu_user_relation_delete",
        "edu_dept_insert", "edu_dept_update", "edu_dept_delete", "chat_add_member", "chat_remove_member",
        "chat_quit", "chat_update_owner", "chat_update_title", "chat_disband", "check_in", "bpms_task_change",
        "bpms_instance_change", "attendance_check_record", "attendance_schedule_change",
        "attendance_overtime_duration", "meetingroom_book", "meetingroom_room_info", RECORD_EVENT,
    }
)  # fmt: skip

_CONTACT_TAGS = {
    "user.created": "user_add_org",
    "user.reactivated": "user_add_org",
    "user.updated": "user_modify_org",
    "user.deleted": "user_leave_org",
    "user.deactivated": "user_leave_org",
    "department.created": "org_dept_create",
    "department.updated": "org_dept_modify",
    "department.deleted": "org_dept_remove",
}
_RECORD_TYPES = {
    "record.created": "create",
    "record.updated": "update",
    "record.deleted": "delete",
    "record.commented": "comment",
}


def _contact(event: DomainEvent, tag: str, legacy: bool) -> tuple[str, dict[str, Any]]:
    """A contact event's business fields (legacy: capitalised, as the old callback overview shows them)."""
    is_user = tag.startswith("user_")
    ids: list[Any] = [event.object_id]
    if not is_user:
        ids = [int(event.object_id) if is_decimal(event.object_id) else event.object_id]
    key = ("UserId" if is_user else "DeptId") if legacy else ("userId" if is_user else "deptId")
    stamp = "TimeStamp" if legacy else "timeStamp"
    return ("user:" if is_user else "dept:") + event.object_id, {stamp: str(event.at), key: ids}


def _record(event: DomainEvent) -> dict[str, Any]:
    data = event.data
    fields: dict[str, Any] = {
        "appType": event.app,
        "formUuid": data.get("form"),
        "formInstanceId": event.object_id,
        "type": _RECORD_TYPES[event.topic],
        "staffId": event.actor,
        "eventTime": event.at,
    }
    if event.topic == "record.commented":
        fields["content"] = data.get("content")
    return fields


def _business(event: DomainEvent, legacy: bool, public_url: str | None) -> tuple[str, str, str, dict[str, Any]] | None:
    """(tag, object key, BizId, fields) of an event DingTalk has a payload for; legacy fields carry their own
    ``EventType`` and corp id."""
    rendered = render(event, public_url)
    if rendered is not None:
        tag, payload = rendered
        instance = str(payload["processInstanceId"])
        if not legacy:
            payload = {k: v for k, v in payload.items() if k not in ("EventType", "corpId")}
        return tag, f"process:{instance}", instance, payload
    contact = _CONTACT_TAGS.get(event.topic)
    if contact is not None:
        key, fields = _contact(event, contact, legacy)
        if legacy:
            fields = {"EventType": contact, **fields, "CorpId": event.corp_id}
        return contact, key, event.object_id, fields
    if event.topic in _RECORD_TYPES:
        fields = _record(event)
        if legacy:
            fields = {"EventType": RECORD_EVENT, "corpId": event.corp_id, **fields}
        return RECORD_EVENT, f"record:{event.object_id}", event.object_id, fields
    return None


def render_for(event: DomainEvent, subscription: Subscription, public_url: str | None = None) -> Rendered | None:
    """The event as ``subscription`` receives it (module docstring), or None when it does not receive it."""
    business = _business(event, subscription.kind == CALLBACK, public_url)
    if business is None:
        return None
    tag, key, biz_id, fields = business
    if not subscription.receives(tag, opt_in=tag in OPT_IN_TAGS):
        return None
    if subscription.kind == CALLBACK:
        return Rendered(tag, key, fields)
    event_id = event_key(event.corp_id, event.event_id)
    if subscription.kind == STREAM:
        headers = {
            "eventType": tag,
            "eventId": event_id,
            "eventBornTime": str(event.at),
            "eventCorpId": event.corp_id,
            "eventUnifiedAppId": subscription.client_id,
        }
        return Rendered(tag, key, {"headers": headers, "data": fields})
    envelope = {"EventType": tag, "EventTime": event.at, "CorpId": event.corp_id, "BizId": biz_id, "eventId": event_id}
    return Rendered(tag, key, {**envelope, **fields})
