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
    "Event.Subscription": Scope.EVENTS,  # Zida's name: callbacks, failed lists, Stream mode
}

WILDCARDS: dict[str, frozenset[Scope]] = {
    "Yida.*": frozenset(s for name, s in PERMISSIONS.items() if name.startswith("Yida.")),
}
