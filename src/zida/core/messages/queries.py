"""Reading work notifications: a sender's message and its result, a user's inbox, and who a send reaches.

A sender sees only its own messages (another credential's, or another corp's, are not found). A user's inbox lists
his messages newest first, recalled ones left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from zida.core.errors import NotFound
from zida.core.messages.models import InboxItem, Message, SendResult
from zida.db import Connection, Row, in_list

__all__ = ["get_message", "inbox", "message_not_found", "receivers", "send_result", "unread_count"]

_COLUMNS = (
    "m.id, m.message_key, m.corp_pk, m.sender, m.agent_id, m.msgtype, m.content, m.to_all, m.invalid_user_ids,"
    " m.invalid_dept_ids, m.source_id, m.created_at, m.recalled_at"
)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _message(row: Row) -> Message:
    return Message(
        pk=int(row["id"]),
        message_key=row["message_key"],
        corp_pk=int(row["corp_pk"]),
        sender=row["sender"],
        agent_id=row["agent_id"],
        kind=row["msgtype"],
        body=_json(row["content"]),
        to_all=bool(row["to_all"]),
        invalid_user_ids=tuple(_json(row["invalid_user_ids"])),
        invalid_dept_ids=tuple(_json(row["invalid_dept_ids"])),
        source_id=row["source_id"],
        created_at=int(row["created_at"]),
        recalled_at=row["recalled_at"],
    )


def message_not_found(pk: int) -> NotFound:
    """The error for a message the sender did not send."""
    return NotFound(f"no message {pk} sent by this app", reason="message.not_found", param="message")


async def get_message(conn: Connection, corp_pk: int, pk: int, sender: str) -> Message:
    """A message ``sender`` sent; else ``NotFound``."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM message m WHERE m.id = :pk AND m.corp_pk = :c AND m.sender = :s",
        {"pk": pk, "c": corp_pk, "s": sender},
    )
    if row is None:
        raise message_not_found(pk)
    return _message(row)


async def send_result(conn: Connection, corp_pk: int, pk: int, sender: str) -> SendResult:
    """A message ``sender`` sent, with its receivers who read it and who did not (in user id order)."""
    message = await get_message(conn, corp_pk, pk, sender)
    rows = await conn.fetch(
        "SELECT user_id, read_at FROM message_inbox WHERE message_pk = :pk ORDER BY user_id", {"pk": pk}
    )
    return SendResult(
        message,
        read=[r["user_id"] for r in rows if r["read_at"] is not None],
        unread=[r["user_id"] for r in rows if r["read_at"] is None],
    )


async def inbox(
    conn: Connection, corp_pk: int, user_id: str, *, unread_only: bool = False, before: int | None = None,
    limit: int = 50,
) -> list[InboxItem]:  # fmt: skip
    """A user's messages, newest first (``before``: an ``inbox_id`` of a previous page), recalled ones left out."""
    where = "i.corp_pk = :c AND i.user_id = :u AND m.recalled_at IS NULL"
    params: dict[str, Any] = {"c": corp_pk, "u": user_id, "limit": limit}
    if unread_only:
        where += " AND i.read_at IS NULL"
    if before is not None:
        where += " AND i.id < :before"
        params["before"] = before
    rows = await conn.fetch(
        f"SELECT i.id AS inbox_id, i.user_id, i.read_at, {_COLUMNS} FROM message_inbox i"
        f" JOIN message m ON m.id = i.message_pk WHERE {where} ORDER BY i.id DESC LIMIT :limit",
        params,
    )
    return [InboxItem(int(r["inbox_id"]), r["user_id"], _message(r), r["read_at"]) for r in rows]


async def unread_count(conn: Connection, corp_pk: int, user_id: str) -> int:
    """How many messages of a user's inbox he has not read."""
    value = await conn.fetchval(
        "SELECT count(*) FROM message_inbox i JOIN message m ON m.id = i.message_pk"
        " WHERE i.corp_pk = :c AND i.user_id = :u AND i.read_at IS NULL AND m.recalled_at IS NULL",
        {"c": corp_pk, "u": user_id},
    )
    return int(value or 0)


async def receivers(
    conn: Connection, corp_pk: int, user_ids: Sequence[str], dept_ids: Sequence[int], *, to_all: bool
) -> tuple[list[str], list[str], list[int]]:
    """(active users reached, user ids the corp has not as active users, dept ids it does not have): the users
    named, the members of the departments named and of their sub-departments, or everyone."""
    found: set[str] = set()
    if to_all:
        rows = await conn.fetch("SELECT user_id FROM org_user WHERE corp_pk = :c AND active = :t",
                                {"c": corp_pk, "t": True})  # fmt: skip
        found.update(r["user_id"] for r in rows)
    invalid_users: list[str] = []
    if user_ids:
        placeholders, names = in_list("u", list(user_ids))
        rows = await conn.fetch(
            f"SELECT user_id FROM org_user WHERE corp_pk = :c AND active = :t AND user_id IN ({placeholders})",
            {"c": corp_pk, "t": True, **names},
        )
        active = {r["user_id"] for r in rows}
        invalid_users = [u for u in user_ids if u not in active]
        found.update(active)
    invalid_depts: list[int] = []
    if dept_ids:
        placeholders, names = in_list("d", list(dept_ids))
        rows = await conn.fetch(
            f"SELECT dept_id FROM department WHERE corp_pk = :c AND dept_id IN ({placeholders})",
            {"c": corp_pk, **names},
        )
        known = [int(r["dept_id"]) for r in rows]
        invalid_depts = [d for d in dept_ids if d not in set(known)]
        if known:
            placeholders, names = in_list("k", known)
            rows = await conn.fetch(
                "WITH RECURSIVE tree(dept_id) AS ("
                f" SELECT dept_id FROM department WHERE corp_pk = :c AND dept_id IN ({placeholders})"
                " UNION SELECT d.dept_id FROM department d JOIN tree ON d.parent_dept_id = tree.dept_id"
                " WHERE d.corp_pk = :c)"
                " SELECT DISTINCT u.user_id FROM tree JOIN department d ON d.corp_pk = :c AND d.dept_id = tree.dept_id"
                " JOIN user_department ud ON ud.dept_pk = d.id JOIN org_user u ON u.id = ud.user_pk"
                " WHERE u.active = :t",
                {"c": corp_pk, "t": True, **names},
            )
            found.update(r["user_id"] for r in rows)
    return sorted(found), invalid_users, invalid_depts
