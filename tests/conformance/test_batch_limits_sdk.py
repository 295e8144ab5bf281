"""Batch routes through the official SDK: the per-call limits of spec yida-openapi §7.2 and their errors, the
``asynchronousExecution`` / ``noExecuteExpression`` / ``executeExpression`` flags, keep-running partial
failures and all-or-nothing batches, and batch removal of process data.

Limits (§7.2, from the Yida iteration notes): batchSave 100 with business rules off, 50 synchronous / 100
asynchronous with rules on; the batch updates 500 / 50 / 200; batchRemove 500 / 50 / 300 (its flag is
``executeExpression``, the opposite polarity). Zida runs no business rules and executes "asynchronous"
calls at once, answering the ids as a synchronous call does (batch.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.corp_r import FLOW, STOCK, RecordsSdk, cond, marker
from tests.conformance.sdk import expect_error
from tests.conftest import ServerProcess, load_fixture_bundle

TOO_MANY = ("invalidParameter.parameter.error", 400)
GONE = "invalidState.form.dataDoesNotExistOrIsDeleted"
EXPECT_NUMBER = "invalidParameter.parameter.expectDoubleButNonNumeric"


@pytest.fixture(scope="module")
def sdk(server: ServerProcess, loaded_url: str) -> Iterator[RecordsSdk]:
    load_fixture_bundle(loaded_url, "corp_records.yaml")
    yield RecordsSdk(server.endpoint)


# -- limits ------------------------------------------------------------------------------------------------------

# (flags, the limit they allow)
SAVE_LIMITS = [
    ({}, 50),
    ({"asynchronous_execution": True}, 100),
    ({"no_execute_expression": True}, 100),
    ({"no_execute_expression": True, "asynchronous_execution": True}, 100),
    ({"no_execute_expression": False, "asynchronous_execution": False}, 50),
]


@pytest.mark.parametrize(
    ("flags", "limit"), SAVE_LIMITS, ids=["default", "async", "rules-off", "rules-off-async", "explicit"]
)
def test_batch_save_limits(sdk: RecordsSdk, flags: dict[str, Any], limit: int) -> None:
    m = marker()
    err = expect_error(lambda: sdk.batch_save([{"textField_sku": m}] * (limit + 1), **flags), *TOO_MANY)
    assert "formDataJsonList" in err.data["message"]
    assert sdk.count(m) == 0  # nothing of the refused batch was written
    ids = sdk.batch_save([{"textField_sku": f"{m}-{i}"} for i in range(limit)], **flags)
    assert len(ids) == limit == len(set(ids))
    # Asynchronous or not, the records exist when the call returns, in the order sent.
    got = sdk.get_many(ids)
    assert [got[i]["textField_sku"] for i in ids] == [f"{m}-{i}" for i in range(limit)]
    assert sdk.count(m) == limit


UPDATE_LIMITS = [
    ({}, 50),
    ({"asynchronous_execution": True}, 200),
    ({"no_execute_expression": True}, 500),
    ({"no_execute_expression": True, "asynchronous_execution": True}, 500),
]
UPDATE_IDS = ["default", "async", "rules-off", "rules-off-async"]


@pytest.fixture(scope="module")
def five_hundred_and_one(sdk: RecordsSdk) -> tuple[str, list[str]]:
    """501 records of FORM-R1STOCK, all with numberField_qty 0 (for the update limits)."""
    m = marker("LIM")
    return m, sdk.stock(501, m, numberField_qty=0)


def _quantities(sdk: RecordsSdk, ids: list[str]) -> set[Any]:
    return {d.get("numberField_qty") for d in sdk.get_many(ids).values()}


@pytest.mark.parametrize(("flags", "limit"), UPDATE_LIMITS, ids=UPDATE_IDS)
def test_batch_update_by_instance_id_limits(
    sdk: RecordsSdk, five_hundred_and_one: tuple[str, list[str]], flags: dict[str, Any], limit: int
) -> None:
    _, ids = five_hundred_and_one
    before = _quantities(sdk, ids)

    def update(n: int, qty: int) -> Any:
        return sdk.r(
            "batch_update_form_data_by_instance_id",
            form_uuid=STOCK,
            form_instance_id_list=ids[:n],
            update_form_data_json=json.dumps({"numberField_qty": qty}),
            **flags,
        )

    err = expect_error(lambda: update(limit + 1, 777), *TOO_MANY)
    assert "formInstanceIdList" in err.data["message"]
    assert _quantities(sdk, ids) == before  # nothing changed
    qty = 1000 + limit + len(flags)
    assert update(limit, qty).body.result == ids[:limit]
    after = sdk.get_many(ids)
    assert {after[i]["numberField_qty"] for i in ids[:limit]} == {qty}
    assert all(after[i]["numberField_qty"] != qty for i in ids[limit:])


@pytest.mark.parametrize(("flags", "limit"), UPDATE_LIMITS, ids=UPDATE_IDS)
def test_batch_update_by_instance_map_limits(
    sdk: RecordsSdk, five_hundred_and_one: tuple[str, list[str]], flags: dict[str, Any], limit: int
) -> None:
    _, ids = five_hundred_and_one
    before = sdk.get_many(ids)

    def update(n: int, base: int) -> Any:
        return sdk.r(
            "batch_update_form_data_by_instance_map",
            form_uuid=STOCK,
            update_form_data_json_map={i: json.dumps({"numberField_qty": base + k}) for k, i in enumerate(ids[:n])},
            **flags,
        )

    err = expect_error(lambda: update(limit + 1, 5000), *TOO_MANY)
    assert "updateFormDataJsonMap" in err.data["message"]
    assert sdk.get_many(ids) == before
    base = 10_000 * (1 + len(flags)) + limit
    assert update(limit, base).body.result == ids[:limit]
    after = sdk.get_many(ids)
    assert [after[i]["numberField_qty"] for i in ids[:limit]] == [base + k for k in range(limit)]
    assert [after[i] for i in ids[limit:]] == [before[i] for i in ids[limit:]]


REMOVE_LIMITS = [
    ({}, 500),  # executeExpression defaults to false: business rules off
    ({"execute_expression": False}, 500),
    ({"execute_expression": False, "asynchronous_execution": True}, 500),
    ({"execute_expression": True}, 50),
    ({"execute_expression": True, "asynchronous_execution": True}, 300),
]


@pytest.mark.parametrize(
    ("flags", "limit"), REMOVE_LIMITS, ids=["default", "rules-off", "rules-off-async", "rules-on", "rules-on-async"]
)
def test_batch_remove_limits(sdk: RecordsSdk, flags: dict[str, Any], limit: int) -> None:
    m = marker("DEL")
    ids = sdk.stock(limit + 1, m)

    def remove(n: int) -> Any:
        return sdk.r("batch_removal_by_form_instance_id_list", form_uuid=STOCK, form_instance_id_list=ids[:n], **flags)

    err = expect_error(lambda: remove(limit + 1), *TOO_MANY)
    assert "formInstanceIdList" in err.data["message"]
    assert sdk.count(m) == limit + 1
    assert remove(limit).status_code == 200
    assert sdk.count(m) == 1
    assert list(sdk.get_many(ids)) == [ids[limit]]


def test_batch_get_takes_at_most_a_hundred_ids(sdk: RecordsSdk) -> None:
    m = marker()
    ids = sdk.stock(101, m)
    err = expect_error(
        lambda: sdk.r("batch_get_form_data_by_id_list", form_uuid=STOCK, form_instance_id_list=ids), *TOO_MANY
    )
    assert "formInstanceIdList" in err.data["message"]
    got = sdk.r("batch_get_form_data_by_id_list", form_uuid=STOCK, form_instance_id_list=ids[:100]).body.result
    assert [g.form_instance_id for g in got] == ids[:100]
    expect_error(
        lambda: sdk.r("batch_get_form_data_by_id_list", form_uuid=STOCK, form_instance_id_list=[]),
        "invalidParameter.parameter.parameterIsEmpty",
        400,
    )


def test_sub_table_pages_stay_below_fifty(sdk: RecordsSdk) -> None:
    # §7.2 (getSubTable): "pageSize default 10, must be <50".
    [iid] = sdk.batch_save(
        [{"textField_sku": marker(), "tableField_moves": [{"textField_where": f"W{i}"} for i in range(60)]}]
    )

    def rows(**paging: Any) -> Any:
        return sdk.r(
            "list_table_data_by_form_instance_id_table_id",
            iid,
            form_uuid=STOCK,
            table_field_id="tableField_moves",
            **paging,
        ).body

    first = rows()
    assert (first.total_count, first.page_number, len(first.data)) == (60, 1, 10)
    assert len(rows(page_size=49).data) == 49
    assert [r["textField_where"] for r in rows(page_number=2, page_size=49).data] == [f"W{i}" for i in range(49, 60)]
    for bad in ({"page_size": 50}, {"page_size": 51}, {"page_size": 1000}, {"page_size": 0}, {"page_number": 0}):
        expect_error(lambda bad=bad: rows(**bad), *TOO_MANY)


def test_empty_batches_are_refused(sdk: RecordsSdk) -> None:
    empty = ("invalidParameter.parameter.parameterIsEmpty", 400)
    expect_error(lambda: sdk.batch_save([]), *empty)
    expect_error(
        lambda: sdk.r(
            "batch_update_form_data_by_instance_id",
            form_uuid=STOCK,
            form_instance_id_list=[],
            update_form_data_json=json.dumps({"numberField_qty": 1}),
        ),
        *empty,
    )
    expect_error(
        lambda: sdk.r("batch_update_form_data_by_instance_map", form_uuid=STOCK, update_form_data_json_map={}), *empty
    )
    expect_error(
        lambda: sdk.r("batch_removal_by_form_instance_id_list", form_uuid=STOCK, form_instance_id_list=[]), *empty
    )


# -- flags: asynchronousExecution, noExecuteExpression / executeExpression -----------------------------------------


def test_asynchronous_batches_are_done_when_they_answer(sdk: RecordsSdk) -> None:
    m = marker()
    ids = sdk.batch_save(
        [{"textField_sku": f"{m}-{i}", "numberField_qty": i} for i in range(3)], asynchronous_execution=True
    )
    assert len(ids) == 3
    updated = sdk.r(
        "batch_update_form_data_by_instance_id",
        form_uuid=STOCK,
        form_instance_id_list=ids[:2],
        update_form_data_json=json.dumps({"selectField_state": "出库"}),
        asynchronous_execution=True,
    ).body.result
    assert updated == ids[:2]
    by_map = sdk.r(
        "batch_update_form_data_by_instance_map",
        form_uuid=STOCK,
        update_form_data_json_map={ids[2]: json.dumps({"numberField_qty": 30})},
        asynchronous_execution=True,
    ).body.result
    assert by_map == [ids[2]]
    got = sdk.get_many(ids)
    assert [got[i].get("selectField_state") for i in ids] == ["出库", "出库", None]
    assert got[ids[2]]["numberField_qty"] == 30
    sdk.r(
        "batch_removal_by_form_instance_id_list",
        form_uuid=STOCK,
        form_instance_id_list=ids[:1],
        asynchronous_execution=True,
        execute_expression=True,
    )
    assert sorted(sdk.get_many(ids)) == sorted(ids[1:])


def test_business_rules_off_still_validates_values(sdk: RecordsSdk) -> None:
    # Zida has no business rules to skip; component values are always checked, whatever the flags say.
    m = marker()
    bad = [{"textField_sku": m}, {"textField_sku": m, "numberField_qty": "many"}]
    for flags in ({"no_execute_expression": True}, {"no_execute_expression": True, "asynchronous_execution": True}):
        err = expect_error(lambda flags=flags: sdk.batch_save(bad, **flags), EXPECT_NUMBER, 400)
        assert "numberField_qty" in err.data["message"]
    [iid] = sdk.batch_save([{"textField_sku": m, "numberField_qty": 1}], no_execute_expression=True)
    expect_error(
        lambda: sdk.r(
            "batch_update_form_data_by_instance_id",
            form_uuid=STOCK,
            form_instance_id_list=[iid],
            update_form_data_json=json.dumps({"numberField_qty": "many"}),
            no_execute_expression=True,
        ),
        EXPECT_NUMBER,
        400,
    )
    assert sdk.get_many([iid])[iid]["numberField_qty"] == 1
    assert sdk.count(m) == 1


# -- keep running / all or nothing ---------------------------------------------------------------------------------


def test_keep_running_saves_the_good_items_and_names_the_bad(sdk: RecordsSdk) -> None:
    m = marker()
    rows: list[Any] = [
        {"textField_sku": f"{m}-0", "numberField_qty": 0},
        {"textField_sku": f"{m}-1", "numberField_qty": "many"},  # not a number
        {"textField_sku": f"{m}-2", "numberField_qty": 2},
        {"textField_sku": f"{m}-3", "textField_ghost": "x"},  # not a field of the form
        {"numberField_qty": 4},  # the required SKU is missing
        {"textField_sku": f"{m}-5", "employeeField_keeper": ["nobody"]},  # not a user of the corp
        {"textField_sku": f"{m}-6", "numberField_qty": 6},
    ]
    texts = [json.dumps(r) for r in rows]
    texts.insert(5, "{not json")  # index 5: not JSON at all; the unknown user moves to index 6
    ids = sdk.r(
        "batch_save_form_data", form_uuid=STOCK, form_data_json_list=texts, keep_running_after_exception=True
    ).body.result
    assert len(ids) == 3
    got = sdk.get_many(ids)
    assert [got[i]["textField_sku"] for i in ids] == [f"{m}-0", f"{m}-2", f"{m}-6"]
    assert sdk.count(m) == 3
    # The reply also says which items failed and why (an extra key the SDK model leaves out).
    wire = sdk.raw(
        "POST",
        "/v1.0/yida/forms/instances/batchSave",
        {
            "formUuid": STOCK,
            "formDataJsonList": [t.replace(m, m + "-wire") for t in texts],
            "keepRunningAfterException": True,
        },
    )
    assert wire.status_code == 200
    body = wire.json()
    assert len(body["result"]) == 3
    failures = body["failures"]
    assert [(f["index"], f["code"]) for f in failures] == [
        (1, EXPECT_NUMBER),
        (3, "invalidState.form.invalidFormData"),
        (4, "invalidState.form.invalidFormData"),
        (5, "invalidParameter.parameter.error"),
        (6, "invalidState.form.invalidFormData"),
    ]
    assert "numberField_qty" in failures[0]["message"] and "textField_ghost" in failures[1]["message"]
    assert "textField_sku" in failures[2]["message"] and "nobody" in failures[4]["message"]


def test_keep_running_with_nothing_valid_saves_nothing(sdk: RecordsSdk) -> None:
    m = marker()
    ids = sdk.batch_save([{"textField_sku": m, "numberField_qty": "x"}] * 2, keep_running_after_exception=True)
    assert ids == []
    assert sdk.count(m) == 0


@pytest.mark.parametrize("flags", [{}, {"keep_running_after_exception": False}], ids=["default", "explicit"])
def test_batch_save_is_all_or_nothing(sdk: RecordsSdk, flags: dict[str, Any]) -> None:
    m = marker()
    rows = [{"textField_sku": f"{m}-{i}"} for i in range(5)]
    rows[3] = {"textField_sku": f"{m}-3", "employeeField_keeper": ["nobody"]}
    err = expect_error(lambda: sdk.batch_save(rows, **flags), "invalidState.form.invalidFormData", 400)
    assert "[3]" in err.data["message"] and "nobody" in err.data["message"]
    texts = [json.dumps(r) for r in rows[:3]] + ["{not json"]
    expect_error(
        lambda: sdk.r("batch_save_form_data", form_uuid=STOCK, form_data_json_list=texts, **flags),
        "invalidParameter.parameter.error",  # as saveFormData answers a formDataJson that is not JSON
        400,
    )
    assert sdk.count(m) == 0


def test_batch_updates_are_all_or_nothing(sdk: RecordsSdk) -> None:
    m = marker()
    ids = sdk.stock(4, m, numberField_qty=1)
    before = sdk.get_many(ids)

    def by_id(id_list: list[str], update: dict[str, Any]) -> Any:
        return sdk.r(
            "batch_update_form_data_by_instance_id",
            form_uuid=STOCK,
            form_instance_id_list=id_list,
            update_form_data_json=json.dumps(update),
        )

    def by_map(mapping: dict[str, Any]) -> Any:
        return sdk.r("batch_update_form_data_by_instance_map", form_uuid=STOCK, update_form_data_json_map=mapping)

    err = expect_error(lambda: by_id([*ids, "FINST-NOPE"], {"numberField_qty": 9}), GONE, 400)
    assert "FINST-NOPE" in err.data["message"]
    expect_error(lambda: by_id([ids[0], ids[1], ids[0]], {"numberField_qty": 9}), *TOO_MANY)  # an id twice
    expect_error(lambda: by_id(ids, {"numberField_qty": "nine"}), EXPECT_NUMBER, 400)
    bad_last = {i: json.dumps({"numberField_qty": 9}) for i in ids[:3]}
    bad_last[ids[3]] = json.dumps({"numberField_qty": "nine"})
    err = expect_error(lambda: by_map(bad_last), EXPECT_NUMBER, 400)
    assert ids[3] in err.data["message"]
    bad_ref = {i: json.dumps({"employeeField_keeper": ["r1"]}) for i in ids}
    bad_ref[ids[2]] = json.dumps({"employeeField_keeper": ["nobody"]})
    expect_error(lambda: by_map(bad_ref), "invalidState.form.invalidFormData", 400)
    expect_error(lambda: by_map({**bad_last, ids[3]: "{not json"}), *TOO_MANY)
    assert sdk.get_many(ids) == before


def test_batch_remove_is_all_or_nothing(sdk: RecordsSdk) -> None:
    m = marker()
    ids = sdk.stock(3, m)
    flow_id = sdk.r(
        "start_instance", form_uuid=FLOW, user="r1", form_data_json=json.dumps({"textField_reason": m})
    ).body.result

    def remove(id_list: list[str]) -> Any:
        return sdk.r("batch_removal_by_form_instance_id_list", form_uuid=STOCK, form_instance_id_list=id_list)

    err = expect_error(lambda: remove([*ids, "FINST-NOPE"]), GONE, 400)
    assert "FINST-NOPE" in err.data["message"]
    expect_error(lambda: remove([ids[0], flow_id]), GONE, 400)  # a record of another form
    expect_error(
        lambda: sdk.r("batch_removal_by_form_instance_id_list", form_uuid=STOCK, form_instance_id_list=ids, user="r1"),
        "noPermission.permission.deny",
        400,
    )  # r1 is no admin and originated none of them
    assert sdk.count(m) == 3
    remove(ids)
    assert sdk.count(m) == 0
    logs = sdk.r("list_operation_logs", form_uuid=STOCK, form_instance_id_list=ids).body.operation_log_map
    assert [e["operationType"] for e in logs[ids[0]]][-1] == "DELETE"


def test_batch_remove_of_process_data_is_refused(sdk: RecordsSdk) -> None:
    reason = marker("流程")
    iid = sdk.r(
        "start_instance", form_uuid=FLOW, user="r1", form_data_json=json.dumps({"textField_reason": reason})
    ).body.result
    for flags in ({}, {"execute_expression": True}, {"asynchronous_execution": True}):
        expect_error(
            lambda flags=flags: sdk.r(
                "batch_removal_by_form_instance_id_list", form_uuid=FLOW, form_instance_id_list=[iid], **flags
            ),
            "failure.operation.onlyReceiptDataCanBeDeletedInBatches",
            400,
        )
    assert sdk.r("get_form_data_by_id", iid).body.form_data["textField_reason"] == reason


def test_insert_or_update_takes_only_receipt_forms_and_one_match(sdk: RecordsSdk) -> None:
    m = marker()
    expect_error(
        lambda: sdk.r(
            "create_or_update_form_data",
            form_uuid=FLOW,
            search_condition=json.dumps([cond("textField_reason", "eq", m)]),
            form_data_json=json.dumps({"textField_reason": m}),
        ),
        "failure.operation.processFormCanNotSaveReceiptFormData",
        400,
    )
    twin_ids = sdk.stock(2, m)
    twins = json.dumps([cond("textField_sku", "like", m)])
    expect_error(
        lambda: sdk.r(
            "create_or_update_form_data",
            form_uuid=STOCK,
            search_condition=twins,
            form_data_json=json.dumps({"numberField_qty": 1}),
        ),
        "invalidState.data.conflict",
        400,
    )
    assert _quantities(sdk, twin_ids) == {None}  # neither twin was touched
    expect_error(
        lambda: sdk.r(
            "create_or_update_form_data",
            form_uuid=STOCK,
            search_condition="[]",
            form_data_json=json.dumps({"textField_sku": m}),
        ),
        "invalidParameter.parameter.parameterIsEmpty",
        400,
    )
    assert sdk.count(m) == 2
