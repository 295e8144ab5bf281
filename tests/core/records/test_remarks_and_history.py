"""Comments (``zida.core.records.remarks``) and operation logs (``zida.core.records.history``) at the core level:
whoever may read a record may comment on it and read its comments and its log — an approver of a process record
too — and a deleted record's log is for app admins only."""

from __future__ import annotations

import pytest

from tests.core.corp import NOTE, REVIEW, STOCK, CorpCoreMain
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied
from zida.core.records import actions as records
from zida.core.records.history import list_operation_logs
from zida.core.records.remarks import MAX_REMARK_LENGTH, list_remarks, save_remark
from zida.core.workflow import actions as workflow

pytestmark = pytest.mark.anyio

USERS = ("adm", "li", "liu", "wang", "chen", "sun", "zhou")


class Corp(CorpCoreMain):
    """corpCoreMain with stock records and the comments and logs a user sees of a record."""

    async def save(self, user: str, values: dict[str, object]) -> str:
        return (await records.save_form_instance(self.db, await self.actor(user), STOCK, values)).instance_id

    async def remarks(self, user: str, instance_id: str, form_uuid: str = STOCK) -> list[tuple[str, str]]:
        """(author, content) of the comments ``user`` sees on the record."""
        found = await list_remarks(self.db, await self.actor(user), await self.form(form_uuid), [instance_id])
        return [(r.creator_user_id, r.content) for r in found.get(instance_id, [])]

    async def logs(self, user: str, instance_id: str, form_uuid: str = STOCK) -> list[tuple[str, str]]:
        """(operation, operator) of the log ``user`` sees of the record."""
        found = await list_operation_logs(self.db, await self.actor(user), await self.form(form_uuid), [instance_id])
        return [(log.operation, log.operator_user_id) for log in found.get(instance_id, [])]


# ----------------------------------------------------------------------------------------------- comments


async def test_comments_reply_and_mention_and_come_back_oldest_first(corp: Corp) -> None:
    iid = await corp.save("li", {"textField_sku": "评论"})
    first = await save_remark(corp.db, await corp.actor("li"), iid, "请核对数量", at_user_ids=("wang", "adm"))
    reply = await save_remark(corp.db, await corp.actor("adm"), iid, "已核对", reply_id=first)
    assert reply > first
    found = await list_remarks(corp.db, await corp.actor("li"), await corp.form(STOCK), [iid])
    assert [(r.id, r.content, r.reply_id, r.reply_user_id, r.at_user_ids) for r in found[iid]] == [
        (first, "请核对数量", None, None, ("wang", "adm")),
        (reply, "已核对", first, "li", ()),
    ]


async def test_a_bad_comment_is_refused_and_saves_nothing(corp: Corp) -> None:
    iid = await corp.save("li", {"textField_sku": "坏评论"})
    elsewhere = await corp.save("li", {"textField_sku": "别处"})
    li = await corp.actor("li")
    foreign = await save_remark(corp.db, li, elsewhere, "别处的评论")
    for content, kwargs, error in (
        ("", {}, InvalidArgument),
        ("   ", {}, InvalidArgument),
        ("x" * (MAX_REMARK_LENGTH + 1), {}, InvalidArgument),
        ("回复", {"reply_id": 999_999_999}, NotFound),
        ("回复别处", {"reply_id": foreign}, NotFound),  # a comment of another record
        ("提到", {"at_user_ids": ("nobody",)}, NotFound),
    ):
        with pytest.raises(error):
            await save_remark(corp.db, li, iid, content, **kwargs)
    with pytest.raises(NotFound):
        await save_remark(corp.db, li, "FINST-NOPE", "没有这条记录")
    assert await corp.remarks("li", iid) == []
    assert (await save_remark(corp.db, li, iid, "x" * MAX_REMARK_LENGTH)) > foreign  # the longest allowed


async def test_only_who_may_read_a_plain_record_comments_on_it_and_reads_the_comments(corp: Corp) -> None:
    iid = await corp.save("li", {"textField_sku": "可见评论"})
    await save_remark(corp.db, await corp.actor("li"), iid, "自己的")
    await save_remark(corp.db, await corp.actor("adm"), iid, "管理员的")
    with pytest.raises(PermissionDenied):
        await save_remark(corp.db, await corp.actor("liu"), iid, "路人")
    with pytest.raises(NotFound):  # another app's admin: the record does not exist there
        await save_remark(corp.db, await corp.actor("zhou", "APP_CORE_OTHER"), iid, "别的应用")
    assert {u for u in USERS if await corp.remarks(u, iid)} == {"adm", "li"}
    assert await corp.remarks("liu", iid) == []
    assert await corp.remarks("adm", iid) == [("li", "自己的"), ("adm", "管理员的")]


async def test_an_approver_and_a_copied_user_comment_on_a_process_record_and_read_its_comments(corp: Corp) -> None:
    iid = (
        await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "审批评论"})
    ).instance_id
    await save_remark(corp.db, await corp.actor("wang"), iid, "一审意见")
    for outsider in ("chen", "sun", "zhou"):  # not reached yet, not copied yet, never
        with pytest.raises(PermissionDenied):
            await save_remark(corp.db, await corp.actor(outsider), iid, "还不能评论")
    await corp.approve(iid, "wang")
    await save_remark(corp.db, await corp.actor("chen"), iid, "二审意见")
    await corp.approve(iid, "chen")  # CC'd to sun
    await save_remark(corp.db, await corp.actor("sun"), iid, "已阅")
    expected = [("wang", "一审意见"), ("chen", "二审意见"), ("sun", "已阅")]
    assert {u: await corp.remarks(u, iid, REVIEW) for u in USERS} == {
        **dict.fromkeys(("adm", "li", "wang", "chen", "sun"), expected),
        "liu": [],
        "zhou": [],
    }


async def test_comments_leave_with_their_record(corp: Corp) -> None:
    iid = await corp.save("li", {"textField_sku": "删后评论"})
    await save_remark(corp.db, await corp.actor("li"), iid, "马上删除")
    await records.delete_form_instance(corp.db, await corp.actor("li"), iid)
    assert await corp.remarks("adm", iid) == []
    with pytest.raises(NotFound):
        await save_remark(corp.db, await corp.actor("adm"), iid, "太晚了")


async def test_comments_leave_with_a_deleted_approval(corp: Corp) -> None:
    iid = (
        await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "删审批评论"})
    ).instance_id
    await save_remark(corp.db, await corp.actor("wang"), iid, "审批意见")
    await workflow.delete_instance(corp.db, await corp.actor("adm"), iid)
    assert await corp.remarks("adm", iid, REVIEW) == []
    with pytest.raises(NotFound):
        await save_remark(corp.db, await corp.actor("adm"), iid, "太晚了")


async def test_comments_are_listed_only_for_records_of_the_form_asked(corp: Corp) -> None:
    stock = await corp.save("li", {"textField_sku": "表单"})
    note = (
        await records.save_form_instance(corp.db, await corp.actor("li"), NOTE, {"textField_note": "便签"})
    ).instance_id
    await save_remark(corp.db, await corp.actor("li"), stock, "库存评论")
    await save_remark(corp.db, await corp.actor("li"), note, "便签评论")
    found = await list_remarks(corp.db, await corp.actor("adm"), await corp.form(STOCK), [note, stock, "FINST-NOPE"])
    assert {k: [r.content for r in v] for k, v in found.items()} == {stock: ["库存评论"]}


# --------------------------------------------------------------------------------------------- operation log


async def test_the_log_records_every_change_with_its_old_and_new_values(corp: Corp) -> None:
    iid = await corp.save("li", {"textField_sku": "日志", "numberField_qty": 1})
    await records.update_form_instance(
        corp.db, await corp.actor("adm"), iid, {"numberField_qty": 2, "selectField_state": "在库"}
    )
    found = await list_operation_logs(corp.db, await corp.actor("li"), await corp.form(STOCK), [iid, iid])
    assert [(log.operation, log.operator_user_id, log.changes) for log in found[iid]] == [
        ("CREATE", "li", {"textField_sku": {"new": "日志"}, "numberField_qty": {"new": 1}}),
        ("UPDATE", "adm", {"numberField_qty": {"old": 1, "new": 2}, "selectField_state": {"old": None, "new": "在库"}}),
    ]
    assert found[iid][0].created_at <= found[iid][1].created_at
    assert await list_operation_logs(corp.db, await corp.actor("li"), await corp.form(STOCK), []) == {}


async def test_the_log_is_read_by_whoever_may_read_the_record(corp: Corp) -> None:
    plain = await corp.save("li", {"textField_sku": "谁看日志"})
    assert {u for u in USERS if await corp.logs(u, plain)} == {"adm", "li"}
    iid = (
        await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "审批日志"})
    ).instance_id
    assert {u for u in USERS if await corp.logs(u, iid, REVIEW)} == {"adm", "li", "wang"}
    await corp.approve(iid, "wang")
    await corp.approve(iid, "chen")
    assert {u for u in USERS if await corp.logs(u, iid, REVIEW)} == {"adm", "li", "wang", "chen", "sun"}
    assert await corp.logs("wang", iid, REVIEW) == [("CREATE", "li")]  # approval steps change no values


async def test_a_deleted_records_log_is_for_app_admins_only(corp: Corp) -> None:
    iid = await corp.save("li", {"textField_sku": "删后日志"})
    await records.delete_form_instance(corp.db, await corp.actor("li"), iid)
    assert await corp.logs("adm", iid) == [("CREATE", "li"), ("DELETE", "li")]
    assert await corp.logs("li", iid) == []  # not even its originator
    process = (
        await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "删后审批日志"})
    ).instance_id
    await workflow.delete_instance(corp.db, await corp.actor("adm"), process)
    assert await corp.logs("adm", process, REVIEW) == [("CREATE", "li"), ("DELETE", "adm")]
    assert await corp.logs("wang", process, REVIEW) == [] and await corp.logs("li", process, REVIEW) == []
