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
    "departments": "departments",
    "parent": "parentId",
    "managers": "managers",
    "manager": "manager",
    "name_en": "nameEn",
    "union_id": "unionId",
    "hand_over_to": "handOverTo",
    "acting_user": "userId",
    "role": "roleId",
    "members": "members",
    "client_id": "appKey",
    "client_secret": "appSecret",
    "scopes": "scopes",
    "app_secret": "systemToken",
    "admins": "admins",
    "form_type": "type",
    "fields": "fields",
    "process": "process",
    "rate_limit": "rateLimit",
    "model_name": "modelName",
    "username": "username",
    "env_id": "envId",
}
