"""The filter-tree compiler against the real database: every operator, sub-tables, sorting, index use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import SECRET_KEY
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.apps.models import Field, Form
from zida.core.apps.queries import get_form, parse_fields
from zida.core.errors import InvalidArgument
from zida.core.principals import AppActor
from zida.core.records.actions import save_form_instance
from zida.core.records.filters import And, Condition, Filter, Or, Page, RecordQuery, Sort
from zida.core.records.filters.compiler import FilterCompiler
from zida.core.records.filters.indexes import planned_indexes, sort_index_hint
from zida.core.records.queries import search_form_instances
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio

BUNDLE = {
    "corp": {"corpId": "corpFilters", "name": "过滤测试"},
    "departments": [{"deptId": 1, "name": "根"}],
    "users": [
        {"userId": "fa", "name": "过滤管理员", "departments": [1]},
        {"userId": "fb", "name": "乙", "departments": [1]},
    ],
    "apps": [
        {
            "appType": "APP_FILTERS",
            "name": "过滤",
            "systemToken": "ST-FILTERS-0001",
            "admins": ["fa"],
            "forms": [
                {
                    "formUuid": "FORM-FILTERS",
                    "title": "过滤表单",
                    "fields": [
                        {"fieldId": "textField_t", "component": "TextField", "label": "T", "searchable": True},
                        {"fieldId": "numberField_n", "component": "NumberField", "label": "N", "searchable": True},
                        {"fieldId": "selectField_s", "component": "SelectField", "label": "S", "options": ["a", "b"]},
                        {
                            "fieldId": "checkboxField_c",
                            "component": "CheckboxField",
                            "label": "C",
                            "options": ["x", "y", "z"],
                            "searchable": True,
                        },
                        {"fieldId": "employeeField_e", "component": "EmployeeField", "label": "E"},
                        {"fieldId": "cascadeSelectField_p", "component": "CascadeSelectField", "label": "P"},
                        {"fieldId": "cascadeDateField_r", "component": "CascadeDateField", "label": "R"},
                        {"fieldId": "addressField_a", "component": "AddressField", "label": "A"},
                        {
                            "fieldId": "tableField_rows",
                            "component": "TableField",
                            "label": "Rows",
                            "fields": [
                                {"fieldId": "textField_item", "component": "TextField", "label": "Item"},
                                {"fieldId": "numberField_qty", "component": "NumberField", "label": "Qty"},
                            ],
                        },
                    ],
                }
            ],
        }
    ],
}

RECORDS: list[dict[str, Any]] = [
    {
        "textField_t": "apple pie",
        "numberField_n": 1,
        "selectField_s": "a",
        "checkboxField_c": ["x", "y"],
        "employeeField_e": ["fa", "fb"],
        "cascadeSelectField_p": ["cn", "zj", "hz"],
        "cascadeDateField_r": [100, 200],
        "addressField_a": {"address": "西湖路 1 号"},
        "tableField_rows": [{"textField_item": "bolt", "numberField_qty": 5}],
    },
    {
        "textField_t": "Banana 100%",
        "numberField_n": 2.5,
        "selectField_s": "b",
        "checkboxField_c": ["z"],
        "employeeField_e": ["fb"],
        "cascadeSelectField_p": ["cn", "js"],
        "cascadeDateField_r": [300, None],
        "tableField_rows": [
            {"textField_item": "nut", "numberField_qty": 50},
            {"textField_item": "bolt", "numberField_qty": 1},
        ],
    },
    {"textField_t": "cherry_tart", "numberField_n": 10, "selectField_s": "a", "employeeField_e": ["fa"]},
    {"textField_t": "", "numberField_n": -3},
]


@pytest.fixture
async def scene(db: Database) -> tuple[AppActor, Form, list[str]]:
    """The filter-test form with four records (loaded once per database)."""
    await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(BUNDLE))
    row = await db.fetchrow(
        "SELECT a.id, a.corp_pk, u.id AS user_pk FROM app a JOIN org_user u ON u.corp_pk = a.corp_pk"
        " WHERE a.app_type = 'APP_FILTERS' AND u.user_id = 'fa'"
    )
    assert row is not None
    actor = AppActor(row["corp_pk"], row["id"], "APP_FILTERS", row["user_pk"], "fa", "过滤管理员", True)
    form = await get_form(db, actor, "FORM-FILTERS")
    existing = await db.fetch("SELECT instance_id FROM form_instance WHERE form_pk = :f ORDER BY id", {"f": form.pk})
    if not existing:
        for values in RECORDS:
            clean = {k: v for k, v in values.items() if v != ""}
            await save_form_instance(db, actor, "FORM-FILTERS", clean)
        existing = await db.fetch(
            "SELECT instance_id FROM form_instance WHERE form_pk = :f ORDER BY id", {"f": form.pk}
        )
    return actor, form, [r["instance_id"] for r in existing]


async def matches(
    db: Database, scene: tuple[AppActor, Form, list[str]], node: Filter | None, **query: Any
) -> list[int]:
    actor, form, ids = scene
    result = await search_form_instances(db, actor, form, RecordQuery(filter=node, page=Page(1, 100), **query))
    assert result.total == len(result.items)
    return [ids.index(item.instance_id) for item in result.items]


CASES: list[tuple[Filter, set[int]]] = [
    (Condition("textField_t", "eq", "apple pie"), {0}),
    (Condition("textField_t", "like", "PIE"), {0}),
    (Condition("textField_t", "like", "100%"), {1}),  # % is a literal, not a wildcard
    (Condition("textField_t", "like", "_"), {2}),
    (Condition("textField_t", "ne", "apple pie"), {1, 2, 3}),
    (Condition("textField_t", "empty"), {3}),
    (Condition("textField_t", "not_empty"), {0, 1, 2}),
    (Condition("numberField_n", "gt", 2), {1, 2}),
    (Condition("numberField_n", "ge", "2.5"), {1, 2}),
    (Condition("numberField_n", "lt", 1), {3}),
    (Condition("numberField_n", "le", 1), {0, 3}),
    (Condition("numberField_n", "between", [1, 2.5]), {0, 1}),
    (Condition("numberField_n", "between", [None, 0]), {3}),
    (Condition("numberField_n", "in", [1, 10]), {0, 2}),
    (Condition("selectField_s", "eq", "a"), {0, 2}),
    (Condition("selectField_s", "in", ["b"]), {1}),
    (Condition("checkboxField_c", "has_all", ["x", "y"]), {0}),
    (Condition("checkboxField_c", "has_any", ["y", "z"]), {0, 1}),
    (Condition("checkboxField_c", "eq", "z"), {1}),
    (Condition("checkboxField_c", "empty"), {2, 3}),
    (Condition("employeeField_e", "seq_eq", ["fa", "fb"]), {0}),
    (Condition("employeeField_e", "seq_eq", ["fb", "fa"]), set()),
    (Condition("employeeField_e", "has_any", ["fa"]), {0, 2}),
    (Condition("cascadeSelectField_p", "prefix", ["cn", "zj"]), {0}),
    (Condition("cascadeSelectField_p", "prefix", ["cn"]), {0, 1}),
    (Condition("cascadeDateField_r[0]", "between", [50, 150]), {0}),
    (Condition("cascadeDateField_r[1]", "empty"), {1, 2, 3}),
    (Condition("addressField_a", "like", "西湖"), {0}),
    (Condition("tableField_rows", "like", "nut"), {1}),
    (Condition("textField_item", "eq", "bolt", parent="tableField_rows"), {0, 1}),
    (
        And(
            (
                Condition("textField_item", "eq", "bolt", parent="tableField_rows"),
                Condition("numberField_qty", "gt", 3, parent="tableField_rows"),
            )
        ),
        {0, 1},
    ),
    (Condition("numberField_qty", "ge", 50, parent="tableField_rows"), {1}),
    (Or((Condition("selectField_s", "eq", "b"), Condition("numberField_n", "lt", 0))), {1, 3}),
    (And((Condition("selectField_s", "eq", "a"), Condition("numberField_n", "gt", 5))), {2}),
    (Condition("originator", "eq", "fa"), {0, 1, 2, 3}),
    (Condition("created_at", "between", [0, None]), {0, 1, 2, 3}),
]


@pytest.mark.parametrize(("node", "expected"), CASES, ids=[repr(c[0])[:60] for c in CASES])
async def test_operator(
    db: Database, scene: tuple[AppActor, Form, list[str]], node: Filter, expected: set[int]
) -> None:
    assert set(await matches(db, scene, node)) == expected


async def test_sorting_and_default_order(db: Database, scene: tuple[AppActor, Form, list[str]]) -> None:
    assert await matches(db, scene, None) == [3, 2, 1, 0]  # newest first
    assert await matches(db, scene, None, sort=(Sort("numberField_n"),)) == [3, 0, 1, 2]
    assert await matches(db, scene, None, sort=(Sort("numberField_n", descending=True),)) == [2, 1, 0, 3]
    # An absent value sorts as the smallest, as in MySQL (Yida's own store): first ascending, last descending.
    assert await matches(db, scene, None, sort=(Sort("selectField_s"), Sort("created_at"))) == [3, 0, 2, 1]
    assert await matches(db, scene, None, sort=(Sort("selectField_s", True), Sort("created_at"))) == [1, 0, 2, 3]


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        (Condition("nope", "eq", 1), "search.unknown_field"),
        (Condition("numberField_n", "eq", "abc"), "search.expect_number"),
        (Condition("numberField_n", "like", "1"), "search.unsupported_operator"),
        (Condition("textField_item", "eq", "x", parent="textField_t"), "search.unknown_field"),
        (Condition("addressField_a", "gt", 1), "search.unsupported_operator"),
    ],
)
async def test_bad_conditions_are_clear_errors(
    db: Database, scene: tuple[AppActor, Form, list[str]], node: Filter, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        await matches(db, scene, node)
    assert err.value.reason == reason


async def _plan(db: Database, sql: str, params: dict[str, Any]) -> str:
    if db.sql.name == "postgresql":
        async with db.transaction() as tx:
            await tx.execute("SET LOCAL enable_seqscan = off")
            return "\n".join(r[0] for r in await tx.fetch("EXPLAIN " + sql, params))
    return "\n".join(str(r["detail"]) for r in await db.fetch("EXPLAIN QUERY PLAN " + sql, params))


async def test_searchable_fields_use_their_index(db: Database, scene: tuple[AppActor, Form, list[str]]) -> None:
    _, form, _ = scene
    names = {i.field_id: i.name for i in planned_indexes(db.sql.name, form.pk, form.fields)}
    for field_id, value in (("textField_t", "apple pie"), ("numberField_n", 2)):
        compiler = FilterCompiler(db.sql, form.fields, form.pk)
        where = compiler.where(Condition(field_id, "eq", value))
        plan = await _plan(db, f"SELECT id FROM form_instance WHERE form_pk = {form.pk} AND {where}", compiler.params)
        assert names[field_id] in plan, plan


@pytest.mark.parametrize(
    "node",
    [
        Condition("checkboxField_tags", "eq", "t3"),
        Condition("checkboxField_tags", "has_any", ["t3", "t4"]),
        Condition("checkboxField_tags", "seq_eq", ["t3"]),
    ],
    ids=repr,
)
async def test_searchable_array_fields_are_indexed(
    db: Database, plans: tuple[int, tuple[Field, ...]], node: Condition
) -> None:
    # PostgreSQL: a GIN index on the array; SQLite (no GIN): the element table kept by triggers.
    form_pk, schema = plans
    compiler = FilterCompiler(db.sql, schema, form_pk)
    where = compiler.where(node)
    plan = await _plan(db, f"SELECT id FROM form_instance WHERE form_pk = {form_pk} AND {where}", compiler.params)
    if db.sql.name == "postgresql":
        gin = next(i.name for i in planned_indexes(db.sql.name, form_pk, schema) if i.field_id == "checkboxField_tags")
        assert gin in plan, plan
    else:
        assert "ix_form_field_value" in plan, plan
    expected = {i for i in range(3000) if i % 10 in ((3, 4) if node.op == "has_any" else (3,))}
    rows = await db.fetch(
        f"SELECT instance_id FROM form_instance WHERE form_pk = {form_pk} AND {where}", compiler.params
    )
    assert {int(r["instance_id"][10:]) for r in rows} == expected


SELECTIVITY = {
    "corp": {"corpId": "corpPlans", "name": "计划"},
    "departments": [{"deptId": 1, "name": "根"}],
    "users": [{"userId": "pa", "name": "甲", "departments": [1]}],
    "apps": [
        {
            "appType": "APP_PLANS",
            "name": "计划",
            "systemToken": "ST-PLANS-0001",
            "admins": ["pa"],
            "forms": [
                {
                    "formUuid": "FORM-PLANS",
                    "title": "计划",
                    "fields": [
                        {"fieldId": "textField_code", "component": "TextField", "label": "C", "searchable": True},
                        {"fieldId": "textField_kind", "component": "TextField", "label": "K", "searchable": True},
                        {"fieldId": "numberField_n", "component": "NumberField", "label": "N", "searchable": True},
                        {
                            "fieldId": "checkboxField_tags",
                            "component": "CheckboxField",
                            "label": "T",
                            "options": [f"t{i}" for i in range(10)],
                            "searchable": True,
                        },
                    ],
                }
            ],
        }
    ],
}


@pytest.fixture
async def plans(db: Database) -> tuple[int, tuple[Field, ...]]:
    """A form of 3,000 records: a near-unique, a two-valued, a seven-valued and an array field (analyzed)."""
    await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(SELECTIVITY))
    form_pk = await db.fetchval("SELECT id FROM form WHERE form_uuid = 'FORM-PLANS'")
    if not await db.fetchval("SELECT count(*) FROM form_instance WHERE form_pk = :f", {"f": form_pk}):
        app = await db.fetchrow("SELECT id, corp_pk FROM app WHERE app_type = 'APP_PLANS'")
        assert app is not None
        rows = [
            {
                "instance_id": f"FINST-PLAN{i:06d}",
                "corp_pk": app["corp_pk"],
                "app_pk": app["id"],
                "form_pk": form_pk,
                "data": json.dumps(
                    {
                        "textField_code": f"c{i}",
                        "textField_kind": "ab"[i % 2],
                        "numberField_n": i % 7,
                        "checkboxField_tags": [f"t{i % 10}"],
                    }
                ),
                "at": 1_700_000_000_000 + i,
            }
            for i in range(3000)
        ]
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title,"
                " originator_user_id, modifier_user_id, created_at, modified_at, data, data_version)"
                " VALUES (:instance_id, :corp_pk, :app_pk, :form_pk, 1, 't', 'pa', 'pa', :at, :at,"
                f" {tx.sql.json_param('data')}, 1)",
                rows,
            )
        await db.execute("ANALYZE")
    raw = await db.fetchval("SELECT fields FROM form_version WHERE form_pk = :f", {"f": form_pk})
    return int(form_pk), parse_fields(int(form_pk), 1, raw)


async def test_combined_conditions_pick_the_selective_index(db: Database, plans: tuple[int, tuple[Field, ...]]) -> None:
    # The planner must know that "kind" splits the form in two while "code" is nearly unique; PostgreSQL
    # ignores the statistics of partial indexes, so Zida adds expression statistics next to each index.
    form_pk, schema = plans
    code_index = next(i.name for i in planned_indexes(db.sql.name, form_pk, schema) if i.field_id == "textField_code")
    compiler = FilterCompiler(db.sql, schema, form_pk)
    where = compiler.where(
        And(
            (
                Condition("textField_kind", "eq", "a"),
                Condition("numberField_n", "between", [0, 5]),
                Condition("textField_code", "eq", "c42"),
            )
        )
    )
    sql = (
        f"SELECT id FROM form_instance WHERE form_pk = {form_pk} AND {where} ORDER BY created_at DESC, id DESC LIMIT 20"
    )
    if db.sql.name == "postgresql":
        plan = "\n".join(r[0] for r in await db.fetch("EXPLAIN " + sql, compiler.params))
    else:
        plan = "\n".join(str(r["detail"]) for r in await db.fetch("EXPLAIN QUERY PLAN " + sql, compiler.params))
    assert code_index in plan, plan


async def test_sorting_by_a_searchable_field_reads_its_index(
    db: Database, plans: tuple[int, tuple[Field, ...]]
) -> None:
    form_pk, schema = plans
    name = next(i.name for i in planned_indexes(db.sql.name, form_pk, schema) if i.field_id == "numberField_n")
    for descending in (False, True):
        compiler = FilterCompiler(db.sql, schema, form_pk)
        sort = Sort("numberField_n", descending)
        order = compiler.order_by((sort,))
        # As the records repository asks (SQLite gets an INDEXED BY: its statistics can't size one form).
        hint = await sort_index_hint(db, form_pk, schema, sort)
        plan = await _plan(
            db, f"SELECT id FROM form_instance{hint} WHERE form_pk = {form_pk} ORDER BY {order} LIMIT 5", {}
        )
        assert name in plan, plan
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan  # read in order, no sort step
