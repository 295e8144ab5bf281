"""Concurrent writes through the official SDK: no change is ever lost, upserts never duplicate."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conformance.conftest import run_sql
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


def _together(*writes: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads that start at the same moment; their results in order."""
    gate = threading.Barrier(len(writes))

    def run(write: Callable[[], Any]) -> Any:
        gate.wait()
        return write()

    with ThreadPoolExecutor(len(writes)) as pool:
        return list(pool.map(run, writes))


def test_same_field_updates_are_last_write_wins_and_lose_nothing_else(server: ServerProcess, loaded_url: str) -> None:
    # Documented policy (records.service.update_form_instance): the row is locked per update and the values are
    # merged, so on the same field the later commit wins and every other field of both updates survives.
    load_fixture_bundle(loaded_url, "corp_records.yaml")
    a, b = _clients(server, 2)
    sku = "S-" + secrets.token_hex(4)
    iid = _call(
        a, "save_form_data", form_uuid=FORM, form_data_json=json.dumps({"textField_sku": sku, "numberField_qty": 0})
    ).body.result

    def update(client: Sdk, values: dict[str, Any]) -> Callable[[], Any]:
        return lambda: _call(client, "update_form_data", form_instance_id=iid, update_form_data_json=json.dumps(values))

    rounds = 15
    for r in range(rounds):
        _together(
            update(a, {"numberField_qty": 1000 + r, "dateField_in": 1_700_000_000_000 + r}),
            update(b, {"numberField_qty": 2000 + r, "textField_sku": f"{sku}-{r}"}),
        )
        data = a.call("get_form_data_by_id", iid, token=a.token(R_ALL), **APP).body.form_data
        assert data["numberField_qty"] in (1000 + r, 2000 + r)
        assert data["dateField_in"] == 1_700_000_000_000 + r and data["textField_sku"] == f"{sku}-{r}"
    logs = _call(a, "list_operation_logs", form_uuid=FORM, form_instance_id_list=[iid]).body.operation_log_map[iid]
    qty = [e for e in logs if e["operationType"] == "UPDATE" and e.get("fieldId") == "numberField_qty"]
    assert len(qty) == 2 * rounds  # both updates of every round were applied and logged
    for r in range(rounds):
        assert {e["currentText"] for e in qty[2 * r : 2 * r + 2]} == {str(1000 + r), str(2000 + r)}
    # Serialised: each change starts from the value the previous one left, and the last one is what stays.
    assert qty[0]["preText"] == "0"
    assert all(later["preText"] == earlier["currentText"] for earlier, later in itertools.pairwise(qty))
    assert str(data["numberField_qty"]) == qty[-1]["currentText"]
    for field in ("dateField_in", "textField_sku"):
        assert sum(1 for e in logs if e["operationType"] == "UPDATE" and e.get("fieldId") == field) == rounds


def _upsert(client: Sdk, version: int, condition: str, values: dict[str, Any]) -> Callable[[], list[str]]:
    def go() -> list[str]:
        body = _call(
            client,
            "create_or_update_form_data",
            version=version,
            form_uuid=FORM,
            search_condition=condition,
            form_data_json=json.dumps(values),
            **({"use_alias": True} if version == 2 else {}),
        ).body
        return list(body.result)

    return go


def test_concurrent_upserts_with_equivalent_conditions_create_one_record(
    server: ServerProcess, loaded_url: str
) -> None:
    # The same condition spelled several ways (order of the items, fieldId or v2 alias) is still one condition.
    load_fixture_bundle(loaded_url, "corp_records.yaml")
    clients = _clients(server, 8)
    for _ in range(4):
        sku = "E-" + secrets.token_hex(4)
        by_id = [
            {"key": "textField_sku", "value": sku, "type": "TEXT", "operator": "eq"},
            {"key": "selectField_state", "value": "在库", "type": "ARRAY", "operator": "eq"},
        ]
        by_alias = [{**by_id[0], "key": "sku"}, {**by_id[1], "key": "state"}]
        spellings = [(1, by_id), (1, by_id[::-1]), (2, by_alias), (2, by_alias[::-1])]
        results = _together(
            *(
                _upsert(
                    client,
                    spellings[n % 4][0],
                    json.dumps(spellings[n % 4][1]),
                    {"textField_sku": sku, "selectField_state": "在库", "numberField_qty": n},
                )
                for n, client in enumerate(clients)
            )
        )
        assert len({r[0] for r in results}) == 1 and all(len(r) == 1 for r in results)
        found = _call(
            clients[0], "search_form_datas", form_uuid=FORM, search_field_json=json.dumps({"textField_sku": sku})
        )
        assert found.body.total_count == 1
        ops = run_sql(
            loaded_url,
            "SELECT operation_type, count(*) AS n FROM form_operation_log WHERE instance_id = :i"
            " GROUP BY operation_type",
            {"i": results[0][0]},
        )
        assert {o["operation_type"]: int(o["n"]) for o in ops} == {"CREATE": 1, "UPDATE": len(clients) - 1}
        assert found.body.data[0].form_data["numberField_qty"] in range(len(clients))
