"""A form's declared combinations of fields (``searchIndexes``): validated, stored, dumped, built as composite
indexes that broad searches read, rebuilt or dropped when the declaration changes; on the database under test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECRET_KEY, fresh_database, opened, plan_of
from zida.bundle.dumper import dump_bundle
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument
from zida.core.principals import AppActor
from zida.core.records.actions import save_form_instance
from zida.core.records.filters import And, Condition, Page, RecordQuery
from zida.core.records.filters.compiler import FilterCompiler
from zida.core.records.filters.indexes import planned_indexes
from zida.core.records.queries import search_form_instances
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio

COMBO = ["selectField_kind", "numberField_amount", "dateField_spent"]


def bundle(search_indexes: list[list[str]] | None = None) -> dict[str, Any]:
    form: dict[str, Any] = {
        "formUuid": "FORM-COMBO",
        "title": "组合",
        "fields": [
            {"fieldId": "selectField_kind", "component": "SelectField", "label": "K", "options": ["a", "b", "c"]},
            {"fieldId": "numberField_amount", "component": "NumberField", "label": "A"},
            {"fieldId": "dateField_spent", "component": "DateField", "label": "D"},
            {"fieldId": "checkboxField_tags", "component": "CheckboxField", "label": "T", "options": ["x"]},
        ],
    }
    if search_indexes is not None:
        form["searchIndexes"] = search_indexes
    return {
        "corp": {"corpId": "corpCombo", "name": "组合"},
        "departments": [{"deptId": 1, "name": "根"}],
        "users": [{"userId": "ka", "name": "管理员", "departments": [1]}],
        "apps": [
            {
                "appType": "APP_COMBO",
                "name": "组合",
                "systemToken": "ST-COMBO-0001",
                "admins": ["ka"],
                "forms": [form],
            }
        ],
    }


@pytest.fixture
async def combo_db(tmp_path: Path) -> AsyncIterator[Database]:
    with fresh_database(tmp_path) as url:
        async with opened(url) as db:
            yield db


async def load(db: Database, search_indexes: list[list[str]] | None) -> None:
    await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(bundle(search_indexes)))


async def actor_of(db: Database) -> AppActor:
    row = await db.fetchrow(
        "SELECT a.id, a.corp_pk, u.id AS user_pk FROM app a JOIN org_user u ON u.corp_pk = a.corp_pk"
        " WHERE a.app_type = 'APP_COMBO' AND u.user_id = 'ka'"
    )
    assert row is not None
    return AppActor(row["corp_pk"], row["id"], "APP_COMBO", row["user_pk"], "ka", "管理员", True)


async def composite_indexes(db: Database, form_pk: int) -> set[str]:
    """The form's composite indexes in the catalog (their definitions name more than one field)."""
    form = await get_form(db, await actor_of(db), "FORM-COMBO")
    combos = form.search_indexes
    planned = {i.name for i in planned_indexes(db.sql.name, form_pk, form.fields, None, combos) if "+" in i.field_id}
    if db.sql.name == "sqlite":
        rows = await db.fetch("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'form_instance'")
    else:
        rows = await db.fetch("SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()")
    present = {str(r["name"]) for r in rows}
    assert planned <= present
    return {n for n in present if n.startswith(f"ix_fi_{form_pk}_") and n in planned}


BROAD = And(
    (
        Condition("selectField_kind", "eq", "b"),
        Condition("numberField_amount", "between", [10, 30]),
        Condition("dateField_spent", "between", [1_700_000_000_000, 1_800_000_000_000]),
    )
)


async def plan(db: Database, form_pk: int, fields: Any) -> str:
    """The plan of the broad search's page query (on PostgreSQL: on a form of 20,000 records)."""
    compiler = FilterCompiler(db.sql, fields, form_pk)
    statement = (
        f"SELECT id FROM form_instance WHERE form_pk = {form_pk} AND {compiler.where(BROAD)}"
        " ORDER BY created_at DESC, id DESC LIMIT 20"
    )
    data = (
        "jsonb_build_object('selectField_kind', (ARRAY['a','b','c'])[n % 3 + 1], 'numberField_amount', n % 1000,"
        " 'dateField_spent', 1700000000000::bigint + n::bigint * 86400000)"
    )
    return await plan_of(db, form_pk, statement, compiler.params, data)


async def test_declared_combinations_are_built_read_dumped_and_changed(combo_db: Database) -> None:
    db = combo_db
    await load(db, [COMBO])
    actor = await actor_of(db)
    form = await get_form(db, actor, "FORM-COMBO")
    assert form.search_indexes == (tuple(COMBO),)
    for n in range(12):
        values = {"selectField_kind": "abc"[n % 3], "numberField_amount": n * 5, "dateField_spent": 1_750_000_000_000}
        await save_form_instance(db, actor, "FORM-COMBO", values)
    (name,) = await composite_indexes(db, form.pk)
    assert name in await plan(db, form.pk, form.fields)  # the broad search reads the combination's index
    result = await search_form_instances(db, actor, form, RecordQuery(filter=BROAD, page=Page(1, 20)))
    assert result.total == 1 and [i.data["numberField_amount"] for i in result.items] == [20]

    dumped = await dump_bundle(db, "corpCombo")
    assert dumped["apps"][0]["forms"][0]["searchIndexes"] == [COMBO]

    await load(db, [COMBO[:2]])  # another combination: the old index goes, the new one is built
    form = await get_form(db, actor, "FORM-COMBO")
    assert form.search_indexes == (tuple(COMBO[:2]),)
    (other,) = await composite_indexes(db, form.pk)
    assert other != name
    await load(db, None)  # none declared
    form = await get_form(db, actor, "FORM-COMBO")
    assert form.search_indexes == () and await composite_indexes(db, form.pk) == set()
    result = await search_form_instances(db, actor, form, RecordQuery(filter=BROAD, page=Page(1, 20)))
    assert result.total == 1  # the same answer without the index


@pytest.mark.parametrize(
    ("search_indexes", "problem"),
    [
        ([["selectField_kind"]], "2 to 4 different fields"),
        ([["selectField_kind", "selectField_kind"]], "2 to 4 different fields"),
        ([[*COMBO, "numberField_amount", "dateField_spent"]], "2 to 4 different fields"),
        ([["selectField_kind", "checkboxField_tags"]], "'checkboxField_tags' is not a top-level field"),
        ([["selectField_kind", "textField_nope"]], "'textField_nope' is not a top-level field"),
        ([COMBO[:2]] * 9, "at most 8 combinations"),
    ],
)
async def test_a_bad_declaration_is_refused_with_its_path(
    combo_db: Database, search_indexes: list[list[str]], problem: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await load(combo_db, search_indexes)
    assert problem in caught.value.message and "searchIndexes" in caught.value.message
    assert await combo_db.fetchval("SELECT count(*) FROM form") == 0  # nothing was written
