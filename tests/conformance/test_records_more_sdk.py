"""Form records through the official SDK, in depth: validation, permissions, updates and every search feature."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conformance.sdk import APP_A1, Sdk, expect_error
from zida.settings import load_settings

FORM = "FORM-A1ALL"
Save = Callable[..., str]


def marker() -> str:
    """A title no other test uses, so searches see only this test's records."""
    return f"标记-{uuid.uuid4().hex[:10]}"


def get(sdk: Sdk, instance_id: str, user: str = "admin1", **fields: Any) -> Any:
    return sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id=user, **fields).body


def update(sdk: Sdk, instance_id: str, data: dict[str, Any], user: str = "admin1", **fields: Any) -> Any:
    fields.setdefault("app_type", APP_A1["app_type"])
    return sdk.call(
        "update_form_data",
        system_token=APP_A1["system_token"],
        user_id=user,
        form_instance_id=instance_id,
        update_form_data_json=json.dumps(data),
        **fields,
    )


def delete(sdk: Sdk, instance_id: str, user: str = "admin1") -> Any:
    return sdk.call("delete_form_data", **APP_A1, user_id=user, form_instance_id=instance_id)


def search(sdk: Sdk, conditions: Any = None, user: str = "admin1", **fields: Any) -> Any:
    if conditions is not None:
        fields["search_field_json"] = conditions if isinstance(conditions, str) else json.dumps(conditions)
    return sdk.call("search_form_datas", **APP_A1, user_id=user, form_uuid=FORM, **fields).body


def id_list(sdk: Sdk, conditions: Any = None, user: str = "admin1", **fields: Any) -> Any:
    if conditions is not None:
        fields["search_field_json"] = json.dumps(conditions)
    return sdk.call(
        "search_form_data_id_list", "APP_A1", FORM, system_token=APP_A1["system_token"], user_id=user, **fields
    ).body


def cond(key: str, operator: str, value: Any, component: str, kind: str, **extra: Any) -> dict[str, Any]:
    """One element of the filter-array syntax."""
    return {"key": key, "value": value, "type": kind, "operator": operator, "componentName": component, **extra}


def title_like(text: str) -> dict[str, Any]:
    return cond("textField_t1", "like", text, "TextField", "TEXT")


# -- input validation --------------------------------------------------------------------------------------------

EXPECT_NUMBER = "invalidParameter.parameter.expectDoubleButNonNumeric"
INVALID = "invalidState.form.invalidFormData"

BAD_VALUES = [
    ("numberField_n1", "abc", EXPECT_NUMBER),
    ("numberField_n1", True, EXPECT_NUMBER),
    ("rateField_r1", "five", EXPECT_NUMBER),
    ("dateField_d1", "tomorrow", EXPECT_NUMBER),
    ("cascadeDateField_cd1", ["start", "end"], EXPECT_NUMBER),
    ("cascadeDateField_cd1", "1700000000000", INVALID),
    ("dateField_d1", 1e30, EXPECT_NUMBER),  # not a date: beyond year 9999
    ("cascadeDateField_cd1", [1700000000000, 2**63], EXPECT_NUMBER),
    ("departmentSelectField_ds1", [2**63], INVALID),
    ("textField_t1", {"a": 1}, INVALID),
    ("textareaField_ta1", [1, 2], INVALID),
    ("radioField_ra1", "丙", INVALID),
    ("selectField_s1", "hotel", INVALID),
    ("checkboxField_c1", ["不存在"], INVALID),
    ("checkboxField_c1", {"a": 1}, INVALID),
    ("multiSelectField_m1", [{"a": 1}], INVALID),
    ("employeeField_e1", {"userId": "u1"}, INVALID),
    ("departmentSelectField_ds1", ["R&D"], INVALID),
    ("citySelectField_city1", {"province": "110000"}, INVALID),
    ("addressField_ad1", 42, INVALID),
    ("countrySelectField_co1", [{"name": "China"}], INVALID),
    ("cascadeSelectField_cs1", {"a": "b"}, INVALID),
    ("attachmentField_at1", "a.txt", INVALID),
    ("attachmentField_at1", [{"name": "a.txt"}], INVALID),
    ("imageField_im1", 7, INVALID),
    ("associationFormField_as1", [{"title": "no instance"}], INVALID),
    ("serialNumberField_sn1", ["SN-1"], INVALID),
    ("editorField_ed1", {"html": "<p/>"}, INVALID),
    ("digitalSignatureField_sg1", False, INVALID),
    ("tableField_tb1", {"textField_row1": "x"}, INVALID),
]


@pytest.mark.parametrize(("field_id", "value", "code"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_a_wrong_value_names_the_field(sdk: Sdk, save: Save, field_id: str, value: Any, code: str) -> None:
    data = {"textField_t1": "校验", field_id: value}
    err = expect_error(lambda: save(data), code, 400)
    assert field_id in err.data["message"]


@pytest.mark.parametrize(
    ("row", "named"),
    [({"numberField_row1": "eight hundred"}, "numberField_row1"), ({"ghost_row": "x"}, "ghost_row")],
    ids=["child-type", "unknown-child"],
)
def test_a_wrong_sub_table_cell_names_the_cell(save: Save, row: dict[str, Any], named: str) -> None:
    err = expect_error(
        lambda: save({"textField_t1": "子表", "tableField_tb1": [row]}),
        EXPECT_NUMBER if named == "numberField_row1" else INVALID,
        400,
    )
    assert named in err.data["message"]


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"numberField_n1": 1}, "textField_t1"),
        ({"textField_t1": ""}, "textField_t1"),
        ({"textField_t1": None}, "textField_t1"),
        ({"textField_t1": "x", "textField_ghost": "y"}, "textField_ghost"),
        ({"textField_t1": "x", "employeeField_e1": ["u1", "ghost-user"]}, "ghost-user"),
        ({"textField_t1": "x", "departmentSelectField_ds1": ["999"]}, "999"),
    ],
    ids=["required-missing", "required-empty", "required-null", "unknown-field", "unknown-employee", "unknown-dept"],
)
def test_form_level_validation(save: Save, data: dict[str, Any], named: str) -> None:
    err = expect_error(lambda: save(data), INVALID, 400)
    assert named in err.data["message"]


def test_form_data_json_must_be_a_json_object(sdk: Sdk) -> None:
    def save_raw(text: str) -> Any:
        return sdk.call("save_form_data", **APP_A1, user_id="admin1", form_uuid=FORM, form_data_json=text)

    expect_error(lambda: save_raw("{not json"), "invalidParameter.parameter.error", 400)
    expect_error(lambda: save_raw('["textField_t1"]'), "invalidState.form.formDataIsBlank", 400)
    expect_error(
        lambda: sdk.call("save_form_data", **APP_A1, user_id="admin1", form_uuid=FORM),
        "invalidParameter.parameter.parameterIsEmpty",
        400,
    )


def test_save_to_a_receipt_form_and_to_an_unknown_form(sdk: Sdk, save: Save) -> None:
    instance_id = save({"textField_name": "简单", "numberField_qty": "3"}, form="FORM-A1SIMPLE")
    assert get(sdk, instance_id).form_data == {
        "textField_name": "简单",
        "numberField_qty": 3,
        "numberField_qty_value": "3",
    }
    expect_error(lambda: save({"textField_t1": "x"}, form="FORM-NOPE"), "invalidState.form.formNotExist", 400)
    expect_error(lambda: save({"textField_x": "x"}, form="FORM-A2ONE"), "invalidState.form.formNotExist", 400)


def test_every_component_round_trips_in_output_shapes(sdk: Sdk, save: Save) -> None:
    address = {"address": "文三路", "regionIds": [330000, 330100, 330106], "regionText": [{"zh_CN": "浙江省"}]}
    link = [
        {
            "appType": "APP_A1",
            "formType": "receipt",
            "formUuid": "FORM-A1SIMPLE",
            "instanceId": "FINST-X",
            "title": "关联",
        }
    ]
    instance_id = save(
        {
            "textField_t1": "全组件",
            "textareaField_ta1": "多行\n文本",
            "numberField_n1": "12.5",
            "rateField_r1": 4,
            "radioField_ra1": "乙",
            "selectField_s1": "差旅",  # a label is accepted and stored as the option value
            "multiSelectField_m1": ["x", "z"],
            "citySelectField_city1": ["110000", "110100", "110101"],
            "addressField_ad1": address,
            "countrySelectField_co1": [{"value": "CN"}],
            "cascadeSelectField_cs1": ["part", "part_b"],
            "cascadeDateField_cd1": ["", "1700086400000"],
            "imageField_im1": [{"url": "/img/1.png", "name": "1.png"}],
            "associationFormField_as1": link,
            "serialNumberField_sn1": "SN-0001",
            "editorField_ed1": "<p>富文本</p>",
            "digitalSignatureField_sg1": "/sign/1.png",
            "departmentSelectField_ds1": 20,
        }
    )
    fd = get(sdk, instance_id).form_data
    assert fd["textareaField_ta1"] == "多行\n文本"
    assert fd["numberField_n1"] == 12.5 and fd["numberField_n1_value"] == "12.5"
    assert fd["rateField_r1"] == 4 and fd["rateField_r1_value"] == "4"
    assert fd["radioField_ra1"] == "乙" and fd["radioField_ra1_id"] == "乙"
    assert fd["selectField_s1"] == "差旅" and fd["selectField_s1_id"] == "travel"
    assert fd["multiSelectField_m1"] == ["x", "z"] and fd["multiSelectField_m1_id"] == ["x", "z"]
    assert fd["citySelectField_city1_id"] == ["110000", "110100", "110101"]
    assert json.loads(fd["addressField_ad1"]) == address
    assert json.loads(json.loads(fd["addressField_ad1_id"])) == address
    assert fd["countrySelectField_co1"] == [{"value": "CN"}] and fd["countrySelectField_co1_id"] == ["CN"]
    assert fd["cascadeSelectField_cs1"] == ["part", "part_b"]
    assert fd["cascadeDateField_cd1"] == ["", "1700086400000"]
    assert json.loads(fd["imageField_im1"]) == [{"url": "/img/1.png", "name": "1.png"}]
    assert fd["associationFormField_as1"] == link
    assert json.loads(json.loads(fd["associationFormField_as1_id"])) == link
    assert fd["serialNumberField_sn1"] == "SN-0001"
    assert fd["editorField_ed1"] == "<p>富文本</p>"
    assert fd["digitalSignatureField_sg1"] == "/sign/1.png"
    assert fd["departmentSelectField_ds1"] == "市场部" and fd["departmentSelectField_ds1_id"] == ["20"]
    english = get(sdk, instance_id, language="en_US").form_data
    assert english["selectField_s1"] == "Travel"


# -- update ------------------------------------------------------------------------------------------------------


def test_update_is_partial_and_replaces_a_sub_table_whole(sdk: Sdk, save: Save) -> None:
    instance_id = save(
        {
            "textField_t1": "更新前",
            "numberField_n1": 1,
            "checkboxField_c1": ["紧急"],
            "tableField_tb1": [
                {"textField_row1": "机票", "numberField_row1": 800},
                {"textField_row1": "酒店", "numberField_row1": 300},
            ],
        }
    )
    before = get(sdk, instance_id)
    response = update(sdk, instance_id, {"numberField_n1": 2, "tableField_tb1": [{"textField_row1": "火车"}]})
    assert response.status_code == 200
    after = get(sdk, instance_id)
    fd = after.form_data
    assert fd["textField_t1"] == "更新前" and fd["checkboxField_c1"] == ["紧急"]
    assert fd["numberField_n1"] == 2
    assert fd["tableField_tb1"] == [{"textField_row1": "火车"}]
    assert after.originator.user_id == "admin1"
    assert after.modified_time_gmt >= before.modified_time_gmt
    # null clears a field; a required field cannot be cleared.
    update(sdk, instance_id, {"checkboxField_c1": None})
    assert "checkboxField_c1" not in get(sdk, instance_id).form_data
    expect_error(lambda: update(sdk, instance_id, {"textField_t1": ""}), INVALID, 400)


def test_update_without_app_type_uses_the_records_app(sdk: Sdk, save: Save) -> None:
    instance_id = save({"textField_t1": "无appType"})
    update(sdk, instance_id, {"numberField_n1": 7}, app_type=None)
    assert get(sdk, instance_id).form_data["numberField_n1"] == 7


def test_an_invalid_update_changes_nothing(sdk: Sdk, save: Save) -> None:
    instance_id = save({"textField_t1": "不变", "numberField_n1": 1})
    err = expect_error(
        lambda: update(sdk, instance_id, {"textField_t1": "变了", "numberField_n1": "abc"}), EXPECT_NUMBER, 400
    )
    assert "numberField_n1" in err.data["message"]
    expect_error(lambda: update(sdk, instance_id, {"ghost": 1}), INVALID, 400)
    expect_error(lambda: update(sdk, instance_id, {"employeeField_e1": ["ghost-user"]}), INVALID, 400)
    fd = get(sdk, instance_id).form_data
    assert (fd["textField_t1"], fd["numberField_n1"]) == ("不变", 1)
    assert "employeeField_e1" not in fd


def test_update_and_delete_of_an_unknown_record(sdk: Sdk) -> None:
    missing = "FINST-DOES-NOT-EXIST"
    gone = "invalidState.form.dataDoesNotExistOrIsDeleted"
    expect_error(lambda: update(sdk, missing, {"numberField_n1": 1}), gone, 400)
    expect_error(lambda: update(sdk, missing, {"numberField_n1": 1}, app_type=None), gone, 400)
    expect_error(lambda: delete(sdk, missing), gone, 400)
    expect_error(lambda: get(sdk, missing), gone, 400)


# -- who may touch which record ----------------------------------------------------------------------------------

DENY = "noPermission.permission.deny"


def test_a_member_manages_own_records_only(sdk: Sdk, save: Save) -> None:
    mine = save({"textField_t1": "u2的记录", "numberField_n1": 1}, user="u2")
    theirs = save({"textField_t1": "admin1的记录"}, user="admin1")
    got = get(sdk, mine, user="u2")
    assert got.originator.user_id == "u2" and got.originator.name.name_in_chinese == "李四"
    update(sdk, mine, {"numberField_n1": 5}, user="u2")
    assert get(sdk, mine, user="u2").form_data["numberField_n1"] == 5
    expect_error(lambda: get(sdk, theirs, user="u2"), DENY, 400)
    expect_error(lambda: update(sdk, theirs, {"numberField_n1": 5}, user="u2"), DENY, 400)
    expect_error(lambda: delete(sdk, theirs, user="u2"), DENY, 400)
    assert "numberField_n1" not in get(sdk, theirs).form_data  # admin1's record untouched
    # The app admin may touch anyone's record.
    update(sdk, mine, {"numberField_n1": 6}, user="admin1")
    assert get(sdk, mine, user="admin1").form_data["numberField_n1"] == 6
    delete(sdk, mine, user="u2")
    expect_error(lambda: get(sdk, mine, user="u2"), "invalidState.form.dataDoesNotExistOrIsDeleted", 400)


def test_a_member_searches_only_own_records(sdk: Sdk, save: Save) -> None:
    m = marker()
    own = save({"textField_t1": f"{m}-u2"}, user="u2")
    others = {save({"textField_t1": f"{m}-admin"}), save({"textField_t1": f"{m}-u3"}, user="u3")}
    assert {d.form_instance_id for d in search(sdk, [title_like(m)], user="u2").data} == {own}
    assert search(sdk, [title_like(m)], user="u2").total_count == 1
    assert id_list(sdk, [title_like(m)], user="u2").data == [own]
    assert {d.form_instance_id for d in search(sdk, [title_like(m)]).data} == others | {own}
    # Asking for someone else's records as a member yields nothing, not an error.
    assert search(sdk, [title_like(m)], user="u2", originator_id="admin1").total_count == 0


# -- search: response shape, paging, order -----------------------------------------------------------------------


def test_search_response_shape(sdk: Sdk, save: Save) -> None:
    m = marker()
    instance_id = save({"textField_t1": m, "employeeField_e1": ["u1"]}, user="u1")
    update(sdk, instance_id, {"numberField_n1": 3}, user="admin1")
    body = search(sdk, {"textField_t1": m})
    assert body.current_page == 1 and body.total_count == 1
    item = body.data[0]
    assert item.form_instance_id == instance_id
    assert item.form_uuid == FORM
    assert isinstance(item.data_id, int)
    assert item.creator_user_id == "u1" and item.modifier_user_id == "admin1"
    assert item.originator.user_id == "u1"
    assert item.originator.user_name.name_in_chinese == "张三"
    assert item.originator.user_name.name_in_english == "Zhang San"
    assert item.modify_user.user_id == "admin1"
    assert item.created_time_gmt.endswith("Z") and item.modified_time_gmt.endswith("Z")
    assert item.version == 1
    assert item.title
    assert item.form_data["employeeField_e1"] == ["张三"] and item.form_data["employeeField_e1_id"] == ["u1"]
    assert item.form_data["numberField_n1"] == 3


def test_search_pages_default_to_ten_and_stop_at_a_hundred(sdk: Sdk, save: Save) -> None:
    m = marker()
    ids = [save({"textField_t1": f"{m}-{i:02d}", "numberField_n1": i}) for i in range(12)]
    first = search(sdk, {"textField_t1": m})
    assert (first.current_page, first.total_count, len(first.data)) == (1, 12, 10)
    assert [d.form_instance_id for d in first.data] == ids[::-1][:10]  # newest first
    second = search(sdk, {"textField_t1": m}, current_page=2)
    assert [d.form_instance_id for d in second.data] == ids[::-1][10:]
    assert second.current_page == 2
    assert len(search(sdk, {"textField_t1": m}, page_size=100).data) == 12
    ids_page = id_list(sdk, {"textField_t1": m})
    assert (ids_page.page_number, ids_page.total_count, len(ids_page.data)) == (1, 12, 10)
    assert id_list(sdk, {"textField_t1": m}, page_number=2, page_size=5).data == ids[::-1][5:10]
    for bad in ({"page_size": 101}, {"page_size": 0}, {"current_page": 0}, {"current_page": 2**40}):
        expect_error(lambda bad=bad: search(sdk, {"textField_t1": m}, **bad), "invalidParameter.parameter.error", 400)
    for bad in ({"page_size": 101}, {"page_number": 0}):
        expect_error(lambda bad=bad: id_list(sdk, {"textField_t1": m}, **bad), "invalidParameter.parameter.error", 400)


def test_dynamic_order(sdk: Sdk, save: Save) -> None:
    m = marker()
    ids = [save({"textField_t1": m, "numberField_n1": n, "rateField_r1": r}) for n, r in ((2, 1), (1, 1), (3, 0))]
    ascending = search(sdk, {"textField_t1": m}, dynamic_order=json.dumps({"numberField_n1": "+"}))
    assert [d.form_data["numberField_n1"] for d in ascending.data] == [1, 2, 3]
    descending = search(sdk, {"textField_t1": m}, dynamic_order=json.dumps({"numberField_n1": "-"}))
    assert [d.form_data["numberField_n1"] for d in descending.data] == [3, 2, 1]
    two_keys = search(sdk, {"textField_t1": m}, dynamic_order=json.dumps({"rateField_r1": "-", "numberField_n1": "+"}))
    assert [d.form_data["numberField_n1"] for d in two_keys.data] == [1, 2, 3]
    oldest_first = search(sdk, {"textField_t1": m}, dynamic_order=json.dumps({"gmt_create": "+"}))
    assert [d.form_instance_id for d in oldest_first.data] == ids
    for bad in ('{"ghost": "+"}', '{"numberField_n1": "up"}', "not json", '["numberField_n1"]'):
        expect_error(
            lambda bad=bad: search(sdk, {"textField_t1": m}, dynamic_order=bad), "invalidParameter.parameter.error", 400
        )


# -- search: the filter array and the map syntax -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trio(sdk: Sdk) -> tuple[str, dict[str, str]]:
    """Three records (a, b by admin1; c by u2) under one marker, for the operator tests."""
    m = marker()

    def add(data: dict[str, Any], user: str = "admin1") -> str:
        body = sdk.call(
            "save_form_data",
            **APP_A1,
            user_id=user,
            form_uuid=FORM,
            form_data_json=json.dumps({"textField_t1": m, **data}),
        ).body
        return str(body.result)

    records = {
        "a": add(
            {
                "numberField_n1": 1,
                "checkboxField_c1": ["紧急", "其他"],
                "selectField_s1": "travel",
                "employeeField_e1": ["u1", "u2"],
                "dateField_d1": 1700000000000,
                "citySelectField_city1": ["110000", "110100"],
                "departmentSelectField_ds1": ["10"],
                "cascadeDateField_cd1": ["1700000000000", "1700086400000"],
                "countrySelectField_co1": [{"value": "JP"}, {"value": "CN"}],
                "tableField_tb1": [{"textField_row1": "机票", "numberField_row1": 800}],
            }
        ),
        "b": add(
            {
                "numberField_n1": 5,
                "checkboxField_c1": ["可抵扣"],
                "selectField_s1": "meal",
                "employeeField_e1": ["u2"],
                "dateField_d1": 1800000000000,
                "citySelectField_city1": ["310000"],
                "departmentSelectField_ds1": ["20"],
                "countrySelectField_co1": [{"value": "CN"}],
                "tableField_tb1": [{"textField_row1": "酒店", "numberField_row1": 300}],
            }
        ),
        "c": add({"textField_t1": f"{m}-Special", "numberField_n1": 9, "textareaField_ta1": "备注ABC"}, user="u2"),
    }
    return m, records


FILTERS = [
    ("text-eq", cond("textField_t1", "eq", None, "TextField", "TEXT"), "ab"),
    ("text-like", cond("textField_t1", "like", "special", "TextField", "TEXT"), "c"),
    ("textarea-like", cond("textareaField_ta1", "like", "abc", "TextareaField", "TEXT"), "c"),
    ("number-eq", cond("numberField_n1", "eq", 5, "NumberField", "DOUBLE"), "b"),
    ("number-gt", cond("numberField_n1", "gt", 1, "NumberField", "DOUBLE"), "bc"),
    ("number-ge", cond("numberField_n1", "ge", 5, "NumberField", "DOUBLE"), "bc"),
    ("number-lt", cond("numberField_n1", "lt", 5, "NumberField", "DOUBLE"), "a"),
    ("number-le", cond("numberField_n1", "le", 5, "NumberField", "DOUBLE"), "ab"),
    ("number-between", cond("numberField_n1", "between", [2, 9], "NumberField", "DOUBLE"), "bc"),
    ("number-as-text", cond("numberField_n1", "ge", "5", "NumberField", "DOUBLE"), "bc"),
    ("date-between", cond("dateField_d1", "between", [1600000000000, 1750000000000], "DateField", "DOUBLE"), "a"),
    ("date-gt", cond("dateField_d1", "gt", 1750000000000, "DateField", "DOUBLE"), "b"),
    ("checkbox-contains", cond("checkboxField_c1", "contains", ["紧急"], "CheckboxField", "ARRAY"), "a"),
    ("checkbox-contains-all", cond("checkboxField_c1", "contains", ["紧急", "可抵扣"], "CheckboxField", "ARRAY"), ""),
    ("checkbox-eq", cond("checkboxField_c1", "eq", "可抵扣", "CheckboxField", "ARRAY"), "b"),
    ("select-in", cond("selectField_s1", "in", ["travel", "meal"], "SelectField", "ARRAY"), "ab"),
    ("select-in-label", cond("selectField_s1", "in", ["餐饮"], "SelectField", "ARRAY"), "b"),
    ("select-eq", cond("selectField_s1", "eq", "travel", "SelectField", "ARRAY"), "a"),
    ("employee-eq", cond("employeeField_e1", "eq", "u1", "EmployeeField", "STRING"), "a"),
    ("employee-contains", cond("employeeField_e1", "contains", '["u2"]', "EmployeeField", "STRING"), "ab"),
    ("employee-contains-any", cond("employeeField_e1", "contains", '["u1","u3"]', "EmployeeField", "STRING"), "a"),
    # A country is searched by its code in any shape the field is written or read in (saved, _id, a code).
    (
        "country-contains-saved",
        cond("countrySelectField_co1", "contains", [{"value": "JP"}], "CountrySelectField", "ARRAY"),
        "a",
    ),
    ("country-contains-ids", cond("countrySelectField_co1", "contains", ["CN"], "CountrySelectField", "ARRAY"), "ab"),
    (
        "country-contains-all",
        cond("countrySelectField_co1", "contains", '["CN","JP"]', "CountrySelectField", "ARRAY"),
        "a",
    ),
    ("country-eq", cond("countrySelectField_co1", "eq", "JP", "CountrySelectField", "ARRAY"), "a"),
    ("country-in", cond("countrySelectField_co1", "in", ["JP", "US"], "CountrySelectField", "ARRAY"), "a"),
    ("country-like", cond("countrySelectField_co1", "like", "jp", "CountrySelectField", "ARRAY"), "a"),
    ("country-like-key", cond("countrySelectField_co1", "like", "value", "CountrySelectField", "ARRAY"), ""),
    ("sub-table-like", cond("textField_row1", "like", "酒", "TextField", "TEXT", parentId="tableField_tb1"), "b"),
    ("sub-table-gt", cond("numberField_row1", "gt", 500, "NumberField", "DOUBLE", parentId="tableField_tb1"), "a"),
    ("originator", cond("originator", "eq", "u2", "EmployeeField", "STRING"), "c"),
    ("number-beyond-64-bits", cond("numberField_n1", "lt", 1e30, "NumberField", "DOUBLE"), "abc"),
    ("number-between-huge", cond("numberField_n1", "between", [2**64, 1e300], "NumberField", "DOUBLE"), ""),
    ("date-beyond-64-bits", cond("dateField_d1", "gt", 1e30, "DateField", "DOUBLE"), ""),
]


@pytest.mark.parametrize(("condition", "expected"), [(c, e) for _, c, e in FILTERS], ids=[n for n, _, _ in FILTERS])
def test_filter_array_operators(
    sdk: Sdk, trio: tuple[str, dict[str, str]], condition: dict[str, Any], expected: str
) -> None:
    m, records = trio
    if condition["value"] is None:
        condition = {**condition, "value": m}
    body = search(sdk, [title_like(m), condition])
    names = {name for name, instance_id in records.items() if instance_id in {d.form_instance_id for d in body.data}}
    assert "".join(sorted(names)) == expected
    assert body.total_count == len(expected)
    ids = id_list(sdk, [title_like(m), condition])
    assert set(ids.data) == {records[n] for n in expected}


MAP_FILTERS = [
    ("number-range", {"numberField_n1": ["2", "9"]}, "bc"),
    ("number-exact", {"numberField_n1": 1}, "a"),
    ("checkbox-subset", {"checkboxField_c1": ["其他"]}, "a"),
    ("select-label", {"selectField_s1": "差旅"}, "a"),
    ("select-value", {"selectField_s1": "meal"}, "b"),
    ("employee-exact", {"employeeField_e1": ["u1", "u2"]}, "a"),
    ("employee-exact-order", {"employeeField_e1": ["u2", "u1"]}, ""),
    ("date-range", {"dateField_d1": [1750000000000, 1850000000000]}, "b"),
    ("city-prefix", {"citySelectField_city1": ["110000"]}, "a"),
    ("department", {"departmentSelectField_ds1": 20}, "b"),
    ("cascade-date", {"cascadeDateField_cd1": [[1690000000000, 1710000000000], ["", ""]]}, "a"),
    ("sub-table-text", {"tableField_tb1": "机票"}, "a"),
    ("country-saved-shape", {"countrySelectField_co1": [{"value": "CN"}]}, "ab"),
    ("country-ids", {"countrySelectField_co1": ["JP"]}, "a"),
    ("country-code", {"countrySelectField_co1": "CN"}, "ab"),
    ("country-every", {"countrySelectField_co1": ["CN", "US"]}, ""),
    ("empty-value-ignored", {"numberField_n1": ""}, "abc"),
    ("number-range-beyond-64-bits", {"numberField_n1": [0, 1e30]}, "abc"),
]


@pytest.mark.parametrize(
    ("conditions", "expected"), [(c, e) for _, c, e in MAP_FILTERS], ids=[n for n, _, _ in MAP_FILTERS]
)
def test_map_syntax(sdk: Sdk, trio: tuple[str, dict[str, str]], conditions: dict[str, Any], expected: str) -> None:
    m, records = trio
    body = search(sdk, {"textField_t1": m, **conditions})
    found = {d.form_instance_id for d in body.data}
    assert "".join(sorted(n for n, i in records.items() if i in found)) == expected


def test_originator_id(sdk: Sdk, trio: tuple[str, dict[str, str]]) -> None:
    m, records = trio
    assert [d.form_instance_id for d in search(sdk, {"textField_t1": m}, originator_id="u2").data] == [records["c"]]
    assert id_list(sdk, {"textField_t1": m}, originator_id="admin1").total_count == 2
    assert search(sdk, {"textField_t1": m}, originator_id="ghost").total_count == 0


BAD_SEARCHES = [
    ("not-json", "{not json", "invalidParameter.parameter.error"),
    ("scalar", "5", "invalidParameter.parameter.error"),
    ("item-not-object", "[1]", "invalidParameter.parameter.error"),
    ("item-without-key", json.dumps([{"value": 1, "operator": "eq"}]), "invalidParameter.parameter.error"),
    ("unknown-field", json.dumps([cond("ghost", "eq", 1, "TextField", "TEXT")]), "invalidParameter.parameter.error"),
    ("unknown-map-field", json.dumps({"ghost": "x"}), "invalidParameter.parameter.error"),
    (
        "country-without-code",
        json.dumps({"countrySelectField_co1": [{"name": "China"}]}),
        "invalidParameter.parameter.error",
    ),
    (
        "unknown-operator",
        json.dumps([cond("numberField_n1", "approx", 1, "NumberField", "DOUBLE")]),
        "invalidState.openSearch.componentCanNotSupportThisOperatorType",
    ),
    (
        "like-on-number",
        json.dumps([cond("numberField_n1", "like", 1, "NumberField", "DOUBLE")]),
        "invalidState.openSearch.componentCanNotSupportThisOperatorType",
    ),
    (
        "number-not-numeric",
        json.dumps([cond("numberField_n1", "gt", "abc", "NumberField", "DOUBLE")]),
        "invalidParameter.parameter.expectDoubleButNonNumeric",
    ),
    (
        "between-one-bound",
        json.dumps([cond("numberField_n1", "between", [1], "NumberField", "DOUBLE")]),
        "invalidParameter.parameter.error",
    ),
    (
        "parent-not-a-table",
        json.dumps([cond("textField_row1", "like", "x", "TextField", "TEXT", parentId="textField_t1")]),
        "invalidParameter.parameter.error",
    ),
    (
        "child-not-in-table",
        json.dumps([cond("textField_t1", "like", "x", "TextField", "TEXT", parentId="tableField_tb1")]),
        "invalidParameter.parameter.error",
    ),
    ("map-range-of-three", json.dumps({"numberField_n1": [1, 2, 3]}), "invalidParameter.parameter.error"),
]


@pytest.mark.parametrize(("text", "code"), [(t, c) for _, t, c in BAD_SEARCHES], ids=[n for n, _, _ in BAD_SEARCHES])
def test_malformed_search_is_a_client_error(sdk: Sdk, text: str, code: str) -> None:
    expect_error(lambda: search(sdk, text), code, 400)
    expect_error(
        lambda: sdk.call(
            "search_form_data_id_list",
            "APP_A1",
            FORM,
            system_token=APP_A1["system_token"],
            user_id="admin1",
            search_field_json=text,
        ),
        code,
        400,
    )


# -- search: create / modified time ranges -----------------------------------------------------------------------


def test_time_ranges_in_both_formats(sdk: Sdk, save: Save) -> None:
    zone = ZoneInfo(load_settings().timezone)  # the server's zone for yyyy-MM-dd[ HH:mm:ss]
    m = marker()
    before = datetime.now(zone) - timedelta(seconds=2)
    instance_id = save({"textField_t1": m})
    after = datetime.now(zone) + timedelta(seconds=2)
    day = before.strftime("%Y-%m-%d")
    yesterday = (before - timedelta(days=1)).strftime("%Y-%m-%d")
    tomorrow = (after + timedelta(days=1)).strftime("%Y-%m-%d")

    def second(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def found(**window: str) -> bool:
        hits = [d.form_instance_id for d in search(sdk, {"textField_t1": m}, **window).data]
        ids = id_list(sdk, {"textField_t1": m}, **window).data
        assert hits == ids
        return hits == [instance_id]

    # yyyy-MM-dd covers the whole day, both ends inclusive.
    assert found(create_from_time_gmt=day, create_to_time_gmt=day)
    assert found(create_from_time_gmt=yesterday)
    assert not found(create_to_time_gmt=yesterday)
    assert not found(create_from_time_gmt=tomorrow)
    # yyyy-MM-dd HH:mm:ss is a point in time.
    assert found(create_from_time_gmt=second(before), create_to_time_gmt=second(after))
    assert not found(create_from_time_gmt=second(after))
    assert not found(create_to_time_gmt=second(before))
    assert found(modified_from_time_gmt=second(before), modified_to_time_gmt=tomorrow)
    assert not found(modified_to_time_gmt=second(before))
    assert not found(modified_from_time_gmt=tomorrow)
    for bad in ("yesterday", "2024/01/01", "2024-13-01", "99999999999999999999"):
        expect_error(
            lambda bad=bad: search(sdk, {"textField_t1": m}, create_from_time_gmt=bad),
            "invalidParameter.parameter.error",
            400,
        )


# -- a form named next to a record -------------------------------------------------------------------------------

OTHER_FORM = "invalidParameter.parameter.incorrectFormUuid"


def test_a_form_named_with_a_record_must_be_the_records_form(sdk: Sdk, save: Save) -> None:
    # A mix-up of records and forms in an integration must fail loudly, not write the record of another form.
    title = marker()
    instance_id = save({"textField_t1": title, "tableField_tb1": [{"textField_row1": "原行"}]})
    rows = sdk.call(
        "list_table_data_by_form_instance_id_table_id",
        instance_id,
        **APP_A1,
        user_id="admin1",
        form_uuid=FORM,
        table_field_id="tableField_tb1",
        need_row_id=True,
    ).body.data
    row_id = rows[0]["rowId"]

    def refused(wrong: str) -> None:
        on_record = {**APP_A1, "user_id": "admin1", "form_instance_id": instance_id, "form_uuid": wrong}
        get_v2 = {**APP_A1, "user_id": "admin1", "form_uuid": wrong, "version": 2}
        expect_error(lambda: sdk.call("get_form_data_by_id", instance_id, **get_v2), OTHER_FORM, 400)
        expect_error(
            lambda: update(sdk, instance_id, {"textField_t1": "改"}, form_uuid=wrong, version=2), OTHER_FORM, 400
        )
        expect_error(
            lambda: sdk.call(
                "update_sub_table_by_row_id",
                **on_record,
                version=2,
                table_field_id="tableField_tb1",
                update_sub_table_data_json=json.dumps([{"rowId": row_id, "textField_row1": "改行"}]),
            ),
            OTHER_FORM,
            400,
        )
        expect_error(lambda: sdk.call("save_form_remark", **on_record, content="评论"), OTHER_FORM, 400)
        expect_error(
            lambda: sdk.call(
                "list_table_data_by_form_instance_id_table_id",
                instance_id,
                **APP_A1,
                user_id="admin1",
                form_uuid=wrong,
                table_field_id="tableField_tb1",
            ),
            OTHER_FORM,
            400,
        )

    refused("FORM-A1SIMPLE")  # another form of the app
    refused("FORM-NOPE")  # no form at all
    # Nothing was written; with its own form every call goes through.
    data = get(sdk, instance_id).form_data
    assert data["textField_t1"] == title and [r["textField_row1"] for r in data["tableField_tb1"]] == ["原行"]
    remarks = sdk.call(
        "list_form_remarks", **APP_A1, user_id="admin1", form_uuid=FORM, form_instance_id_list=[instance_id]
    ).body.form_remark_vo_map
    assert not (remarks or {}).get(instance_id)
    assert update(sdk, instance_id, {"textField_t1": title + "改"}, form_uuid=FORM, version=2).status_code == 200
    assert sdk.call(
        "save_form_remark", **APP_A1, user_id="admin1", form_instance_id=instance_id, form_uuid=FORM, content="评"
    ).body.result
    got = sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id="admin1", form_uuid=FORM, version=2).body
    assert got.form_data["textField_t1"] == title + "改"
