"""DingTalk work notifications (工作通知, dingtalk-platform.md §5.1) on Zida's messages (``zida.core.messages``).

================================================================ ===========================================
route (oapi, ``?access_token=``; JSON or form-urlencoded body)    answer
================================================================ ===========================================
POST ``/topapi/message/corpconversation/asyncsend_v2``           ``{task_id}``
POST ``/topapi/message/corpconversation/getsendresult``          ``{send_result: {invalid_user_id_list, …}}``
POST ``/topapi/message/corpconversation/getsendprogress``        ``{progress: {progress_in_percent, status}}``
POST ``/topapi/message/corpconversation/recall``                 ``{}``
================================================================ ===========================================

Every route needs the ``Message.WorkNotify.Send`` permission point (Zida's name). Wire choices, each tested:

* **agent_id** is required (as on DingTalk) and may be any whole number: Zida has no agent ids. The send keeps
  it; reading its result or progress, or recalling it, with another agent_id is ``40056`` (不合法的agentid).
* **Receivers**: ``userid_list`` and ``dept_id_list`` as comma-separated strings (or JSON arrays), departments with
  their sub-departments, ``to_all_user`` (``true``/``"true"``). UserIds and departments the corp does not have do
  not fail the send: ``getsendresult`` lists them in ``invalid_user_id_list`` / ``invalid_dept_id_list``, as
  DingTalk does. A send that reaches nobody, or without ``msg``, is ``40035``; nothing is written.
* **msg**: an object or its JSON text (form posts), at most 2,048 bytes, ``msgtype`` one of text, image, voice,
  file, link, oa, markdown, action_card, with the fields DingTalk requires for it (``text.content``;
  ``image/file.media_id``; ``voice.media_id`` and ``duration``; ``link.messageUrl, picUrl, title, text``;
  ``oa.message_url, head, body``; ``markdown.title, text``; ``action_card.title, markdown`` and either
  ``single_title`` + ``single_url`` or ``btn_orientation`` + ``btn_json_list``).
* **Delivery is synchronous**: the message is in each receiver's Zida inbox when the send answers, so progress
  is always ``{progress_in_percent: 100, status: 2}`` and ``failed``/``forbidden`` lists are empty. Zida does not
  apply DingTalk's silent throttling (same content once a day, 500 a day per user).
* A task id names a send of the calling app credential; another's (or another corp's) is ``40035``.
* ``getsendresult`` keeps DingTalk's two limits, so code that relies on it fails here as it would there: a send
  older than 24 hours, or one that reached more than 100 users, is ``40035`` naming the limit (``getsendprogress``
  answers for every send).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.routing import Route

from zida.clock import now_ms
from zida.core.errors import InvalidArgument, Unsupported
from zida.core.messages import actions, queries
from zida.core.messages.models import KINDS, MessageSpec
from zida.core.org.models import CorpRef
from zida.core.records.values import brief
from zida.dialects.dingtalk.http import Call
from zida.dialects.dingtalk.oapi import json_field, oapi_endpoint
from zida.ids import is_decimal

__all__ = ["routes"]

_MAX_MSG_BYTES = 2048
# DingTalk's getsendresult: only sends of the last 24 hours, with at most 100 receivers
_RESULT_WINDOW_MS = 24 * 3600 * 1000
_MAX_RESULT_RECEIVERS = 100
_MAX_ID = 2**63 - 1
# The fields each msgtype requires (dingtalk-platform.md §5.1).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "text": ("content",),
    "image": ("media_id",),
    "voice": ("media_id", "duration"),
    "file": ("media_id",),
    "link": ("messageUrl", "picUrl", "title", "text"),
    "oa": ("message_url", "head", "body"),
    "markdown": ("title", "text"),
    "action_card": ("title", "markdown"),
}


def _invalid(message: str, param: str, reason: str = "argument.invalid") -> InvalidArgument:
    return InvalidArgument(message, reason=reason, param=param)


def _corp(call: Call) -> CorpRef:
    assert call.principal is not None
    return CorpRef(call.principal.corp_pk, call.principal.corp_id)


def _sender(call: Call) -> str:
    assert call.principal is not None
    return call.principal.client_id


def _number(call: Call, name: str, *, required: bool = True) -> int | None:
    value = call.raw(name, "body")
    if value is None or value == "":
        value = call.raw(name, "query")
    if value is None or value == "":
        if required:
            raise _invalid("{param}不能为空", name, "argument.missing")
        return None
    if isinstance(value, str) and is_decimal(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_ID:
        raise _invalid("{param} must be a whole number", name)
    return value


def _list(call: Call, name: str) -> list[str]:
    value = json_field(call, name)
    if value is None or value == "":
        return []
    if isinstance(value, str | int):
        return [v.strip() for v in str(value).split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    raise _invalid("{param} must be comma-separated ids", name)


def _message(call: Call) -> tuple[str, dict[str, Any]]:
    """(kind, body) of ``msg`` after DingTalk's checks."""
    msg = json_field(call, "msg")
    if msg is None or msg == "":
        raise _invalid("{param}不能为空", "msg", "argument.missing")
    if not isinstance(msg, dict):
        raise _invalid("{param} must be a JSON object", "msg")
    size = len(orjson.dumps(msg))
    if size > _MAX_MSG_BYTES:
        raise _invalid(f"{{param}} takes {size} bytes, more than {_MAX_MSG_BYTES}", "msg")
    kind = msg.get("msgtype")
    if kind not in KINDS:
        raise _invalid(f"{{param}}: msgtype must be one of {', '.join(KINDS)}", "msg")
    body = msg.get(kind)
    if not isinstance(body, dict):
        raise _invalid(f"{{param}}: a {kind} message needs its {kind} object", "msg")
    for key in _REQUIRED[kind]:
        value = body.get(key)
        if value is None or value == "" or value == {}:
            raise _invalid(f"{{param}}: a {kind} message needs {kind}.{key}", "msg")
    if kind == "oa" and not (isinstance(body["head"], dict) and isinstance(body["body"], dict)):
        raise _invalid("{param}: oa.head and oa.body must be objects", "msg")
    if kind == "action_card":
        single = body.get("single_title") and body.get("single_url")
        buttons = body.get("btn_json_list")
        if not single and not (isinstance(buttons, list) and buttons and all(
            isinstance(b, dict) and b.get("title") and b.get("action_url") for b in buttons
        )):  # fmt: skip
            raise _invalid("{param}: an action_card needs single_title and single_url, or btn_json_list of"
                           " {title, action_url}", "msg")  # fmt: skip
    return kind, body


@oapi_endpoint("Message.WorkNotify.Send", "POST")
async def asyncsend_v2(call: Call) -> dict[str, Any]:
    """Send a work notification: delivered to the receivers' inboxes before the answer."""
    agent_id = _number(call, "agent_id")
    kind, body = _message(call)
    dept_ids = []
    for text in _list(call, "dept_id_list"):
        if not is_decimal(text) or not 1 <= int(text) <= _MAX_ID:
            raise _invalid(f"{{param}}: {brief(text)} is not a department id", "dept_id_list")
        dept_ids.append(int(text))
    spec = MessageSpec(
        kind=kind,
        body=body,
        user_ids=_list(call, "userid_list"),
        dept_ids=dept_ids,
        to_all=call.flag("to_all_user", False, "body"),
        agent_id=agent_id,
    )
    message = await actions.send_message(call.zida.db, _corp(call), spec, sender=_sender(call),
                                         actor=f"credential:{_sender(call)}")  # fmt: skip
    return {"task_id": message.pk}


async def _own(call: Call, task_param: str) -> int:
    """The task id named, after checking the agent_id against the send's."""
    agent_id = _number(call, "agent_id")
    task_id = _number(call, task_param)
    assert task_id is not None
    message = await queries.get_message(call.zida.db, _corp(call).pk, task_id, _sender(call))
    if message.agent_id is not None and message.agent_id != agent_id:
        raise _invalid(f"task {task_id} was not sent with agent_id {agent_id}", "agent_id", "message.bad_agent")
    return task_id


@oapi_endpoint("Message.WorkNotify.Send", "POST")
async def getsendresult(call: Call) -> dict[str, Any]:
    """Who a send reached, who read it, and the receivers it named that the corp does not have."""
    task_id = await _own(call, "task_id")
    result = await queries.send_result(call.zida.db, _corp(call).pk, task_id, _sender(call))
    if now_ms() - result.message.created_at > _RESULT_WINDOW_MS:
        raise Unsupported(f"getsendresult answers for sends of the last 24 hours only; task {task_id} is older",
                          reason="message.result_expired")  # fmt: skip
    reached = len(result.read) + len(result.unread)
    if reached > _MAX_RESULT_RECEIVERS:
        raise Unsupported(f"getsendresult answers for sends to at most {_MAX_RESULT_RECEIVERS} users; task {task_id}"
                          f" reached {reached}", reason="message.result_too_many")  # fmt: skip
    return {
        "send_result": {
            "invalid_user_id_list": list(result.message.invalid_user_ids),
            "forbidden_user_id_list": [],
            "failed_user_id_list": [],
            "read_user_id_list": result.read,
            "unread_user_id_list": result.unread,
            "invalid_dept_id_list": list(result.message.invalid_dept_ids),
            "forbidden_list": [],
        }
    }


@oapi_endpoint("Message.WorkNotify.Send", "POST")
async def getsendprogress(call: Call) -> dict[str, Any]:
    """A send's progress: always done (delivery is synchronous)."""
    await _own(call, "task_id")
    return {"progress": {"progress_in_percent": 100, "status": 2}}


@oapi_endpoint("Message.WorkNotify.Send", "POST")
async def recall(call: Call) -> dict[str, Any]:
    """Take a send out of every receiver's inbox."""
    task_id = await _own(call, "msg_task_id")
    await actions.recall_message(call.zida.db, _corp(call), task_id, sender=_sender(call),
                                 actor=f"credential:{_sender(call)}")  # fmt: skip
    return {}


def routes() -> list[Route]:
    """The work-notification routes (``oapi.mount``); any method reaches them (a wrong one answers 43002)."""
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    base = "/topapi/message/corpconversation/"
    return [
        Route(base + "asyncsend_v2", asyncsend_v2, methods=methods),
        Route(base + "getsendresult", getsendresult, methods=methods),
        Route(base + "getsendprogress", getsendprogress, methods=methods),
        Route(base + "recall", recall, methods=methods),
    ]
