"""Comments on records (remarks): replies and @-mentions; one transaction per comment (with its event).

Whoever may read a record (``zida.core.access.policy``) may comment on it and read its comments."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from zida.clock import now_ms
from zida.core.access import policy
from zida.core.apps.models import Form
from zida.core.errors import InvalidArgument, NotFound
from zida.core.events.models import DomainEvent
from zida.core.events.outbox import append_events
from zida.core.org.repository import find_users
from zida.core.principals import AppActor
from zida.core.records import store as repo
from zida.db import Connection, Database

__all__ = ["MAX_REMARK_LENGTH", "Remark", "list_remarks", "save_remark"]

MAX_REMARK_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class Remark:
    """A comment on a record."""

    id: int
    instance_id: str
    content: str
    creator_user_id: str
    reply_id: int | None
    reply_user_id: str | None
    at_user_ids: tuple[str, ...]
    created_at: int


async def save_remark(
    db: Database,
    actor: AppActor,
    instance_id: str,
    content: str,
    *,
    reply_id: int | None = None,
    at_user_ids: tuple[str, ...] = (),
) -> int:
    """Comment on a record the actor can see; a reply names a comment of the same record. Returns its id."""
    if not content or not content.strip():
        raise InvalidArgument("{param} is required", reason="argument.missing", param="content")
    if len(content) > MAX_REMARK_LENGTH:
        raise InvalidArgument(f"content is longer than {MAX_REMARK_LENGTH} characters", reason="argument.invalid")
    async with db.transaction() as tx:
        inst = await repo.find_instance(tx, actor.corp_pk, instance_id)
        if inst is None:
            raise NotFound(f"form instance {instance_id} does not exist or was deleted", reason="record.not_found")
        await policy.check_readable(
            tx,
            actor,
            app_pk=inst.app_pk,
            record_id=inst.instance_id,
            originator=inst.originator_user_id,
            is_process=inst.process_instance_id is not None,
            what="form instance",
        )
        reply_user = None
        if reply_id is not None:
            reply_user = await tx.fetchval(
                "SELECT creator_user_id FROM form_remark WHERE id = :id AND instance_id = :i",
                {"id": reply_id, "i": instance_id},
            )
            if reply_user is None:
                raise NotFound(f"comment {reply_id} does not exist on {instance_id}", reason="remark.not_found")
        if at_user_ids:
            known = await find_users(tx, actor.corp_pk, at_user_ids)
            missing = sorted(u for u in set(at_user_ids) if u not in known or not known[u].active)
            if missing:
                raise NotFound(
                    f"{{param}}: user {missing[0]} does not exist in this corp",
                    reason="user.not_found",
                    param="mentions",
                )
        now = now_ms()
        remark_id = await tx.fetchval(
            "INSERT INTO form_remark (corp_pk, form_pk, instance_id, content, creator_user_id, reply_id, reply_user_id,"
            f" at_user_ids, created_at) VALUES (:c, :f, :i, :content, :u, :r, :ru, {tx.sql.json_param('at')}, :now)"
            " RETURNING id",
            {
                "c": actor.corp_pk,
                "f": inst.form_pk,
                "i": instance_id,
                "content": content,
                "u": actor.user_id,
                "r": reply_id,
                "ru": reply_user,
                "at": orjson.dumps(list(at_user_ids)).decode(),
                "now": now,
            },
        )
        await append_events(
            tx,
            [
                DomainEvent(
                    topic="record.commented",
                    corp_pk=actor.corp_pk,
                    object_id=instance_id,
                    actor=actor.user_id,
                    at=now,
                    data={
                        "form": inst.form_uuid,
                        "comment": int(remark_id),
                        "content": content,
                        "reply_to": reply_id,
                        "mentions": list(at_user_ids),
                    },
                    app=actor.app_type,
                )
            ],
        )
    return int(remark_id)


async def list_remarks(
    conn: Connection, actor: AppActor, form: Form, instance_ids: list[str]
) -> dict[str, list[Remark]]:
    """Comments per record of ``form`` (oldest first), for the records the actor can see."""
    found = await repo.find_instances(conn, actor.corp_pk, instance_ids)
    visible = []
    for instance_id in dict.fromkeys(instance_ids):
        inst = found.get(instance_id)
        if inst is None or inst.form_pk != form.pk:
            continue
        if await policy.can_read(
            conn,
            actor,
            app_pk=inst.app_pk,
            record_id=inst.instance_id,
            originator=inst.originator_user_id,
            is_process=inst.process_instance_id is not None,
        ):
            visible.append(instance_id)
    out: dict[str, list[Remark]] = {i: [] for i in visible}
    if not visible:
        return out
    names = {f"i{n}": v for n, v in enumerate(visible)}
    rows = await conn.fetch(
        "SELECT id, instance_id, content, creator_user_id, reply_id, reply_user_id, at_user_ids, created_at"
        f" FROM form_remark WHERE instance_id IN ({', '.join(':' + n for n in names)}) ORDER BY id",
        names,
    )
    for r in rows:
        out[r["instance_id"]].append(
            Remark(
                id=r["id"],
                instance_id=r["instance_id"],
                content=r["content"],
                creator_user_id=r["creator_user_id"],
                reply_id=r["reply_id"],
                reply_user_id=r["reply_user_id"],
                at_user_ids=tuple(orjson.loads(r["at_user_ids"])),
                created_at=r["created_at"],
            )
        )
    return out
