"""The filter-tree compiler against the real database: every operator, sub-tables, sorting, index use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import SECRET_KEY
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.apps.models import Field, Form
from zida.core.apps.queries import get_form, parse_fields
from zida.core.errors import InvalidArgument, TooExpensive
from zida.core.principals import AppActor
from zida.core.records.actions import save_form_instance
from zida.core.records.filters import And, Condition, Filter, Or, Page, RecordQuery, Sort
from zida.core.records.filters.compiler import (
    MAX_SORTS,
    FilterCompiler,
    SearchLimits,
    configure_search_limits,
    search_limits,
)
from zida.core.records.filters.indexes import planned_indexes, sort_index_hint
from zida.core.records.queries import search_form_instances
from zida.core.workflow.conditions import condition_problem
from zida.core.workflow.conditions import matches as route_matches
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
                        {"fieldId": "countrySelectField_k", "component": "CountrySelectField", "label": "K"},
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
        "countrySelectField_k": [{"value": "CN"}],
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
        "addressField_a": {"regionText": [{"zh_CN": "南京"}], "address": "长江路 2 号", "postcode": 210000},
        "countrySelectField_k": [{"value": "US"}, {"value": "JP"}],
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
    (Condition("textField_t", "not_like", "PIE"), {1, 2, 3}),  # an absent value does not contain it
    (Condition("checkboxField_c", "not_like", "y"), {1, 2, 3}),
    (Condition("addressField_a", "not_like", "西湖"), {1, 2, 3}),
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
    # "Not A" holds for a record without the field, as for a scalar field (PostgreSQL used to leave those out).
    (Condition("checkboxField_c", "ne", "x"), {1, 2, 3}),
    (Condition("employeeField_e", "ne", "fa"), {1, 3}),
    (Condition("employeeField_e", "ne", ["fb"]), {0, 2, 3}),
    (Condition("employeeField_e", "seq_eq", ["fa", "fb"]), {0}),
    (Condition("employeeField_e", "seq_eq", ["fb", "fa"]), set()),
    (Condition("employeeField_e", "has_any", ["fa"]), {0, 2}),
    (Condition("cascadeSelectField_p", "prefix", ["cn", "zj"]), {0}),
    (Condition("cascadeSelectField_p", "prefix", ["cn"]), {0, 1}),
    (Condition("cascadeDateField_r[0]", "between", [50, 150]), {0}),
    (Condition("cascadeDateField_r[1]", "empty"), {1, 2, 3}),
    (Condition("addressField_a", "like", "西湖"), {0}),
    # Contains on lists and structured values reads the values in them, never their keys or JSON punctuation.
    (Condition("addressField_a", "like", "南京"), {1}),  # nested
    (Condition("addressField_a", "like", "2100"), {1}),  # a number, as its text
    (Condition("addressField_a", "like", "address"), set()),
    (Condition("addressField_a", "like", "zh_CN"), set()),
    (Condition("addressField_a", "like", '": "'), set()),
    (Condition("countrySelectField_k", "like", "value"), set()),
    (Condition("countrySelectField_k", "like", "cn"), {0}),
    (Condition("countrySelectField_k", "substring", "cn"), set()),
    (Condition("countrySelectField_k", "substring", "CN"), {0}),
    (Condition("countrySelectField_k", "not_like", "JP"), {0, 2, 3}),
    (Condition("checkboxField_c", "like", "X"), {0}),
    (Condition("checkboxField_c", "like", '","'), set()),
    (Condition("checkboxField_c", "like", "["), set()),
    (Condition("checkboxField_c", "substring", "X"), set()),
    (Condition("checkboxField_c", "not_substring", "x"), {1, 2, 3}),
    (Condition("employeeField_e", "like", "F"), {0, 1, 2}),
    (Condition("cascadeDateField_r", "like", "30"), {1}),
    (Condition("textField_t", "substring", "Pie"), set()),
    (Condition("textField_t", "substring", "pie"), {0}),
    (Condition("textField_t", "not_substring", "pie"), {1, 2, 3}),
    (Condition("tableField_rows", "like", "nut"), {1}),
    (Condition("tableField_rows", "like", "NUT"), {1}),
    (Condition("tableField_rows", "substring", "Nut"), set()),
    (Condition("tableField_rows", "like", "50"), {1}),  # a number cell, as its text
    (Condition("tableField_rows", "like", "item"), set()),  # the cells' values, not the ids they are stored under
    (Condition("tableField_rows", "not_like", "nut"), {0, 2, 3}),
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


async def test_route_conditions_agree_with_the_search(db: Database, scene: tuple[AppActor, Form, list[str]]) -> None:
    # A process route's condition is evaluated in Python (zida.core.workflow.conditions) over the stored values; it
    # must hold for exactly the records the same filter finds through SQL.
    _, form, ids = scene
    stored = []
    for instance_id in ids:
        data = await db.fetchval("SELECT data FROM form_instance WHERE instance_id = :i", {"i": instance_id})
        stored.append(data if isinstance(data, dict) else json.loads(data))
    checked = 0
    for node, expected in CASES:
        leaves = node.items if isinstance(node, And | Or) else (node,)
        if any(condition_problem(leaf, form.fields) for leaf in leaves if isinstance(leaf, Condition)):
            continue  # system fields (originator, created_at) are not route conditions
        assert {i for i, data in enumerate(stored) if route_matches(node, data, form.fields)} == expected, node
        checked += 1
    assert checked >= len(CASES) - 2


async def test_a_sub_table_contains_search_does_not_read_row_ids(
    db: Database, scene: tuple[AppActor, Form, list[str]]
) -> None:
    # Row ids start with the time in base36: at one moment they read "00mx9nut1…" and "nut" matched a row of bolts.
    ids = scene[2]
    stored = await db.fetchval("SELECT data FROM form_instance WHERE instance_id = :i", {"i": ids[0]})
    data = stored if isinstance(stored, dict) else json.loads(stored)
    row_id = data["tableField_rows"][0]["__rowId"]
    for piece in (row_id[:6], row_id[-6:]):
        assert await matches(db, scene, Condition("tableField_rows", "like", piece)) == []
        assert set(await matches(db, scene, Condition("tableField_rows", "not_like", piece))) == {0, 1, 2, 3}


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
        (Condition("numberField_n", "not_like", "1"), "search.unsupported_operator"),
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
    # Whether the planner picks the index for a 4-record form depends on the statistics other tests left behind
    # (SQLite: a field index built while its form was empty has none); the claim here is that the compiled
    # expression is the index's, so on SQLite the index is named (INDEXED BY) and must serve the equality itself.
    _, form, _ = scene
    names = {i.field_id: i.name for i in planned_indexes(db.sql.name, form.pk, form.fields)}
    for field_id, value in (("textField_t", "apple pie"), ("numberField_n", 2)):
        compiler = FilterCompiler(db.sql, form.fields, form.pk)
        where = compiler.where(Condition(field_id, "eq", value))
        named = f" INDEXED BY {names[field_id]}" if db.sql.name == "sqlite" else ""
        plan = await _plan(
            db, f"SELECT id FROM form_instance{named} WHERE form_pk = {form.pk} AND {where}", compiler.params
        )
        assert names[field_id] in plan, plan
        if db.sql.name == "sqlite":
            assert f"SEARCH form_instance USING INDEX {names[field_id]} (<expr>=?)" in plan, plan


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


# -- the search budget (issue 9): many values, long values, bound values -----------------------------------------

TAGS = [f"t{i:02d}" for i in range(12)]
WIDE = {
    "corp": {"corpId": "corpFiltersWide", "name": "宽过滤"},
    "departments": [{"deptId": 1, "name": "根"}],
    "users": [{"userId": "wa", "name": "宽", "departments": [1]}],
    "apps": [
        {
            "appType": "APP_FILTERS_WIDE",
            "name": "宽过滤",
            "systemToken": "ST-FILTERS-WIDE-0001",
            "admins": ["wa"],
            "forms": [
                {
                    "formUuid": "FORM-FILTERS-WIDE",
                    "title": "宽过滤表单",
                    "fields": [
                        {"fieldId": "textField_w", "component": "TextField", "label": "W", "searchable": True},
                        {
                            "fieldId": "checkboxField_idx",
                            "component": "CheckboxField",
                            "label": "I",
                            "options": TAGS,
                            "searchable": True,
                        },
                        {"fieldId": "checkboxField_raw", "component": "CheckboxField", "label": "R", "options": TAGS},
                        {"fieldId": "countrySelectField_co", "component": "CountrySelectField", "label": "C"},
                        {"fieldId": "cascadeSelectField_p", "component": "CascadeSelectField", "label": "P"},
                        {
                            "fieldId": "tableField_rows",
                            "component": "TableField",
                            "label": "Rows",
                            "fields": [
                                {
                                    "fieldId": "checkboxField_row",
                                    "component": "CheckboxField",
                                    "label": "T",
                                    "options": TAGS,
                                },
                                {"fieldId": "textField_row", "component": "TextField", "label": "X"},
                            ],
                        },
                    ],
                }
            ],
        }
    ],
}
WIDE_TAGS = [TAGS, TAGS[:10], TAGS[:1]]  # record i holds these tags in each array field


@pytest.fixture
async def wide(db: Database) -> tuple[AppActor, Form, list[str]]:
    """Three records whose array fields hold 12, 10 and 1 tags (searchable and not, and in a sub-table row)."""
    await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(WIDE))
    row = await db.fetchrow(
        "SELECT a.id, a.corp_pk, u.id AS user_pk FROM app a JOIN org_user u ON u.corp_pk = a.corp_pk"
        " WHERE a.app_type = 'APP_FILTERS_WIDE' AND u.user_id = 'wa'"
    )
    assert row is not None
    actor = AppActor(row["corp_pk"], row["id"], "APP_FILTERS_WIDE", row["user_pk"], "wa", "宽", True)
    form = await get_form(db, actor, "FORM-FILTERS-WIDE")
    query = "SELECT instance_id FROM form_instance WHERE form_pk = :f ORDER BY id"
    if not await db.fetch(query, {"f": form.pk}):
        for index, tags in enumerate(WIDE_TAGS):
            await save_form_instance(
                db,
                actor,
                "FORM-FILTERS-WIDE",
                {
                    "textField_w": f"w{index}",
                    "checkboxField_idx": tags,
                    "checkboxField_raw": tags,
                    "countrySelectField_co": tags,
                    "cascadeSelectField_p": ["cn", f"p{index}"],
                    "tableField_rows": [{"checkboxField_row": tags, "textField_row": "x"}],
                },
            )
    return actor, form, [r["instance_id"] for r in await db.fetch(query, {"f": form.pk})]


UNKNOWN = [f"u{i:03d}" for i in range(987)]  # with the 12 tags: 999 values, as in the issue


def _array_condition(field: str, op: str, values: list[str]) -> Condition:
    if field == "checkboxField_row":
        return Condition(field, op, values, parent="tableField_rows")
    return Condition(field, op, values)


@pytest.mark.parametrize("field", ["checkboxField_idx", "checkboxField_raw", "checkboxField_row"])
@pytest.mark.parametrize(
    ("op", "values", "expected"),
    [
        ("has_all", TAGS[:11], {0}),  # more values than the per-value form takes
        ("has_all", TAGS[:10], {0, 1}),
        ("has_all", TAGS[:10] + TAGS[:10], {0, 1}),  # repeated values count once
        ("has_all", TAGS + UNKNOWN, set()),  # 999 values: no expression tree SQLite refuses
        ("has_all", TAGS[:2], {0, 1}),
        ("has_any", [*UNKNOWN, TAGS[11]], {0}),
        ("has_any", [*UNKNOWN, TAGS[0]], {0, 1, 2}),
        ("has_any", UNKNOWN, set()),
    ],
    ids=["11", "10", "repeated", "999", "two", "any-999", "any-first", "any-none"],
)
async def test_array_conditions_of_many_values(
    db: Database, wide: tuple[AppActor, Form, list[str]], field: str, op: str, values: list[str], expected: set[int]
) -> None:
    assert set(await matches(db, wide, _array_condition(field, op, values))) == expected


async def test_objects_match_any_of_many_values(db: Database, wide: tuple[AppActor, Form, list[str]]) -> None:
    node = Condition("countrySelectField_co", "has_any", [*UNKNOWN, TAGS[11]])
    assert set(await matches(db, wide, node)) == {0}


async def test_many_values_on_a_searchable_array_still_use_its_index(
    db: Database, plans: tuple[int, tuple[Field, ...]]
) -> None:
    form_pk, schema = plans
    tags = [f"t{i}" for i in range(10)]
    threes = {i for i in range(3000) if i % 10 == 3}
    # PostgreSQL answers has_all with one containment of the whole list and has_any with one per value, which its
    # GIN index answers; for ~1,000 values its planner may rather read the form's 3,000 rows than look up 1,000
    # keys (its choice, by cost). SQLite reads the element table in every case.
    sqlite = db.sql.name == "sqlite"
    for node, expected, indexed in (
        (Condition("checkboxField_tags", "has_all", [*tags[:9], *UNKNOWN]), set(), sqlite),
        (Condition("checkboxField_tags", "has_all", [tags[3]] * 20), threes, True),
        (Condition("checkboxField_tags", "has_any", [*UNKNOWN, tags[3]]), threes, sqlite),
        (Condition("checkboxField_tags", "has_any", [*UNKNOWN[:3], tags[3]]), threes, True),
    ):
        compiler = FilterCompiler(db.sql, schema, form_pk)
        where = compiler.where(node)
        assert "json_each" not in where
        plan = await _plan(db, f"SELECT id FROM form_instance WHERE form_pk = {form_pk} AND {where}", compiler.params)
        if not indexed:
            pass
        elif db.sql.name == "postgresql":
            gin = next(i.name for i in planned_indexes(db.sql.name, form_pk, schema) if i.field_id == node.field)
            assert gin in plan, plan
        else:
            assert "ix_form_field_value" in plan, plan
        rows = await db.fetch(
            f"SELECT instance_id FROM form_instance WHERE form_pk = {form_pk} AND {where}", compiler.params
        )
        assert {int(r["instance_id"][10:]) for r in rows} == expected


@pytest.mark.parametrize(
    "value",
    ["a" * 50_001, "%" * 25_001, "中" * 17_000, "_" * 1_001, "\\" * 1_001],
    ids=["50001", "percent", "cjk", "underscore", "backslash"],
)
@pytest.mark.parametrize(
    "node",
    [
        Condition("textField_w", "like", ""),
        Condition("title", "like", ""),
        Condition("textField_row", "like", "", parent="tableField_rows"),
        Condition("tableField_rows", "like", ""),
        Condition("checkboxField_raw", "like", ""),
    ],
    ids=["text", "title", "sub-table", "table", "array"],
)
async def test_a_contains_value_longer_than_the_limit_is_refused(
    db: Database, wide: tuple[AppActor, Form, list[str]], node: Condition, value: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        await matches(db, wide, Condition(node.field, node.op, value, node.parent))
    assert err.value.reason == "search.value_too_long"
    assert "at most 1000 characters" in err.value.message and len(err.value.message) < 200
    # At the limit the pattern (escaped: up to twice as long) is one SQLite and PostgreSQL take.
    await matches(db, wide, Condition(node.field, node.op, value[:1000], node.parent))


async def test_a_comparison_value_longer_than_any_stored_text_is_refused(
    db: Database, wide: tuple[AppActor, Form, list[str]]
) -> None:
    for node in (
        Condition("textField_w", "eq", "x" * 80_001),
        Condition("textField_w", "in", ["w1", "x" * 80_001]),
        Condition("checkboxField_raw", "has_any", ["x" * 80_001]),
    ):
        with pytest.raises(InvalidArgument) as err:
            await matches(db, wide, node)
        assert err.value.reason == "search.value_too_long"


async def test_a_statement_binds_at_most_the_budget_of_values(
    db: Database, wide: tuple[AppActor, Form, list[str]]
) -> None:
    six = And(tuple(Condition("textField_w", "in", [f"v{i}-{j}" for j in range(1000)]) for i in range(6)))
    with pytest.raises(TooExpensive) as err:
        await matches(db, wide, six)
    assert "5000" in err.value.message
    four = And(tuple(Condition("textField_w", "in", ["w1", *(f"v{i}-{j}" for j in range(999))]) for i in range(4)))
    assert await matches(db, wide, four) == [1]


async def test_the_search_budget_is_configurable(db: Database, wide: tuple[AppActor, Form, list[str]]) -> None:
    before = search_limits()
    configure_search_limits(SearchLimits(conditions=2, values=3, bound_values=4, like_chars=2, value_chars=5))
    try:
        cases: list[tuple[Filter, str]] = [
            (And(tuple(Condition("textField_w", "eq", "w") for _ in range(3))), "search.too_large"),
            (Condition("textField_w", "in", ["a", "b", "c", "d"]), "search.too_large"),
            (Condition("textField_w", "like", "abc"), "search.value_too_long"),
            (Condition("textField_w", "eq", "abcdef"), "search.value_too_long"),
        ]
        for node, reason in cases:
            with pytest.raises(InvalidArgument) as err:
                await matches(db, wide, node)
            assert err.value.reason == reason
        with pytest.raises(TooExpensive):
            await matches(db, wide, Or((Condition("textField_w", "in", ["a", "b", "c"]),) * 2))
        assert await matches(db, wide, Condition("textField_w", "like", "w2")) == [2]
    finally:
        configure_search_limits(before)


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        (Condition("textField_w", "in", [["w1"]]), "search.invalid_value"),
        (Condition("textField_w", "in", '[[[["w1"]]]]'), "search.invalid_value"),
        (Condition("checkboxField_raw", "has_all", [{"a": 1}]), "search.invalid_value"),
        (Condition("cascadeSelectField_p", "prefix", ["cn"] * 33), "search.too_large"),
        (Condition("textField_w", "in", ["w"] * 1001), "search.too_large"),
    ],
    ids=["nested", "nested-text", "object", "prefix", "values"],
)
async def test_malformed_or_oversized_lists_are_clear_errors(
    db: Database, wide: tuple[AppActor, Form, list[str]], node: Filter, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        await matches(db, wide, node)
    assert err.value.reason == reason


async def test_a_deeply_nested_list_text_is_one_value(db: Database, wide: tuple[AppActor, Form, list[str]]) -> None:
    # Past orjson's 1,024 levels the text is not decoded: it is a single (unmatched) value, never a crash.
    assert await matches(db, wide, Condition("textField_w", "in", "[" * 5000 + "]" * 5000)) == []


async def test_more_sort_keys_than_the_limit_are_refused(db: Database, wide: tuple[AppActor, Form, list[str]]) -> None:
    with pytest.raises(InvalidArgument) as err:
        await matches(db, wide, None, sort=(Sort("textField_w"),) * (MAX_SORTS + 1))
    assert err.value.reason == "search.too_large"
    assert len(await matches(db, wide, None, sort=(Sort("textField_w"),) * MAX_SORTS)) == 3


@pytest.mark.parametrize("value", ["１", "١", "1_0", "0x1", "1e99999"])
async def test_number_conditions_take_ascii_numbers_only(
    db: Database, scene: tuple[AppActor, Form, list[str]], value: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        await matches(db, scene, Condition("numberField_n", "eq", value))
    assert err.value.reason == "search.expect_number"
    assert await matches(db, scene, Condition("numberField_n", "eq", " 10 ")) == [2]
