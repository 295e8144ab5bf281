"""Paging and totals of record searches: keyset continuation of page N+1, the form counter, the count policy."""

from __future__ import annotations

import pytest

from tests.conftest import SECRET_KEY
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.apps.models import Form
from zida.core.apps.queries import get_form
from zida.core.principals import AppActor
from zida.core.records import store as repository
from zida.core.records.actions import (
    delete_form_instance,
    delete_form_instances,
    save_form_instance,
    save_form_instances,
)
from zida.core.records.filters import And, Condition, Page, RecordQuery, Sort
from zida.core.records.queries import search_form_instances
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio

BUNDLE = {
    "corp": {"corpId": "corpPaging", "name": "分页"},
    "departments": [{"deptId": 1, "name": "根"}],
    "users": [
        {"userId": "pg", "name": "分页管理员", "departments": [1]},
        {"userId": "px", "name": "乙", "departments": [1]},
    ],
    "apps": [
        {
            "appType": "APP_PAGING",
            "name": "分页",
            "systemToken": "ST-PAGING-0001",
            "admins": ["pg"],
            "forms": [
                {
                    "formUuid": "FORM-PAGING",
                    "title": "分页",
                    "fields": [
                        {"fieldId": "numberField_i", "component": "NumberField", "label": "I", "searchable": True},
                        {"fieldId": "textField_note", "component": "TextField", "label": "N"},
                    ],
                }
            ],
        }
    ],
}


@pytest.fixture
async def paging(db: Database) -> tuple[AppActor, Form]:
    await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(BUNDLE))
    row = await db.fetchrow(
        "SELECT a.id, a.corp_pk, u.id AS user_pk FROM app a JOIN org_user u ON u.corp_pk = a.corp_pk"
        " WHERE a.app_type = 'APP_PAGING' AND u.user_id = 'pg'"
    )
    assert row is not None
    actor = AppActor(row["corp_pk"], row["id"], "APP_PAGING", row["user_pk"], "pg", "分页管理员", True)
    form = await get_form(db, actor, "FORM-PAGING")
    if not await repository.count_form_instances(db, form.pk):
        await save_form_instances(db, actor, "FORM-PAGING", [{"numberField_i": i} for i in range(57)])
    return actor, form


async def _all_pages(db: Database, actor: AppActor, form: Form, size: int, **query: object) -> list[list[str]]:
    pages = []
    for number in range(1, 100):
        result = await search_form_instances(db, actor, form, RecordQuery(page=Page(number, size), **query))
        if not result.items:
            break
        pages.append([i.instance_id for i in result.items])
    return pages


async def _offset_listing(db: Database, form: Form, order: str) -> list[str]:
    rows = await db.fetch(f"SELECT instance_id FROM form_instance WHERE form_pk = {form.pk} ORDER BY {order}")
    return [r["instance_id"] for r in rows]


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ((), "created_at DESC, id DESC"),
        ((Sort("created_at"),), "created_at ASC, id ASC"),
        ((Sort("modified_at", descending=True),), "modified_at DESC, id DESC"),
    ],
)
async def test_reading_page_after_page_gives_exactly_the_offset_pages(
    db: Database, paging: tuple[AppActor, Form], sort: tuple[Sort, ...], order: str
) -> None:
    actor, form = paging
    expected = await _offset_listing(db, form, order)
    repository.PAGE_CURSORS._pages.clear()
    sequential = await _all_pages(db, actor, form, 10, sort=sort)  # pages 2… continue from the cursor
    assert [i for page in sequential for i in page] == expected
    assert [len(p) for p in sequential] == [10, 10, 10, 10, 10, 7]
    # A jump to a page whose predecessor is known from an earlier page: seek, then skip the pages between.
    repository.PAGE_CURSORS._pages.clear()
    await search_form_instances(db, actor, form, RecordQuery(sort=sort, page=Page(1, 10)))
    jumped = await search_form_instances(db, actor, form, RecordQuery(sort=sort, page=Page(4, 10)))
    assert [i.instance_id for i in jumped.items] == expected[30:40]
    assert jumped.total == len(expected)


async def test_after_a_change_pages_are_those_of_the_form_as_it_is_now(
    db: Database, paging: tuple[AppActor, Form]
) -> None:
    # Cursors from before a change are never used: whoever asks next gets exactly the OFFSET page.
    actor, form = paging
    repository.PAGE_CURSORS._pages.clear()
    for number in (1, 2):
        await search_form_instances(db, actor, form, RecordQuery(page=Page(number, 10)))
    newest = await save_form_instance(db, actor, "FORM-PAGING", {"numberField_i": 1000})
    try:
        now = await _offset_listing(db, form, "created_at DESC, id DESC")
        third = await search_form_instances(db, actor, form, RecordQuery(page=Page(3, 10)))
        assert [i.instance_id for i in third.items] == now[20:30]
        assert third.total == len(now)
        await delete_form_instance(db, actor, now[25])
        after_delete = await _offset_listing(db, form, "created_at DESC, id DESC")
        fourth = await search_form_instances(db, actor, form, RecordQuery(page=Page(4, 10)))
        assert [i.instance_id for i in fourth.items] == after_delete[30:40]
    finally:
        await delete_form_instance(db, actor, newest.instance_id)
        # put the deleted record's place back for the other tests (same count of 57)
        await save_form_instance(db, actor, "FORM-PAGING", {"numberField_i": 2000})


async def test_the_form_counter_stays_exact(db: Database, paging: tuple[AppActor, Form]) -> None:
    actor, form = paging

    async def counted() -> int:
        return int(await db.fetchval("SELECT count(*) FROM form_instance WHERE form_pk = :f", {"f": form.pk}))

    start = await repository.count_form_instances(db, form.pk)
    assert start == await counted()
    batch = await save_form_instances(db, actor, "FORM-PAGING", [{"numberField_i": -i} for i in range(1, 6)])
    one = await save_form_instance(db, actor, "FORM-PAGING", {"numberField_i": -99})
    assert await repository.count_form_instances(db, form.pk) == start + 6 == await counted()
    unfiltered = await search_form_instances(db, actor, form, RecordQuery(page=Page(1, 5)))
    assert unfiltered.total == start + 6
    await delete_form_instances(db, actor, form, batch.ids)
    await delete_form_instance(db, actor, one.instance_id)
    assert await repository.count_form_instances(db, form.pk) == start == await counted()


async def test_totals_of_indexed_unindexed_and_empty_searches(db: Database, paging: tuple[AppActor, Form]) -> None:
    actor, form = paging
    indexed = RecordQuery(filter=Condition("numberField_i", "between", [10, 19]), page=Page(1, 3))
    unindexed = RecordQuery(filter=Condition("textField_note", "empty"), page=Page(2, 20))
    nothing = RecordQuery(filter=Condition("textField_note", "eq", "never"), page=Page(1, 20))
    past_the_end = RecordQuery(filter=Condition("textField_note", "empty"), page=Page(9, 20))
    total = await repository.count_form_instances(db, form.pk)
    assert (await search_form_instances(db, actor, form, indexed)).total == 10
    assert (await search_form_instances(db, actor, form, unindexed)).total == total
    assert (await search_form_instances(db, actor, form, nothing)).total == 0
    beyond = await search_form_instances(db, actor, form, past_the_end)
    assert beyond.items == [] and beyond.total == total


def test_page_cursors_keep_the_most_recently_served_pages() -> None:
    cursors = repository.PageCursors(per_query=3)
    key = ("form", "query")
    for page in (10, 11, 12):
        cursors.remember(key, page, (page, page))
    assert cursors.nearest(key, 13) == (12, (12, 12))
    assert cursors.nearest(key, 10) is None
    # A second reader starts over at page 2: its pages replace the least recently served ones, not its own.
    for page in (2, 3):
        cursors.remember(key, page, (page, page))
    assert cursors.nearest(key, 4) == (3, (3, 3))
    assert cursors.nearest(key, 3) == (2, (2, 2))  # pages 10 and 11, the least recently served, went
    assert cursors.nearest(key, 12) == (3, (3, 3))
    assert cursors.nearest(key, 13) == (12, (12, 12))


async def test_a_remembered_page_costs_a_few_bytes_however_large_the_search(
    db: Database, paging: tuple[AppActor, Form]
) -> None:
    actor, form = paging
    repository.PAGE_CURSORS._pages.clear()
    # An indexed condition with 1,000 long values, two of which match: page 2 fills and its end is remembered.
    values: list[object] = [-(10**6) - n for n in range(998)] + [1, 2]
    big = Condition("numberField_i", "in", values)
    huge_text = Condition("textField_note", "ne", "x" * 50_000)
    for number in (1, 2):
        query = RecordQuery(filter=And((big, huge_text)), page=Page(number, 1), with_total=False)
        await search_form_instances(db, actor, form, query)
    assert repository.PAGE_CURSORS._pages, "the second page's end was remembered (the first one's never is)"
    for key, pages in repository.PAGE_CURSORS._pages.items():
        assert len(repr(key)) < 200, key
        assert all(len(repr(end)) < 200 for _, end in pages.values())
