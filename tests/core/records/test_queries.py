"""Reading records at the core level (``zida.core.records.queries``): by id, by a list of ids, searches and their
visibility (app admins all, members their own, and on a process form the records whose approval they take part in),
page bounds, sub-table pages and people-field values."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.core.corp import NOTE, RECORDS, REVIEW, STOCK, CorpCoreMain
from zida.core.access.members import app_actor
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied
from zida.core.records import actions as records
from zida.core.records import queries
from zida.core.records.filters import Condition, Page, RecordQuery, Sort
from zida.core.workflow import actions as workflow
from zida.db import Database

pytestmark = pytest.mark.anyio


class Corp(CorpCoreMain):
    """corpCoreMain with stock records, review approvals and searches that check each other."""

    async def save(self, user: str, m: str, n: int = 1, **values: Any) -> list[str]:
        result = await records.save_form_instances(
            self.db, await self.actor(user), STOCK, [{"textField_sku": f"{m}-{i}", **values} for i in range(n)]
        )
        return result.ids

    async def start(self, user: str, title: str) -> str:
        return (
            await workflow.start_instance(self.db, await self.actor(user), REVIEW, {"textField_title": title})
        ).instance_id

    async def found(self, user: str, form_uuid: str, condition: Condition) -> tuple[int | None, list[str]]:
        """(total, ids) of a search as ``user``, checking the two search functions agree."""
        actor, form = await self.actor(user), await self.form(form_uuid)
        query = RecordQuery(filter=condition, page=Page(1, 100))
        result = await queries.search_form_instances(self.db, actor, form, query)
        total, ids = await queries.search_form_instance_ids(self.db, actor, form, query)
        assert (result.total, [i.instance_id for i in result.items]) == (total, ids)
        return total, ids


def marker() -> str:
    return "Q-" + secrets.token_hex(5)


def sku_like(m: str) -> Condition:
    return Condition("textField_sku", "like", m)


def title_is(m: str) -> Condition:
    return Condition("textField_title", "eq", m)


# ------------------------------------------------------------------------------------------------ by id


async def test_a_record_is_read_by_its_originator_and_the_app_admins_only(corp: Corp) -> None:
    (iid,) = await corp.save("li", marker(), numberField_qty=3)
    inst, form = await queries.get_form_instance(corp.db, await corp.actor("li"), iid)
    assert (inst.instance_id, inst.originator_user_id, inst.data["numberField_qty"]) == (iid, "li", 3)
    assert (form.form_uuid, form.version) == (STOCK, inst.form_version)
    assert (await queries.readable_record(corp.db, await corp.actor("adm"), iid)).instance_id == iid
    with pytest.raises(PermissionDenied) as err:
        await queries.get_form_instance(corp.db, await corp.actor("liu"), iid)
    assert err.value.reason == "permission.denied"


async def test_unknown_foreign_and_missing_ids_are_not_found(corp: Corp, db: Database) -> None:
    adm = await corp.actor("adm")
    with pytest.raises(NotFound) as err:
        await queries.get_form_instance(corp.db, adm, "FINST-NOPE")
    assert err.value.reason == "record.not_found"
    with pytest.raises(InvalidArgument):
        await queries.get_form_instance(corp.db, adm, "")
    (iid,) = await corp.save("adm", marker())
    # Another app's admin, and another corp's admin: the record does not exist for them.
    with pytest.raises(NotFound):
        await queries.get_form_instance(corp.db, await corp.actor("zhou", "APP_CORE_OTHER"), iid)
    other = await db.fetchrow(
        "SELECT a.id, a.corp_pk FROM app a JOIN corp c ON c.id = a.corp_pk WHERE c.corp_id = 'corpCoreOther'"
    )
    assert other is not None
    with pytest.raises(NotFound):
        await queries.get_form_instance(corp.db, await app_actor(db, other["corp_pk"], other["id"], "adm"), iid)
    with pytest.raises(NotFound):
        await queries.instance_app_pk(corp.db, other["corp_pk"], iid)
    assert await queries.instance_app_pk(corp.db, corp.corp_pk, iid) == corp.app_pks[RECORDS]


async def test_a_batch_get_keeps_the_order_asked_and_leaves_out_what_the_caller_may_not_read(corp: Corp) -> None:
    m = marker()
    first, second = await corp.save("li", m, 2)
    (hidden,) = await corp.save("adm", m + "-adm")
    (note,) = (await records.save_form_instances(corp.db, await corp.actor("li"), NOTE, [{"textField_note": m}])).ids
    asked = [second, "FINST-NOPE", hidden, note, first, second]
    li_got = await queries.get_form_instances(corp.db, await corp.actor("li"), await corp.form(STOCK), asked)
    assert [i.instance_id for i in li_got] == [second, first]
    adm_got = await queries.get_form_instances(corp.db, await corp.actor("adm"), await corp.form(STOCK), asked)
    assert [i.instance_id for i in adm_got] == [second, hidden, first]


# --------------------------------------------------------------------------------------- search visibility


async def test_members_find_their_own_records_and_admins_find_all(corp: Corp) -> None:
    m = marker()
    li_ids = await corp.save("li", m + "-li", 2)
    liu_ids = await corp.save("liu", m + "-liu", 1)
    adm_ids = await corp.save("adm", m + "-adm", 1)
    total, ids = await corp.found("adm", STOCK, sku_like(m))
    assert (total, sorted(ids)) == (4, sorted(li_ids + liu_ids + adm_ids))
    total, ids = await corp.found("li", STOCK, sku_like(m))
    assert (total, sorted(ids)) == (2, sorted(li_ids))
    assert await corp.found("liu", STOCK, sku_like(m)) == (1, liu_ids)
    # Asking for someone else's records finds nothing, not an error.
    assert await corp.found("li", STOCK, Condition("originator", "eq", "adm")) == (0, [])


async def test_a_process_record_is_found_by_everyone_who_takes_part_in_its_approval(corp: Corp) -> None:
    m = marker()
    iid = await corp.start("li", m)

    async def who_finds() -> set[str]:
        users = ("adm", "li", "wang", "chen", "sun", "zhou", "liu")
        return {u for u in users if (await corp.found(u, REVIEW, title_is(m)))[1] == [iid]}

    async def who_reads() -> set[str]:
        readers = set()
        for u in ("adm", "li", "wang", "chen", "sun", "zhou", "liu"):
            got = await queries.get_form_instances(corp.db, await corp.actor(u), await corp.form(REVIEW), [iid])
            try:
                await queries.get_form_instance(corp.db, await corp.actor(u), iid)
                by_id = True
            except PermissionDenied:
                by_id = False
            assert by_id == (got != [])  # reading one and reading a list agree
            if by_id:
                readers.add(u)
        return readers

    assert await who_finds() == await who_reads() == {"adm", "li", "wang"}  # wang holds the running task
    await corp.approve(iid, "wang")
    assert await who_finds() == await who_reads() == {"adm", "li", "wang", "chen"}  # wang had a task
    # chen hands his task to liu: both are in the approval now.
    await workflow.redirect_task(corp.db, await corp.actor("chen"), iid, await corp.task_of(iid, "chen"), "liu")
    assert await who_finds() == await who_reads() == {"adm", "li", "wang", "chen", "liu"}
    await corp.approve(iid, "liu")  # the flow passes the CC node: sun is CC'd
    assert await who_finds() == await who_reads() == {"adm", "li", "wang", "chen", "liu", "sun"}


async def test_a_process_records_search_shows_members_only_their_own_and_those_they_approve(corp: Corp) -> None:
    m = marker()
    by_li = await corp.start("li", m)
    by_liu = await corp.start("liu", m)
    assert sorted((await corp.found("li", REVIEW, title_is(m)))[1]) == [by_li]
    assert sorted((await corp.found("liu", REVIEW, title_is(m)))[1]) == [by_liu]
    assert sorted((await corp.found("wang", REVIEW, title_is(m)))[1]) == sorted([by_li, by_liu])
    assert await corp.found("zhou", REVIEW, title_is(m)) == (0, [])


# ----------------------------------------------------------------------------------------- pages and order


@pytest.mark.parametrize("page", [Page(1, 0), Page(1, queries.MAX_PAGE_SIZE + 1), Page(0, 10), Page(-1, 10)], ids=str)
async def test_pages_out_of_bounds_are_refused(corp: Corp, page: Page) -> None:
    query = RecordQuery(filter=sku_like("x"), page=page)
    adm, form = await corp.actor("adm"), await corp.form(STOCK)
    with pytest.raises(InvalidArgument) as err:
        await queries.search_form_instances(corp.db, adm, form, query)
    assert err.value.reason == "argument.invalid_page"
    with pytest.raises(InvalidArgument):
        await queries.search_form_instance_ids(corp.db, adm, form, query)


async def test_pages_split_the_matches_in_order_and_the_total_counts_them_all(corp: Corp) -> None:
    m = marker()
    await corp.save("adm", m, 7, numberField_qty=1)
    adm, form = await corp.actor("adm"), await corp.form(STOCK)
    pages = []
    for number in (1, 2, 3):
        query = RecordQuery(filter=sku_like(m), sort=(Sort("textField_sku"),), page=Page(number, 3))
        result = await queries.search_form_instances(corp.db, adm, form, query)
        assert result.total == 7
        pages.append([i.data["textField_sku"] for i in result.items])
    assert pages == [[f"{m}-{i}" for i in range(3)], [f"{m}-{i}" for i in range(3, 6)], [f"{m}-6"]]
    widest = RecordQuery(filter=sku_like(m), page=Page(1, queries.MAX_PAGE_SIZE))
    assert len((await queries.search_form_instances(corp.db, adm, form, widest)).items) == 7


async def test_a_count_limit_stops_counting_an_indexed_search_but_not_its_page(corp: Corp) -> None:
    qty = secrets.randbelow(10**12) + 10**12  # a quantity only these records have (numberField_qty is searchable)
    await corp.save("adm", marker(), 7, numberField_qty=qty)
    adm, form = await corp.actor("adm"), await corp.form(STOCK)
    same = Condition("numberField_qty", "eq", qty)
    capped = RecordQuery(filter=same, page=Page(1, 5), count_limit=3)
    result = await queries.search_form_instances(corp.db, adm, form, capped)
    assert (result.total, len(result.items)) == (3, 5)  # at least 3; the page is whole
    assert await queries.search_form_instance_ids(corp.db, adm, form, capped) == (
        3,
        [i.instance_id for i in result.items],
    )
    for limit in (7, 100, None):
        query = RecordQuery(filter=same, page=Page(1, 5), count_limit=limit)
        assert (await queries.search_form_instances(corp.db, adm, form, query)).total == 7
    everything = RecordQuery(page=Page(1, 1), count_limit=3)  # the form's record count is known: exact
    assert ((await queries.search_form_instances(corp.db, adm, form, everything)).total or 0) >= 7


async def test_sub_table_rows_come_a_page_at_a_time(corp: Corp) -> None:
    (iid,) = await corp.save("li", marker(), tableField_moves=[{"textField_where": f"W{i}"} for i in range(12)])
    total, rows, form, table = await queries.list_sub_table_rows(
        corp.db, await corp.actor("li"), iid, "tableField_moves", Page(2, 5)
    )
    assert (total, form.form_uuid, table.field_id) == (12, STOCK, "tableField_moves")
    assert [r["textField_where"] for r in rows] == [f"W{i}" for i in range(5, 10)] and all(r["__rowId"] for r in rows)
    with pytest.raises(PermissionDenied):
        await queries.list_sub_table_rows(corp.db, await corp.actor("liu"), iid, "tableField_moves", Page(1, 5))
    with pytest.raises(InvalidArgument):
        await queries.list_sub_table_rows(corp.db, await corp.actor("li"), iid, "numberField_qty", Page(1, 5))


async def test_people_field_values_are_those_of_the_records_the_caller_may_read(corp: Corp) -> None:
    m = marker()
    await corp.save("li", m + "-li", employeeField_keeper=["wang"])
    await corp.save("adm", m + "-adm", employeeField_keeper=["chen", "zhao"])
    form = await corp.form(STOCK)
    query = RecordQuery(filter=sku_like(m), page=Page(1, 100))
    assert await queries.employee_field_values(corp.db, await corp.actor("adm"), form, query, []) == {
        "employeeField_keeper": ["chen", "wang", "zhao"]
    }
    assert await queries.employee_field_values(
        corp.db, await corp.actor("li"), form, query, ["employeeField_keeper"]
    ) == {"employeeField_keeper": ["wang"]}
    with pytest.raises(InvalidArgument):
        await queries.employee_field_values(corp.db, await corp.actor("adm"), form, query, ["numberField_qty"])


async def test_people_field_values_of_a_process_form_are_those_of_the_approvals_the_caller_takes_part_in(
    corp: Corp,
) -> None:
    m = marker()
    li = await corp.actor("li")
    for owner, user in (("zhao", "li"), ("qian", "liu")):
        await workflow.start_instance(
            corp.db, await corp.actor(user), REVIEW, {"textField_title": m, "employeeField_owner": [owner]}
        )
    form = await corp.form(REVIEW)
    query = RecordQuery(filter=title_is(m), page=Page(1, 100))
    assert await queries.employee_field_values(corp.db, await corp.actor("adm"), form, query, []) == {
        "employeeField_owner": ["qian", "zhao"]
    }
    assert await queries.employee_field_values(corp.db, li, form, query, []) == {"employeeField_owner": ["zhao"]}
    assert await queries.employee_field_values(corp.db, await corp.actor("wang"), form, query, []) == {
        "employeeField_owner": ["qian", "zhao"]
    }


async def test_a_members_next_page_holds_the_rows_at_its_offset_after_an_approval_step_showed_him_more(
    corp: Corp,
) -> None:
    m = marker()
    ids = [await corp.start("li", m) for _ in range(5)]  # newest first: ids[4] .. ids[0]
    for n in (0, 1, 2, 4):
        await corp.approve(ids[n], "wang")  # chen takes part from now on
    chen, form = await corp.actor("chen"), await corp.form(REVIEW)

    async def page(number: int) -> tuple[list[str], list[str]]:
        query = RecordQuery(filter=title_is(m), page=Page(number, 2))
        found = await queries.search_form_instances(corp.db, chen, form, query)
        _, only_ids = await queries.search_form_instance_ids(corp.db, chen, form, query)
        return [i.instance_id for i in found.items], only_ids

    assert await page(1) == ([ids[4], ids[2]], [ids[4], ids[2]])
    # ids[3] reaches chen: nothing of any record changed, but what chen may read did.
    await corp.approve(ids[3], "wang")
    records_page, ids_page = await page(2)
    assert [ids.index(i) for i in ids_page] == [2, 1]  # the rows at offset 2 of [4, 3, 2, 1, 0]
    assert [ids.index(i) for i in records_page] == [2, 1]
