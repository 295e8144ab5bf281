"""Advanced queries through the official SDK: advances/queryAll, advances/query and instances/query with the
built-in keys ``processApprovedResult`` and ``originator``, ``orderConfigJson`` over ``gmt_create``,
``gmt_modified`` and component keys, paging in the body, and the yida_2_0 variants with ``useAlias``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conformance.conftest import run_sql
from tests.conformance.corp_r import FLOW, R_ALL, STOCK, RecordsSdk, cond, marker
from tests.conformance.sdk import expect_error
from tests.conftest import ServerProcess, load_fixture_bundle

BAD = ("invalidParameter.parameter.error", 400)
# The three advanced searches: SDK api, its search parameter.
ADVANCED = [
    ("search_form_data_second_generation", "search_condition"),
    ("search_form_data_second_generation_no_table_field", "search_condition"),
    ("search_form_data_removal_table_data", "search_field_json"),
]
ADVANCED_IDS = ["queryAll", "query", "instances-query"]


@pytest.fixture(scope="module")
def sdk(server: ServerProcess, loaded_url: str) -> Iterator[RecordsSdk]:
    load_fixture_bundle(loaded_url, "corp_records.yaml")
    yield RecordsSdk(server.endpoint)


def ids_of(body: Any) -> list[str]:
    return [d.form_instance_id for d in body.data]


# -- built-in keys: processApprovedResult, originator ------------------------------------------------------------


@dataclass
class Approvals:
    reason: str
    agreed: str
    refused: str
    running: str
    by_r2: str  # running, started by r2


def _decide(sdk: RecordsSdk, instance_id: str, result: str) -> None:
    [task] = sdk.r("get_running_tasks", process_instance_id=instance_id).body.result
    assert task.actual_actioner_id == "radmin"
    sdk.r("execute_task", process_instance_id=instance_id, task_id=int(task.task_id), out_result=result, remark="ok")


@pytest.fixture(scope="module")
def approvals(sdk: RecordsSdk) -> Approvals:
    """Four approvals of FORM-R1FLOW under one reason: agreed, refused and running (by r1), running (by r2)."""
    reason = marker("审批")

    def start(user: str) -> str:
        body = sdk.r(
            "start_instance", user=user, form_uuid=FLOW, form_data_json=json.dumps({"textField_reason": reason})
        )
        return str(body.body.result)

    found = Approvals(reason, start("r1"), start("r1"), start("r1"), start("r2"))
    _decide(sdk, found.agreed, "AGREE")
    _decide(sdk, found.refused, "DISAGREE")
    return found


def _flow_search(sdk: RecordsSdk, api: str, key: str, reason: str, *extra: dict[str, Any], **fields: Any) -> Any:
    conditions = [cond("textField_reason", "eq", reason), *extra]
    return sdk.r(api, form_uuid=FLOW, page_size=100, **{key: json.dumps(conditions)}, **fields).body


APPROVED_RESULT = [
    ("agree", cond("processApprovedResult", "in", ["agree"], "ARRAY", "SelectField"), {"agreed"}),
    ("disagree", cond("processApprovedResult", "in", ["disagree"], "ARRAY", "SelectField"), {"refused"}),
    (
        "either",
        cond("processApprovedResult", "in", ["agree", "disagree"], "ARRAY", "SelectField"),
        {"agreed", "refused"},
    ),
    ("eq", cond("processApprovedResult", "eq", "agree", "ARRAY", "SelectField"), {"agreed"}),
    ("originator", cond("originator", "eq", "r2", "STRING", "EmployeeField"), {"by_r2"}),
    ("originator-r1", cond("originator", "eq", "r1", "STRING", "EmployeeField"), {"agreed", "refused", "running"}),
    ("originator-nobody", cond("originator", "eq", "radmin", "STRING", "EmployeeField"), set()),
]


@pytest.mark.parametrize(("api", "key"), ADVANCED, ids=ADVANCED_IDS)
@pytest.mark.parametrize(
    ("condition", "expected"), [(c, e) for _, c, e in APPROVED_RESULT], ids=[n for n, _, _ in APPROVED_RESULT]
)
def test_built_in_keys(
    sdk: RecordsSdk, approvals: Approvals, api: str, key: str, condition: dict[str, Any], expected: set[str]
) -> None:
    body = _flow_search(sdk, api, key, approvals.reason, condition)
    names = {n for n in ("agreed", "refused", "running", "by_r2") if getattr(approvals, n) in ids_of(body)}
    assert names == expected
    assert body.total_count == len(expected)


def test_approved_result_and_status_shown_by_the_process_api(sdk: RecordsSdk, approvals: Approvals) -> None:
    # The built-in keys filter on what the approval API reports for the same instances.
    for instance_id, status, result in (
        (approvals.agreed, "COMPLETED", "agree"),
        (approvals.refused, "COMPLETED", "disagree"),
        (approvals.running, "RUNNING", ""),
    ):
        body = sdk.r("get_instance_by_id", instance_id).body
        assert (body.instance_status, body.approved_result) == (status, result)


def test_originator_on_receipt_forms(sdk: RecordsSdk) -> None:
    m = marker()
    mine = {u: sdk.batch_save([{"textField_sku": f"{m}-{u}-{i}"} for i in range(2)], user=u) for u in ("r1", "r2")}
    admins = sdk.batch_save([{"textField_sku": f"{m}-radmin"}])
    base = cond("textField_sku", "like", m)
    for api, key in ADVANCED:
        for user, expected in (("r1", mine["r1"]), ("r2", mine["r2"]), ("radmin", admins)):
            by_key = sdk.r(
                api,
                form_uuid=STOCK,
                **{key: json.dumps([base, cond("originator", "eq", user, "STRING", "EmployeeField")])},
            )
            assert sorted(ids_of(by_key.body)) == sorted(expected), (api, user)
            by_param = sdk.r(api, form_uuid=STOCK, originator_id=user, **{key: json.dumps([base])})
            assert sorted(ids_of(by_param.body)) == sorted(expected), (api, user)
        both = sdk.r(
            api,
            form_uuid=STOCK,
            **{key: json.dumps([base, cond("originator", "in", ["r1", "r2"], "STRING", "EmployeeField")])},
        )
        assert sorted(ids_of(both.body)) == sorted(mine["r1"] + mine["r2"])
        # A member sees only their own records, whatever the originator condition asks for.
        as_r1 = sdk.r(
            api,
            user="r1",
            form_uuid=STOCK,
            **{key: json.dumps([base, cond("originator", "eq", "r2", "STRING", "EmployeeField")])},
        )
        assert as_r1.body.total_count == 0


# -- orderConfigJson and paging ----------------------------------------------------------------------------------


@dataclass
class Shelf:
    sku: str
    ids: list[str]  # in creation order
    qty: list[int]


@pytest.fixture(scope="module")
def shelf(sdk: RecordsSdk, loaded_url: str) -> Shelf:
    """Seven records whose creation, modification and quantity orders all differ."""
    m = marker("ORD")
    qty = [3, 1, 4, 1, 5, 9, 2]
    ids = [
        sdk.r(
            "save_form_data",
            form_uuid=STOCK,
            form_data_json=json.dumps({"textField_sku": f"{m}-{i}", "numberField_qty": q}),
        ).body.result
        for i, q in enumerate(qty)
    ]
    modified = [6, 2, 0, 5, 1, 3, 4]  # rank of each record's last change
    for i, instance_id in enumerate(ids):
        # Distinct creation and modification instants, one hour apart, in a known order.
        run_sql(
            loaded_url,
            "UPDATE form_instance SET created_at = :c, modified_at = :m WHERE instance_id = :i",
            {
                "c": 1_600_000_000_000 + i * 3_600_000,
                "m": 1_700_000_000_000 + modified[i] * 3_600_000,
                "i": instance_id,
            },
        )
    return Shelf(m, ids, qty)


def _ordered(shelf: Shelf, order: dict[str, str], *, key: str, api: str, sdk: RecordsSdk, **fields: Any) -> list[str]:
    search = [cond("textField_sku", "like", shelf.sku)] if key == "search_condition" else {"textField_sku": shelf.sku}
    body = sdk.r(
        api, form_uuid=STOCK, page_size=100, order_config_json=json.dumps(order), **{key: json.dumps(search)}, **fields
    )
    return ids_of(body.body)


def _by(shelf: Shelf, rank: list[int]) -> list[str]:
    return [shelf.ids[i] for i in sorted(range(len(rank)), key=lambda i: rank[i])]


@pytest.mark.parametrize(("api", "key"), ADVANCED, ids=ADVANCED_IDS)
def test_order_config(sdk: RecordsSdk, shelf: Shelf, api: str, key: str) -> None:
    created = shelf.ids
    modified = _by(shelf, [6, 2, 0, 5, 1, 3, 4])
    assert _ordered(shelf, {"gmt_create": "+"}, key=key, api=api, sdk=sdk) == created
    assert _ordered(shelf, {"gmt_create": "-"}, key=key, api=api, sdk=sdk) == created[::-1]
    assert _ordered(shelf, {"gmt_modified": "+"}, key=key, api=api, sdk=sdk) == modified
    assert _ordered(shelf, {"gmt_modified": "-"}, key=key, api=api, sdk=sdk) == modified[::-1]
    # A component key, ties broken by the next key.
    by_qty_then_newest = sorted(range(7), key=lambda i: (shelf.qty[i], -i))
    assert _ordered(shelf, {"numberField_qty": "+", "gmt_create": "-"}, key=key, api=api, sdk=sdk) == [
        shelf.ids[i] for i in by_qty_then_newest
    ]
    by_qty_desc_then_oldest = sorted(range(7), key=lambda i: (-shelf.qty[i], i))
    assert _ordered(shelf, {"numberField_qty": "-", "gmt_create": "+"}, key=key, api=api, sdk=sdk) == [
        shelf.ids[i] for i in by_qty_desc_then_oldest
    ]
    # No order: newest first.
    search = [cond("textField_sku", "like", shelf.sku)] if key == "search_condition" else {"textField_sku": shelf.sku}
    assert ids_of(sdk.r(api, form_uuid=STOCK, **{key: json.dumps(search)}).body) == created[::-1]
    for bad in ({"ghost": "+"}, {"gmt_create": "up"}, ["gmt_create"]):
        expect_error(
            lambda bad=bad: sdk.r(api, form_uuid=STOCK, order_config_json=json.dumps(bad), **{key: json.dumps(search)}),
            *BAD,
        )


@pytest.mark.parametrize(("api", "key"), ADVANCED, ids=ADVANCED_IDS)
def test_paging_in_the_body(sdk: RecordsSdk, shelf: Shelf, api: str, key: str) -> None:
    search = [cond("textField_sku", "like", shelf.sku)] if key == "search_condition" else {"textField_sku": shelf.sku}

    def page(**paging: Any) -> Any:
        return sdk.r(
            api, form_uuid=STOCK, order_config_json='{"gmt_create": "+"}', **{key: json.dumps(search)}, **paging
        ).body

    pages = [page(page_number=n, page_size=3) for n in (1, 2, 3, 4)]
    assert [ids_of(p) for p in pages] == [shelf.ids[0:3], shelf.ids[3:6], shelf.ids[6:], []]
    assert [p.page_number for p in pages] == [1, 2, 3, 4]
    assert {p.total_count for p in pages} == {7}
    if api == "search_form_data_removal_table_data":
        assert [p.has_more_data for p in pages] == [True, True, False, False]
    default = page()
    assert (default.page_number, len(default.data)) == (1, 7)  # pageSize defaults to 10
    assert ids_of(page(page_size=100)) == shelf.ids
    for bad in ({"page_size": 101}, {"page_size": 0}, {"page_number": 0}, {"page_number": 2**40}):
        expect_error(lambda bad=bad: page(**bad), *BAD)


# -- yida_2_0 with useAlias ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aliased(sdk: RecordsSdk) -> tuple[str, list[str]]:
    """Four records saved through v2 with aliases: qty 1..4, sub-table deltas 10..40."""
    m = marker("ALIAS")
    ids = []
    for i in range(1, 5):
        body = sdk.r(
            "save_form_data",
            version=2,
            form_uuid=STOCK,
            use_alias=True,
            form_data_json=json.dumps(
                {
                    "sku": f"{m}-{i}",
                    "qty": i,
                    "state": "在库",
                    "keeper": ["r1"],
                    "moves": [{"where": f"A{i}", "delta": i * 10}],
                }
            ),
        )
        ids.append(str(body.body.result))
    return m, ids


def test_v2_query_all_with_aliases(sdk: RecordsSdk, aliased: tuple[str, list[str]]) -> None:
    m, ids = aliased
    body = sdk.r(
        "search_form_data_second_generation",
        version=2,
        form_uuid=STOCK,
        use_alias=True,
        page_number=1,
        page_size=2,
        order_config_json=json.dumps({"qty": "-"}),
        search_condition=json.dumps(
            [
                cond("sku", "like", m),
                cond("qty", "between", [2, 4], "DOUBLE", "NumberField"),
                cond("delta", "ge", 20, "DOUBLE", "NumberField", parentId="moves"),
            ]
        ),
    ).body
    assert body.total_count == 3 and body.page_number == 1
    assert ids_of(body) == [ids[3], ids[2]]
    first = body.data[0].form_data
    assert first["sku"] == f"{m}-4" and first["qty"] == 4 and first["qty_value"] == "4"
    assert first["keeper_id"] == ["r1"] and first["state"] == "在库"
    assert first["moves"] == [{"where": "A4", "delta": 40, "delta_value": "40"}]
    assert not any(k.startswith(("textField_", "numberField_", "tableField_")) for k in first)
    second = sdk.r(
        "search_form_data_second_generation",
        version=2,
        form_uuid=STOCK,
        use_alias=True,
        page_number=2,
        page_size=2,
        order_config_json=json.dumps({"qty": "-"}),
        search_condition=json.dumps([cond("sku", "like", m), cond("qty", "ge", 2, "DOUBLE", "NumberField")]),
    ).body
    assert ids_of(second) == [ids[1]]
    # Without useAlias the aliases are no field names, and the reply keeps the fieldIds.
    expect_error(
        lambda: sdk.r(
            "search_form_data_second_generation",
            version=2,
            form_uuid=STOCK,
            search_condition=json.dumps([cond("sku", "like", m)]),
        ),
        *BAD,
    )
    plain = sdk.r(
        "search_form_data_second_generation",
        version=2,
        form_uuid=STOCK,
        search_condition=json.dumps([cond("textField_sku", "like", m)]),
        order_config_json=json.dumps({"numberField_qty": "+"}),
    ).body
    assert ids_of(plain) == ids and plain.data[0].form_data["textField_sku"] == f"{m}-1"


def test_v2_search_ids_and_get_with_aliases(sdk: RecordsSdk, aliased: tuple[str, list[str]]) -> None:
    m, ids = aliased
    found = sdk.r(
        "search_form_datas",
        version=2,
        form_uuid=STOCK,
        use_alias=True,
        current_page=1,
        page_size=10,
        search_field_json=json.dumps({"sku": m, "qty": [2, 3]}),
        dynamic_order=json.dumps({"qty": "+"}),
    ).body
    assert found.total_count == 2 and ids_of(found) == ids[1:3]
    assert found.data[0].form_data["qty"] == 2 and found.data[0].form_data["sku"] == f"{m}-2"
    id_page = sdk.call(
        "search_form_data_id_list",
        "APP_R1",
        STOCK,
        version=2,
        token=sdk.token(R_ALL),
        system_token="ST-R1-SECRET-TOKEN",
        user_id="radmin",
        use_alias=True,
        page_number=1,
        page_size=10,
        search_field_json=json.dumps([cond("sku", "like", m), cond("qty", "gt", 3, "DOUBLE", "NumberField")]),
    )
    assert id_page.body.data == [ids[3]] and id_page.body.total_count == 1
    got = sdk.r("get_form_data_by_id", ids[0], version=2, form_uuid=STOCK, use_alias=True).body
    assert got.form_inst_id == ids[0]
    assert got.form_data["sku"] == f"{m}-1" and got.form_data["moves"][0]["where"] == "A1"
    upserted = sdk.r(
        "create_or_update_form_data",
        version=2,
        form_uuid=STOCK,
        use_alias=True,
        search_condition=json.dumps([cond("sku", "eq", f"{m}-1")]),
        form_data_json=json.dumps({"qty": 100}),
    ).body.result
    assert upserted == [ids[0]]
    assert sdk.r("get_form_data_by_id", ids[0], version=2, use_alias=True).body.form_data["qty"] == 100
