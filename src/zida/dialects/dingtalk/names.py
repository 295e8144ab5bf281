"""DingTalk's wire names for the request parameters core errors name semantically (``{param}``)."""

from __future__ import annotations

__all__ = ["PARAMS"]

PARAMS: dict[str, str] = {
    "app": "appType",
    "app_secret": "systemToken",
    "user": "userId",
    "users": "userIds",
    "form": "formUuid",
    "form_types": "formTypes",
    "record": "formInstanceId",
    "process_instance": "processInstanceId",
    "process": "processCode",
    "department": "departmentId",
    "node": "currentActivityId",
    "condition": "searchCondition",
    "table_field": "tableFieldId",
    "target_fields": "targetFieldJson",
    "tasks": "taskInformationList",
    "task": "taskId",
    "content": "content",
    "mentions": "atUserId",
    # to-dos (todo_1_0)
    "app_url": "detailUrl.appUrl",
    "pc_url": "detailUrl.pcUrl",
    "due_time": "dueTime",
    "source_id": "sourceId",
    "executors": "executorIds",
    "participants": "participantIds",
    "hand_over_to": "handover_userid",  # topapi/v2/user/delete (the only DingTalk route that deactivates)
}
