"""The filter-tree compiler against the real database: every operator, sub-tables, sorting, index use."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SECRET_KEY
from zida.core.access.models import AppActor
from zida.core.apps.models import Form
from zida.core.apps.service import get_form
from zida.core.bundle.loader import load_bundle, parse_bundle
from zida.core.errors import InvalidArgument
from zida.core.filters import And, Condition, Filter, Or, Page, RecordQuery, Sort
from zida.core.records.service import save_form_instance, search_form_instances
from zida.crypto import SecretBox
from zida.db import Database
from zida.db.filters import FilterCompiler
from zida.db.indexes import index_name

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
    assert await matches(db, scene, None, sort=(Sort("selectField_s"), Sort("created_at"))) == [0, 2, 1, 3]


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


async def test_searchable_fields_use_their_partial_index(db: Database, scene: tuple[AppActor, Form, list[str]]) -> None:
    _, form, _ = scene
    for field_id, value in (("textField_t", "apple pie"), ("numberField_n", 2)):
        compiler = FilterCompiler(db.sql, form.fields)
        where = compiler.where(Condition(field_id, "eq", value))
        sql = f"SELECT id FROM form_instance WHERE form_pk = {form.pk} AND {where}"
        expected = index_name(form.pk, field_id)
        if db.sql.name == "postgresql":
            async with db.transaction() as tx:
                await tx.execute("SET LOCAL enable_seqscan = off")
                plan = "\n".join(r[0] for r in await tx.fetch("EXPLAIN " + sql, compiler.params))
        else:
            plan = "\n".join(str(r["detail"]) for r in await db.fetch("EXPLAIN QUERY PLAN " + sql, compiler.params))
        assert expected in plan, plan
