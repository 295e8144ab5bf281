"""Component value validation and normalisation (core, no database)."""

from __future__ import annotations

import pytest

from zida.core.apps.models import Field, Option
from zida.core.errors import InvalidArgument
from zida.core.records.values import ROW_ID, normalize_values

FIELDS = (
    Field("textField_a", "TextField", "标题", required=True),
    Field("numberField_n", "NumberField", "金额"),
    Field("selectField_s", "SelectField", "类别", options=(Option("travel", "差旅", "Travel"), Option("meal", "餐饮"))),
    Field("checkboxField_c", "CheckboxField", "标签", options=(Option("a", "a"), Option("b", "b"))),
    Field("dateField_d", "DateField", "日期"),
    Field("cascadeDateField_cd", "CascadeDateField", "区间"),
    Field("employeeField_e", "EmployeeField", "人员", multiple=False),
    Field("departmentSelectField_ds", "DepartmentSelectField", "部门"),
    Field("countrySelectField_co", "CountrySelectField", "国家"),
    Field("attachmentField_at", "AttachmentField", "附件"),
    Field(
        "tableField_t",
        "TableField",
        "明细",
        children=(
            Field("textField_r", "TextField", "项目", required=True),
            Field("numberField_r", "NumberField", "金额"),
        ),
    ),
)


def test_values_are_normalised_to_stored_shapes() -> None:
    data, refs = normalize_values(
        FIELDS,
        {
            "textField_a": "x",
            "numberField_n": "12.0",
            "selectField_s": "差旅",
            "checkboxField_c": "a",
            "dateField_d": "1700000000000",
            "cascadeDateField_cd": ["", 1700000000000],
            "employeeField_e": "u1",
            "departmentSelectField_ds": 10,
            "countrySelectField_co": ["CN"],
        },
        partial=False,
    )
    assert data["numberField_n"] == 12 and isinstance(data["numberField_n"], int)
    assert data["selectField_s"] == "travel"  # a label is stored as its option value
    assert data["checkboxField_c"] == ["a"]
    assert data["dateField_d"] == 1700000000000
    assert data["cascadeDateField_cd"] == [None, 1700000000000]
    assert data["employeeField_e"] == ["u1"]
    assert data["departmentSelectField_ds"] == ["10"]
    assert data["countrySelectField_co"] == [{"value": "CN"}]
    assert refs.user_ids == {"u1"} and refs.dept_ids == {"10"}


@pytest.mark.parametrize(
    ("values", "reason", "field"),
    [
        ({"textField_a": "x", "numberField_n": "abc"}, "form_data.expect_number", "numberField_n"),
        ({"textField_a": "x", "numberField_n": True}, "form_data.expect_number", "numberField_n"),
        ({"textField_a": "x", "selectField_s": "bus"}, "form_data.unknown_option", "selectField_s"),
        ({"textField_a": "x", "employeeField_e": ["u1", "u2"]}, "form_data.invalid_value", "employeeField_e"),
        (
            {"textField_a": "x", "departmentSelectField_ds": ["x1"]},
            "form_data.invalid_value",
            "departmentSelectField_ds",
        ),
        ({"textField_a": "x", "attachmentField_at": [{"name": "n"}]}, "form_data.invalid_value", "attachmentField_at"),
        ({"textField_a": {"a": 1}}, "form_data.expect_string", "textField_a"),
        ({"numberField_n": 1}, "form_data.required", "textField_a"),
        ({"textField_a": "x", "nope_1": 1}, "form_data.unknown_field", "nope_1"),
        (
            {"textField_a": "x", "tableField_t": [{"numberField_r": 1}]},
            "form_data.required",
            "tableField_t.textField_r",
        ),
        ({"textField_a": "x", "tableField_t": [{"zzz": 1}]}, "form_data.unknown_field", "tableField_t.zzz"),
    ],
)
def test_bad_values_name_the_field(values: dict[str, object], reason: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        normalize_values(FIELDS, values, partial=False)
    assert err.value.reason == reason
    assert err.value.details["field"] == field
    assert field.split(".")[0] in err.value.message


def test_partial_update_checks_only_given_fields_and_clears_nulls() -> None:
    data, _ = normalize_values(FIELDS, {"numberField_n": None}, partial=True)
    assert data == {"numberField_n": None}
    with pytest.raises(InvalidArgument):
        normalize_values(FIELDS, {"textField_a": ""}, partial=True)


def test_sub_table_rows_keep_their_row_id_when_sent_back() -> None:
    first, _ = normalize_values(FIELDS, {"textField_a": "x", "tableField_t": [{"textField_r": "r1"}]}, partial=False)
    row_id = first["tableField_t"][0][ROW_ID]
    second, _ = normalize_values(
        FIELDS,
        {"tableField_t": [{"rowId": row_id, "textField_r": "r1b"}, {"textField_r": "r2"}]},
        partial=True,
        current=first,
    )
    rows = second["tableField_t"]
    assert rows[0][ROW_ID] == row_id and rows[0]["textField_r"] == "r1b"
    assert rows[1][ROW_ID] != row_id
    forged, _ = normalize_values(FIELDS, {"tableField_t": [{"rowId": "forged", "textField_r": "r"}]}, partial=True)
    assert forged["tableField_t"][0][ROW_ID] != "forged"
