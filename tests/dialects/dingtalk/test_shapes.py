"""Response shapes of the Yida dialect that need no server: the ``*TimeGMT`` format, ``formData`` of every
component (labels, companions, people, sub-table rows) and the person objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zida.core.apps.models import Field, Option
from zida.core.org.models import Department, User
from zida.dialects.dingtalk.shapes import Directory, form_data, gmt, person, referenced_in


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (1_763_483_100_000, "2025-11-18T16:25Z"),  # the example api.dingtalk.com gives
        (1_763_483_159_999, "2025-11-18T16:25Z"),  # seconds and milliseconds are dropped, not rounded
        (0, "1970-01-01T00:00Z"),
        (-1, "1969-12-31T23:59Z"),
        (253_402_300_799_000, "9999-12-31T23:59Z"),
    ],
)
def test_gmt_is_utc_at_minute_precision(ms: int, text: str) -> None:
    assert gmt(ms) == text
    assert gmt(ms) == datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))  # years 1 to 9999
def test_gmt_matches_the_calendar_for_any_instant(ms: int) -> None:
    d = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    assert gmt(ms) == f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}Z"
    assert gmt(ms) == gmt(ms)  # the second time from the remembered day
    assert gmt(float(ms)) == gmt(ms)  # a time read as a float (exact below 2**53) is the same instant


KINDS = (Option("a", "甲", "Alpha"), Option("b", "乙"), Option("c", "丙", "乙"))
FIELDS = (
    Field("textField_t", "TextField", "T"),
    Field("selectField_s", "SelectField", "S", options=KINDS),
    Field("radioField_r", "RadioField", "R", options=KINDS),
    Field("checkboxField_c", "CheckboxField", "C", options=KINDS),
    Field("multiSelectField_m", "MultiSelectField", "M", options=KINDS),
    Field("numberField_n", "NumberField", "N"),
    Field("rateField_r", "RateField", "Rate"),
    Field("cascadeDateField_d", "CascadeDateField", "D"),
    Field("employeeField_e", "EmployeeField", "E"),
    Field("departmentSelectField_d", "DepartmentSelectField", "Dept"),
    Field("countrySelectField_c", "CountrySelectField", "Country"),
    Field("citySelectField_c", "CitySelectField", "City"),
    Field("addressField_a", "AddressField", "A"),
    Field("attachmentField_a", "AttachmentField", "Files"),
    Field("associationFormField_a", "AssociationFormField", "Assoc"),
    Field("dateField_d", "DateField", "Date"),
    Field(
        "tableField_t",
        "TableField",
        "Rows",
        children=(
            Field("selectField_k", "SelectField", "K", options=KINDS),
            Field("employeeField_p", "EmployeeField", "P"),
        ),
    ),
)
DIRECTORY = Directory(
    {
        "u1": User(1, "u1", "张三", "Zhang San", "z@x.cn", None, None, "union1", (7,), "研发部"),
        "u2": User(2, "u2", "李四", None, None, None, None, "union2", (7,), None),
    },
    {7: Department(7, 7, "研发部", "R&D", 1, ())},
)
DATA = {
    "textField_t": "hello",
    "selectField_s": "a",
    "radioField_r": "乙",  # a label is found too, and shown in the asked language
    "checkboxField_c": ["a", "zzz"],  # an unknown value is shown as itself
    "multiSelectField_m": ["c"],
    "numberField_n": 12.5,
    "rateField_r": 4,
    "cascadeDateField_d": [1700000000000, None],
    "employeeField_e": ["u1", "ghost"],
    "departmentSelectField_d": ["7", "999", "x"],
    "countrySelectField_c": [{"value": "CN", "text": "中国"}],
    "citySelectField_c": ["浙江", "杭州"],
    "addressField_a": {"regionIds": [1, 2], "address": "文一西路"},
    "attachmentField_a": [{"name": "a.pdf", "url": "/f/1"}],
    "associationFormField_a": [{"instanceId": "FINST-1", "title": "t"}],
    "dateField_d": 1700000000000,
    "tableField_t": [{"selectField_k": "b", "employeeField_p": ["u2"], "__rowId": "r1"}, {"selectField_k": None}],
    "notInTheSchema": "dropped",
}


def test_form_data_of_every_component() -> None:
    shown = form_data(FIELDS, DATA, DIRECTORY)
    assert shown == {
        "textField_t": "hello",
        "selectField_s": "甲",
        "selectField_s_id": "a",
        "radioField_r": "乙",
        "radioField_r_id": "乙",
        "checkboxField_c": ["甲", "zzz"],
        "checkboxField_c_id": ["a", "zzz"],
        "multiSelectField_m": ["丙"],
        "multiSelectField_m_id": ["c"],
        "numberField_n": 12.5,
        "numberField_n_value": "12.5",
        "rateField_r": 4,
        "rateField_r_value": "4",
        "cascadeDateField_d": ["1700000000000", ""],
        "employeeField_e": ["张三", "ghost"],
        "employeeField_e_id": ["u1", "ghost"],
        "departmentSelectField_d": "研发部,999,x",
        "departmentSelectField_d_id": ["7", "999", "x"],
        "countrySelectField_c": [{"value": "CN", "text": "中国"}],
        "countrySelectField_c_id": ["CN"],
        "citySelectField_c": ["浙江", "杭州"],
        "citySelectField_c_id": ["浙江", "杭州"],
        "addressField_a": '{"regionIds":[1,2],"address":"文一西路"}',
        "addressField_a_id": '"{\\"regionIds\\":[1,2],\\"address\\":\\"文一西路\\"}"',
        "attachmentField_a": '[{"name":"a.pdf","url":"/f/1"}]',
        "associationFormField_a": [{"instanceId": "FINST-1", "title": "t"}],
        "associationFormField_a_id": '"[{\\"instanceId\\":\\"FINST-1\\",\\"title\\":\\"t\\"}]"',
        "dateField_d": 1700000000000,
        "tableField_t": [
            {"selectField_k": "乙", "selectField_k_id": "b", "employeeField_p": ["李四"], "employeeField_p_id": ["u2"]},
            {},
        ],
    }
    # The schema's order, each companion right after its field.
    assert list(shown)[:3] == ["textField_t", "selectField_s", "selectField_s_id"]


def test_form_data_in_english_and_with_row_ids() -> None:
    shown = form_data(FIELDS, DATA, DIRECTORY, "en_US", row_ids=True)
    assert shown["selectField_s"] == "Alpha"
    assert shown["radioField_r"] == "乙"  # option b has no English label: the Chinese one
    assert shown["employeeField_e"] == ["Zhang San", "ghost"]
    assert shown["tableField_t"][0]["rowId"] == "r1"
    assert "rowId" not in shown["tableField_t"][1]


def test_an_option_is_the_first_whose_value_or_label_matches() -> None:
    # "乙" is option b's Chinese label and option c's English one: b comes first, as in the schema.
    assert form_data(FIELDS, {"selectField_s": "乙"}, DIRECTORY)["selectField_s"] == "乙"
    assert form_data(FIELDS, {"selectField_s": "Alpha"}, DIRECTORY)["selectField_s"] == "甲"
    # A value no option can be (not a string) is shown as stored.
    assert form_data(FIELDS, {"selectField_s": ["a"]}, DIRECTORY)["selectField_s"] == ["a"]


def test_referenced_people_and_departments() -> None:
    users: set[str] = set()
    depts: set[int] = set()
    referenced_in(FIELDS, DATA, users, depts)
    assert users == {"u1", "ghost", "u2"}
    assert depts == {7, 999}


def test_person_objects_are_made_once_per_directory() -> None:
    directory = Directory(DIRECTORY.users, DIRECTORY.depts)
    first = person(directory, "u1", name_key="userName", dept_key=None)
    assert first == {
        "userId": "u1",
        "userName": {"nameInChinese": "张三", "nameInEnglish": "Zhang San", "type": "i18n"},
    }
    assert person(directory, "u1", name_key="userName", dept_key=None) is first
    full = person(directory, "u1", dept_key="departmentName", with_type=False)
    assert full == {
        "userId": "u1",
        "name": {"nameInChinese": "张三", "nameInEnglish": "Zhang San"},
        "departmentName": "研发部",
        "email": "z@x.cn",
    }
    assert person(directory, "ghost")["name"] == {"nameInChinese": "ghost", "nameInEnglish": "ghost", "type": "i18n"}
