"""Record actions at the core level (``zida.core.records.actions``), on the real database: batches all-or-nothing or
keep-running, merged and serialised updates, batch updates and deletes, upserts (also concurrent ones) and sub-table
rows by row id. The same semantics the SDK conformance suite pins through the wire, once, without a dialect."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.core.corp import NOTE, REVIEW, STOCK, CorpCoreMain
from zida.clock import now_ms
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, ZidaError
from zida.core.records import actions as records
from zida.core.records import queries
from zida.core.records.filters import And, Condition, Page, RecordQuery
from zida.core.records.history import list_operation_logs
from zida.core.workflow import actions as workflow

pytestmark = pytest.mark.anyio


class Corp(CorpCoreMain):
    """corpCoreMain with searches and operation logs of its stock records."""

    async def ids(self, sku_part: str, user: str = "adm") -> list[str]:
        """Ids of the stock records whose SKU contains ``sku_part`` that ``user`` may read."""
        query = RecordQuery(filter=Condition("textField_sku", "like", sku_part), page=Page(1, 100))
        _, found = await queries.search_form_instance_ids(
            self.db, await self.actor(user), await self.form(STOCK), query
        )
        return found

    async def logs(self, instance_id: str, form_uuid: str = STOCK) -> list[tuple[str, dict[str, Any]]]:
        """(operation, changes) of a record's operation log, oldest first."""
        logs = await list_operation_logs(self.db, await self.actor("adm"), await self.form(form_uuid), [instance_id])
        return [(log.operation, log.changes) for log in logs.get(instance_id, [])]


def marker() -> str:
    """An SKU part no other test uses."""
    return "SKU-" + secrets.token_hex(5)


async def stock(corp: Corp, m: str, n: int, user: str = "adm", **values: Any) -> list[str]:
    result = await records.save_form_instances(
        corp.db, await corp.actor(user), STOCK, [{"textField_sku": f"{m}-{i}", **values} for i in range(n)]
    )
    assert not result.failures
    return result.ids


# ------------------------------------------------------------------------------------------------- saving


async def test_a_saved_record_keeps_its_values_and_its_originator(corp: Corp) -> None:
    m = marker()
    li = await corp.actor("li")
    values = {
        "textField_sku": m,
        "numberField_qty": "12",
        "selectField_state": "在库",
        "checkboxField_tags": ["易碎", "冷藏"],
        "employeeField_keeper": ["wang"],
        "dateField_in": 1_700_000_000_000,
        "tableField_moves": [{"textField_where": "A1", "numberField_delta": 5}],
    }
    saved = await records.save_form_instance(corp.db, li, STOCK, values)
    assert saved.instance_id.startswith("FINST-")
    assert (saved.originator_user_id, saved.modifier_user_id) == ("li", "li")
    data = await corp.data(saved.instance_id)
    assert data["numberField_qty"] == 12 and data["checkboxField_tags"] == ["易碎", "冷藏"]
    assert data["employeeField_keeper"] == ["wang"] and data["dateField_in"] == 1_700_000_000_000
    (row,) = data["tableField_moves"]
    assert (row["textField_where"], row["numberField_delta"]) == ("A1", 5) and row["__rowId"]
    assert [op for op, _ in await corp.logs(saved.instance_id)] == ["CREATE"]


async def test_a_batch_saves_every_item_in_order(corp: Corp) -> None:
    m = marker()
    result = await records.save_form_instances(
        corp.db, await corp.actor("adm"), STOCK, [{"textField_sku": f"{m}-{i}", "numberField_qty": i} for i in range(4)]
    )
    assert result.failures == [] and len(set(result.ids)) == 4
    assert [(await corp.data(i))["textField_sku"] for i in result.ids] == [f"{m}-{i}" for i in range(4)]
    assert sorted(await corp.ids(m)) == sorted(result.ids)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"numberField_qty": "many"}, "form_data.expect_number"),
        ({"textField_ghost": "x"}, "form_data.unknown_field"),
        ({"employeeField_keeper": ["nobody"]}, "form_data.unknown_user"),
        ({"textField_sku": ""}, "form_data.required"),
    ],
    ids=["not-a-number", "unknown-field", "unknown-user", "required-missing"],
)
async def test_one_bad_item_fails_the_whole_batch_and_names_its_index(
    corp: Corp, bad: dict[str, Any], reason: str
) -> None:
    m = marker()
    items: list[Any] = [{"textField_sku": f"{m}-{i}"} for i in range(4)]
    items[2] = {**items[2], **bad}
    with pytest.raises(InvalidArgument) as err:
        await records.save_form_instances(corp.db, await corp.actor("adm"), STOCK, items)
    assert err.value.reason == reason and err.value.message.startswith("[2]: ")
    assert await corp.ids(m) == []


async def test_an_item_the_caller_could_not_decode_fails_the_batch_as_its_own_error(corp: Corp) -> None:
    m = marker()
    undecodable = InvalidArgument("not JSON", reason="request.malformed_json")
    with pytest.raises(InvalidArgument) as err:
        await records.save_form_instances(corp.db, await corp.actor("adm"), STOCK, [{"textField_sku": m}, undecodable])
    assert (err.value.reason, err.value.message) == ("request.malformed_json", "[1]: not JSON")
    assert await corp.ids(m) == []


async def test_keep_running_saves_the_good_items_and_lists_the_bad_ones(corp: Corp) -> None:
    m = marker()
    items: list[Any] = [
        {"textField_sku": f"{m}-0"},
        {"textField_sku": f"{m}-1", "numberField_qty": "many"},
        {"textField_sku": f"{m}-2"},
        InvalidArgument("not JSON", reason="request.malformed_json"),
        {"textField_sku": f"{m}-4", "employeeField_keeper": ["nobody"]},
        {"numberField_qty": 5},
        {"textField_sku": f"{m}-6"},
    ]
    result = await records.save_form_instances(corp.db, await corp.actor("adm"), STOCK, items, keep_running=True)
    assert [(await corp.data(i))["textField_sku"] for i in result.ids] == [f"{m}-0", f"{m}-2", f"{m}-6"]
    assert [(f.index, f.error.reason) for f in result.failures] == [
        (1, "form_data.expect_number"),
        (3, "request.malformed_json"),
        (4, "form_data.unknown_user"),
        (5, "form_data.required"),
    ]
    assert "nobody" in result.failures[2].error.message
    assert sorted(await corp.ids(m)) == sorted(result.ids)


async def test_keep_running_with_nothing_valid_saves_nothing(corp: Corp) -> None:
    m = marker()
    result = await records.save_form_instances(
        corp.db, await corp.actor("adm"), STOCK, [{"textField_sku": m, "numberField_qty": "x"}] * 2, keep_running=True
    )
    assert result.ids == [] and [f.index for f in result.failures] == [0, 1]
    assert await corp.ids(m) == []


async def test_a_process_form_takes_no_plain_saves(corp: Corp) -> None:
    adm = await corp.actor("adm")
    with pytest.raises(Conflict) as one:
        await records.save_form_instance(corp.db, adm, REVIEW, {"textField_title": "x"})
    with pytest.raises(Conflict) as many:
        await records.save_form_instances(corp.db, adm, REVIEW, [{"textField_title": "x"}], keep_running=True)
    assert one.value.reason == many.value.reason == "form.process_form_cannot_save"


async def test_a_form_of_another_app_does_not_exist_for_the_caller(corp: Corp) -> None:
    with pytest.raises(NotFound) as err:
        await records.save_form_instance(
            corp.db, await corp.actor("zhou", "APP_CORE_OTHER"), STOCK, {"textField_sku": "x"}
        )
    assert err.value.reason == "form.not_found"


# ------------------------------------------------------------------------------------------------ updates


async def test_an_update_changes_only_the_fields_it_names(corp: Corp) -> None:
    m = marker()
    (iid,) = await stock(
        corp,
        m,
        1,
        numberField_qty=1,
        checkboxField_tags=["易碎"],
        tableField_moves=[{"textField_where": "A"}, {"textField_where": "B"}],
    )
    adm = await corp.actor("adm")
    updated = await records.update_form_instance(
        corp.db, adm, iid, {"numberField_qty": 2, "tableField_moves": [{"textField_where": "C"}]}
    )
    assert updated.data_version == 2
    data = await corp.data(iid)
    assert (data["textField_sku"], data["numberField_qty"], data["checkboxField_tags"]) == (f"{m}-0", 2, ["易碎"])
    assert [r["textField_where"] for r in data["tableField_moves"]] == ["C"]  # a sub-table is replaced whole
    await records.update_form_instance(corp.db, adm, iid, {"checkboxField_tags": None})  # null clears
    assert "checkboxField_tags" not in await corp.data(iid)
    (_, created), (_, first), (_, cleared) = await corp.logs(iid)
    assert first == {
        "numberField_qty": {"old": 1, "new": 2},
        "tableField_moves": {"old": created["tableField_moves"]["new"], "new": data["tableField_moves"]},
    }
    assert cleared == {"checkboxField_tags": {"old": ["易碎"], "new": None}}


async def test_an_invalid_update_changes_nothing(corp: Corp) -> None:
    m = marker()
    (iid,) = await stock(corp, m, 1, numberField_qty=1)
    adm = await corp.actor("adm")
    for values, error in (
        ({"textField_sku": "changed", "numberField_qty": "abc"}, InvalidArgument),
        ({"textField_sku": ""}, InvalidArgument),  # required: cannot be cleared
        ({"employeeField_keeper": ["nobody"]}, InvalidArgument),
        ({"textField_ghost": 1}, InvalidArgument),
        ({}, InvalidArgument),
        ("not an object", InvalidArgument),
    ):
        with pytest.raises(error):
            await records.update_form_instance(corp.db, adm, iid, values)
    assert await corp.data(iid) == {"textField_sku": f"{m}-0", "numberField_qty": 1}
    assert [op for op, _ in await corp.logs(iid)] == ["CREATE"]


async def test_an_unknown_or_foreign_record_cannot_be_updated_or_deleted(corp: Corp) -> None:
    adm = await corp.actor("adm")
    for missing in ("FINST-NOPE", "FINST-" + secrets.token_hex(8)):
        with pytest.raises(NotFound) as err:
            await records.update_form_instance(corp.db, adm, missing, {"numberField_qty": 1})
        assert err.value.reason == "record.not_found"
        with pytest.raises(NotFound):
            await records.delete_form_instance(corp.db, adm, missing)
    with pytest.raises(InvalidArgument):
        await records.update_form_instance(corp.db, adm, "", {"numberField_qty": 1})
    # A record of another app of the corp does not exist for this app's admin.
    (iid,) = await stock(corp, marker(), 1)
    other_admin = await corp.actor("zhou", "APP_CORE_OTHER")
    with pytest.raises(NotFound):
        await records.update_form_instance(corp.db, other_admin, iid, {"numberField_qty": 1})
    with pytest.raises(NotFound):
        await records.delete_form_instance(corp.db, other_admin, iid)
    assert "numberField_qty" not in await corp.data(iid)


async def test_members_change_and_delete_only_their_own_records(corp: Corp) -> None:
    m = marker()
    (mine,) = await stock(corp, m + "-li", 1, user="li")
    (theirs,) = await stock(corp, m + "-adm", 1)
    li = await corp.actor("li")
    await records.update_form_instance(corp.db, li, mine, {"numberField_qty": 5})
    with pytest.raises(PermissionDenied):
        await records.update_form_instance(corp.db, li, theirs, {"numberField_qty": 5})
    with pytest.raises(PermissionDenied):
        await records.delete_form_instance(corp.db, li, theirs)
    assert "numberField_qty" not in await corp.data(theirs)
    await records.update_form_instance(corp.db, await corp.actor("adm"), mine, {"numberField_qty": 6})  # the admin
    assert (await corp.data(mine))["numberField_qty"] == 6
    await records.delete_form_instance(corp.db, li, mine)
    assert await corp.ids(m) == [theirs]


async def test_concurrent_updates_of_different_fields_all_survive(corp: Corp) -> None:
    (iid,) = await stock(corp, marker(), 1)
    adm = await corp.actor("adm")
    updates = [
        {"numberField_qty": 42},
        {"selectField_state": "出库"},
        {"dateField_in": 1_700_000_000_000},
        {"checkboxField_tags": ["冷藏"]},
    ]
    await asyncio.gather(*(records.update_form_instance(corp.db, adm, iid, u) for u in updates * 2))
    data = await corp.data(iid)
    assert (data["numberField_qty"], data["selectField_state"]) == (42, "出库")
    assert (data["dateField_in"], data["checkboxField_tags"]) == (1_700_000_000_000, ["冷藏"])
    assert [op for op, _ in await corp.logs(iid)] == ["CREATE"] + ["UPDATE"] * 8


async def test_concurrent_updates_of_one_field_are_last_write_wins_and_lose_nothing_else(corp: Corp) -> None:
    (iid,) = await stock(corp, marker(), 1, numberField_qty=0)
    adm = await corp.actor("adm")
    rounds = 6
    for r in range(rounds):
        await asyncio.gather(
            records.update_form_instance(corp.db, adm, iid, {"numberField_qty": 1000 + r, "dateField_in": r}),
            records.update_form_instance(corp.db, adm, iid, {"numberField_qty": 2000 + r, "selectField_state": "出库"}),
        )
        data = await corp.data(iid)
        assert data["numberField_qty"] in (1000 + r, 2000 + r)
        assert (data["dateField_in"], data["selectField_state"]) == (r, "出库")
    qty = [c["numberField_qty"] for op, c in await corp.logs(iid) if op == "UPDATE" and "numberField_qty" in c]
    assert len(qty) == 2 * rounds  # every update was applied and logged
    for r in range(rounds):
        assert {c["new"] for c in qty[2 * r : 2 * r + 2]} == {1000 + r, 2000 + r}
    # Serialised: each change starts from the value the previous one left; the last one is what stays.
    assert qty[0]["old"] == 0
    assert all(later["old"] == earlier["new"] for earlier, later in itertools.pairwise(qty))
    assert (await corp.data(iid))["numberField_qty"] == qty[-1]["new"]


async def test_a_single_record_update_refuses_a_process_record_it_cannot_tell_the_approval_of(corp: Corp) -> None:
    li = await corp.actor("li")
    inst = await workflow.start_instance(corp.db, li, REVIEW, {"textField_title": "不经审批修改"})
    with pytest.raises(Conflict) as err:
        await records.update_form_instance(corp.db, li, inst.instance_id, {"textField_title": "改了"})
    assert err.value.reason == "record.process_record"
    assert (await corp.data(inst.instance_id))["textField_title"] == "不经审批修改"


# ------------------------------------------------------------------------------------------ batch updates


async def test_a_change_that_waited_for_another_is_later_than_it(corp: Corp) -> None:
    """A batch update, a batch delete and an upsert take their time once the rows are theirs: one that waited for
    another transaction's commit was stamped with the moment it started waiting, so the record's modifiedTimeGMT
    went back (a client syncing by it missed the last change) and the operation log was out of time order."""
    m = marker()
    ids = await stock(corp, m, 2, numberField_qty=1)
    adm = await corp.actor("adm")
    form = await corp.form(STOCK)

    async def waited_for(change: Callable[[], Awaitable[Any]]) -> int:
        """Run ``change`` while another transaction holds the record; the moment that one let go of it."""
        async with corp.db.transaction() as tx:
            await tx.execute(f"SELECT id FROM form_instance WHERE instance_id = :i{tx.sql.for_update}", {"i": ids[0]})
            await tx.execute("UPDATE form_instance SET modified_at = modified_at WHERE instance_id = :i", {"i": ids[0]})
            waiting = asyncio.ensure_future(change())
            await asyncio.sleep(0.05)
            released = now_ms()
        await waiting
        return released

    async def modified() -> int:
        inst, _ = await queries.get_form_instance(corp.db, adm, ids[0])
        return inst.modified_at

    changes: list[Callable[[], Awaitable[Any]]] = [
        lambda: records.update_form_instances(corp.db, adm, form, [(ids[0], {"numberField_qty": 2})]),
        lambda: records.upsert_form_instance(
            corp.db, adm, form, Condition("textField_sku", "eq", f"{m}-0"), {"numberField_qty": 3}
        ),
    ]
    for change in changes:
        released = await waited_for(change)
        assert await modified() >= released
    logged = [log.created_at for log in (await list_operation_logs(corp.db, adm, form, [ids[0]]))[ids[0]]]
    assert logged == sorted(logged) and len(logged) == 3, logged
    released = await waited_for(lambda: records.delete_form_instances(corp.db, adm, form, [ids[0]]))
    logged = [log.created_at for log in (await list_operation_logs(corp.db, adm, form, [ids[0]]))[ids[0]]]
    assert logged[-1] >= released and len(logged) == 4, logged


async def test_a_batch_update_changes_every_record_or_none(corp: Corp) -> None:
    m = marker()
    ids = await stock(corp, m, 4, numberField_qty=1)
    (note,) = (await records.save_form_instances(corp.db, await corp.actor("adm"), NOTE, [{"textField_note": m}])).ids
    adm = await corp.actor("adm")
    form = await corp.form(STOCK)
    before = {i: await corp.data(i) for i in ids}
    bad_batches: list[tuple[list[tuple[str, Any]], type[ZidaError], str]] = [
        ([*((i, {"numberField_qty": 9}) for i in ids), ("FINST-NOPE", {"numberField_qty": 9})], NotFound, "FINST-NOPE"),
        (
            [*((i, {"numberField_qty": 9}) for i in ids[:3]), (ids[3], {"numberField_qty": "nine"})],
            InvalidArgument,
            ids[3],
        ),
        ([(ids[0], {"numberField_qty": 9}), (ids[1], {"employeeField_keeper": ["nobody"]})], InvalidArgument, ids[1]),
        ([(ids[0], {"numberField_qty": 9}), (note, {"numberField_qty": 9})], NotFound, note),  # another form's
    ]
    for updates, error, named in bad_batches:
        with pytest.raises(error) as err:
            await records.update_form_instances(corp.db, adm, form, updates)
        assert named in err.value.message
    with pytest.raises(PermissionDenied):  # li originated none of them
        await records.update_form_instances(corp.db, await corp.actor("li"), form, [(ids[0], {"numberField_qty": 9})])
    assert {i: await corp.data(i) for i in ids} == before
    assert await records.update_form_instances(corp.db, adm, form, [(i, {"numberField_qty": 7}) for i in ids]) == ids
    assert {(await corp.data(i))["numberField_qty"] for i in ids} == {7}


async def test_a_conditional_change_writes_only_what_its_filter_still_matches_once_locked(corp: Corp) -> None:
    """WeDa's update/delete with a filter find the records, then change them: a record changed meanwhile so that the
    filter no longer matches it is left alone (two "take the open one" updates at once: one of them takes it)."""
    ids = await stock(corp, marker(), 3, numberField_qty=0)
    adm, form = await corp.actor("adm"), await corp.form(STOCK)
    still_open = Condition("numberField_qty", "eq", 0)
    taken = await records.update_form_instances(corp.db, adm, form, [(ids[0], {"numberField_qty": 1})])
    assert taken == [ids[0]]
    # A second taker found all three while they were open: it changes the two still open, not the one taken.
    second = [(i, {"numberField_qty": 2}) for i in ids]
    assert await records.update_form_instances(corp.db, adm, form, second, still_matching=still_open) == ids[1:]
    assert [(await corp.data(i))["numberField_qty"] for i in ids] == [1, 2, 2]
    assert await records.delete_form_instances(corp.db, adm, form, ids, still_matching=still_open) == []
    gone = await records.delete_form_instances(
        corp.db, adm, form, ids, still_matching=Condition("numberField_qty", "eq", 2)
    )
    assert gone == ids[1:] and await corp.data(ids[0]) is not None


async def test_concurrent_batch_updates_of_the_same_records_in_opposite_orders_both_apply(corp: Corp) -> None:
    ids = await stock(corp, marker(), 6, numberField_qty=0)
    adm, form = await corp.actor("adm"), await corp.form(STOCK)
    for r in range(4):
        forward = [(i, {"numberField_qty": r, "dateField_in": r}) for i in ids]
        backward = [(i, {"numberField_qty": 100 + r, "selectField_state": "出库"}) for i in reversed(ids)]
        assert await asyncio.gather(
            records.update_form_instances(corp.db, adm, form, forward),
            records.update_form_instances(corp.db, adm, form, backward),
        ) == [ids, ids[::-1]]
        after = [await corp.data(i) for i in ids]
        assert len({d["numberField_qty"] for d in after}) == 1  # one batch wholly after the other
        assert {(d["dateField_in"], d["selectField_state"]) for d in after} == {(r, "出库")}


async def test_a_batch_update_naming_a_record_twice_is_refused(corp: Corp) -> None:
    ids = await stock(corp, marker(), 2, numberField_qty=1)
    with pytest.raises(InvalidArgument):
        await records.update_form_instances(
            corp.db,
            await corp.actor("adm"),
            await corp.form(STOCK),
            [(ids[0], {"numberField_qty": 2}), (ids[1], {"numberField_qty": 2}), (ids[0], {"numberField_qty": 3})],
        )
    assert {(await corp.data(i))["numberField_qty"] for i in ids} == {1}


async def test_a_batch_update_may_skip_empty_values(corp: Corp) -> None:
    (iid,) = await stock(corp, marker(), 1, numberField_qty=1)
    await records.update_form_instances(
        corp.db,
        await corp.actor("adm"),
        await corp.form(STOCK),
        [(iid, {"numberField_qty": "", "selectField_state": "出库"})],
        ignore_empty=True,
    )
    data = await corp.data(iid)
    assert (data["numberField_qty"], data["selectField_state"]) == (1, "出库")


async def test_a_batch_update_without_the_approvals_refuses_process_records(corp: Corp) -> None:
    inst = await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "批量"})
    with pytest.raises(Conflict) as err:
        await records.update_form_instances(
            corp.db, await corp.actor("adm"), await corp.form(REVIEW), [(inst.instance_id, {"numberField_amount": 1})]
        )
    assert err.value.reason == "record.process_record"
    assert "numberField_amount" not in await corp.data(inst.instance_id)


# ------------------------------------------------------------------------------------------------ deletes


async def test_a_deleted_record_is_gone_and_its_log_says_so(corp: Corp) -> None:
    (iid,) = await stock(corp, marker(), 1)
    adm = await corp.actor("adm")
    await records.delete_form_instance(corp.db, adm, iid)
    with pytest.raises(NotFound):
        await queries.get_form_instance(corp.db, adm, iid)
    with pytest.raises(NotFound):
        await records.delete_form_instance(corp.db, adm, iid)
    assert [op for op, _ in await corp.logs(iid)] == ["CREATE", "DELETE"]


async def test_a_process_record_is_not_deleted_as_a_plain_record(corp: Corp) -> None:
    inst = await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "删除"})
    with pytest.raises(Conflict) as err:
        await records.delete_form_instance(corp.db, await corp.actor("adm"), inst.instance_id)
    assert err.value.reason == "record.process_record"
    assert (await corp.data(inst.instance_id))["textField_title"] == "删除"


async def test_a_batch_delete_removes_every_record_or_none(corp: Corp) -> None:
    m = marker()
    ids = await stock(corp, m, 3)
    (note,) = (await records.save_form_instances(corp.db, await corp.actor("adm"), NOTE, [{"textField_note": m}])).ids
    adm = await corp.actor("adm")
    form = await corp.form(STOCK)
    with pytest.raises(NotFound) as err:
        await records.delete_form_instances(corp.db, adm, form, [*ids, "FINST-NOPE"])
    assert "FINST-NOPE" in err.value.message
    with pytest.raises(NotFound):
        await records.delete_form_instances(corp.db, adm, form, [ids[0], note])
    with pytest.raises(PermissionDenied):
        await records.delete_form_instances(corp.db, await corp.actor("li"), form, ids)
    assert sorted(await corp.ids(m)) == sorted(ids)
    assert await records.delete_form_instances(corp.db, adm, form, [ids[0], ids[1], ids[0]]) == ids[:2]
    assert await corp.ids(m) == [ids[2]]
    assert [op for op, _ in await corp.logs(ids[0])] == ["CREATE", "DELETE"]  # deleted once, logged once


async def test_a_batch_delete_refuses_a_process_form(corp: Corp) -> None:
    inst = await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "批量删除"})
    with pytest.raises(Conflict) as err:
        await records.delete_form_instances(
            corp.db, await corp.actor("adm"), await corp.form(REVIEW), [inst.instance_id]
        )
    assert err.value.reason == "form.batch_delete_process_data"
    assert (await corp.data(inst.instance_id))["textField_title"] == "批量删除"


# ------------------------------------------------------------------------------------------------- upsert


def sku_is(sku: str) -> Condition:
    return Condition("textField_sku", "eq", sku)


async def test_an_upsert_creates_when_nothing_matches_and_updates_the_one_match(corp: Corp) -> None:
    m = marker()
    adm = await corp.actor("adm")
    form = await corp.form(STOCK)
    (created,) = await records.upsert_form_instance(
        corp.db, adm, form, sku_is(m), {"textField_sku": m, "numberField_qty": 1}
    )
    (updated,) = await records.upsert_form_instance(corp.db, adm, form, sku_is(m), {"numberField_qty": 2})
    assert created == updated and await corp.ids(m) == [created]
    assert (await corp.data(created))["numberField_qty"] == 2
    assert [op for op, _ in await corp.logs(created)] == ["CREATE", "UPDATE"]


async def test_an_upsert_matching_two_records_is_ambiguous_and_changes_nothing(corp: Corp) -> None:
    m = marker()
    adm = await corp.actor("adm")
    twins = (await records.save_form_instances(corp.db, adm, STOCK, [{"textField_sku": m}] * 2)).ids
    with pytest.raises(Conflict) as err:
        await records.upsert_form_instance(corp.db, adm, await corp.form(STOCK), sku_is(m), {"numberField_qty": 3})
    assert err.value.reason == "record.ambiguous_upsert"
    assert sorted(await corp.ids(m)) == sorted(twins)
    assert ["numberField_qty" in await corp.data(i) for i in twins] == [False, False]


async def test_an_upsert_needs_a_condition_and_a_plain_form(corp: Corp) -> None:
    m = marker()
    adm = await corp.actor("adm")
    with pytest.raises(InvalidArgument):
        await records.upsert_form_instance(corp.db, adm, await corp.form(STOCK), None, {"textField_sku": m})
    with pytest.raises(Conflict) as err:
        await records.upsert_form_instance(
            corp.db, adm, await corp.form(REVIEW), Condition("textField_title", "eq", m), {"textField_title": m}
        )
    assert err.value.reason == "form.process_form_cannot_save"
    assert await corp.ids(m) == []


async def test_an_upsert_matches_only_records_the_member_may_change(corp: Corp) -> None:
    m = marker()
    (admins,) = await stock(corp, m, 1, numberField_qty=1)
    li = await corp.actor("li")
    (own,) = await records.upsert_form_instance(
        corp.db, li, await corp.form(STOCK), sku_is(f"{m}-0"), {"textField_sku": f"{m}-0", "numberField_qty": 2}
    )
    assert own != admins
    assert (await corp.data(admins))["numberField_qty"] == 1
    assert sorted(await corp.ids(m)) == sorted([admins, own])


async def test_concurrent_upserts_on_one_form_never_create_two_records(corp: Corp) -> None:
    adm = await corp.actor("adm")
    form = await corp.form(STOCK)
    for _ in range(3):
        m = marker()
        # The same condition written several ways (order of the parts) is still one condition.
        spellings = [
            And((sku_is(m), Condition("selectField_state", "eq", "在库"))),
            And((Condition("selectField_state", "eq", "在库"), sku_is(m))),
        ]
        results = await asyncio.gather(
            *(
                records.upsert_form_instance(
                    corp.db,
                    adm,
                    form,
                    spellings[n % 2],
                    {"textField_sku": m, "selectField_state": "在库", "numberField_qty": n},
                )
                for n in range(12)
            )
        )
        assert all(len(r) == 1 for r in results) and len({r[0] for r in results}) == 1
        (iid,) = await corp.ids(m)
        assert iid == results[0][0]
        assert sorted(op for op, _ in await corp.logs(iid)) == ["CREATE"] + ["UPDATE"] * 11
        assert (await corp.data(iid))["numberField_qty"] in range(12)


# -------------------------------------------------------------------------------------------- sub-tables


async def test_sub_table_rows_change_by_row_id_and_keep_the_cells_not_named(corp: Corp) -> None:
    (iid,) = await stock(
        corp, marker(), 1, tableField_moves=[{"textField_where": f"B{i}", "numberField_delta": i} for i in range(3)]
    )
    rows = (await corp.data(iid))["tableField_moves"]
    await records.update_sub_table_rows(
        corp.db,
        await corp.actor("adm"),
        iid,
        "tableField_moves",
        [{"rowId": rows[1]["__rowId"], "numberField_delta": 555}],
    )
    after = (await corp.data(iid))["tableField_moves"]
    assert after == [rows[0], {**rows[1], "numberField_delta": 555}, rows[2]]
    op, changes = (await corp.logs(iid))[-1]
    assert op == "UPDATE" and changes["tableField_moves"] == {"old": rows, "new": after}


async def test_an_unknown_row_id_fails_the_whole_sub_table_update(corp: Corp) -> None:
    adm = await corp.actor("adm")
    (iid, other) = await stock(corp, marker(), 2, tableField_moves=[{"textField_where": "X", "numberField_delta": 1}])
    rows = (await corp.data(iid))["tableField_moves"]
    foreign = (await corp.data(other))["tableField_moves"][0]["__rowId"]
    for update in (
        [{"rowId": "nope", "numberField_delta": 2}],
        [{"rowId": foreign, "numberField_delta": 2}],  # a row of another record
        [{"rowId": rows[0]["__rowId"], "numberField_delta": 2}, {"rowId": "nope", "numberField_delta": 3}],
    ):
        with pytest.raises(NotFound) as err:
            await records.update_sub_table_rows(corp.db, adm, iid, "tableField_moves", update)
        assert err.value.reason == "record.row_not_found"
    for bad_rows in ([], {"rowId": rows[0]["__rowId"]}, ["row"]):
        with pytest.raises(InvalidArgument):
            await records.update_sub_table_rows(corp.db, adm, iid, "tableField_moves", bad_rows)
    for unnamed in ({"numberField_delta": 2}, {"rowId": "", "numberField_delta": 2}):  # no rowId: not "no row None"
        with pytest.raises(InvalidArgument, match=r"\[0\]: a row to update names its rowId") as missing:
            await records.update_sub_table_rows(corp.db, adm, iid, "tableField_moves", [unnamed])
        assert missing.value.reason == "argument.missing"
    with pytest.raises(InvalidArgument):  # not a sub-table
        await records.update_sub_table_rows(corp.db, adm, iid, "numberField_qty", [{"rowId": rows[0]["__rowId"]}])
    with pytest.raises(PermissionDenied):
        await records.update_sub_table_rows(
            corp.db,
            await corp.actor("li"),
            iid,
            "tableField_moves",
            [{"rowId": rows[0]["__rowId"], "numberField_delta": 9}],
        )
    assert (await corp.data(iid))["tableField_moves"] == rows
    assert [op for op, _ in await corp.logs(iid)] == ["CREATE"]
