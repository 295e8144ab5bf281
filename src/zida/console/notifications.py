"""The inbox's notifications tab: the signed-in user's work notifications (``zida.core.messages``), newest first,
unread ones marked, and marking them read.

A message is shown by its kind's fields (DingTalk's message formats: text, link, markdown, OA, action card, media):
a title, a text (markdown shown as plain text: nothing a sender writes becomes markup) and a link. A link is kept
only when it is ``http(s)``; an approval's notification links to the approval's console page instead of the API
link it carries. Paging is by the last notification shown (``before``), the core's keyset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from zida.console.common import PAGE_SIZE, moment
from zida.console.web import CONSOLE, Ctx, console_page, redirect
from zida.core.errors import InvalidArgument
from zida.core.messages.actions import mark_read
from zida.core.messages.models import APPROVAL_SENDER, InboxItem
from zida.core.messages.queries import inbox, unread_count
from zida.ids import is_decimal

__all__ = ["Notice", "mark_notifications_read", "notices", "unread"]

_MAX_IDS = 200


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification as the inbox shows it."""

    inbox_id: int
    title: str
    text: str
    url: str | None
    sender: str
    at: str
    unread: bool


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _web_url(value: Any) -> str | None:
    text = _text(value)
    return text if text.lower().startswith(("https://", "http://")) else None


def _parts(kind: str, body: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(title, text, link) of a message body of ``kind``."""
    if kind == "text":
        return "", _text(body.get("content")), None
    if kind == "link":
        return _text(body.get("title")), _text(body.get("text")), _web_url(body.get("messageUrl"))
    if kind == "markdown":
        return _text(body.get("title")), _text(body.get("text")), None
    if kind == "action_card":
        return _text(body.get("title")), _text(body.get("markdown")), _web_url(body.get("single_url"))
    if kind == "oa":
        head: Mapping[str, Any] = body["head"] if isinstance(body.get("head"), dict) else {}
        main: Mapping[str, Any] = body["body"] if isinstance(body.get("body"), dict) else {}
        title = _text(main.get("title")) or _text(head.get("text"))
        url = _web_url(body.get("message_url")) or _web_url(body.get("pc_message_url"))
        return title, _text(main.get("content")), url
    return "", f"[{kind}]", None  # image, voice, file: media the console does not play


def notice(ctx: Ctx, item: InboxItem) -> Notice:
    """One inbox item as shown."""
    message = item.message
    title, text, url = _parts(message.kind, message.body)
    sender = message.sender
    if sender == APPROVAL_SENDER:
        sender = ctx.t("nav.inbox")
        text = text.split("\n", 1)[0]  # the API link that follows is the approval's page here
        url = f"{CONSOLE}/approvals/{message.source_id}" if message.source_id else None
    return Notice(item.inbox_id, title, text, url, sender, moment(ctx, message.created_at), item.read_at is None)


async def unread(ctx: Ctx) -> int:
    """How many notifications the signed-in user has not read."""
    return await unread_count(ctx.zida.db, ctx.corp.pk, ctx.user_id)


async def notices(ctx: Ctx) -> tuple[list[Notice], str | None]:
    """A page of the signed-in user's notifications (``before``: after that one) and the next page's URL."""
    raw = ctx.request.query_params.get("before", "")
    before = None
    if raw:
        if not is_decimal(raw, 18):
            raise InvalidArgument("before must be a notification id", reason="argument.invalid", param="before")
        before = int(raw)
    items = await inbox(ctx.zida.db, ctx.corp.pk, ctx.user_id, before=before, limit=PAGE_SIZE + 1)
    shown = [notice(ctx, i) for i in items[:PAGE_SIZE]]
    more = f"{CONSOLE}/inbox?tab=notifications&before={shown[-1].inbox_id}" if len(items) > PAGE_SIZE else None
    return shown, more


@console_page()
async def mark_notifications_read(ctx: Ctx) -> Response:
    """Mark notifications of the signed-in user read (POST ``id``, repeated); others' are left alone."""
    raw = ctx.form.all("id")
    if not raw or len(raw) > _MAX_IDS or not all(is_decimal(v, 18) for v in raw):
        raise InvalidArgument(f"name 1 to {_MAX_IDS} notifications", reason="argument.invalid", param="id")
    await mark_read(ctx.zida.db, ctx.corp, ctx.user_id, [int(v) for v in raw], actor=f"user:{ctx.user_id}")
    return redirect(f"{CONSOLE}/inbox?tab=notifications")
