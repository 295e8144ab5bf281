"""Route conditions evaluated in Python: the same operators as search, over stored form values."""

from __future__ import annotations

from typing import Any

import pytest

from zida.core.apps.models import Field, Option
from zida.core.errors import InvalidArgument
from zida.core.records.filters import And, Condition, Or
from zida.core.workflow.conditions import condition_problem, matches

FIELDS = (
    Field("textField_title", "TextField", "标题"),
    Field("numberField_amount", "NumberField", "金额"),
    Field("dateField_day", "DateField", "日期"),
    Field("selectField_kind", "SelectField", "类别", options=(Option("travel", "差旅"), Option("meal", "餐饮"))),
    Field("checkboxField_tags", "CheckboxField", "标签", options=(Option("urgent", "紧急"), Option("vat", "可抵扣"))),
    Field("employeeField_owner", "EmployeeField", "报销人"),
    Field("cascadeSelectField_city", "CascadeSelectField", "城市"),
    Field("cascadeDateField_trip", "CascadeDateField", "行程"),
    Field("addressField_addr", "AddressField", "地址"),
    Field("countrySelectField_c", "CountrySelectField", "国家"),
    Field(
        "tableField_items",
        "TableField",
        "明细",
        children=(Field("textField_item", "TextField", "项目"), Field("numberField_price", "NumberField", "金额")),
    ),
)

RECORD: dict[str, Any] = {
    "textField_title": "Trip to Hangzhou",
    "numberField_amount": 1200,
    "dateField_day": 1700000000000,
    "selectField_kind": "travel",
    "checkboxField_tags": ["urgent", "vat"],
    "employeeField_owner": ["wang"],
    "cascadeSelectField_city": ["浙江", "杭州", "西湖区"],
    "cascadeDateField_trip": [1700000000000, 1700500000000],
    "addressField_addr": {"regionText": "浙江 杭州", "address": "文三路"},
    "countrySelectField_c": [{"value": "CN"}],
    "tableField_items": [
        {"textField_item": "hotel", "numberField_price": 800},
        {"textField_item": "train", "numberField_price": 400},
    ],
}


def holds(
    field: str, op: str, value: Any = None, data: dict[str, Any] | None = None, parent: str | None = None
) -> bool:
    return matches(Condition(field, op, value, parent), RECORD if data is None else data, FIELDS)


def test_text_comparisons() -> None:
    assert holds("textField_title", "eq", "Trip to Hangzhou")
    assert not holds("textField_title", "eq", "trip to hangzhou")
    assert holds("textField_title", "ne", "other")
    assert holds("textField_title", "like", "HANGZHOU")
    assert not holds("textField_title", "like", "Beijing")
    assert holds("textField_title", "not_like", "Beijing") and not holds("textField_title", "not_like", "hangzhou")
    assert holds("textField_title", "not_like", "x", data={})  # absent: does not contain it
    assert holds("textField_title", "substring", "Hangzhou") and not holds("textField_title", "substring", "hangzhou")
    assert holds("textField_title", "not_substring", "hangzhou") and not holds(
        "textField_title", "not_substring", "Trip"
    )
    assert holds("textField_title", "not_substring", "x", data={})
    assert holds("textField_title", "gt", "A")
    assert holds("textField_title", "in", ["x", "Trip to Hangzhou"])
    assert holds("textField_title", "between", ["S", "U"])
    assert holds("textField_title", "eq", ["x", "Trip to Hangzhou"])  # eq with a list means in


def test_number_comparisons_are_numeric() -> None:
    assert holds("numberField_amount", "gt", 1000)
    assert holds("numberField_amount", "gt", "999.5")
    assert not holds("numberField_amount", "gt", 1200)
    assert holds("numberField_amount", "ge", 1200)
    assert holds("numberField_amount", "lt", 1200.01)
    assert holds("numberField_amount", "le", 1200)
    assert holds("numberField_amount", "eq", "1200.0")
    assert holds("numberField_amount", "between", [1000, None])
    assert holds("numberField_amount", "between", ["", 1200])
    assert not holds("numberField_amount", "between", [1201, 5000])
    assert holds("numberField_amount", "in", [5, 1200])
    assert holds("dateField_day", "lt", 1800000000000)


def test_numbers_compare_as_a_record_stores_them_and_a_search_reads_them() -> None:
    """A condition's number is read as a stored value is (``values.number_value``): the same match as a search."""
    stored = {"numberField_amount": 0.12345678901234568}  # what 0.1234567890123456789 is stored as
    assert holds("numberField_amount", "eq", "0.1234567890123456789", stored)
    assert holds("numberField_amount", "eq", 0.1234567890123456789, stored)
    big = {"numberField_amount": 9007199254740993}  # an integer within 64 bits: exact
    assert holds("numberField_amount", "eq", "9007199254740993", big)
    assert not holds("numberField_amount", "eq", "9007199254740992", big)
    with pytest.raises(InvalidArgument, match="expects a number"):
        holds("numberField_amount", "eq", "1e-400")  # no number (what a record refuses): stored as 0 it would match


def test_missing_values() -> None:
    empty: dict[str, Any] = {"textField_title": ""}
    assert holds("numberField_amount", "empty", data=empty)
    assert holds("textField_title", "empty", data=empty)
    assert not holds("textField_title", "not_empty", data=empty)
    assert holds("numberField_amount", "not_empty")
    assert not holds("numberField_amount", "gt", 0, data=empty)
    assert not holds("numberField_amount", "eq", 0, data=empty)
    assert holds("numberField_amount", "ne", 0, data=empty)  # a missing value equals nothing
    assert not holds("numberField_amount", "between", [None, None], data=empty)
    assert holds("employeeField_owner", "empty", data={"employeeField_owner": []})
    assert holds("addressField_addr", "empty", data={"addressField_addr": {}})
    assert not holds("addressField_addr", "empty")


def test_list_operators_on_scalars() -> None:
    assert holds("textField_title", "has_any", ["Trip to Hangzhou"])
    assert not holds("textField_title", "has_any", [])
    assert holds("textField_title", "has_all", [])
    assert not holds("textField_title", "has_all", ["Trip to Hangzhou", "x"])  # one value cannot be two
    assert holds("textField_title", "seq_eq", ["Trip to Hangzhou"])
    assert holds("textField_title", "eq", 5, data={"textField_title": "5"})  # bound as text, like SQL
    assert not holds("textField_title", "in", ["x"], data={})


def test_arrays_stored_loosely() -> None:
    assert holds("employeeField_owner", "eq", "wang", data={"employeeField_owner": "wang"})
    assert holds("employeeField_owner", "not_empty", data={"employeeField_owner": "wang"})
    assert not holds("employeeField_owner", "not_empty", data={"employeeField_owner": None})
    assert holds("checkboxField_tags", "has_any", [1], data={"checkboxField_tags": [1, 2]})


def test_option_fields_compare_stored_values() -> None:
    assert holds("selectField_kind", "eq", "travel")
    assert holds("selectField_kind", "in", ["meal", "travel"])
    assert holds("selectField_kind", "ne", "meal")


def test_array_operators() -> None:
    assert holds("checkboxField_tags", "eq", "urgent")  # contains
    assert holds("checkboxField_tags", "eq", ["urgent", "vat"])  # same list
    assert not holds("checkboxField_tags", "eq", ["vat", "urgent"])
    assert holds("checkboxField_tags", "ne", "other")
    assert holds("checkboxField_tags", "has_all", ["vat", "urgent"])
    assert not holds("checkboxField_tags", "has_all", ["vat", "other"])
    assert holds("checkboxField_tags", "has_all", [])
    assert holds("checkboxField_tags", "has_any", ["other", "vat"])
    assert not holds("checkboxField_tags", "has_any", [])
    assert holds("checkboxField_tags", "in", ["vat"])
    assert holds("checkboxField_tags", "seq_eq", ["urgent", "vat"])
    assert holds("checkboxField_tags", "like", "URG")
    assert not holds("checkboxField_tags", "like", '","')  # the elements, not their JSON text
    assert holds("checkboxField_tags", "substring", "urg") and not holds("checkboxField_tags", "substring", "URG")
    assert holds("checkboxField_tags", "not_substring", "URG")
    assert not holds("checkboxField_tags", "not_like", "URG") and holds("checkboxField_tags", "not_like", "zzz")
    assert holds("employeeField_owner", "has_any", '["wang"]')  # a JSON array text works as a list
    assert holds("cascadeSelectField_city", "prefix", ["浙江", "杭州"])
    assert not holds("cascadeSelectField_city", "prefix", ["杭州"])
    assert holds("cascadeSelectField_city", "prefix", [])
    assert not holds("checkboxField_tags", "has_any", ["vat"], data={})


def test_cascade_date_elements_and_other_components() -> None:
    assert holds("cascadeDateField_trip[0]", "ge", 1700000000000)
    assert holds("cascadeDateField_trip[1]", "gt", 1700000000000)
    assert not holds("cascadeDateField_trip[1]", "gt", 1, data={"cascadeDateField_trip": [5]})
    assert holds("addressField_addr", "like", "文三")
    assert not holds("addressField_addr", "like", "address")  # values are searched, not the keys they are under
    assert not holds("addressField_addr", "not_like", "文三")
    assert holds("countrySelectField_c", "has_any", ["US", "CN"])
    assert not holds("countrySelectField_c", "has_any", ["US"])


def test_sub_table_rows_some_row_matches() -> None:
    assert holds("numberField_price", "gt", 500, parent="tableField_items")
    assert not holds("numberField_price", "gt", 900, parent="tableField_items")
    assert holds("textField_item", "eq", "train", parent="tableField_items")
    assert not holds("textField_item", "eq", "train", parent="tableField_items", data={})


def test_and_or_trees() -> None:
    big = Condition("numberField_amount", "gt", 1000)
    meal = Condition("selectField_kind", "eq", "meal")
    assert matches(And((big, Or((meal, Condition("checkboxField_tags", "has_any", ["urgent"]))))), RECORD, FIELDS)
    assert not matches(And((big, meal)), RECORD, FIELDS)
    assert matches(Or((meal, big)), RECORD, FIELDS)
    assert matches(And(()), RECORD, FIELDS)
    assert not matches(Or(()), RECORD, FIELDS)


@pytest.mark.parametrize(
    ("cond", "problem"),
    [
        (Condition("textField_nope", "eq", "x"), "unknown field textField_nope"),
        (Condition("numberField_amount", "eq", "many"), "expects a number"),
        (Condition("numberField_amount", "like", "1"), "like is not supported on numbers"),
        (Condition("textField_title", "between", ["a"]), "between expects [low, high]"),
        (Condition("textField_title", "eq", {"a": 1}), "expects a single value"),
        (Condition("checkboxField_tags", "gt", "a"), "operator gt is not supported for array values"),
        (Condition("addressField_addr", "eq", "x"), "operator eq is not supported for other values"),
        (Condition("textField_item", "eq", "x", "textField_title"), "is not a sub-table"),
        (Condition("textField_title[0]", "eq", 1), "unknown field"),
        (Condition("textField_title", "matches", "x"), "unknown operator"),
        (Condition("textField_title", "like", ["x"]), "like expects a string"),
        (Condition("textField_title", "substring", None), "substring expects a string"),
        (Condition("numberField_amount", "substring", "1"), "substring is not supported on numbers"),
        (Condition("numberField_amount", "in", [1, None]), "expects a number"),
        (Condition("checkboxField_tags", "has_any", [["x"]]), "expects strings"),
    ],
)
def test_conditions_that_cannot_be_evaluated(cond: Condition, problem: str) -> None:
    found = condition_problem(cond, FIELDS)
    assert found is not None and problem in found
    with pytest.raises(InvalidArgument) as raised:
        matches(cond, RECORD, FIELDS)
    assert raised.value.reason == "condition.invalid"


def test_valid_conditions_have_no_problem() -> None:
    assert condition_problem(Condition("numberField_price", "ge", 1, "tableField_items"), FIELDS) is None
    assert condition_problem(Condition("employeeField_owner", "empty"), FIELDS) is None
