"""Issue 3 through the official SDK: batches, upsert, advanced queries, sub-tables, change log, comments, v2."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from Tea.exceptions import TeaException

from tests.conformance.sdk import Sdk
from tests.conftest import ServerProcess, load_fixture_bundle

R_ALL = ("keyR-all", "secret-r-all-0001")
APP = {"app_type": "APP_R1", "system_token": "ST-R1-SECRET-TOKEN"}
FORM = "FORM-R1STOCK"


class RSdk(Sdk):
    endpoint = ""

    def r(self, api: str, *path: str, user: str = "radmin", version: int = 1, **fields: Any) -> Any:
        return self.call(api, *path, token=self.token(R_ALL), version=version, **APP, user_id=user, **fields)


@pytest.fixture(scope="module")
def sdk(server: ServerProcess, loaded_url: str) -> Iterator[RSdk]:
    load_fixture_bundle(loaded_url, "corp_records.yaml")
    client = RSdk(server.endpoint)
    client.endpoint = server.endpoint
    yield client


def marker() -> str:
    return "SKU-" + secrets.token_hex(4)


def batch_save(sdk: RSdk, rows: list[dict[str, Any]], **flags: Any) -> Any:
    return sdk.r("batch_save_form_data", form_uuid=FORM, form_data_json_list=[json.dumps(r) for r in rows], **flags)


def moves_page(sdk: RSdk, instance_id: str, **paging: int) -> Any:
    """A page of the record's ``tableField_moves`` rows with their row ids (listTableDataByFormInstanceIdTableId)."""
    return sdk.call(
        "list_table_data_by_form_instance_id_table_id",
        instance_id,
        token=sdk.token(R_ALL),
        **APP,
        user_id="radmin",
        form_uuid=FORM,
        table_field_id="tableField_moves",
        need_row_id=True,
        **paging,
    ).body


def search_all(sdk: RSdk, sku_prefix: str, **extra: Any) -> Any:
    return sdk.r(
        "search_form_data_second_generation",
        form_uuid=FORM,
        page_number=1,
        page_size=100,
        search_condition=json.dumps(
            [
                {
                    "key": "textField_sku",
                    "value": sku_prefix,
                    "type": "TEXT",
                    "operator": "like",
                    "componentName": "TextField",
                }
            ]
        ),
        **extra,
    ).body


def code_of(call: Any) -> str:
    with pytest.raises(TeaException) as err:
        call()
    assert err.value.data["statusCode"] == 400
    return str(err.value.code)


def test_batch_save_all_or_nothing_and_keep_running(sdk: RSdk) -> None:
    m = marker()
    saved = batch_save(
        sdk, [{"textField_sku": f"{m}-{i}", "numberField_qty": i} for i in range(3)], no_execute_expression=True
    ).body.result
    assert len(saved) == 3 and all(i.startswith("FINST-") for i in saved)
    bad = [{"textField_sku": f"{m}-ok"}, {"textField_sku": f"{m}-bad", "numberField_qty": "many"}]
    code = code_of(lambda: batch_save(sdk, bad))
    assert code == "invalidParameter.parameter.expectDoubleButNonNumeric"
    assert search_all(sdk, m).total_count == 3  # nothing of the failed batch was written
    kept = batch_save(sdk, bad, keep_running_after_exception=True)
    assert len(kept.body.result) == 1
    assert search_all(sdk, m).total_count == 4
    # On the wire the reply also names the skipped items (an extra key the SDK model ignores).
    wire = httpx.post(
        f"http://{sdk.endpoint}/v1.0/yida/forms/instances/batchSave",
        headers={"x-acs-dingtalk-access-token": sdk.token(R_ALL)},
        json={
            **{"appType": "APP_R1", "systemToken": "ST-R1-SECRET-TOKEN", "userId": "radmin", "formUuid": FORM},
            "formDataJsonList": [json.dumps(b) for b in bad],
            "keepRunningAfterException": True,
        },
    ).json()
    assert len(wire["result"]) == 1
    assert wire["failures"] == [
        {
            "index": 1,
            "code": "invalidParameter.parameter.expectDoubleButNonNumeric",
            "message": wire["failures"][0]["message"],
        }
    ]
    assert "numberField_qty" in wire["failures"][0]["message"]


def test_batch_limits(sdk: RSdk) -> None:
    rows = [{"textField_sku": "x"}] * 51
    assert code_of(lambda: batch_save(sdk, rows)) == "invalidParameter.parameter.error"  # rules on, sync: 50
    assert code_of(lambda: batch_save(sdk, [{"textField_sku": "x"}] * 101, no_execute_expression=True)) == (
        "invalidParameter.parameter.error"
    )
    assert code_of(lambda: batch_save(sdk, [])) == "invalidParameter.parameter.parameterIsEmpty"


def test_batch_updates_get_and_remove(sdk: RSdk) -> None:
    m = marker()
    ids = batch_save(sdk, [{"textField_sku": f"{m}-{i}", "numberField_qty": i} for i in range(4)]).body.result
    updated = sdk.r(
        "batch_update_form_data_by_instance_id",
        form_uuid=FORM,
        form_instance_id_list=ids[:2],
        update_form_data_json=json.dumps({"selectField_state": "出库", "numberField_qty": ""}),
        ignore_empty=True,
    ).body.result
    assert updated == ids[:2]
    by_map = sdk.r(
        "batch_update_form_data_by_instance_map",
        form_uuid=FORM,
        update_form_data_json_map={ids[2]: json.dumps({"numberField_qty": 20}), ids[3]: {"numberField_qty": 30}},
    )
    assert by_map.body.result == [ids[2], ids[3]]
    got = sdk.r(
        "batch_get_form_data_by_id_list",
        form_uuid=FORM,
        form_instance_id_list=[ids[3], ids[0], "FINST-NOPE"],
        need_form_instance_value=True,
    ).body.result
    assert [g.form_instance_id for g in got] == [ids[3], ids[0]]
    assert got[0].form_data["numberField_qty"] == 30
    assert got[1].form_data["selectField_state"] == "出库" and got[1].form_data["numberField_qty"] == 0
    assert got[1].originator.name.name_in_chinese == "记录管理员" and isinstance(got[1].id, int)
    components = json.loads(got[1].instance_value)
    assert {c["fieldId"] for c in components} >= {"textField_sku", "selectField_state"}
    # One bad id makes the whole batch fail and change nothing.
    assert code_of(
        lambda: sdk.r(
            "batch_update_form_data_by_instance_id",
            form_uuid=FORM,
            form_instance_id_list=[ids[0], "FINST-NOPE"],
            update_form_data_json=json.dumps({"numberField_qty": 99}),
        )
    ) == ("invalidState.form.dataDoesNotExistOrIsDeleted")
    assert (
        sdk.r("batch_get_form_data_by_id_list", form_uuid=FORM, form_instance_id_list=[ids[0]])
        .body.result[0]
        .form_data["numberField_qty"]
        == 0
    )
    sdk.r("batch_removal_by_form_instance_id_list", form_uuid=FORM, form_instance_id_list=ids[:3])
    assert search_all(sdk, m).total_count == 1


def test_insert_or_update(sdk: RSdk) -> None:
    m = marker()
    cond = json.dumps(
        [{"key": "textField_sku", "value": m, "type": "TEXT", "operator": "eq", "componentName": "TextField"}]
    )
    first = sdk.r(
        "create_or_update_form_data",
        form_uuid=FORM,
        search_condition=cond,
        form_data_json=json.dumps({"textField_sku": m, "numberField_qty": 1}),
    ).body.result
    second = sdk.r(
        "create_or_update_form_data",
        form_uuid=FORM,
        search_condition=cond,
        form_data_json=json.dumps({"numberField_qty": 2}),
    ).body.result
    assert first == second
    assert search_all(sdk, m).data[0].form_data["numberField_qty"] == 2
    batch_save(sdk, [{"textField_sku": m + "-twin"}, {"textField_sku": m + "-twin"}])
    twin = json.dumps(
        [{"key": "textField_sku", "value": m + "-twin", "type": "TEXT", "operator": "eq", "componentName": "TextField"}]
    )
    assert (
        code_of(
            lambda: sdk.r(
                "create_or_update_form_data",
                form_uuid=FORM,
                search_condition=twin,
                form_data_json=json.dumps({"numberField_qty": 3}),
            )
        )
        == "invalidState.data.conflict"
    )
    v2 = sdk.r(
        "create_or_update_form_data",
        version=2,
        form_uuid=FORM,
        use_alias=True,
        search_condition=json.dumps(
            [{"key": "sku", "value": m + "-alias", "type": "TEXT", "operator": "eq", "componentName": "TextField"}]
        ),
        form_data_json=json.dumps({"sku": m + "-alias", "qty": 7}),
    ).body.result
    assert len(v2) == 1


def test_advanced_queries_and_paging(sdk: RSdk) -> None:
    m = marker()
    rows = [
        {
            "textField_sku": f"{m}-{i}",
            "numberField_qty": i,
            "checkboxField_tags": ["易碎", "冷藏"] if i % 2 else ["贵重"],
            "employeeField_keeper": ["r1"] if i < 3 else ["r2"],
            "tableField_moves": [{"textField_where": f"A{i}", "numberField_delta": i * 10}],
        }
        for i in range(6)
    ]
    batch_save(sdk, rows)
    cond = [
        {"key": "textField_sku", "value": m, "type": "TEXT", "operator": "like", "componentName": "TextField"},
        {
            "key": "numberField_qty",
            "value": [1, 4],
            "type": "DOUBLE",
            "operator": "between",
            "componentName": "NumberField",
        },
        {
            "key": "checkboxField_tags",
            "value": ["冷藏"],
            "type": "ARRAY",
            "operator": "contains",
            "componentName": "CheckboxField",
        },
    ]
    all_ = sdk.r(
        "search_form_data_second_generation",
        form_uuid=FORM,
        page_number=1,
        page_size=10,
        search_condition=json.dumps(cond),
        order_config_json=json.dumps({"numberField_qty": "-"}),
    ).body
    assert [d.form_data["numberField_qty"] for d in all_.data] == [3, 1]
    assert all_.data[0].form_data["tableField_moves"][0]["textField_where"] == "A3"
    no_tables = sdk.r(
        "search_form_data_second_generation_no_table_field",
        form_uuid=FORM,
        page_number=1,
        page_size=10,
        search_condition=json.dumps(cond),
    ).body
    assert no_tables.total_count == 2 and "tableField_moves" not in no_tables.data[0].form_data
    sub = [
        {
            "key": "numberField_delta",
            "value": 40,
            "type": "DOUBLE",
            "operator": "ge",
            "componentName": "NumberField",
            "parentId": "tableField_moves",
        },
        cond[0],
    ]
    assert (
        sdk.r("search_form_data_second_generation", form_uuid=FORM, search_condition=json.dumps(sub)).body.total_count
        == 2
    )
    main = sdk.r(
        "search_form_data_removal_table_data",
        form_uuid=FORM,
        page_number=1,
        page_size=4,
        search_field_json=json.dumps({"textField_sku": m}),
    ).body
    assert main.total_count == 6 and len(main.data) == 4 and main.has_more_data is True
    assert main.data[0].originator.department_name == "仓储部"
    last = sdk.r(
        "search_form_data_removal_table_data",
        form_uuid=FORM,
        page_number=2,
        page_size=4,
        search_field_json=json.dumps({"textField_sku": m}),
    ).body
    assert len(last.data) == 2 and last.has_more_data is False
    keepers = sdk.r(
        "search_employee_field_values",
        form_uuid=FORM,
        target_field_json=json.dumps(["employeeField_keeper"]),
        search_field_json=json.dumps({"textField_sku": m}),
    ).body.result
    assert json.loads(keepers) == {"employeeField_keeper": ["r1", "r2"]}
    assert (
        code_of(lambda: sdk.r("search_form_data_second_generation", form_uuid=FORM, search_condition="[{not json"))
        == "invalidParameter.parameter.error"
    )
    assert code_of(
        lambda: sdk.r(
            "search_form_data_second_generation",
            form_uuid=FORM,
            search_condition=json.dumps([{"key": "numberField_qty", "value": "x", "type": "DOUBLE", "operator": "gt"}]),
        )
    ) == ("invalidParameter.parameter.expectDoubleButNonNumeric")
    assert code_of(
        lambda: sdk.r(
            "search_form_data_second_generation",
            form_uuid=FORM,
            search_condition=json.dumps([{"key": "numberField_qty", "value": "x", "operator": "regex"}]),
        )
    ) == ("invalidState.openSearch.componentCanNotSupportThisOperatorType")
    assert code_of(lambda: sdk.r("search_form_data_second_generation", form_uuid=FORM, page_size=101)) == (
        "invalidParameter.parameter.error"
    )


def test_sub_table_rows_and_v2_updates(sdk: RSdk) -> None:
    m = marker()
    [iid] = batch_save(
        sdk,
        [
            {
                "textField_sku": m,
                "tableField_moves": [{"textField_where": f"B{i}", "numberField_delta": i} for i in range(12)],
            }
        ],
    ).body.result
    page = moves_page(sdk, iid, page_number=2, page_size=5)
    assert page.total_count == 12 and page.page_number == 2
    assert [r["textField_where"] for r in page.data] == ["B5", "B6", "B7", "B8", "B9"]
    row_id = page.data[0]["rowId"]
    assert row_id
    sdk.r(
        "update_sub_table_by_row_id",
        version=2,
        form_instance_id=iid,
        form_uuid=FORM,
        table_field_id="moves",
        use_alias=True,
        update_sub_table_data_json=json.dumps([{"rowId": row_id, "delta": 555}]),
    )
    again = moves_page(sdk, iid, page_number=2, page_size=5)
    assert again.data[0] == {**page.data[0], "numberField_delta": 555, "numberField_delta_value": "555"}
    # An unknown rowId (or one of another record's rows) fails the whole update, which changes nothing.
    [other] = batch_save(
        sdk, [{"textField_sku": m + "-other", "tableField_moves": [{"textField_where": "X"}]}]
    ).body.result
    other_row = moves_page(sdk, other).data[0]["rowId"]
    for rows in (
        [{"rowId": "nope", "numberField_delta": 1}],
        [{"rowId": other_row, "numberField_delta": 1}],
        [{"rowId": row_id, "numberField_delta": 1}, {"rowId": "nope", "numberField_delta": 2}],
    ):
        assert (
            code_of(
                lambda rows=rows: sdk.r(
                    "update_sub_table_by_row_id",
                    version=2,
                    form_instance_id=iid,
                    table_field_id="tableField_moves",
                    update_sub_table_data_json=json.dumps(rows),
                )
            )
            == "invalidParameter.parameter.error"
        )
    unchanged = moves_page(sdk, iid, page_number=2, page_size=5)
    assert unchanged.data == again.data
    sdk.r(
        "update_sub_table",
        version=2,
        form_instance_id=iid,
        table_field_ids="tableField_moves",
        update_form_data_json=json.dumps({"tableField_moves": [{"textField_where": "only"}]}),
    )
    got = sdk.r("get_form_data_by_id", iid, version=2, use_alias=True).body.form_data
    assert got["moves"] == [{"where": "only"}] and got["sku"] == m
    aliases = sdk.call(
        "get_form_component_alias_list",
        "APP_R1",
        FORM,
        version=2,
        token=sdk.token(R_ALL),
        system_token=APP["system_token"],
        user_id="radmin",
    ).body.result
    assert {(a.field_id, a.alias) for a in aliases} >= {("textField_sku", "sku"), ("textField_where", "where")}


def test_v2_save_search_update_with_aliases(sdk: RSdk) -> None:
    m = marker()
    iid = sdk.r(
        "save_form_data",
        version=2,
        form_uuid=FORM,
        use_alias=True,
        form_data_json=json.dumps({"sku": m, "qty": 5, "keeper": ["r1"]}),
    ).body.result
    sdk.r(
        "update_form_data",
        version=2,
        form_instance_id=iid,
        use_alias=True,
        update_form_data_json=json.dumps({"qty": 6}),
    )
    found = sdk.r(
        "search_form_datas",
        version=2,
        form_uuid=FORM,
        use_alias=True,
        current_page=1,
        page_size=10,
        search_field_json=json.dumps({"sku": m}),
    ).body
    assert found.total_count == 1
    assert found.data[0].form_data["qty"] == 6 and found.data[0].form_data["keeper_id"] == ["r1"]
    ids = sdk.call(
        "search_form_data_id_list",
        "APP_R1",
        FORM,
        version=2,
        token=sdk.token(R_ALL),
        system_token=APP["system_token"],
        user_id="radmin",
        use_alias=True,
        search_field_json=json.dumps({"sku": m}),
    ).body
    assert ids.data == [iid]
    adv = sdk.r(
        "search_form_data_second_generation",
        version=2,
        form_uuid=FORM,
        use_alias=True,
        search_condition=json.dumps(
            [
                {"key": "qty", "value": 6, "type": "DOUBLE", "operator": "eq"},
                {"key": "sku", "value": m, "type": "TEXT", "operator": "eq"},
            ]
        ),
    ).body
    assert adv.total_count == 1 and adv.data[0].form_data["sku"] == m


def test_operation_logs_and_comments(sdk: RSdk) -> None:
    m = marker()
    iid = sdk.r(
        "save_form_data", form_uuid=FORM, form_data_json=json.dumps({"textField_sku": m, "numberField_qty": 1})
    ).body.result
    sdk.r(
        "update_form_data",
        form_instance_id=iid,
        update_form_data_json=json.dumps({"numberField_qty": 2, "selectField_state": "在库"}),
    )
    logs = sdk.r("list_operation_logs", form_uuid=FORM, form_instance_id_list=[iid]).body.operation_log_map[iid]
    creates = [e for e in logs if e["operationType"] == "CREATE"]
    updates = {e["fieldId"]: e for e in logs if e["operationType"] == "UPDATE"}
    assert {e["fieldId"] for e in creates} == {"textField_sku", "numberField_qty"}
    assert updates["numberField_qty"]["preText"] == "1" and updates["numberField_qty"]["currentText"] == "2"
    assert (
        updates["selectField_state"]["currentText"] == "在库"
        and updates["selectField_state"]["operator"]["userId"] == "radmin"
    )
    first = sdk.r("save_form_remark", form_instance_id=iid, content="请核对数量", at_user_id="r1,r2").body.result
    reply = sdk.r("save_form_remark", form_instance_id=iid, content="已核对", reply_id=first, user="radmin").body.result
    assert isinstance(first, int) and reply > first
    remarks = sdk.r("list_form_remarks", form_uuid=FORM, form_instance_id_list=[iid]).body.form_remark_vo_map[iid]
    assert [(r["content"], r["atUserId"], r["replyId"]) for r in remarks] == [
        ("请核对数量", "r1,r2", None),
        ("已核对", "", first),
    ]
    assert remarks[1]["replyUserId"] == "radmin" and isinstance(remarks[0]["gmtCreate"], int)
    # A reply to a comment that does not exist, or that belongs to another record, is refused and saves nothing.
    elsewhere = sdk.r(
        "save_form_data", form_uuid=FORM, form_data_json=json.dumps({"textField_sku": m + "-elsewhere"})
    ).body.result
    foreign = sdk.r("save_form_remark", form_instance_id=elsewhere, content="别处").body.result
    for bad_reply in (999999999, foreign):
        assert (
            code_of(
                lambda bad_reply=bad_reply: sdk.r(
                    "save_form_remark", form_instance_id=iid, content="x", reply_id=bad_reply
                )
            )
            == "invalidParameter.parameter.error"
        )
    with pytest.raises(TeaException) as unknown:  # remark ids are int64: one past 2**31 is looked up, not refused
        sdk.r("save_form_remark", form_instance_id=iid, content="x", reply_id=3261500001)
    assert "comment 3261500001 does not exist" in str(unknown.value.message)
    kept = sdk.r("list_form_remarks", form_uuid=FORM, form_instance_id_list=[iid]).body.form_remark_vo_map[iid]
    assert [r["id"] for r in kept] == [r["id"] for r in remarks]
    assert code_of(lambda: sdk.r("save_form_remark", form_instance_id=iid, content="")) == (
        "invalidParameter.parameter.parameterIsEmpty"
    )
    sdk.r("delete_form_data", form_instance_id=iid)
    after = sdk.r("list_operation_logs", form_uuid=FORM, form_instance_id_list=[iid]).body.operation_log_map[iid]
    assert after[-1]["operationType"] == "DELETE"
    # The record's comments went with it (the change log stays: it is the record's history).
    gone = sdk.r("list_form_remarks", form_uuid=FORM, form_instance_id_list=[iid]).body.form_remark_vo_map
    assert not (gone or {}).get(iid)


def test_process_forms_refuse_plain_saves(sdk: RSdk) -> None:
    assert code_of(
        lambda: sdk.r("save_form_data", form_uuid="FORM-R1FLOW", form_data_json=json.dumps({"textField_reason": "x"}))
    ) == ("failure.operation.processFormCanNotSaveReceiptFormData")
    assert code_of(
        lambda: sdk.r(
            "batch_save_form_data", form_uuid="FORM-R1FLOW", form_data_json_list=[json.dumps({"textField_reason": "x"})]
        )
    ) == ("failure.operation.processFormCanNotSaveReceiptFormData")


def test_sub_table_row_ids_stay_unique_whatever_a_client_sends(sdk: RSdk) -> None:
    m = marker()
    [iid] = batch_save(sdk, [{"textField_sku": m, "tableField_moves": [{"textField_where": "A"}]}]).body.result

    def rows() -> list[dict[str, Any]]:
        body = moves_page(sdk, iid, page_number=1, page_size=10)
        return list(body.data)

    [first] = rows()
    # Zida's internal key is refused in every input, and nothing changes.
    forged = [{"rowId": first["rowId"], "__rowId": "forged", "textField_where": "B"}]
    for api, payload in (
        ("update_sub_table_by_row_id", {"update_sub_table_data_json": json.dumps(forged)}),
        (
            "update_sub_table",
            {"table_field_ids": "tableField_moves", "update_form_data_json": json.dumps({"tableField_moves": forged})},
        ),
    ):
        fields: dict[str, Any] = {"table_field_id": "tableField_moves"} if api == "update_sub_table_by_row_id" else {}
        assert code_of(
            lambda api=api, payload=payload, fields=fields: sdk.r(
                api, version=2, form_instance_id=iid, **fields, **payload
            )
        ).startswith("invalid")
    assert rows() == [first]
    # The same rowId sent twice: the first row keeps it, the second is a new row with an id of its own.
    twice = [{"rowId": first["rowId"], "textField_where": "C"}, {"rowId": first["rowId"], "textField_where": "D"}]
    sdk.r(
        "update_form_data",
        form_instance_id=iid,
        update_form_data_json=json.dumps({"tableField_moves": twice}),
    )
    after = rows()
    assert [r["textField_where"] for r in after] == ["C", "D"]
    assert after[0]["rowId"] == first["rowId"] and len({r["rowId"] for r in after}) == 2
