"""Form records through the official SDK: save, get, update, search, id list, delete."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from Tea.exceptions import TeaException

from tests.conformance.sdk import APP_A1, Sdk

FORM = "FORM-A1ALL"


@pytest.fixture(scope="module")
def sdk(server) -> Iterator[Sdk]:  # type: ignore[no-untyped-def]
    yield Sdk(server.endpoint)


def save(sdk: Sdk, data: dict, user: str = "admin1", form: str = FORM) -> str:  # type: ignore[type-arg]
    response = sdk.call("save_form_data", **APP_A1, user_id=user, form_uuid=form, form_data_json=json.dumps(data))
    assert response.status_code == 200
    return response.body.result


def test_save_then_get_returns_platform_shapes(sdk: Sdk) -> None:
    data = {
        "textField_t1": "出差报销",
        "numberField_n1": 12.5,
        "selectField_s1": "travel",
        "checkboxField_c1": ["紧急", "其他"],
        "dateField_d1": 1700000000000,
        "employeeField_e1": ["u1", "u2"],
        "departmentSelectField_ds1": ["10"],
        "cascadeDateField_cd1": ["1700000000000", "1700086400000"],
        "tableField_tb1": [{"textField_row1": "机票", "numberField_row1": 800}],
        "attachmentField_at1": [{"downloadUrl": "/f/a.txt", "name": "a.txt"}],
    }
    instance_id = save(sdk, data)
    assert instance_id.startswith("FINST-")
    got = sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id="admin1")
    body = got.body
    assert body.form_inst_id == instance_id
    assert body.originator.user_id == "admin1"
    assert body.originator.name.name_in_chinese == "管理员"
    assert body.originator.department_name == "研发部"
    fd = body.form_data
    assert fd["textField_t1"] == "出差报销"
    assert fd["numberField_n1"] == 12.5 and fd["numberField_n1_value"] == "12.5"
    assert fd["selectField_s1"] == "差旅" and fd["selectField_s1_id"] == "travel"
    assert fd["checkboxField_c1"] == ["紧急", "其他"]
    assert fd["employeeField_e1"] == ["张三", "李四"] and fd["employeeField_e1_id"] == ["u1", "u2"]
    assert fd["departmentSelectField_ds1"] == "研发部" and fd["departmentSelectField_ds1_id"] == ["10"]
    assert fd["cascadeDateField_cd1"] == ["1700000000000", "1700086400000"]
    assert fd["tableField_tb1"] == [
        {"textField_row1": "机票", "numberField_row1": 800, "numberField_row1_value": "800"}
    ]
    assert json.loads(fd["attachmentField_at1"]) == [{"downloadUrl": "/f/a.txt", "name": "a.txt"}]
    assert body.modified_time_gmt.endswith("Z")


def test_update_changes_only_listed_fields(sdk: Sdk) -> None:
    instance_id = save(sdk, {"textField_t1": "原标题", "numberField_n1": 1})
    sdk.call(
        "update_form_data",
        **APP_A1,
        user_id="admin1",
        form_instance_id=instance_id,
        update_form_data_json=json.dumps({"numberField_n1": 2}),
    )
    fd = sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id="admin1").body.form_data
    assert fd["textField_t1"] == "原标题"
    assert fd["numberField_n1"] == 2


def test_search_by_map_and_filter_array(sdk: Sdk) -> None:
    marker = "搜索标记-map"
    ids = [save(sdk, {"textField_t1": f"{marker}-{i}", "numberField_n1": i}) for i in range(5)]
    found = sdk.call(
        "search_form_datas",
        **APP_A1,
        user_id="admin1",
        form_uuid=FORM,
        current_page=1,
        page_size=10,
        search_field_json=json.dumps({"textField_t1": marker, "numberField_n1": ["1", "3"]}),
    ).body
    assert found.total_count == 3
    assert {d.form_instance_id for d in found.data} == set(ids[1:4])
    assert found.data[0].form_instance_id == ids[3]  # newest first
    arr = sdk.call(
        "search_form_datas",
        **APP_A1,
        user_id="admin1",
        form_uuid=FORM,
        current_page=1,
        page_size=10,
        search_field_json=json.dumps(
            [
                {
                    "key": "textField_t1",
                    "value": marker,
                    "type": "TEXT",
                    "operator": "like",
                    "componentName": "TextField",
                },
                {
                    "key": "numberField_n1",
                    "value": 2,
                    "type": "DOUBLE",
                    "operator": "ge",
                    "componentName": "NumberField",
                },
            ]
        ),
        dynamic_order=json.dumps({"numberField_n1": "+"}),
    ).body
    assert [d.form_data["numberField_n1"] for d in arr.data] == [2, 3, 4]
    id_list = sdk.call(
        "search_form_data_id_list",
        "APP_A1",
        FORM,
        system_token=APP_A1["system_token"],
        user_id="admin1",
        page_number=1,
        page_size=2,
        search_field_json=json.dumps({"textField_t1": marker}),
    ).body
    assert id_list.total_count == 5 and len(id_list.data) == 2 and id_list.page_number == 1


def test_delete_then_get_is_not_found(sdk: Sdk) -> None:
    instance_id = save(sdk, {"textField_t1": "待删除"})
    sdk.call("delete_form_data", **APP_A1, user_id="admin1", form_instance_id=instance_id)
    with pytest.raises(TeaException) as err:
        sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id="admin1")
    assert err.value.code == "invalidState.form.dataDoesNotExistOrIsDeleted"
    assert err.value.data["statusCode"] == 400
