"""The work notifications of approvals: written by the approval step, in its transaction.

A step that creates open tasks sends their assignees one text message (``你有一条待审批：<title>``); a step that
finishes or terminates the instance sends its originator one (``你发起的审批已通过：<title>``, 已拒绝, 已终止).
Their sender is ``approval``, their ``source_id`` the process instance id. Their events are the approval's own —
``task.created`` names the assignee, ``process.finished`` / ``process.terminated`` the originator — so they have
no ``message.sent`` event (subscribers of approvals would get each fact twice) and no audit row (the instance's
history is the record). The page of the instance is named in the text.

The step writes them batched: on SQLite two statements (the messages; their inbox rows, found by key), on
PostgreSQL two more CTEs of the step's one statement (:data:`APPROVAL_MESSAGE_CTES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from zida.core.messages.models import APPROVAL_SENDER
from zida.core.todos.approvals import instance_url
from zida.db import Connection
from zida.ids import new_id

if TYPE_CHECKING:
    from zida.core.workflow.models import ProcessInstance
    from zida.core.workflow.step_store import NewEvent
    from zida.core.workflow.store import TaskChange

__all__ = [
    "APPROVAL_MESSAGE_CTES",
    "ApprovalMessage",
    "approval_messages",
    "messages_param",
    "write_approval_messages",
]

_OPEN = ("RUNNING", "PAUSED")
_ENDINGS = {"process.finished": {"agree": "已通过", "disagree": "已拒绝"}, "process.terminated": {}}


@dataclass(frozen=True, slots=True)
class ApprovalMessage:
    """One notification of an approval step and who receives it."""

    key: str
    text: str
    instance_id: str
    users: tuple[str, ...]


def approval_messages(
    inst: ProcessInstance, changes: Sequence[TaskChange], events: Sequence[NewEvent]
) -> list[ApprovalMessage]:
    """The notifications of one step (its task changes and events): to the assignees of the tasks it created open,
    and to the originator when it finished or terminated the instance."""
    link = instance_url(inst.instance_id)
    ending = next(((e.topic, e.payload["data"].get("result")) for e in events if e.topic in _ENDINGS), None)
    out = []
    assignees = tuple(dict.fromkeys(c.assignee_user_id for c in changes if c.new and c.status in _OPEN))
    if assignees:
        out.append(ApprovalMessage(new_id("MSG", 24), f"你有一条待审批：{inst.title}\n{link}", inst.instance_id,
                                   assignees))  # fmt: skip
    if ending is not None:
        outcome = _ENDINGS[ending[0]].get(ending[1] or "", "已终止")
        out.append(ApprovalMessage(new_id("MSG", 24), f"你发起的审批{outcome}：{inst.title}\n{link}",
                                   inst.instance_id, (inst.originator_user_id,)))  # fmt: skip
    return out


def _rows(messages: Sequence[ApprovalMessage]) -> list[dict[str, Any]]:
    return [{"key": m.key, "body": {"content": m.text}, "src": m.instance_id, "users": list(m.users)} for m in messages]


def messages_param(messages: Sequence[ApprovalMessage]) -> str:
    """The ``messages`` parameter of :data:`APPROVAL_MESSAGE_CTES`."""
    return orjson.dumps(_rows(messages)).decode()


_INSERT_MESSAGE = (
    "INSERT INTO message (corp_pk, message_key, sender, msgtype, content, to_all, invalid_user_ids, invalid_dept_ids,"
    " source_id, created_at)"
)
_INSERT_INBOX = "INSERT INTO message_inbox (message_pk, corp_pk, user_id, created_at)"


async def write_approval_messages(
    conn: Connection, corp_pk: int, messages: Sequence[ApprovalMessage], now: int
) -> None:
    """The step's notifications, in the caller's transaction (two statements; none without notifications)."""
    if not messages:
        return
    await conn.executemany(
        _INSERT_MESSAGE + f" VALUES (:c, :key, '{APPROVAL_SENDER}', 'text', {conn.sql.json_param('body')}, :f,"
        f" {conn.sql.json_param('none')}, {conn.sql.json_param('none')}, :src, :now)",
        [
            {
                "c": corp_pk,
                "key": r["key"],
                "body": orjson.dumps(r["body"]).decode(),
                "f": False,
                "none": "[]",
                "src": r["src"],
                "now": now,
            }
            for r in _rows(messages)
        ],
    )
    await conn.executemany(
        _INSERT_INBOX + " SELECT id, :c, :u, :now FROM message WHERE message_key = :key",
        [{"c": corp_pk, "u": u, "now": now, "key": m.key} for m in messages for u in m.users],
    )


# PostgreSQL: the same writes as CTEs of the approval step's statement (``zida.core.workflow.step_store``), each
# selecting from its ``guard``; parameters ``messages`` (:func:`messages_param`), ``corp_pk``, ``now``.
APPROVAL_MESSAGE_CTES = (
    ", approval_messages AS ("
    + _INSERT_MESSAGE
    + f" SELECT :corp_pk, x.key, '{APPROVAL_SENDER}', 'text', x.body, false, CAST('[]' AS jsonb),"
    " CAST('[]' AS jsonb), x.src, :now FROM guard, jsonb_to_recordset(CAST(:messages AS jsonb))"
    " AS x(key TEXT, body JSONB, src TEXT) RETURNING id, message_key)"
    ", approval_inbox AS (" + _INSERT_INBOX + " SELECT m.id, :corp_pk, u.usr, :now FROM approval_messages m"
    " JOIN jsonb_to_recordset(CAST(:messages AS jsonb)) AS x(key TEXT, users JSONB) ON x.key = m.message_key"
    " CROSS JOIN LATERAL jsonb_array_elements_text(x.users) AS u(usr))"
)
