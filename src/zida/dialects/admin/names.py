"""The admin API's names for the request parameters core errors name semantically (``{param}``)."""

from __future__ import annotations

__all__ = ["PARAMS"]

PARAMS: dict[str, str] = {
    "user": "userId",
    "users": "userIds",
    "process_instance": "instanceId",
    "task": "taskId",
    "node": "toNode",
    "app": "appType",
    "form": "formUuid",
    "department": "deptId",
}
