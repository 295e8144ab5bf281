"""Bad input through the official SDK: every one is a 400 in DingTalk's format (never a 500) and changes nothing.

NUL characters in parameters, form values and search values; numbers no double holds; far-future dates;
searches with thousands of conditions or values; and the legacy ``/gettoken`` asked with the wrong method.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from Tea.exceptions import TeaException

from tests.conformance.sdk import A_ALL, APP_A1, Sdk, expect_error

FORM = "FORM-A1ALL"
BAD = "invalidParameter.parameter.error"
EXPECT_NUMBER = "invalidParameter.parameter.expectDoubleButNonNumeric"
NUL = "\u0000"


def marker() -> str:
    return f"坏输入-{uuid.uuid4().hex[:10]}"


def cond(key: str, operator: str, value: Any, kind: str = "TEXT", component: str = "TextField", **extra: Any) -> Any:
    return {"key": key, "value": value, "type": kind, "operator": operator, "componentName": component, **extra}


def search(sdk: Sdk, conditions: Any, **fields: Any) -> Any:
    text = conditions if isinstance(conditions, str) else json.dumps(conditions)
    return sdk.call("search_form_datas", **APP_A1, user_id="admin1", form_uuid=FORM, search_field_json=text, **fields)


def query_all(sdk: Sdk, conditions: Any, **fields: Any) -> Any:
    text = conditions if isinstance(conditions, str) else json.dumps(conditions)
    return sdk.call(
        "search_form_data_second_generation",
        **APP_A1,
        user_id="admin1",
        form_uuid=FORM,
        search_condition=text,
        **fields,
    )


def titles(sdk: Sdk, m: str) -> int:
    return int(search(sdk, {"textField_t1": m}).body.total_count)


# -- NUL ---------------------------------------------------------------------------------------------------------


def _record(sdk: Sdk, m: str) -> str:
    body = sdk.call(
        "save_form_data", **APP_A1, user_id="admin1", form_uuid=FORM, form_data_json=json.dumps({"textField_t1": m})
    ).body
    return str(body.result)


# (name, call given a fresh record id and its title)
PARAM_CALLS: list[tuple[str, Callable[[Sdk, str, str], Any]]] = [
    (
        "save-userId",
        lambda sdk, i, m: sdk.call(
            "save_form_data",
            **APP_A1,
            user_id="admin1" + NUL,
            form_uuid=FORM,
            form_data_json=json.dumps({"textField_t1": m}),
        ),
    ),
    (
        "save-formUuid",
        lambda sdk, i, m: sdk.call(
            "save_form_data",
            **APP_A1,
            user_id="admin1",
            form_uuid=FORM + NUL,
            form_data_json=json.dumps({"textField_t1": m}),
        ),
    ),
    (
        "save-appType",
        lambda sdk, i, m: sdk.call(
            "save_form_data",
            app_type="APP_A1" + NUL,
            system_token=APP_A1["system_token"],
            user_id="admin1",
            form_uuid=FORM,
            form_data_json=json.dumps({"textField_t1": m}),
        ),
    ),
    (
        "save-systemToken",
        lambda sdk, i, m: sdk.call(
            "save_form_data",
            app_type="APP_A1",
            system_token=APP_A1["system_token"] + NUL,
            user_id="admin1",
            form_uuid=FORM,
            form_data_json=json.dumps({"textField_t1": m}),
        ),
    ),
    (
        "update-formInstanceId",
        lambda sdk, i, m: sdk.call(
            "update_form_data",
            **APP_A1,
            user_id="admin1",
            form_instance_id=i + NUL,
            update_form_data_json='{"numberField_n1": 1}',
        ),
    ),
    ("get-userId", lambda sdk, i, m: sdk.call("get_form_data_by_id", i, **APP_A1, user_id="admin1" + NUL)),
    (
        "delete-formInstanceId",
        lambda sdk, i, m: sdk.call("delete_form_data", **APP_A1, user_id="admin1", form_instance_id=i + NUL),
    ),
    (
        "search-originatorId",
        lambda sdk, i, m: search(sdk, {"textField_t1": m}, originator_id="admin1" + NUL),
    ),
    (
        "search-dynamicOrder",
        lambda sdk, i, m: search(sdk, {"textField_t1": m}, dynamic_order=json.dumps({"numberField_n1" + NUL: "+"})),
    ),
    (
        "batchGet-id",
        lambda sdk, i, m: sdk.call(
            "batch_get_form_data_by_id_list",
            **APP_A1,
            user_id="admin1",
            form_uuid=FORM,
            form_instance_id_list=[i + NUL],
        ),
    ),
    (
        "operationLogs-id",
        lambda sdk, i, m: sdk.call(
            "list_operation_logs", **APP_A1, user_id="admin1", form_uuid=FORM, form_instance_id_list=[i, i + NUL]
        ),
    ),
    (
        "remark-content",
        lambda sdk, i, m: sdk.call(
            "save_form_remark", **APP_A1, user_id="admin1", form_instance_id=i, content="a" + NUL
        ),
    ),
    (
        "remark-atUserId",
        lambda sdk, i, m: sdk.call(
            "save_form_remark", **APP_A1, user_id="admin1", form_instance_id=i, content="评论", at_user_id="u1" + NUL
        ),
    ),
]


@pytest.mark.parametrize("call", [c for _, c in PARAM_CALLS], ids=[n for n, _ in PARAM_CALLS])
def test_nul_in_a_parameter_is_a_bad_parameter(sdk: Sdk, call: Callable[[Sdk, str, str], Any]) -> None:
    m = marker()
    instance_id = _record(sdk, m)
    expect_error(lambda: call(sdk, instance_id, m), BAD, 400)
    assert titles(sdk, m) == 1  # nothing was saved, changed or deleted
    fd = sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id="admin1").body.form_data
    assert fd["textField_t1"] == m and "numberField_n1" not in fd
    remarks = sdk.call(
        "list_form_remarks", **APP_A1, user_id="admin1", form_uuid=FORM, form_instance_id_list=[instance_id]
    ).body.form_remark_vo_map
    assert remarks[instance_id] == []


FORM_VALUES = [
    ("text", "textField_t1", {"textField_t1": "a" + NUL + "b"}),
    ("textarea", "textareaField_ta1", {"textareaField_ta1": NUL}),
    ("option", "selectField_s1", {"selectField_s1": "travel" + NUL}),
    ("checkbox", "checkboxField_c1", {"checkboxField_c1": ["紧急" + NUL]}),
    ("employee", "employeeField_e1", {"employeeField_e1": ["u1" + NUL]}),
    ("sub-table-cell", "textField_row1", {"tableField_tb1": [{"textField_row1": "机票" + NUL}]}),
    ("key", "textField_t1" + NUL, {"textField_t1" + NUL: "x"}),
    ("address", "addressField_ad1", {"addressField_ad1": {"address": NUL, "regionIds": [330000]}}),
    ("editor", "editorField_ed1", {"editorField_ed1": "<p>" + NUL + "</p>"}),
]


@pytest.mark.parametrize(("named", "values"), [(n, v) for _, n, v in FORM_VALUES], ids=[i for i, _, _ in FORM_VALUES])
def test_nul_in_a_form_value_is_refused(sdk: Sdk, named: str, values: dict[str, Any]) -> None:
    m = marker()
    data = {"textField_t1": m, **values} if "textField_t1" not in values else {**values}
    expect_error(
        lambda: sdk.call("save_form_data", **APP_A1, user_id="admin1", form_uuid=FORM, form_data_json=json.dumps(data)),
        BAD,
        400,
    )
    expect_error(
        lambda: sdk.call(
            "batch_save_form_data",
            **APP_A1,
            user_id="admin1",
            form_uuid=FORM,
            form_data_json_list=[json.dumps({"textField_t1": m}), json.dumps(data)],
        ),
        BAD,
        400,
    )
    instance_id = _record(sdk, m)
    expect_error(
        lambda: sdk.call(
            "update_form_data",
            **APP_A1,
            user_id="admin1",
            form_instance_id=instance_id,
            update_form_data_json=json.dumps(values),
        ),
        BAD,
        400,
    )
    assert titles(sdk, m) == 1
    assert sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id="admin1").body.form_data["textField_t1"] == m


@pytest.mark.parametrize("text", ["\\u0000", "C:\\u0000\\dir", "\\\\u0000", "\\x00"], ids=["one", "path", "two", "hex"])
def test_backslash_u0000_as_text_is_ordinary_text(sdk: Sdk, text: str) -> None:
    # The six characters \u0000 (say, in a code snippet) are no NUL character: they are kept as written.
    m = marker()
    instance_id = sdk.call(
        "save_form_data",
        **APP_A1,
        user_id="admin1",
        form_uuid=FORM,
        form_data_json=json.dumps({"textField_t1": m, "textareaField_ta1": text}),
    ).body.result
    fd = sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id="admin1").body.form_data
    assert fd["textareaField_ta1"] == text
    found = search(
        sdk, [cond("textField_t1", "eq", m), cond("textareaField_ta1", "like", text, component="TextareaField")]
    )
    assert [d.form_instance_id for d in found.body.data] == [instance_id]


SEARCH_VALUES = [
    ("map-text", {"textField_t1": "a" + NUL}),
    ("map-select", {"selectField_s1": "travel" + NUL}),
    ("map-employee", {"employeeField_e1": ["u1" + NUL]}),
    ("map-sub-table", {"tableField_tb1": NUL}),
    ("array-like", [cond("textField_t1", "like", NUL)]),
    ("array-eq", [cond("textField_t1", "eq", "x" + NUL)]),
    ("array-in", [cond("selectField_s1", "in", ["travel", NUL], "ARRAY", "SelectField")]),
    ("array-employee", [cond("employeeField_e1", "contains", json.dumps(["u1" + NUL]), "STRING", "EmployeeField")]),
    ("array-sub-table", [cond("textField_row1", "like", NUL, parentId="tableField_tb1")]),
    ("array-originator", [cond("originator", "eq", "admin1" + NUL, "STRING", "EmployeeField")]),
    ("array-key", [cond("textField_t1" + NUL, "eq", "x")]),
]


@pytest.mark.parametrize("conditions", [c for _, c in SEARCH_VALUES], ids=[n for n, _ in SEARCH_VALUES])
def test_nul_in_a_search_is_a_bad_parameter(sdk: Sdk, conditions: Any) -> None:
    expect_error(lambda: search(sdk, conditions), BAD, 400)
    expect_error(lambda: query_all(sdk, conditions), BAD, 400)


# -- numbers no double holds -------------------------------------------------------------------------------------

HUGE = [
    ("gt-huge-text", [cond("numberField_n1", "gt", "1e400000", "DOUBLE", "NumberField")]),
    ("gt-tiny-text", [cond("numberField_n1", "gt", "1e-400", "DOUBLE", "NumberField")]),
    ("between-huge", [cond("numberField_n1", "between", ["0", "1e400000"], "DOUBLE", "NumberField")]),
    ("between-minus-huge", [cond("numberField_n1", "between", ["-1e400000", "0"], "DOUBLE", "NumberField")]),
    ("in-huge", [cond("numberField_n1", "in", ["1e400000"], "DOUBLE", "NumberField")]),
    ("date-huge", [cond("dateField_d1", "gt", "1e400000", "DOUBLE", "DateField")]),
    (
        "sub-table-huge",
        [cond("numberField_row1", "ge", "1e400000", "DOUBLE", "NumberField", parentId="tableField_tb1")],
    ),
    ("map-range-huge", {"numberField_n1": ["0", "1e400000"]}),
    ("map-exact-tiny", {"numberField_n1": "1e-400"}),
    ("map-date-huge", {"dateField_d1": ["1e400000", "1e400001"]}),
    ("literal-huge", '[{"key": "numberField_n1", "value": 1e400000, "type": "DOUBLE", "operator": "gt"}]'),
    ("nan", [cond("numberField_n1", "gt", "NaN", "DOUBLE", "NumberField")]),
    ("infinity", [cond("numberField_n1", "lt", "Infinity", "DOUBLE", "NumberField")]),
]


@pytest.mark.parametrize("conditions", [c for _, c in HUGE], ids=[n for n, _ in HUGE])
def test_numbers_beyond_a_double_are_refused(sdk: Sdk, conditions: Any) -> None:
    codes = {EXPECT_NUMBER, BAD}  # either names the problem; the spec fixes neither
    for run in (search, query_all):
        with pytest.raises(TeaException) as caught:
            run(sdk, conditions)
        data = caught.value.data
        assert data.get("statusCode") == 400 and data.get("code") in codes, data
        assert data.get("message") and data.get("requestid"), data


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('"1e400000"', EXPECT_NUMBER),
        ('"-1e400000"', EXPECT_NUMBER),
        # Underflows to 0: refused as the search refuses it, rather than stored as a different number.
        ('"1e-400"', EXPECT_NUMBER),
        ("1e400000", BAD),  # not JSON a parser can read into a double
    ],
    ids=["huge", "minus-huge", "tiny", "literal-huge"],
)
def test_a_number_value_beyond_a_double_is_refused(sdk: Sdk, text: str, code: str) -> None:
    m = marker()
    raw = '{"textField_t1": "%s", "numberField_n1": %s}' % (m, text)  # noqa: UP031 (JSON text as sent)
    err = expect_error(
        lambda: sdk.call("save_form_data", **APP_A1, user_id="admin1", form_uuid=FORM, form_data_json=raw), code, 400
    )
    if code == EXPECT_NUMBER:
        assert "numberField_n1" in err.data["message"]
    assert titles(sdk, m) == 0


# -- far-future dates --------------------------------------------------------------------------------------------


def test_the_last_day_of_year_9999_is_a_date(sdk: Sdk) -> None:
    # §4.3: ``yyyy-MM-dd`` is an inclusive day; 9999-12-31 is a valid one (a common "no end" sentinel).
    m = marker()
    instance_id = _record(sdk, m)
    for field in ("create_to_time_gmt", "modified_to_time_gmt"):
        body = search(sdk, {"textField_t1": m}, **{field: "9999-12-31"}).body
        assert [d.form_instance_id for d in body.data] == [instance_id]
        assert [
            d.form_instance_id
            for d in query_all(sdk, [cond("textField_t1", "eq", m)], **{field: "9999-12-31"}).body.data
        ] == [instance_id]
    for field in ("create_from_time_gmt", "modified_from_time_gmt"):
        assert search(sdk, {"textField_t1": m}, **{field: "9999-12-31"}).body.total_count == 0
        assert search(sdk, {"textField_t1": m}, **{field: "9999-12-31 23:59:59"}).body.total_count == 0
    ids = sdk.call(
        "search_form_data_id_list",
        "APP_A1",
        FORM,
        system_token=APP_A1["system_token"],
        user_id="admin1",
        search_field_json=json.dumps({"textField_t1": m}),
        create_to_time_gmt="9999-12-31",
    ).body
    assert ids.data == [instance_id]
    for bad in ("10000-01-01", "9999-12-32", "9999-12-31 24:00:00"):
        expect_error(lambda bad=bad: search(sdk, {"textField_t1": m}, create_to_time_gmt=bad), BAD, 400)


# -- very large searches -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1001, 5000])
def test_a_search_with_thousands_of_conditions_is_refused(sdk: Sdk, count: int) -> None:
    conditions = [cond("textField_t1", "like", f"x{i}") for i in range(count)]
    expect_error(lambda: search(sdk, conditions), BAD, 400)
    expect_error(lambda: query_all(sdk, conditions), BAD, 400)
    expect_error(lambda: search(sdk, conditions, logic_operator="OR"), BAD, 400)
    expect_error(
        lambda: sdk.call(
            "create_or_update_form_data",
            **APP_A1,
            user_id="admin1",
            form_uuid=FORM,
            search_condition=json.dumps(conditions),
            form_data_json=json.dumps({"textField_t1": "x"}),
        ),
        BAD,
        400,
    )


@pytest.mark.parametrize(
    "condition",
    [
        cond("textField_t1", "in", [f"v{i}" for i in range(40_000)]),
        cond("selectField_s1", "in", [f"v{i}" for i in range(40_000)], "ARRAY", "SelectField"),
        cond("numberField_n1", "in", list(range(40_000)), "DOUBLE", "NumberField"),
        cond("employeeField_e1", "contains", json.dumps([f"u{i}" for i in range(40_000)]), "STRING", "EmployeeField"),
    ],
    ids=["text", "select", "number", "employee"],
)
def test_an_in_list_of_forty_thousand_values_is_refused(sdk: Sdk, condition: dict[str, Any]) -> None:
    expect_error(lambda: search(sdk, [condition]), BAD, 400)
    expect_error(lambda: query_all(sdk, [condition]), BAD, 400)


def test_forty_thousand_ids_in_one_batch_are_refused(sdk: Sdk) -> None:
    ids = [f"FINST-{i}" for i in range(40_000)]
    for api in ("batch_get_form_data_by_id_list", "list_operation_logs", "list_form_remarks"):
        expect_error(
            lambda api=api: sdk.call(api, **APP_A1, user_id="admin1", form_uuid=FORM, form_instance_id_list=ids),
            BAD,
            400,
        )


# -- the legacy token endpoint -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params", [{}, {"appkey": A_ALL[0], "appsecret": A_ALL[1]}], ids=["no-parameters", "good-credentials"]
)
def test_gettoken_by_post_is_errcode_43001(base_url: str, params: dict[str, str]) -> None:
    # oapi answers every error with HTTP 200 and {errcode, errmsg} (dingtalk-platform §0.5, §2.1).
    response = httpx.post(f"{base_url}/gettoken", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"errcode": 43001, "errmsg": "需要GET请求"}
