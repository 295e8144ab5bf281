"""Actions on work notifications: send, recall, mark read — each one transaction writing its rows, its audit row and
its event (``message.sent``, ``message.recalled``, ``message.read``; ``zida.core.audit``).

Rules (each tested):

* **A send** names a kind of message (``KINDS``) with a body of at most 2,048 bytes of JSON, and its receivers:
  users (at most 5,000), departments (at most 500; their sub-departments' members too) or everyone. It delivers
  at once: each active user reached gets the message in his inbox (once, however often he is named). Users and
  departments the corp does not have are **not an error** (DingTalk reports them in the send's result): they are
  kept on the message as invalid. A send that reaches nobody is ``InvalidArgument`` (``message.no_receiver``),
  and nothing is written.
* **The event** ``message.sent`` (object: the message's key) carries the sender, the kind, the body and the
  users reached, so that a console or a subscriber can show it.
* **Recall** takes the message out of every inbox (its rows stay, for the sender's result); only its sender may
  recall it; recalling it again changes nothing.
* **Marking read** is a user's own: messages not in his inbox are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from zida.clock import now_ms
from zida.core.audit import created_fields, record_change
from zida.core.errors import InvalidArgument
from zida.core.messages.models import KINDS, MAX_BODY_BYTES, Message, MessageSpec
from zida.core.messages.queries import get_message, receivers
from zida.core.org.models import CorpRef
from zida.db import Connection, Database
from zida.ids import new_id

__all__ = ["MAX_DEPARTMENTS", "MAX_USERS", "check_body", "insert_message", "mark_read", "recall_message",
           "send_message"]  # fmt: skip

MAX_USERS = 5000
MAX_DEPARTMENTS = 500


def check_body(kind: str, body: Any) -> dict[str, Any]:
    """A message body the core keeps: a known kind, a JSON object of at most ``MAX_BODY_BYTES``."""
    if kind not in KINDS:
        raise InvalidArgument(f"unknown message kind {kind!r}: one of {', '.join(KINDS)}", reason="message.bad_kind",
                              param="message")  # fmt: skip
    if not isinstance(body, dict) or not body:
        raise InvalidArgument(f"the {kind} message needs its fields", reason="message.bad_body", param="message")
    size = len(orjson.dumps(body))
    if size > MAX_BODY_BYTES:
        raise InvalidArgument(f"the message takes {size} bytes, more than {MAX_BODY_BYTES}",
                              reason="message.too_large", param="message")  # fmt: skip
    return body


async def insert_message(
    tx: Connection, message: Message, recipients: Sequence[str], *, actor: str | None, app: str | None = None
) -> Message:
    """Inside the caller's transaction: the message row, its inbox rows, its audit row and ``message.sent``."""
    pk = await tx.fetchval(
        "INSERT INTO message (corp_pk, message_key, sender, agent_id, msgtype, content, to_all, invalid_user_ids,"
        f" invalid_dept_ids, source_id, created_at) VALUES (:c, :key, :sender, :agent, :kind,"
        f" {tx.sql.json_param('body')}, :to_all, {tx.sql.json_param('bad_users')},"
        f" {tx.sql.json_param('bad_depts')}, :source, :now) RETURNING id",
        {
            "c": message.corp_pk,
            "key": message.message_key,
            "sender": message.sender,
            "agent": message.agent_id,
            "kind": message.kind,
            "body": orjson.dumps(dict(message.body)).decode(),
            "to_all": message.to_all,
            "bad_users": orjson.dumps(list(message.invalid_user_ids)).decode(),
            "bad_depts": orjson.dumps(list(message.invalid_dept_ids)).decode(),
            "source": message.source_id,
            "now": message.created_at,
        },
    )
    sent = replace(message, pk=int(pk))
    await tx.executemany(
        "INSERT INTO message_inbox (message_pk, corp_pk, user_id, created_at) VALUES (:m, :c, :u, :now)",
        [{"m": sent.pk, "c": sent.corp_pk, "u": u, "now": sent.created_at} for u in recipients],
    )
    await record_change(
        tx, corp_pk=sent.corp_pk, kind="message", object_id=sent.message_key, action="sent",
        changes=created_fields(message_facts(sent, recipients)), actor=actor, at=sent.created_at, app=app,
    )  # fmt: skip
    return sent


# Recipients the event and the audit row name one by one; a message to more (everyone in a big org) names the first
# ones and counts all (the inbox rows hold every recipient).
MAX_NAMED_RECIPIENTS = 100


def message_facts(message: Message, recipients: Sequence[str]) -> dict[str, Any]:
    """What the ``message.sent`` event and the audit row say of a message."""
    return {
        "sender": message.sender,
        "kind": message.kind,
        "body": dict(message.body),
        "recipients": list(recipients[:MAX_NAMED_RECIPIENTS]),
        "recipient_count": len(recipients),
        "invalid_users": list(message.invalid_user_ids),
        "invalid_departments": list(message.invalid_dept_ids),
        "source_id": message.source_id,
    }


async def send_message(db: Database, corp: CorpRef, spec: MessageSpec, *, sender: str, actor: str | None) -> Message:
    """Send a message to its receivers' inboxes (see the module's rules); ``sender``: the app credential."""
    body = check_body(spec.kind, spec.body)
    user_ids = list(dict.fromkeys(u for u in spec.user_ids if u))
    dept_ids = list(dict.fromkeys(spec.dept_ids))
    if len(user_ids) > MAX_USERS:
        raise InvalidArgument(f"{{param}} may name at most {MAX_USERS} users", reason="argument.invalid",
                              param="message_users")  # fmt: skip
    if len(dept_ids) > MAX_DEPARTMENTS:
        raise InvalidArgument(f"{{param}} may name at most {MAX_DEPARTMENTS} departments", reason="argument.invalid",
                              param="message_departments")  # fmt: skip
    if not (user_ids or dept_ids or spec.to_all):
        raise InvalidArgument("name the receivers: users, departments or everyone", reason="message.no_receiver")
    now = now_ms()
    async with db.transaction() as tx:
        reached, bad_users, bad_depts = await receivers(tx, corp.pk, user_ids, dept_ids, to_all=spec.to_all)
        if not reached:
            raise InvalidArgument(
                "the message reaches nobody: no active user among the receivers named", reason="message.no_receiver"
            )
        message = Message(
            pk=0, message_key=new_id("MSG", 24), corp_pk=corp.pk, sender=sender, agent_id=spec.agent_id,
            kind=spec.kind, body=body, to_all=spec.to_all, invalid_user_ids=tuple(bad_users),
            invalid_dept_ids=tuple(bad_depts), source_id=None, created_at=now,
        )  # fmt: skip
        return await insert_message(tx, message, reached, actor=actor)


async def recall_message(db: Database, corp: CorpRef, pk: int, *, sender: str, actor: str | None) -> Message:
    """Take a message ``sender`` sent out of every inbox (again: nothing changes)."""
    now = now_ms()
    async with db.transaction() as tx:
        message = await get_message(tx, corp.pk, pk, sender)
        if message.recalled_at is not None:
            return message
        await tx.execute("UPDATE message SET recalled_at = :now WHERE id = :pk", {"now": now, "pk": pk})
        await record_change(tx, corp_pk=corp.pk, kind="message", object_id=message.message_key, action="recalled",
                            changes={"recalled_at": {"old": None, "new": now}}, actor=actor, at=now)  # fmt: skip
    return replace(message, recalled_at=now)


async def mark_read(db: Database, corp: CorpRef, user_id: str, inbox_ids: Sequence[int], *, actor: str | None) -> int:
    """Mark messages of ``user_id``'s inbox read (by ``inbox_id``); how many were unread."""
    wanted = sorted(set(inbox_ids))
    if not wanted:
        return 0
    names = {f"i{n}": v for n, v in enumerate(wanted)}
    now = now_ms()
    async with db.transaction() as tx:
        rows = await tx.fetch(
            f"UPDATE message_inbox SET read_at = :now WHERE corp_pk = :c AND user_id = :u AND read_at IS NULL"
            f" AND id IN ({', '.join(':' + n for n in names)}) RETURNING id",
            {"now": now, "c": corp.pk, "u": user_id, **names},
        )
        read = sorted(int(r["id"]) for r in rows)
        if read:
            await record_change(tx, corp_pk=corp.pk, kind="message", object_id=user_id, action="read",
                                changes={"inbox_ids": {"new": read}}, actor=actor, at=now)  # fmt: skip
    return len(read)
