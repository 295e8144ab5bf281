"""Concurrent writes through the official SDK: no change is ever lost, upserts never duplicate."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conformance.sdk import Sdk
from tests.conftest import ServerProcess, load_fixture_bundle

R_ALL = ("keyR-all", "secret-r-all-0001")
APP = {"app_type": "APP_R1", "system_token": "ST-R1-SECRET-TOKEN", "user_id": "radmin"}
FORM = "FORM-R1STOCK"


def _clients(server: ServerProcess, n: int) -> list[Sdk]:
    clients = [Sdk(server.endpoint) for _ in range(n)]
    token = clients[0].token(R_ALL)
    for c in clients:
        c._tokens[R_ALL] = token
    return clients


def _call(client: Sdk, api: str, **fields: Any) -> Any:
    return client.call(api, token=client.token(R_ALL), **APP, **fields)


def test_concurrent_updates_of_different_fields_both_survive(server: ServerProcess, loaded_url: str) -> None:
    load_fixture_bundle(loaded_url, "corp_records.yaml")
    clients = _clients(server, 8)
    sku = "C-" + secrets.token_hex(4)
    iid = _call(
        clients[0], "save_form_data", form_uuid=FORM, form_data_json=json.dumps({"textField_sku": sku})
    ).body.result
    updates = [
        {"numberField_qty": 42},
        {"selectField_state": "出库"},
        {"dateField_in": 1700000000000},
        {"checkboxField_tags": ["冷藏"]},
    ] * 2
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda a: _call(a[0], "update_form_data", form_instance_id=iid, update_form_data_json=json.dumps(a[1])),
                zip(clients, updates, strict=True),
            )
        )
    data = clients[0].call("get_form_data_by_id", iid, token=clients[0].token(R_ALL), **APP).body.form_data
    assert data["numberField_qty"] == 42 and data["selectField_state"] == "出库"
    assert data["dateField_in"] == 1700000000000 and data["checkboxField_tags"] == ["冷藏"]
    logs = _call(clients[0], "list_operation_logs", form_uuid=FORM, form_instance_id_list=[iid]).body.operation_log_map
    assert sum(1 for e in logs[iid] if e["operationType"] == "UPDATE") >= 4  # every update was applied and logged


def test_concurrent_upserts_with_one_condition_create_one_record(server: ServerProcess, loaded_url: str) -> None:
    load_fixture_bundle(loaded_url, "corp_records.yaml")
    clients = _clients(server, 12)
    sku = "U-" + secrets.token_hex(4)
    cond = json.dumps([{"key": "textField_sku", "value": sku, "type": "TEXT", "operator": "eq"}])

    def upsert(args: tuple[Sdk, int]) -> list[str]:
        client, n = args
        body = _call(
            client,
            "create_or_update_form_data",
            form_uuid=FORM,
            search_condition=cond,
            form_data_json=json.dumps({"textField_sku": sku, "numberField_qty": n}),
        ).body
        return list(body.result)

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(upsert, [(c, n) for n, c in enumerate(clients)]))
    assert len({r[0] for r in results}) == 1
    found = _call(clients[0], "search_form_datas", form_uuid=FORM, search_field_json=json.dumps({"textField_sku": sku}))
    assert found.body.total_count == 1
