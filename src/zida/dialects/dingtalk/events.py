"""Domain events as DingTalk delivers them: ``bpms_instance_change`` and ``bpms_task_change`` payloads.

The outbox keeps Zida's neutral events (``zida.core.events.models``); an approval's ``process.*`` and ``task.*``
events render to the payloads of DingTalk's approval callbacks (dingtalk-platform.md §4.6): ``EventType``,
``processInstanceId``, ``corpId``, ``processCode``, ``bizCategoryId`` (empty), ``title``, ``type`` (start, finish,
terminate, delete; task: start, finish, cancel), ``staffId`` (the originator — who deleted, for delete — or the
task's assignee), ``result`` (agree / refuse / redirect / return) and a task's ``remark``, ``createTime`` (the
instance's or task's creation), ``finishTime`` when it ended, and an instance's ``url`` (its page in the admin API).
Other topics have no DingTalk approval payload (``None``).
"""

from __future__ import annotations

from typing import Any

from zida.core.events.models import DomainEvent

__all__ = ["INSTANCE_EVENT", "TASK_EVENT", "render"]

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


def render(event: DomainEvent) -> tuple[str, dict[str, Any]] | None:
    """(EventType, payload) of an approval event as DingTalk sends it; None for events it has no payload for."""
    data = event.data
    kind = _INSTANCE_TYPES.get(event.topic)
    if kind is not None:
        payload = _common(INSTANCE_EVENT, event.object_id, event)
        payload["type"] = kind
        payload["staffId"] = event.actor if kind == "delete" else data.get("originator")
        if "result" in data:
            payload["result"] = _RESULTS.get(data["result"], data["result"])
        payload["createTime"] = data.get("started_at")
        payload["url"] = f"/admin/v1/process-instances/{event.object_id}"
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
