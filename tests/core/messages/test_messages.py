"""Work-notification semantics through the core functions: receivers, the inbox, reading, recalling, and the
notifications approvals send."""

from __future__ import annotations

import secrets
from typing import ClassVar

import pytest

from tests.core.corp import FLOW, TWO, CorpCoreMain
from zida.core.errors import InvalidArgument, NotFound
from zida.core.messages import actions, queries
from zida.core.messages.models import MessageSpec
from zida.core.org.models import CorpRef
from zida.core.workflow import actions as workflow

pytestmark = pytest.mark.anyio


class Corp(CorpCoreMain):
    """corpCoreMain acting in its approvals app."""

    default_app: ClassVar[str] = FLOW


def _ref(corp: CorpCoreMain) -> CorpRef:
    return CorpRef(corp.corp_pk, "corpCoreMain")


def _text(tag: str) -> MessageSpec:
    return MessageSpec(kind="text", body={"content": tag})


async def _tables(corp: CorpCoreMain) -> list[int]:
    return [
        int(await corp.db.fetchval(f"SELECT count(*) FROM {t}"))
        for t in ("message", "message_inbox", "audit_log", "outbox_event")
    ]


async def test_a_send_reaches_users_and_departments_once_and_keeps_the_unknown(corp: CorpCoreMain) -> None:
    tag = secrets.token_hex(4)
    spec = MessageSpec(kind="text", body={"content": tag}, user_ids=["li", "sun", "ghost", "li"], dept_ids=[20, 999])
    message = await actions.send_message(corp.db, _ref(corp), spec, sender="app-1", actor="test")
    assert (message.invalid_user_ids, message.invalid_dept_ids) == (("ghost",), (999,))
    result = await queries.send_result(corp.db, corp.corp_pk, message.pk, "app-1")
    assert result.unread == ["li", "qian", "sun", "zhao"] and result.read == []  # dept 20: zhao, qian
    item = (await queries.inbox(corp.db, corp.corp_pk, "li", limit=1))[0]
    assert (item.message.pk, item.message.body, item.read_at) == (message.pk, {"content": tag}, None)
    # the event and the audit row of the send
    event = await corp.db.fetchrow(
        "SELECT event_type, created_at FROM outbox_event WHERE event_type = 'message.sent' ORDER BY id DESC LIMIT 1"
    )
    assert event is not None and event["created_at"] == message.created_at
    audit = await corp.db.fetchrow(
        "SELECT action, object_id FROM audit_log WHERE object_kind = 'message' ORDER BY id DESC LIMIT 1"
    )
    assert audit is not None and (audit["action"], audit["object_id"]) == ("sent", message.message_key)

    # a department reaches its sub-departments: dept 1 is everyone active
    everyone = await actions.send_message(
        corp.db, _ref(corp), MessageSpec(kind="text", body={"content": tag}, dept_ids=[1]), sender="app-1", actor="t"
    )
    reached = await queries.send_result(corp.db, corp.corp_pk, everyone.pk, "app-1")
    assert {"li", "wang", "zhao", "adm", "zhou"} <= set(reached.unread)
    all_users = await actions.send_message(
        corp.db, _ref(corp), MessageSpec(kind="text", body={"content": tag}, to_all=True), sender="app-1", actor="t"
    )
    assert (await queries.send_result(corp.db, corp.corp_pk, all_users.pk, "app-1")).unread == reached.unread


async def test_reading_and_recalling(corp: CorpCoreMain) -> None:
    message = await actions.send_message(
        corp.db,
        _ref(corp),
        MessageSpec(kind="markdown", body={"title": "t", "text": "# hi"}, user_ids=["liu", "zhou"]),
        sender="app-2",
        actor="test",
    )
    unread = await queries.unread_count(corp.db, corp.corp_pk, "liu")
    (item,) = [i for i in await queries.inbox(corp.db, corp.corp_pk, "liu") if i.message.pk == message.pk]
    # zhou cannot mark liu's message read
    assert await actions.mark_read(corp.db, _ref(corp), "zhou", [item.inbox_id], actor="test") == 0
    assert await actions.mark_read(corp.db, _ref(corp), "liu", [item.inbox_id], actor="test") == 1
    assert await actions.mark_read(corp.db, _ref(corp), "liu", [item.inbox_id], actor="test") == 0
    assert await queries.unread_count(corp.db, corp.corp_pk, "liu") == unread - 1
    result = await queries.send_result(corp.db, corp.corp_pk, message.pk, "app-2")
    assert (result.read, result.unread) == (["liu"], ["zhou"])
    assert [i.message.pk for i in await queries.inbox(corp.db, corp.corp_pk, "liu", unread_only=True)].count(
        message.pk
    ) == 0

    # only its sender sees or recalls it
    with pytest.raises(NotFound):
        await queries.send_result(corp.db, corp.corp_pk, message.pk, "app-1")
    with pytest.raises(NotFound):
        await actions.recall_message(corp.db, _ref(corp), message.pk, sender="app-1", actor="test")
    recalled = await actions.recall_message(corp.db, _ref(corp), message.pk, sender="app-2", actor="test")
    assert recalled.recalled_at is not None
    assert message.pk not in [i.message.pk for i in await queries.inbox(corp.db, corp.corp_pk, "zhou")]
    before = await _tables(corp)
    again = await actions.recall_message(corp.db, _ref(corp), message.pk, sender="app-2", actor="test")
    assert again.recalled_at == recalled.recalled_at and await _tables(corp) == before


async def test_a_send_to_nobody_or_of_a_bad_message_writes_nothing(corp: CorpCoreMain) -> None:
    before = await _tables(corp)
    for spec in (
        MessageSpec(kind="text", body={"content": "x"}),
        MessageSpec(kind="text", body={"content": "x"}, user_ids=["ghost"], dept_ids=[999]),
        MessageSpec(kind="fax", body={"content": "x"}, user_ids=["li"]),
        MessageSpec(kind="text", body={}, user_ids=["li"]),
        MessageSpec(kind="text", body={"content": "长" * 700}, user_ids=["li"]),
    ):
        with pytest.raises(InvalidArgument):
            await actions.send_message(corp.db, _ref(corp), spec, sender="app-1", actor="test")
    assert await _tables(corp) == before


async def test_approvals_notify_their_assignees_and_originator(corp: CorpCoreMain) -> None:
    li = await corp.actor("li")
    inst = await workflow.start_instance(corp.db, li, TWO, {"textField_title": "通知 " + secrets.token_hex(3)})

    async def about(user: str) -> list[str]:
        items = await queries.inbox(corp.db, corp.corp_pk, user, limit=20)
        return [str(i.message.body["content"]) for i in items if i.message.source_id == inst.instance_id]

    (wang,) = await about("wang")
    assert wang.startswith("你有一条待审批：") and inst.title in wang and inst.instance_id in wang
    assert await about("li") == []
    await corp.approve(inst.instance_id, "wang")
    assert len(await about("chen")) == 1
    await corp.approve(inst.instance_id, "chen")
    (done,) = await about("li")
    assert done.startswith("你发起的审批已通过：")
    row = await corp.db.fetchrow(
        "SELECT sender, msgtype FROM message WHERE source_id = :i ORDER BY id LIMIT 1", {"i": inst.instance_id}
    )
    assert row is not None and (row["sender"], row["msgtype"]) == ("approval", "text")
