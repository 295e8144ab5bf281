"""Apps and form schemas through the official SDK: listApplication, form lists, component definitions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.conformance.sdk import APP_A1, APP_A2, B_ALL, Sdk, expect_error

TASK_API_CODE = "code-of-corp-a"


def org_token(user_id: str, corp_id: str = "corpA", code: str = TASK_API_CODE) -> str:
    """``upper(md5(corpId + userId + taskApiCode))``, as Yida support hands it out."""
    return hashlib.md5((corp_id + user_id + code).encode()).hexdigest().upper()


def list_apps(sdk: Sdk, user_id: str, **fields: Any) -> Any:
    fields.setdefault("org_token", org_token(user_id))
    return sdk.call("list_application", corp_id="corpA", user_id=user_id, **fields).body


# -- listApplication ---------------------------------------------------------------------------------------------


def test_list_application_gives_system_token_only_to_app_admins(sdk: Sdk) -> None:
    body = list_apps(sdk, "admin1")
    assert body.total_count == 2 and body.page_number == 1
    apps = {a.app_type: a for a in body.data}
    assert set(apps) == {"APP_A1", "APP_A2"}
    a1 = apps["APP_A1"]
    assert a1.name == "甲应用"
    assert a1.corp_id == "corpA"
    assert a1.application_status == "ONLINE" and a1.inexistence == "n"
    assert a1.system_token == APP_A1["system_token"]  # admin1 administers APP_A1
    assert apps["APP_A2"].system_token is None  # ...but not APP_A2 (u1 does)
    u1 = {a.app_type: a.system_token for a in list_apps(sdk, "u1").data}
    assert u1 == {"APP_A1": None, "APP_A2": APP_A2["system_token"]}
    u3 = {a.app_type: a.system_token for a in list_apps(sdk, "u3").data}
    assert u3 == {"APP_A1": None, "APP_A2": None}


def test_list_application_token_is_case_insensitive_md5(sdk: Sdk) -> None:
    assert list_apps(sdk, "u2", org_token=org_token("u2").lower()).total_count == 2


def test_list_application_pages(sdk: Sdk) -> None:
    first = list_apps(sdk, "admin1", page_number=1, page_size=1)
    second = list_apps(sdk, "admin1", page_number=2, page_size=1)
    third = list_apps(sdk, "admin1", page_number=3, page_size=1)
    assert (first.total_count, second.total_count, third.total_count) == (2, 2, 2)
    assert second.page_number == 2
    assert [a.app_type for a in first.data + second.data] == ["APP_A1", "APP_A2"]
    assert third.data == []


def test_list_application_keyword(sdk: Sdk) -> None:
    body = list_apps(sdk, "admin1", app_name_search_keyword="二")
    assert [a.app_type for a in body.data] == ["APP_A2"]
    assert body.total_count == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"org_token": org_token("admin1")}, "invalidState.authorization.invalidAuthorizationInformation"),
        (
            {"org_token": org_token("u2", code="wrong-code")},
            "invalidState.authorization.invalidAuthorizationInformation",
        ),
        (
            {"org_token": org_token("u2", corp_id="corpB"), "corp_id": "corpB"},
            "invalidState.authorization.invalidAuthorizationInformation",
        ),
        ({"org_token": None}, "invalidParameter.parameter.parameterIsEmpty"),
        ({"page_size": 101}, "invalidParameter.parameter.error"),
    ],
    ids=["token-of-another-user", "wrong-task-api-code", "other-corp-id", "no-token", "page-size-101"],
)
def test_list_application_rejects(sdk: Sdk, fields: dict[str, object], code: str) -> None:
    fields = {"corp_id": "corpA", "org_token": org_token("u2"), **fields}
    expect_error(lambda: sdk.call("list_application", user_id="u2", **fields), code, 400)


def test_list_application_unknown_user(sdk: Sdk) -> None:
    expect_error(lambda: list_apps(sdk, "ghost"), "failure.user.userNotExist", 400)


def test_list_application_other_corp_sees_its_own_apps(sdk: Sdk) -> None:
    body = sdk.call(
        "list_application",
        corp_id="corpB",
        user_id="bAdmin",
        org_token=org_token("bAdmin", corp_id="corpB", code="code-of-corp-b"),
        token=sdk.token(B_ALL),
    ).body
    assert [(a.app_type, a.corp_id) for a in body.data] == [("APP_B1", "corpB")]


# -- getFormListInApp / pageFormBaseInfos ------------------------------------------------------------------------


def test_get_form_list_in_app(sdk: Sdk) -> None:
    body = sdk.call("get_form_list_in_app", **APP_A1, user_id="u3").body
    assert body.success is True
    result = body.result
    assert result.current_page == 1 and result.total_count == 2
    forms = {f.form_uuid: f for f in result.data}
    assert set(forms) == {"FORM-A1ALL", "FORM-A1SIMPLE"}
    all_form = forms["FORM-A1ALL"]
    assert (all_form.title.zh_cn, all_form.title.en_us) == ("全组件", "All components")
    assert all_form.form_type == "receipt"
    assert all_form.gmt_create.endswith("Z")
    # A title without an English text falls back to Chinese.
    assert (forms["FORM-A1SIMPLE"].title.zh_cn, forms["FORM-A1SIMPLE"].title.en_us) == ("简单表单", "简单表单")


def test_get_form_list_in_app_filters_types_and_pages(sdk: Sdk) -> None:
    receipts = sdk.call("get_form_list_in_app", **APP_A1, user_id="u3", form_types="receipt,process").body.result
    assert receipts.total_count == 2
    processes = sdk.call("get_form_list_in_app", **APP_A1, user_id="u3", form_types="process").body.result
    assert (processes.total_count, processes.data) == (0, [])
    page2 = sdk.call("get_form_list_in_app", **APP_A1, user_id="u3", page_number=2, page_size=1).body.result
    assert page2.current_page == 2 and page2.total_count == 2
    assert [f.form_uuid for f in page2.data] == ["FORM-A1SIMPLE"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"form_types": "bogus"}, "invalidParameter.parameter.error"),
        ({"page_size": 101}, "invalidParameter.parameter.error"),
        ({"page_number": 0}, "invalidParameter.parameter.error"),
        ({"page_number": 2**40}, "invalidParameter.parameter.error"),
    ],
    ids=["unknown-type", "page-size-101", "page-0", "page-beyond-int32"],
)
def test_get_form_list_in_app_rejects(sdk: Sdk, fields: dict[str, object], code: str) -> None:
    expect_error(lambda: sdk.call("get_form_list_in_app", **APP_A1, user_id="u3", **fields), code, 400)


def test_get_form_list_in_app_of_another_app(sdk: Sdk) -> None:
    body = sdk.call("get_form_list_in_app", **APP_A2, user_id="u3").body
    assert [(f.form_uuid, f.title.zh_cn) for f in body.result.data] == [("FORM-A2ONE", "应用二表单")]


def test_page_form_base_infos(sdk: Sdk) -> None:
    body = sdk.call(
        "page_form_base_infos",
        app_key="APP_A1",
        system_token=APP_A1["system_token"],
        user_id="u3",
        form_type_list=["receipt"],
        page_index=1,
        page_size=1,
    ).body
    assert body.success is True
    assert body.result.current_page == 1 and body.result.total_count == 2
    assert [f.form_uuid for f in body.result.data] == ["FORM-A1ALL"]
    assert body.result.data[0].title.en_us == "All components"
    none = sdk.call(
        "page_form_base_infos",
        app_key="APP_A1",
        system_token=APP_A1["system_token"],
        user_id="u3",
        form_type_list=["process"],
    ).body.result
    assert none.total_count == 0


def test_page_form_base_infos_needs_app_key(sdk: Sdk) -> None:
    expect_error(
        lambda: sdk.call("page_form_base_infos", system_token=APP_A1["system_token"], user_id="u3"),
        "invalidParameter.parameter.parameterIsEmpty",
        400,
    )


# -- getFormComponentDefinitionList ------------------------------------------------------------------------------


def definitions(sdk: Sdk, form: str = "FORM-A1ALL", **fields: Any) -> list[Any]:
    return sdk.call(
        "get_form_component_definition_list",
        "APP_A1",
        form,
        system_token=APP_A1["system_token"],
        user_id="u3",
        **fields,
    ).body.result


def test_component_definitions_list_every_component(sdk: Sdk) -> None:
    result = definitions(sdk)
    by_id = {c.field_id: c for c in result}
    assert len(result) == 25  # 23 components + 2 sub-table children
    assert (by_id["textField_t1"].component_name, by_id["textField_t1"].label) == ("TextField", "标题")
    assert by_id["textField_t1"].parent_id is None
    assert by_id["tableField_tb1"].component_name == "TableField"
    for child in ("textField_row1", "numberField_row1"):
        assert by_id[child].parent_id == "tableField_tb1"
    assert by_id["numberField_row1"].component_name == "NumberField"
    # Children follow their table.
    ids = [c.field_id for c in result]
    assert ids.index("textField_row1") == ids.index("tableField_tb1") + 1


def test_component_definitions_language_and_version(sdk: Sdk) -> None:
    english = {c.field_id: c.label for c in definitions(sdk, language="en_US")}
    assert english["selectField_s1"] == "Kind"
    assert english["textField_t1"] == "标题"  # no English label: Chinese
    v1 = definitions(sdk, form_version=1)
    assert [c.field_id for c in v1] == [c.field_id for c in definitions(sdk)]
    expect_error(lambda: definitions(sdk, form_version=99), "invalidState.form.formNotExist", 400)


def test_component_definitions_of_unknown_or_foreign_form(sdk: Sdk) -> None:
    expect_error(lambda: definitions(sdk, "FORM-NOPE"), "invalidState.form.formNotExist", 400)
    expect_error(lambda: definitions(sdk, "FORM-A2ONE"), "invalidState.form.formNotExist", 400)


# -- getFieldDefByUuid -------------------------------------------------------------------------------------------


def test_field_definitions(sdk: Sdk) -> None:
    body = sdk.call("get_field_def_by_uuid", **APP_A1, form_uuid="FORM-A1ALL", user_id="u3").body
    assert body.success is True
    by_id = {f.field_id: f for f in body.result}
    assert len(by_id) == 23
    title = by_id["textField_t1"]
    assert title.component_name == "TextField"
    assert title.label == {"zh_CN": "标题", "en_US": "标题", "type": "i18n"}
    assert title.props["required"] is True and title.props["fieldId"] == "textField_t1"
    assert title.behavior == "NORMAL"
    assert title.children in ("", None)
    select = by_id["selectField_s1"]
    assert select.label == {"zh_CN": "类别", "en_US": "Kind", "type": "i18n"}
    assert select.props["required"] is False
    assert select.props["dataSource"] == [
        {"value": "travel", "text": {"zh_CN": "差旅", "en_US": "Travel", "type": "i18n"}},
        {"value": "meal", "text": {"zh_CN": "餐饮", "en_US": "Meal", "type": "i18n"}},
    ]
    assert [o["value"] for o in by_id["checkboxField_c1"].props["dataSource"]] == ["紧急", "可抵扣", "其他"]
    table = by_id["tableField_tb1"]
    assert table.component_name == "TableField"
    children = json.loads(table.children)
    assert [(c["fieldId"], c["componentName"]) for c in children] == [
        ("textField_row1", "TextField"),
        ("numberField_row1", "NumberField"),
    ]
    assert children[1]["label"]["zh_CN"] == "金额"


def test_field_definitions_of_unknown_form(sdk: Sdk) -> None:
    expect_error(
        lambda: sdk.call("get_field_def_by_uuid", **APP_A1, form_uuid="FORM-NOPE", user_id="u3"),
        "invalidState.form.formNotExist",
        400,
    )
    expect_error(
        lambda: sdk.call("get_field_def_by_uuid", **APP_A1, user_id="u3"),
        "invalidParameter.parameter.parameterIsEmpty",
        400,
    )
