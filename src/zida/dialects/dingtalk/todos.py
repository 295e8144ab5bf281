"""DingTalk to-dos (``todo_1_0``, dingtalk-platform.md §5.2) on Zida's to-dos (``zida.core.todos``).

========================================================================= ============== ===================
route                                                                     permission     answer
========================================================================= ============== ===================
POST   ``/v1.0/todo/users/{unionId}/tasks?operatorId=``                   Todo.Todo.Write the to-do
GET    ``/v1.0/todo/users/{unionId}/tasks/{taskId}``                      Todo.Todo.Read  the to-do
GET    ``/v1.0/todo/users/{unionId}/tasks/sources/{sourceId}``            Todo.Todo.Read  the to-do
PUT    ``/v1.0/todo/users/{unionId}/tasks/{taskId}?operatorId=``          Todo.Todo.Write ``{result: true}``
PUT    ``/v1.0/todo/users/{unionId}/tasks/{taskId}/executorStatus``       Todo.Todo.Write ``{result: true}``
DELETE ``/v1.0/todo/users/{unionId}/tasks/{taskId}?operatorId=``          Todo.Todo.Write ``{result: true}``
POST   ``/v1.0/todo/users/{unionId}/organizations/tasks/query``           Todo.Todo.Read  ``{todoCards, nextToken,
                                                                                          maxResults}``
========================================================================= ============== ===================

Wire choices (where DingTalk is silent or Zida differs, each tested):

* People are **unionIds** (the path user, ``creatorId``, ``operatorId``, ``executorIds``, ``participantIds``); an
  unknown one is 400 ``paramError`` naming it, and nothing is written. The path user is the one the call is made
  for: he creates the to-do (a ``creatorId`` naming someone else is refused), and he must be its creator, an
  executor or a participant to read or change it (else 400 ``invalidParameter.todo.notExist``, as for an unknown
  id or another corp's to-do).
* ``sourceId`` is unique per creator (a second one: 400 ``todo.taskCreate.paramError`` "task exist", DingTalk's
  code); get-by-source finds the path user's own to-do with it first, else one he takes part in.
* ``detailUrl`` is optional (DingTalk requires it for work to-dos since 2024-02-01; Zida keeps older
  integrations working); ``appUrl``/``pcUrl`` must be http(s) URLs or paths.
* The to-do of an approval task (id ``approval-<taskId>``, ``source`` ``approval``, ``sourceId`` the task id: the
  task itself seen as a to-do, ``zida.core.todos.approvals``) is read like any other; changing or deleting it is
  400 ``forbidden.todo.followsApproval``.
* ``query``: ``roleTypes`` is a list of lists (any inner list matches; inside one, every role must hold; default
  every role); ``isDone`` filters on the to-do's own state; ``orderBy`` ``created`` (default), ``modified`` or
  ``dueTime``, ``orderDirection`` ``desc`` (default) or ``asc``; ``maxResults`` 1–100 (default 50); ``nextToken``
  is opaque (``"0"``, which clients send for the first page, is the first page); ``todoType`` filters on the type
  the to-do was created with (``TODO`` when none);
  ``needPersonalTodo`` changes nothing (Zida has no personal to-dos).
* Kept and given back as sent: ``contentFieldList``, ``notifyConfigs``, ``isOnlyShowExecutor``, ``todoType``,
  ``bizCategoryId``, ``actionList``, ``remindNotifyConfigs``, ``reminderTimeStamp``, ``thirdExtension``. Zida sends
  no DING and no push for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.routing import Route

from zida.core.errors import InvalidArgument
from zida.core.org.models import CorpRef
from zida.core.org.repository import find_users
from zida.core.records.values import brief
from zida.core.records.values import named as named_id
from zida.core.todos import actions, queries
from zida.core.todos.models import (
    ANY_ROLE,
    APPROVAL_SOURCE,
    CREATOR,
    EXECUTOR,
    PARTICIPANT,
    Todo,
    TodoChanges,
    TodoQuery,
    TodoSpec,
)
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.http import new_request_id

__all__ = ["routes"]

_ROLES = {"executor": EXECUTOR, "creator": CREATOR, "participant": PARTICIPANT}
_ORDER = {"created": "created", "createdTime": "created", "modified": "modified", "modifiedTime": "modified",
          "dueTime": "due", "due": "due"}  # fmt: skip
_KINDS = {"TODO": "todo", "READ": "read"}
_MAX_TIME = 2**53


def _corp(call: Call) -> CorpRef:
    assert call.principal is not None
    return CorpRef(call.principal.corp_pk, call.principal.corp_id)


def _actor(call: Call) -> str:
    assert call.principal is not None
    return f"credential:{call.principal.client_id}"


def _invalid(message: str, param: str) -> InvalidArgument:
    return InvalidArgument(message, reason="argument.invalid", param=param)


def _texts(call: Call, name: str) -> list[str] | None:
    value = call.raw(name, "body")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _invalid("{param} must be a list of unionIds", name)
    return value


def _time(call: Call, name: str, where: str = "body") -> int | None:
    value = call.raw(name, where)
    if value is None or value == "":
        return None
    return call.integer(name, 0, where, minimum=0, maximum=_MAX_TIME)


def _object(call: Call, name: str) -> dict[str, Any] | None:
    value = call.raw(name, "body")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(f"{{param}} must be an object, got {brief(value)}", name)
    return value


def _content_fields(call: Call) -> list[dict[str, Any]] | None:
    value = call.raw("contentFieldList", "body")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
        raise _invalid("{param} must be a list of {fieldKey, fieldValue}", "contentFieldList")
    return [{"key": f.get("fieldKey"), "value": f.get("fieldValue")} for f in value]


def _first_page_is_none(token: str | None) -> str | None:
    """A query's ``nextToken``: absent, empty or ``"0"`` (the documented default some clients send) is the first
    page; anything else is a cursor this server gave."""
    return None if token in (None, "", "0") else token


async def _users(call: Call, named: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """unionId → userId of every unionId named (by its wire parameter); an unknown one is a 400 naming it."""
    wanted = [u for ids in named.values() for u in ids]
    found = await queries.users_by_union_id(call.zida.db, _corp(call).pk, wanted)
    for param, ids in named.items():
        for union_id in ids:
            if union_id not in found:
                raise InvalidArgument(f"{{param}}: no user with unionId {named_id(union_id)} in this corp",
                                      reason="todo.unknown_user", param=param)  # fmt: skip
    return found


async def _path_user(call: Call, operator: bool = False) -> tuple[str, str | None]:
    """The path user's userId and, with ``operator``, the operatorId's (None when absent)."""
    union_id = call.text("unionId", "path", required=True) or ""
    operator_id = call.text("operatorId", "query") if operator else None
    named: dict[str, list[str]] = {"unionId": [union_id]}
    if operator_id:
        named["operatorId"] = [operator_id]
    users = await _users(call, named)
    return users[union_id], users[operator_id] if operator_id else None


async def _render(call: Call, todo: Todo, *, full: bool = True) -> dict[str, Any]:
    people = await find_users(
        call.zida.db,
        todo.corp_pk,
        [todo.creator_user_id, todo.modifier_user_id or "", *(e.user_id for e in todo.executors), *todo.participants],
    )

    def union(user_id: str | None) -> str | None:
        user = people.get(user_id or "")
        return user.union_id if user is not None else None

    details = todo.details
    body: dict[str, Any] = {
        "id": todo.todo_id,
        "subject": todo.subject,
        "description": todo.description or "",
        "startTime": todo.created_at,
        "dueTime": todo.due_time,
        "finishTime": todo.finished_at,
        "done": todo.done,
        "executorIds": [union(e.user_id) for e in todo.executors],
        "participantIds": [union(u) for u in todo.participants],
        "detailUrl": {"appUrl": todo.app_url or "", "pcUrl": todo.pc_url or ""},
        "source": todo.source,
        "sourceId": todo.source_id,
        "createdTime": todo.created_at,
        "modifiedTime": todo.modified_at,
        "creatorId": union(todo.creator_user_id),
        "modifierId": union(todo.modifier_user_id) or union(todo.creator_user_id),
        "bizTag": APPROVAL_SOURCE if todo.source == APPROVAL_SOURCE else "isv",
        "isOnlyShowExecutor": bool(details.get("only_executors_see", False)),
        "priority": todo.priority,
    }
    if full:
        body["notifyConfigs"] = details.get("notify") or {}
        body["contentFieldList"] = [
            {"fieldKey": f["key"], "fieldValue": f["value"]} for f in details.get("content_fields", [])
        ]
        body["todoType"] = next((k for k, v in _KINDS.items() if v == details.get("kind")), "TODO")
        body["tenantId"] = call.principal.corp_id if call.principal else ""
        body["tenantType"] = "org"
        body["cardTypeId"] = details.get("category") or ""
        body["requestId"] = new_request_id()  # as the platform's create and get answer (the x-acs-request-id)
    return {k: v for k, v in body.items() if v is not None}


@endpoint("Todo.Todo.Write")
async def create_todo(call: Call) -> dict[str, Any]:
    """Create a to-do for the path user (he is its creator)."""
    union_id = call.text("unionId", "path", required=True) or ""
    creator = call.text("creatorId", "body")
    if creator and creator != union_id:
        raise _invalid("{param} must be the path user's unionId: a to-do is created by the user it is created for",
                       "creatorId")  # fmt: skip
    executors = _texts(call, "executorIds") or []
    participants = _texts(call, "participantIds") or []
    operator_id = call.text("operatorId", "query")
    named = {"unionId": [union_id], "executorIds": executors, "participantIds": participants}
    if operator_id:
        named["operatorId"] = [operator_id]
    users = await _users(call, named)
    detail = _object(call, "detailUrl") or {}
    kind = call.text("todoType", "body")
    if kind is not None and kind not in _KINDS:
        raise _invalid("{param} must be TODO or READ", "todoType")
    priority = call.raw("priority", "body")
    spec = TodoSpec(
        subject=call.text("subject", "body", required=True) or "",
        creator_user_id=users[union_id],
        description=call.text("description", "body"),
        due_time=_time(call, "dueTime"),
        priority=None if priority is None else call.integer("priority", 0, "body", minimum=0, maximum=100),
        executors=[users[u] for u in executors],
        participants=[users[u] for u in participants],
        app_url=_url_of(detail, "appUrl"),
        pc_url=_url_of(detail, "pcUrl"),
        source_id=call.text("sourceId", "body"),
        details={
            "content_fields": _content_fields(call),
            "only_executors_see": call.flag("isOnlyShowExecutor", False, "body")
            if call.raw("isOnlyShowExecutor", "body") is not None
            else None,
            "kind": _KINDS[kind] if kind else None,
            "category": call.text("bizCategoryId", "body"),
            "notify": _object(call, "notifyConfigs"),
            "reminders": call.raw("remindNotifyConfigs", "body"),
            "reminder_at": _time(call, "reminderTimeStamp"),
            "actions": call.raw("actionList", "body"),
            "extension": call.raw("thirdExtension", "body"),
        },
    )
    assert call.principal is not None
    todo = await actions.create_todo(call.zida.db, _corp(call), spec, source=call.principal.client_id,
                                     actor=_actor(call))  # fmt: skip
    return await _render(call, todo)


def _url_of(detail: dict[str, Any], key: str) -> str | None:
    value = detail.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid("{param} must be a URL", f"detailUrl.{key}")
    return value


@endpoint("Todo.Todo.Read")
async def get_todo(call: Call) -> dict[str, Any]:
    """One to-do the path user sees."""
    user_id, _ = await _path_user(call)
    todo = await queries.get_todo(call.zida.db, _corp(call).pk, call.text("taskId", "path") or "", user_id)
    return await _render(call, todo)


@endpoint("Todo.Todo.Read")
async def get_todo_by_source(call: Call) -> dict[str, Any]:
    """The to-do with this sourceId the path user sees."""
    user_id, _ = await _path_user(call)
    source_id = call.text("sourceId", "path", required=True) or ""
    todo = await queries.get_todo_by_source(call.zida.db, _corp(call).pk, source_id, user_id)
    return await _render(call, todo)


@endpoint("Todo.Todo.Write")
async def update_todo(call: Call) -> dict[str, Any]:
    """Change the fields the body names."""
    user_id, operator = await _path_user(call, operator=True)
    executors = _texts(call, "executorIds")
    participants = _texts(call, "participantIds")
    users = await _users(call, {"executorIds": executors or [], "participantIds": participants or []})
    done = call.raw("done", "body")
    changes = TodoChanges(
        subject=call.text("subject", "body"),
        description=call.text("description", "body"),
        due_time=_time(call, "dueTime"),
        done=None if done is None else call.flag("done", False, "body"),
        executors=None if executors is None else [users[u] for u in executors],
        participants=None if participants is None else [users[u] for u in participants],
        content_fields=_content_fields(call),
    )
    await actions.update_todo(call.zida.db, _corp(call), call.text("taskId", "path") or "", changes,
                              user_id=user_id, operator=operator, actor=_actor(call))  # fmt: skip
    return {"result": True}


@endpoint("Todo.Todo.Write")
async def update_executor_status(call: Call) -> dict[str, Any]:
    """Mark executors done or not."""
    user_id, operator = await _path_user(call, operator=True)
    entries = call.raw("executorStatusList", "body")
    if not isinstance(entries, list) or not entries:
        raise InvalidArgument("{param}不能为空", reason="argument.missing", param="executorStatusList")
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("id"), str)
            or not isinstance(entry.get("isDone"), bool)
        ):
            raise _invalid("{param}: each entry needs id (a unionId) and isDone (a boolean)", "executorStatusList")
    users = await _users(call, {"executorStatusList": [e["id"] for e in entries]})
    statuses = [(users[e["id"]], bool(e["isDone"])) for e in entries]
    await actions.set_executor_status(call.zida.db, _corp(call), call.text("taskId", "path") or "", statuses,
                                      user_id=user_id, operator=operator, actor=_actor(call))  # fmt: skip
    return {"result": True}


@endpoint("Todo.Todo.Write")
async def delete_todo(call: Call) -> dict[str, Any]:
    """Delete a to-do the path user sees."""
    user_id, operator = await _path_user(call, operator=True)
    await actions.delete_todo(call.zida.db, _corp(call), call.text("taskId", "path") or "", user_id=user_id,
                              operator=operator, actor=_actor(call))  # fmt: skip
    return {"result": True, "requestId": new_request_id()}


def _roles(call: Call) -> tuple[tuple[str, ...], ...]:
    value = call.raw("roleTypes", "body")
    if value is None or value == []:
        return ANY_ROLE
    if not isinstance(value, list) or not all(isinstance(g, list) for g in value):
        raise _invalid("{param} must be a list of lists of roles (executor, creator, participant)", "roleTypes")
    groups = []
    for group in value:
        roles = []
        for role in group:
            if not isinstance(role, str) or role not in _ROLES:
                raise _invalid(f"{{param}}: unknown role {brief(role)} (executor, creator, participant)", "roleTypes")
            roles.append(_ROLES[role])
        if roles:
            groups.append(tuple(roles))
    return tuple(groups) or ANY_ROLE


@endpoint("Todo.Todo.Read")
async def query_todos(call: Call) -> dict[str, Any]:
    """One page of the path user's to-dos."""
    user_id, _ = await _path_user(call)
    order = call.text("orderBy", "body") or "created"
    if order not in _ORDER:
        raise _invalid("{param} must be created, modified or dueTime", "orderBy")
    direction = (call.text("orderDirection", "body") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise _invalid("{param} must be asc or desc", "orderDirection")
    kind = call.text("todoType", "body")
    if kind is not None and kind not in _KINDS:
        raise _invalid("{param} must be TODO or READ", "todoType")
    done = call.raw("isDone", "body")
    limit = call.integer("maxResults", 50, "body", maximum=100)
    query = TodoQuery(
        roles=_roles(call),
        done=None if done is None else call.flag("isDone", False, "body"),
        due_from=_time(call, "fromDueTime"),
        due_to=_time(call, "toDueTime"),
        subject=call.text("subject", "body", max_chars=1024),
        kind=_KINDS[kind] if kind else None,
        order_by=_ORDER[order],
        descending=direction == "desc",
        limit=limit,
        after=_first_page_is_none(call.text("nextToken", "body", max_chars=64)),
    )
    page = await queries.query_todos(call.zida.db, _corp(call).pk, user_id, query)
    cards = []
    for todo in page.todos:
        shown = await _render(call, todo, full=False)
        cards.append(
            {
                "taskId": todo.todo_id,
                "subject": todo.subject,
                "sourceId": todo.source_id,
                "dueTime": todo.due_time,
                "isDone": todo.done,
                "priority": todo.priority,
                "createdTime": todo.created_at,
                "modifiedTime": todo.modified_at,
                "creatorId": shown.get("creatorId"),
                "detailUrl": shown["detailUrl"],
                "bizTag": shown["bizTag"],
                "todoType": next((k for k, v in _KINDS.items() if v == todo.details.get("kind")), "TODO"),
            }
        )
    body: dict[str, Any] = {"todoCards": [{k: v for k, v in c.items() if v is not None} for c in cards],
                            "maxResults": limit}  # fmt: skip
    if page.next_cursor is not None:
        body["nextToken"] = page.next_cursor
    return body


def routes() -> list[Route]:
    """The to-do routes (api.dingtalk.com's mount)."""
    base = "/v1.0/todo/users/{unionId}"
    return [
        Route(base + "/organizations/tasks/query", query_todos, methods=["POST"]),
        Route(base + "/tasks/sources/{sourceId}", get_todo_by_source, methods=["GET"]),
        Route(base + "/tasks/{taskId}/executorStatus", update_executor_status, methods=["PUT"]),
        Route(base + "/tasks/{taskId}", get_todo, methods=["GET"]),
        Route(base + "/tasks/{taskId}", update_todo, methods=["PUT"]),
        Route(base + "/tasks/{taskId}", delete_todo, methods=["DELETE"]),
        Route(base + "/tasks", create_todo, methods=["POST"]),
    ]
