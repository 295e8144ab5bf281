"""DingTalk's permission points (接口权限) as Zida's neutral scopes.

Credentials store neutral scopes; a bundle or an admin call may name them with these permission points instead
(``Yida.*``: every Yida point), and each DingTalk route requires one point (``endpoint("Yida.Form.Write")``).
"""

from __future__ import annotations

from zida.core.principals import Scope

__all__ = ["PERMISSIONS", "WILDCARDS"]

PERMISSIONS: dict[str, Scope] = {
    "Yida.Form.Read": Scope.RECORDS_READ,
    "Yida.Form.Write": Scope.RECORDS_WRITE,
    "Yida.Process.Read": Scope.PROCESSES_READ,
    "Yida.Process.Write": Scope.PROCESSES_WRITE,
    "Yida.Task.Read": Scope.TASKS_READ,
    "Yida.Task.Write": Scope.TASKS_WRITE,
    "Yida.Comment.Write": Scope.COMMENTS_WRITE,
    "Yida.App.Read": Scope.APPS_READ,
    "Yida.Attachment.Read": Scope.FILES_READ,
    "Contact.User.Read": Scope.DIRECTORY_READ,
    "Contact.User.Write": Scope.DIRECTORY_WRITE,  # Zida's name: user and department writes (qyapi_manage_*)
    "Workflow.Instance.Read": Scope.PROCESSES_READ,
    "Workflow.Instance.Write": Scope.PROCESSES_WRITE,
    "Workflow.Task.Write": Scope.TASKS_WRITE,
    "Workflow.Form.Read": Scope.APPS_READ,
    "Todo.Todo.Read": Scope.TODOS_READ,
    "Todo.Todo.Write": Scope.TODOS_WRITE,
    "Message.WorkNotify.Send": Scope.MESSAGES_SEND,  # Zida's name: asyncsend_v2 and its result, progress, recall
    "Event.Subscription": Scope.EVENTS,  # Zida's name: callbacks, failed lists, Stream mode
}

WILDCARDS: dict[str, frozenset[Scope]] = {
    "Yida.*": frozenset(s for name, s in PERMISSIONS.items() if name.startswith("Yida.")),
    "Contact.*": frozenset(s for name, s in PERMISSIONS.items() if name.startswith("Contact.")),
    "Workflow.*": frozenset(s for name, s in PERMISSIONS.items() if name.startswith("Workflow.")),
    "Todo.*": frozenset(s for name, s in PERMISSIONS.items() if name.startswith("Todo.")),
}
