"""Component value validation and normalisation (core, no database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zida.core.apps.models import Field, Option
from zida.core.errors import InvalidArgument
from zida.core.records.values import (
    ROW_ID,
    ValueLimits,
    brief,
    configure_value_limits,
    is_number_text,
    normalize_values,
    value_limits,
)

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
        # A range that ends before it starts (the platform's picker never gives one; it was stored as given).
        (
            {"textField_a": "x", "cascadeDateField_cd": [1700000000001, 1700000000000]},
            "form_data.invalid_value",
            "cascadeDateField_cd",
        ),
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


# -- the request budget: text per component, record size, numbers (issue 9) ---------------------------------------

LONG_FIELDS = (
    Field("textField_a", "TextField", "标题"),
    Field("serialNumberField_s", "SerialNumberField", "编号"),
    Field("textareaField_b", "TextareaField", "备注"),
    Field("textareaField_c", "TextareaField", "补充"),
    Field("editorField_e", "EditorField", "正文"),
    Field("digitalSignatureField_g", "DigitalSignatureField", "签名"),
    Field("numberField_n", "NumberField", "金额"),
    Field("dateField_d", "DateField", "日期"),
    Field("employeeField_p", "EmployeeField", "人员"),
    Field("addressField_ad", "AddressField", "地址"),
    Field("tableField_t", "TableField", "明细", children=(Field("textField_r", "TextField", "项目"),)),
)


@pytest.fixture
def small_limits() -> Iterator[ValueLimits]:
    """Small limits in force for one test (the defaults again afterwards)."""
    before = value_limits()
    limits = ValueLimits(text_chars=10, textarea_chars=20, editor_chars=30, record_bytes=400)
    configure_value_limits(limits)
    yield limits
    configure_value_limits(before)


def test_default_text_limits_per_component() -> None:
    limits = value_limits()
    assert (limits.text_chars, limits.textarea_chars, limits.editor_chars) == (10_000, 50_000, 80_000)
    assert limits.record_bytes == 256 * 1024
    for field_id, chars in (
        ("textField_a", 10_000),
        ("serialNumberField_s", 10_000),
        ("textareaField_b", 50_000),
        ("editorField_e", 80_000),
        ("digitalSignatureField_g", 80_000),
    ):
        data, _ = normalize_values(LONG_FIELDS, {field_id: "中" * chars}, partial=True)
        assert len(data[field_id]) == chars
        with pytest.raises(InvalidArgument) as err:
            normalize_values(LONG_FIELDS, {field_id: "中" * (chars + 1)}, partial=True)
        assert err.value.reason == "form_data.too_long" and err.value.details["field"] == field_id
        assert f"at most {chars}" in err.value.message and len(err.value.message) < 200


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"textField_a": "x" * 11}, "textField_a"),
        ({"serialNumberField_s": "x" * 11}, "serialNumberField_s"),
        ({"textareaField_b": "x" * 21}, "textareaField_b"),
        ({"editorField_e": "x" * 31}, "editorField_e"),
        ({"digitalSignatureField_g": "x" * 31}, "digitalSignatureField_g"),
        ({"employeeField_p": ["u" * 11]}, "employeeField_p"),
        ({"tableField_t": [{"textField_r": "x" * 11}]}, "textField_r"),
    ],
)
def test_text_longer_than_its_component_allows_is_refused(
    small_limits: ValueLimits, values: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        normalize_values(LONG_FIELDS, values, partial=True)
    assert err.value.reason == "form_data.too_long"
    assert field in err.value.message


def test_text_at_its_limit_is_stored(small_limits: ValueLimits) -> None:
    data, _ = normalize_values(
        LONG_FIELDS,
        {"textField_a": "x" * 10, "textareaField_b": "x" * 20, "editorField_e": "x" * 30},
        partial=True,
    )
    assert [len(data[k]) for k in ("textField_a", "textareaField_b", "editorField_e")] == [10, 20, 30]


def test_a_record_larger_than_its_limit_is_refused(small_limits: ValueLimits) -> None:
    # Each value is within its component's limit; together (with JSON's quotes and keys) they are not.
    many = {"addressField_ad": {f"k{i}": "v" * 20 for i in range(20)}}
    with pytest.raises(InvalidArgument) as err:
        normalize_values(LONG_FIELDS, many, partial=False)
    assert err.value.reason == "form_data.too_large"
    assert "at most 400" in err.value.message


def test_more_sub_table_rows_than_a_record_holds_are_refused_before_any_is_built() -> None:
    """Each stored row holds its id: a million empty rows (3 MB of request) cannot fit 256 KB, and are refused at once
    (they used to be built, 39 MB of JSON, before the size check refused them, holding a worker for seconds)."""
    with pytest.raises(InvalidArgument) as err:
        normalize_values(LONG_FIELDS, {"tableField_t": [{}] * 1_000_000}, partial=False)
    assert err.value.reason == "form_data.too_large" and "1000000 rows" in err.value.message
    fits, _ = normalize_values(LONG_FIELDS, {"tableField_t": [{}] * 100}, partial=False)
    assert len(fits["tableField_t"]) == 100


def test_an_update_is_measured_merged_into_the_record(small_limits: ValueLimits) -> None:
    current, _ = normalize_values(LONG_FIELDS, {"addressField_ad": {"a": "v" * 300}}, partial=False)
    with pytest.raises(InvalidArgument) as err:  # 300 + 100 more bytes: past 400 together
        normalize_values(LONG_FIELDS, {"tableField_t": [{"textField_r": "x"}] * 10}, partial=True, current=current)
    assert err.value.reason == "form_data.too_large"
    # Replacing or clearing the large value is measured without it.
    normalize_values(LONG_FIELDS, {"addressField_ad": None, "textareaField_b": "x" * 20}, partial=True, current=current)
    normalize_values(LONG_FIELDS, {"addressField_ad": {"a": "short"}}, partial=True, current=current)


def test_nesting_past_what_json_encodes_is_a_clear_error() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(300):  # the dialects refuse this at parse time; the core does not rely on them
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    with pytest.raises(InvalidArgument) as err:
        normalize_values(LONG_FIELDS, {"addressField_ad": deep}, partial=True)
    assert err.value.reason == "form_data.too_deep"


@pytest.mark.parametrize(
    "text",
    ["１２", "١٢", "۱۲", "1_000", "12\u3000", "0x10", "1e", ".", "+-1", "∞", "nan", "Infinity", "1,5"],
)
def test_numbers_written_in_other_scripts_or_forms_are_refused(text: str) -> None:
    assert not is_number_text(text)
    for field_id in ("numberField_n", "dateField_d"):
        with pytest.raises(InvalidArgument) as err:
            normalize_values(LONG_FIELDS, {field_id: text}, partial=True)
        assert err.value.reason == "form_data.expect_number"


@pytest.mark.parametrize(("text", "number"), [("12", 12), (" -1.5 ", -1.5), ("1e3", 1000), (".5", 0.5), ("+7", 7)])
def test_ascii_numbers_as_text_are_read(text: str, number: float) -> None:
    assert is_number_text(text)
    data, _ = normalize_values(LONG_FIELDS, {"numberField_n": text}, partial=True)
    assert data["numberField_n"] == number


def test_a_tiny_number_text_is_refused_rather_than_stored_as_zero() -> None:
    with pytest.raises(InvalidArgument) as err:
        normalize_values(LONG_FIELDS, {"numberField_n": "1e-400"}, partial=True)
    assert err.value.reason == "form_data.expect_number"
    assert normalize_values(LONG_FIELDS, {"numberField_n": "0e-400"}, partial=True)[0]["numberField_n"] == 0


def test_error_messages_quote_values_briefly() -> None:
    for value in ("x" * 100_000, "中" * 50_000):
        with pytest.raises(InvalidArgument) as err:
            normalize_values(LONG_FIELDS, {"numberField_n": value}, partial=True)
        assert len(err.value.message) < 200
    with pytest.raises(InvalidArgument) as err:
        normalize_values(LONG_FIELDS, {"k" * 100_000: 1}, partial=True)
    assert len(err.value.message) < 200
    assert brief("abc") == "'abc'"
    assert brief("a" * 1000).endswith("(1000 characters)") and len(brief("a" * 1000)) < 80
    assert brief([[1]] * 5) == "an array of 5 items" and brief({"a": 1}) == "an object of 1 keys"
    assert len(brief(10**500)) < 80


def test_internal_row_keys_are_refused_and_row_ids_stay_unique() -> None:
    first, _ = normalize_values(FIELDS, {"textField_a": "x", "tableField_t": [{"textField_r": "r1"}]}, partial=False)
    row_id = first["tableField_t"][0][ROW_ID]
    with pytest.raises(InvalidArgument) as err:
        normalize_values(FIELDS, {"tableField_t": [{ROW_ID: row_id, "textField_r": "x"}]}, partial=True, current=first)
    assert err.value.reason == "form_data.internal_key"
    # The same rowId twice: the first row keeps it, the second becomes a new row.
    twice, _ = normalize_values(
        FIELDS,
        {"tableField_t": [{"rowId": row_id, "textField_r": "a"}, {"rowId": row_id, "textField_r": "b"}]},
        partial=True,
        current=first,
    )
    ids = [r[ROW_ID] for r in twice["tableField_t"]]
    assert ids[0] == row_id and ids[1] != row_id and len(set(ids)) == 2
