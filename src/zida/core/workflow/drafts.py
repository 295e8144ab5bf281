"""Process drafts (草稿): a start form's values a user keeps before submitting them. Submitting a draft starts its
process with those values (and any given with the submission) and deletes the draft in the same transaction.

A draft holds values of the process form's own fields, checked only for that (a draft may be incomplete: the
form's rules apply when it is submitted). Only the user who saved a draft sees, changes or submits it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from zida.clock import now_ms
from zida.core.apps.queries import get_form
from zida.core.errors import Conflict, InvalidArgument, NotFound
from zida.core.principals import AppActor
from zida.core.records.filters import Page
from zida.core.records.values import brief
from zida.core.workflow import actions as approvals
from zida.core.workflow.models import ProcessInstance
from zida.db import Connection, Database, Row
from zida.ids import new_id

__all__ = ["Draft", "draft_app_pk", "find_draft", "list_drafts", "save_draft", "submit_draft"]


@dataclass(frozen=True, slots=True)
class Draft:
    """A user's saved start form of a process."""

    draft_id: str
    app_pk: int
    form_pk: int
    form_uuid: str
    user_id: str
    values: dict[str, Any]
    created_at: int
    updated_at: int


_COLUMNS = (
    "d.draft_id, d.app_pk, d.form_pk, f.form_uuid, d.user_id, d.data, d.created_at, d.updated_at"
    " FROM process_draft d JOIN form f ON f.id = d.form_pk"
)


def _draft(row: Row) -> Draft:
    return Draft(
        row["draft_id"],
        int(row["app_pk"]),
        int(row["form_pk"]),
        row["form_uuid"],
        row["user_id"],
        orjson.loads(row["data"]),
        int(row["created_at"]),
        int(row["updated_at"]),
    )


async def find_draft(conn: Connection, actor: AppActor, draft_id: str) -> Draft:
    """One of the actor's drafts (another user's, or none, is ``NotFound``)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} WHERE d.draft_id = :d AND d.corp_pk = :c AND d.user_id = :u",
        {"d": draft_id, "c": actor.corp_pk, "u": actor.user_id},
    )
    if row is None:
        raise NotFound(f"draft {draft_id} does not exist", reason="draft.not_found")
    return _draft(row)


async def list_drafts(conn: Connection, corp_pk: int, user_id: str, page: Page) -> tuple[int, list[Draft]]:
    """The user's drafts, last saved first."""
    params = {"c": corp_pk, "u": user_id, "limit": page.size, "offset": page.offset}
    total = await conn.fetchval("SELECT count(*) FROM process_draft WHERE corp_pk = :c AND user_id = :u", params)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} WHERE d.corp_pk = :c AND d.user_id = :u"
        " ORDER BY d.updated_at DESC, d.id DESC LIMIT :limit OFFSET :offset",
        params,
    )
    return int(total), [_draft(r) for r in rows]


def _checked(form_fields: Mapping[str, Any], values: Any) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise InvalidArgument(f"a draft's values must be an object, got {brief(values)}", reason="argument.invalid")
    for key in values:
        if key not in form_fields:
            raise InvalidArgument(f"the form has no field {brief(key)}", reason="form_data.unknown_field")
    return dict(values)


async def save_draft(
    db: Database, actor: AppActor, form_uuid: str | None, values: Any, *, draft_id: str | None = None
) -> Draft:
    """Create a draft of the process form ``form_uuid`` or (``draft_id``) change the values of one of the actor's
    drafts (the values given replace those saved)."""
    now = now_ms()
    if draft_id is not None:
        current = await find_draft(db, actor, draft_id)
        form = await get_form(db, actor, current.form_uuid)
        data = _checked({f.field_id: f for f in form.fields}, values)
        changed = await db.execute(
            f"UPDATE process_draft SET data = {db.sql.json_param('data')}, updated_at = :now"
            " WHERE draft_id = :d AND corp_pk = :c AND user_id = :u",
            {"data": orjson.dumps(data).decode(), "now": now, "d": draft_id, "c": actor.corp_pk, "u": actor.user_id},
        )
        if not changed:
            raise Conflict(f"draft {draft_id} was submitted or deleted meanwhile", reason="draft.gone")
        return Draft(
            draft_id, current.app_pk, current.form_pk, current.form_uuid, actor.user_id, data, current.created_at, now
        )
    form = await get_form(db, actor, form_uuid)
    if form.form_type != "process":
        raise Conflict(f"{form.form_uuid} is a plain form: it has no drafts", reason="form.receipt_form_cannot_start")
    data = _checked({f.field_id: f for f in form.fields}, values)
    new = new_id("DRAFT-", 30)
    await db.execute(
        "INSERT INTO process_draft (draft_id, corp_pk, app_pk, form_pk, user_id, data, created_at, updated_at)"
        f" VALUES (:d, :c, :a, :f, :u, {db.sql.json_param('data')}, :now, :now)",
        {
            "d": new,
            "c": actor.corp_pk,
            "a": actor.app_pk,
            "f": form.pk,
            "u": actor.user_id,
            "data": orjson.dumps(data).decode(),
            "now": now,
        },
    )
    return Draft(new, actor.app_pk, form.pk, form.form_uuid, actor.user_id, data, now, now)


async def submit_draft(db: Database, actor: AppActor, draft_id: str, values: Any = None) -> ProcessInstance:
    """Start the draft's process with its values (those given override them); the draft is gone afterwards."""
    draft = await find_draft(db, actor, draft_id)
    if values is not None and not isinstance(values, Mapping):
        raise InvalidArgument(f"values must be an object, got {brief(values)}", reason="argument.invalid")
    merged = {**draft.values, **(values or {})}  # the form's rules are checked by the start
    return await approvals.start_instance(db, actor, draft.form_uuid, merged, draft_id=draft_id)


async def draft_app_pk(conn: Connection, corp_pk: int, draft_id: str) -> int:
    """The app of a draft of the corp (``NotFound``: no such draft)."""
    pk = await conn.fetchval(
        "SELECT app_pk FROM process_draft WHERE draft_id = :d AND corp_pk = :c", {"d": draft_id, "c": corp_pk}
    )
    if pk is None:
        raise NotFound(f"draft {draft_id} does not exist", reason="draft.not_found")
    return int(pk)
