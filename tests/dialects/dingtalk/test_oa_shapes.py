"""OA ``formComponentValues`` (workflow_1_0, spec §6.2) to a record's values and back, without a server."""

from __future__ import annotations

import json

import pytest

from zida.core.apps.models import Field, Form, Option
from zida.core.errors import InvalidArgument
from zida.dialects.dingtalk.oa_shapes import component_type, form_values, render_values
from zida.dialects.dingtalk.shapes import Directory

ZONE = "Asia/Shanghai"
FIELDS = (
    Field("textField_a", "TextField", "标题", "Title"),
    Field("selectField_k", "SelectField", "类型", options=(Option("y", "年假"), Option("s", "事假"))),
    Field("multiSelectField_m", "MultiSelectField", "多选", options=(Option("a", "甲"), Option("b", "乙"))),
    Field("dateField_d", "DateField", "日期"),
    Field("cascadeDateField_r", "CascadeDateField", "区间"),
    Field("employeeField_e", "EmployeeField", "人员"),
    Field("departmentSelectField_p", "DepartmentSelectField", "部门"),
    Field(
        "tableField_t",
        "TableField",
        "明细",
        children=(Field("textField_i", "TextField", "项目"), Field("numberField_n", "NumberField", "金额")),
    ),
)
FORM = Form(1, 1, "APP_X", "FORM-X", "表", None, "process", 1, FIELDS, None, 0)


def _items(**values: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def test_string_formats_become_record_values() -> None:
    values = form_values(
        FORM,
        [
            *_items(
                Title="x",
                类型="年假",
                多选='["甲","b"]',
                日期="2025-03-01 09:30",
                人员="u1,u2",
                部门="-1,10",
                明细='[[{"name":"项目","value":"票"},{"name":"金额","value":"12"}]]',
            ),
            {"name": '["开始","区间"]', "value": '["2025-03-01","2025-03-02"]'},
        ],
        ZONE,
    )
    assert values["textField_a"] == "x" and values["selectField_k"] == "年假"
    assert values["multiSelectField_m"] == ["甲", "b"]
    assert values["dateField_d"] == 1740792600000  # 2025-03-01 09:30 in Shanghai
    assert values["cascadeDateField_r"] == [1740758400000, 1740844800000]
    assert values["employeeField_e"] == ["u1", "u2"]
    assert values["departmentSelectField_p"] == ["1", "10"]
    assert values["tableField_t"] == [{"textField_i": "票", "numberField_n": "12"}]


def test_an_id_names_the_field_whatever_the_label() -> None:
    assert form_values(FORM, [{"id": "textField_a", "name": "别名", "value": "v"}], ZONE) == {"textField_a": "v"}


@pytest.mark.parametrize(
    "items",
    [
        [{"name": "没有", "value": "1"}],
        [{"name": "日期", "value": "someday"}],
        [{"name": "多选", "value": "[1,"}],
        [{"name": "区间", "value": '["2025-03-01"]'}],
        [{"name": "标题", "value": {"an": "object"}}],
        [{"value": "no name"}],
    ],
)
def test_malformed_values_are_form_converter_errors(items: list[dict[str, object]]) -> None:
    with pytest.raises(InvalidArgument) as err:
        form_values(FORM, items, ZONE)
    assert err.value.reason == "oa.form_converter"


def test_record_values_render_as_strings() -> None:
    data = {
        "selectField_k": "y",
        "multiSelectField_m": ["a", "b"],
        "dateField_d": 1740758400000,
        "employeeField_e": ["u1"],
        "departmentSelectField_p": ["10"],
        "tableField_t": [{"__rowId": "r1", "textField_i": "票", "numberField_n": 12}],
    }
    rendered = {v["id"]: v for v in render_values(FIELDS, data, Directory({}, {}), ZONE)}
    assert rendered["textField_a"]["value"] == ""
    assert rendered["selectField_k"]["value"] == "年假"
    assert rendered["multiSelectField_m"]["value"] == '["甲","乙"]'
    assert rendered["dateField_d"]["value"] == "2025-03-01"
    assert rendered["employeeField_e"]["value"] == '["u1"]'
    assert rendered["departmentSelectField_p"]["value"] == "10"
    assert json.loads(rendered["tableField_t"]["value"]) == [
        [{"name": "项目", "value": "票"}, {"name": "金额", "value": "12"}]
    ]
    assert [component_type(f) for f in FIELDS] == [
        "TextField",
        "DDSelectField",
        "DDMultiSelectField",
        "DDDateField",
        "DDDateRangeField",
        "InnerContactField",
        "DepartmentField",
        "TableField",
    ]
