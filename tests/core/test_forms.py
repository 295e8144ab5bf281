"""The form API router (``zida.core.forms``): records of a process form follow their approval's rules. A single
update is the approval's update (running-task holders may, others not), a delete is the approval's delete (app
admins only, a running approval terminated first), and batch and sub-table updates move the approval's lock
version so that an approval step decided on old values is decided again."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from tests.core.corp import REVIEW, STOCK, CorpCoreMain
from zida.core import forms
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from zida.core.events.outbox import pending_events
from zida.core.records.filters import And, Condition, Page, RecordQuery
from zida.core.records.history import list_operation_logs
from zida.core.workflow import actions as workflow
from zida.core.workflow import queries as approvals

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("consistent_workflow")]


class Corp(CorpCoreMain):
    """corpCoreMain with review approvals, their lock versions and the corp's outbox."""

    async def start(self, values: dict[str, Any], user: str = "li") -> str:
        return (await workflow.start_instance(self.db, await self.actor(user), REVIEW, values)).instance_id

    async def version(self, instance_id: str) -> int:
        inst, _, _ = await approvals.inspect_instance(self.db, self.corp_pk, instance_id)
        return inst.lock_version

    async def last_event(self) -> int:
        """The id of the corp's latest outbox event (0: none yet)."""
        return int(
            await self.db.fetchval(
                "SELECT COALESCE(MAX(id), 0) FROM outbox_event WHERE corp_pk = :c", {"c": self.corp_pk}
            )
        )


# ------------------------------------------------------------------------------------------------ updates


async def test_a_process_record_is_updated_by_its_running_task_holders_its_originator_and_admins(corp: Corp) -> None:
    iid = await corp.start({"textField_title": "改"})
    version = await corp.version(iid)
    for outsider in ("chen", "zhou"):  # chen's node is not reached yet
        with pytest.raises(PermissionDenied):
            await forms.update_record(corp.db, await corp.actor(outsider), iid, {"numberField_amount": 1})
    assert "numberField_amount" not in await corp.data(iid) and await corp.version(iid) == version
    changed = await forms.update_record(corp.db, await corp.actor("wang"), iid, {"numberField_amount": 2})
    assert changed.instance_id == iid and changed.data["numberField_amount"] == 2
    assert await corp.version(iid) > version  # the approval knows its record changed
    await forms.update_record(corp.db, await corp.actor("li"), iid, {"numberField_amount": 3})
    await corp.approve(iid, "wang")
    with pytest.raises(PermissionDenied):  # wang's task is done
        await forms.update_record(corp.db, await corp.actor("wang"), iid, {"numberField_amount": 4})
    await forms.update_record(corp.db, await corp.actor("chen"), iid, {"numberField_amount": 5})
    await forms.update_record(corp.db, await corp.actor("adm"), iid, {"textField_title": "管理员改"})
    data = await corp.data(iid)
    assert (data["numberField_amount"], data["textField_title"]) == (5, "管理员改")
    logs = await list_operation_logs(corp.db, await corp.actor("adm"), await corp.form(REVIEW), [iid])
    assert [(log.operation, log.operator_user_id) for log in logs[iid]] == [
        ("CREATE", "li"),
        ("UPDATE", "wang"),
        ("UPDATE", "li"),
        ("UPDATE", "chen"),
        ("UPDATE", "adm"),
    ]


async def test_a_plain_record_is_updated_and_deleted_by_the_records_rules(corp: Corp) -> None:
    saved = await forms.save_record(corp.db, await corp.actor("li"), STOCK, {"textField_sku": "路由"})
    with pytest.raises(PermissionDenied):
        await forms.update_record(corp.db, await corp.actor("liu"), saved.instance_id, {"numberField_qty": 1})
    await forms.update_record(corp.db, await corp.actor("li"), saved.instance_id, {"numberField_qty": 2})
    assert (await corp.data(saved.instance_id))["numberField_qty"] == 2
    with pytest.raises(PermissionDenied):
        await forms.delete_record(corp.db, await corp.actor("liu"), saved.instance_id)
    await forms.delete_record(corp.db, await corp.actor("li"), saved.instance_id)  # its originator
    with pytest.raises(NotFound):
        await corp.data(saved.instance_id)


async def test_an_invalid_update_of_a_process_record_changes_nothing(corp: Corp) -> None:
    iid = await corp.start({"textField_title": "不变", "numberField_amount": 1})
    version = await corp.version(iid)
    with pytest.raises(InvalidArgument):
        await forms.update_record(corp.db, await corp.actor("wang"), iid, {"numberField_amount": "many"})
    assert (await corp.data(iid))["numberField_amount"] == 1 and await corp.version(iid) == version


# ------------------------------------------------------------------------------------------------ deletes


async def test_a_running_process_record_is_deleted_by_app_admins_only_and_its_approval_terminated_first(
    corp: Corp,
) -> None:
    iid = await corp.start({"textField_title": "删"})
    for user in ("li", "wang"):  # its originator, its approver
        with pytest.raises(PermissionDenied):
            await forms.delete_record(corp.db, await corp.actor(user), iid)
    assert (await corp.data(iid))["textField_title"] == "删"
    after = await corp.last_event()
    await forms.delete_record(corp.db, await corp.actor("adm"), iid)
    with pytest.raises(NotFound):
        await corp.data(iid)
    with pytest.raises(NotFound):
        await approvals.inspect_instance(corp.db, corp.corp_pk, iid)
    events = await pending_events(corp.db, corp.corp_pk, after_id=after, limit=1000)
    assert [(e.topic, e.actor) for e in events] == [
        ("task.cancelled", "adm"),
        ("process.terminated", "adm"),
        ("process.deleted", "adm"),
        ("record.deleted", "adm"),
    ]
    assert events[0].data["assignee"] == "wang" and events[1].data["originator"] == "li"


async def test_a_finished_process_record_is_deleted_without_a_termination(corp: Corp) -> None:
    iid = await corp.start({"textField_title": "完成后删"})
    await corp.approve(iid, "wang")
    await corp.approve(iid, "chen")
    mark = await corp.last_event()
    await forms.delete_record(corp.db, await corp.actor("adm"), iid)
    events = await pending_events(corp.db, corp.corp_pk, after_id=mark, limit=1000)
    assert [e.topic for e in events] == ["process.deleted", "record.deleted"]
    with pytest.raises(NotFound):
        await corp.data(iid)


async def test_batch_delete_and_upsert_refuse_a_process_form(corp: Corp) -> None:
    iid = await corp.start({"textField_title": "批量"})
    form = await corp.form(REVIEW)
    adm = await corp.actor("adm")
    with pytest.raises(Conflict):
        await forms.delete_records(corp.db, adm, form, [iid])
    with pytest.raises(Conflict):
        await forms.upsert_record(
            corp.db, adm, form, Condition("textField_title", "eq", "批量"), {"numberField_amount": 1}
        )
    with pytest.raises(Conflict):
        await forms.save_record(corp.db, adm, REVIEW, {"textField_title": "x"})
    assert (await corp.data(iid)) == {"textField_title": "批量"}


# --------------------------------------------------------------------------- batch and sub-table updates


async def test_a_batch_update_of_process_records_moves_their_approvals_on(corp: Corp) -> None:
    first = await corp.start({"textField_title": "批改一"})
    second = await corp.start({"textField_title": "批改二"})
    before = {i: await corp.version(i) for i in (first, second)}
    form = await corp.form(REVIEW)
    assert await forms.update_records(
        corp.db,
        await corp.actor("adm"),
        form,
        [(first, {"numberField_amount": 1}), (second, {"numberField_amount": 2})],
    ) == [first, second]
    assert [(await corp.data(i))["numberField_amount"] for i in (first, second)] == [1, 2]
    assert all([await corp.version(i) > before[i] for i in (first, second)])
    # Its originator may too, and so may whoever holds a running task of it (the one policy); a bystander may not.
    await forms.update_records(corp.db, await corp.actor("li"), form, [(first, {"numberField_amount": 3})])
    await forms.update_records(corp.db, await corp.actor("wang"), form, [(second, {"numberField_amount": 2})])
    with pytest.raises(PermissionDenied):
        await forms.update_records(corp.db, await corp.actor("zhou"), form, [(second, {"numberField_amount": 9})])
    assert [(await corp.data(i))["numberField_amount"] for i in (first, second)] == [3, 2]
    # The approval goes on from the new values.
    await corp.approve(first, "wang")
    assert (await corp.data(first))["numberField_amount"] == 3


async def test_a_batch_update_follows_the_approval_running_task_holders_until_they_decide(corp: Corp) -> None:
    iid = await corp.start({"textField_title": "审批人批改"})
    form = await corp.form(REVIEW)
    await forms.update_records(corp.db, await corp.actor("wang"), form, [(iid, {"numberField_amount": 5})])
    await corp.approve(iid, "wang")
    with pytest.raises(PermissionDenied):  # wang decided: it is chen's turn now
        await forms.update_records(corp.db, await corp.actor("wang"), form, [(iid, {"numberField_amount": 6})])
    await forms.update_records(corp.db, await corp.actor("chen"), form, [(iid, {"numberField_amount": 7})])
    await corp.approve(iid, "chen")
    with pytest.raises(Conflict):  # finished: app admins only
        await forms.update_records(corp.db, await corp.actor("li"), form, [(iid, {"numberField_amount": 8})])
    await forms.update_records(corp.db, await corp.actor("adm"), form, [(iid, {"numberField_amount": 9})])
    assert (await corp.data(iid))["numberField_amount"] == 9


async def test_sub_table_rows_of_a_process_record_change_with_its_approval(corp: Corp) -> None:
    iid = await corp.start(
        {"textField_title": "子表", "tableField_lines": [{"textField_item": "机票", "numberField_cost": 800}]}
    )
    version = await corp.version(iid)
    (row,) = (await corp.data(iid))["tableField_lines"]
    with pytest.raises(NotFound):
        await forms.update_sub_table_rows(
            corp.db, await corp.actor("adm"), iid, "tableField_lines", [{"rowId": "nope", "numberField_cost": 1}]
        )
    assert await corp.version(iid) == version and (await corp.data(iid))["tableField_lines"] == [row]
    await forms.update_sub_table_rows(
        corp.db, await corp.actor("li"), iid, "tableField_lines", [{"rowId": row["__rowId"], "numberField_cost": 700}]
    )
    assert (await corp.data(iid))["tableField_lines"] == [{**row, "numberField_cost": 700}]
    assert await corp.version(iid) > version


async def test_a_batch_update_racing_an_approval_step_either_succeeds_or_is_a_clear_conflict(corp: Corp) -> None:
    form = await corp.form(REVIEW)
    adm, wang = await corp.actor("adm"), await corp.actor("wang")
    outcomes: list[str] = []
    for n in range(8):
        iid = await corp.start({"textField_title": f"竞争{n}"})
        task = await corp.task_of(iid, "wang")
        results = await asyncio.gather(
            forms.update_records(corp.db, adm, form, [(iid, {"numberField_amount": n})]),
            workflow.execute_task(corp.db, wang, iid, task, agree=True),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                assert isinstance(result, Conflict), repr(result)
                outcomes.append("conflict")
            else:
                outcomes.append("ok")
        update_ok, step_ok = (not isinstance(r, BaseException) for r in results)
        assert (await corp.data(iid)).get("numberField_amount") == (n if update_ok else None)
        inst, _, tasks = await approvals.inspect_instance(corp.db, corp.corp_pk, iid)
        assert inst.status == "RUNNING"
        running = [t.assignee_user_id for t in tasks if t.status == "RUNNING"]
        assert running == (["chen"] if step_ok else ["wang"])
    assert outcomes.count("ok") >= 8


# ------------------------------------------------------------------------------------------------ searches


async def test_a_search_of_a_process_form_may_name_the_node_an_approval_waits_at(corp: Corp) -> None:
    m = "节点" + secrets.token_hex(4)
    at_one = await corp.start({"textField_title": m})
    at_two = await corp.start({"textField_title": m})
    await corp.approve(at_two, "wang")
    adm, form = await corp.actor("adm"), await corp.form(REVIEW)

    async def waiting_at(name: str) -> list[str]:
        query = RecordQuery(
            filter=And((Condition("textField_title", "eq", m), Condition("current_node_name", "eq", name))),
            page=Page(1, 10),
        )
        found = await forms.search_records(corp.db, adm, form, query)
        _, ids = await forms.search_record_ids(corp.db, adm, form, query)
        assert [i.instance_id for i in found.items] == ids
        return ids

    assert await waiting_at("一审") == [at_one]
    assert await waiting_at("二审") == [at_two]
    assert await waiting_at("没有这个节点") == []


async def test_the_next_page_of_a_search_by_node_holds_the_rows_at_its_offset_after_an_approval_step(
    corp: Corp,
) -> None:
    m = "翻页" + secrets.token_hex(4)
    ids = [await corp.start({"textField_title": m}) for _ in range(5)]  # newest first: ids[4] .. ids[0]
    adm, form = await corp.actor("adm"), await corp.form(REVIEW)

    async def page(number: int) -> tuple[list[int], list[int]]:
        query = RecordQuery(
            filter=And((Condition("textField_title", "eq", m), Condition("current_node_name", "eq", "一审"))),
            page=Page(number, 2),
        )
        found = await forms.search_records(corp.db, adm, form, query)
        _, only_ids = await forms.search_record_ids(corp.db, adm, form, query)
        return [ids.index(i.instance_id) for i in found.items], [ids.index(i) for i in only_ids]

    assert await page(1) == ([4, 3], [4, 3])
    await corp.approve(ids[3], "wang")  # it waits at 二审 now: [4, 2, 1, 0] wait at 一审
    assert await page(2) == ([1, 0], [1, 0])
