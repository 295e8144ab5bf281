"""A data model's structured fields through WeDa: sub-table rows read and written by the child fields' names (and
written back as read), and where-conditions on options, countries, relations and date ranges that match the records
the Yida search matches for the same field and value."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import load_bundle_file
from tests.dialects.weda.conftest import Weda, credential_token

SECRET = ("AKIDwedafields01", "weda-fields-key-0001")
DINGTALK = ("weda-fields-dingtalk-key", "weda-fields-dingtalk-secret")
APP = {"appType": "APP_WEDA_FIELDS", "systemToken": "ST-WEDA-FIELDS-APP", "userId": "fadmin"}
FORM = "FORM-WEDA-THING"
MODEL = "/v1/model/prod/thing"

BUNDLE = f"""
corp: {{corpId: corpWedaFields, name: 微搭字段公司}}
weda: {{envId: lowcode-fields0001}}
departments:
  - {{deptId: 1, name: 微搭字段公司}}
users:
  - {{userId: fadmin, name: 字段管理员, departments: [1]}}
credentials:
  - {{secretId: {SECRET[0]}, secretKey: {SECRET[1]}, scopes: ["*"]}}
  - {{appKey: {DINGTALK[0]}, appSecret: {DINGTALK[1]}, scopes: ["*"]}}
apps:
  - appType: {APP["appType"]}
    name: 字段应用
    systemToken: {APP["systemToken"]}
    admins: [fadmin]
    forms:
      - formUuid: {FORM}
        title: 物件
        modelName: thing
        fields:
          - {{fieldId: textField_name, alias: name, component: TextField, label: 名称, searchable: true}}
          - fieldId: radioField_ra
            alias: ra
            component: RadioField
            label: 单选
            options: [{{value: v1, label: 一}}, {{value: v2, label: 二}}]
          - fieldId: checkboxField_cb
            alias: cb
            component: CheckboxField
            label: 多选
            options: [{{value: c1, label: 甲}}, {{value: c2, label: 乙}}]
          - {{fieldId: countrySelectField_co, alias: co, component: CountrySelectField, label: 国家}}
          - {{fieldId: cascadeDateField_cd, alias: cd, component: CascadeDateField, label: 起止}}
          - {{fieldId: addressField_ad, alias: ad, component: AddressField, label: 地址}}
          - fieldId: associationFormField_ln
            alias: ln
            component: AssociationFormField
            label: 关联
            props: {{associationForm: {{formUuid: {FORM}}}}}
          - fieldId: tableField_tb
            alias: tb
            component: TableField
            label: 明细
            fields:
              - {{fieldId: textField_it, alias: it, component: TextField, label: 项目}}
              - {{fieldId: numberField_qty, component: NumberField, label: 数量}}
"""


@pytest.fixture(scope="module")
def thing(weda_url: str, weda_base: str, tmp_path_factory: pytest.TempPathFactory) -> Weda:
    """The integration of corpWedaFields, whose model ``thing`` has a field of each structured kind."""
    path: Path = tmp_path_factory.mktemp("weda-fields") / "corp_weda_fields.yaml"
    path.write_text(BUNDLE, encoding="utf-8")
    load_bundle_file(weda_url, path)
    return Weda(weda_base, credential_token(weda_base, SECRET))


def call(weda: Weda, op: str, body: Any = None, method: str = "POST") -> dict[str, Any]:
    reply = weda.call(method, f"{MODEL}/{op}", body)
    assert reply.status_code == 200, reply.text
    payload: dict[str, Any] = reply.json()
    assert "code" not in payload, payload
    data: dict[str, Any] = payload["data"]
    return data


def refused(weda: Weda, op: str, body: Any = None, method: str = "POST") -> dict[str, Any]:
    reply = weda.call(method, f"{MODEL}/{op}", body)
    assert reply.status_code == 200, reply.text
    payload: dict[str, Any] = reply.json()
    assert payload["code"] and payload["message"] and payload["requestId"] and "data" not in payload, payload
    return payload


def create(weda: Weda, data: dict[str, Any]) -> str:
    record_id: str = call(weda, "create", {"data": data})["id"]
    return record_id


def test_sub_table_rows_are_read_and_written_by_the_child_fields_names(thing: Weda) -> None:
    t = uuid.uuid4().hex[:10]
    record_id = create(thing, {"name": t, "tb": [{"it": "r1", "numberField_qty": 2}, {"it": "r2"}]})
    record = call(thing, f"{record_id}/get", method="GET")["record"]
    rows = record["tb"]
    # A child is named by its alias, else by its field id; a row by its rowId, never Zida's own key.
    assert [{k: v for k, v in r.items() if k != "rowId"} for r in rows] == [
        {"it": "r1", "numberField_qty": 2},
        {"it": "r2"},
    ]
    assert all(isinstance(r["rowId"], str) and r["rowId"] for r in rows)
    assert not any("__rowId" in r or "textField_it" in r for r in rows)
    listed = call(thing, "list", {"filter": {"where": {"_id": {"$eq": record_id}}}})["records"]
    assert listed[0]["tb"] == rows

    # What a read shows is written back unchanged: the rows keep their ids.
    update = {"filter": {"where": {"_id": {"$eq": record_id}}}, "data": {"tb": rows}}
    assert call(thing, "update", update, method="PUT")["count"] == 1
    assert call(thing, f"{record_id}/get", method="GET")["record"]["tb"] == rows
    # A row changed and one added: the first keeps its id, the new one gets its own.
    changed = [{**rows[0], "it": "r1+"}, {"it": "r3"}]
    call(thing, "update", {**update, "data": {"tb": changed}}, method="PUT")
    after = call(thing, f"{record_id}/get", method="GET")["record"]["tb"]
    assert [r["it"] for r in after] == ["r1+", "r3"]
    assert after[0]["rowId"] == rows[0]["rowId"] and after[1]["rowId"] not in {r["rowId"] for r in rows}

    # A child's field id is not its name when it has an alias; an unknown child is refused; nothing changes.
    for bad in ({"textField_it": "x"}, {"nope": 1}, {"__rowId": rows[0]["rowId"], "it": "x"}):
        assert refused(thing, "update", {**update, "data": {"tb": [bad]}}, method="PUT")["code"] == "INVALID_PARAMETER"
    assert call(thing, f"{record_id}/get", method="GET")["record"]["tb"] == after


def yida_search(base_url: str, search: Any) -> set[str]:
    """The ids of the records the Yida search finds with ``searchFieldJson`` (field ids)."""
    token = httpx.post(
        f"{base_url}/v1.0/oauth2/accessToken", json={"appKey": DINGTALK[0], "appSecret": DINGTALK[1]}
    ).json()["accessToken"]
    reply = httpx.post(
        f"{base_url}/v1.0/yida/forms/instances/search",
        json={**APP, "formUuid": FORM, "pageSize": 100, "searchFieldJson": json.dumps(search, ensure_ascii=False)},
        headers={"x-acs-dingtalk-access-token": token},
    )
    assert reply.status_code == 200, reply.text
    return {item["formInstanceId"] for item in reply.json()["data"]}


def test_where_matches_what_the_yida_search_matches(thing: Weda, weda_base: str) -> None:
    t = uuid.uuid4().hex[:10]
    a = create(thing, {"name": f"{t}-a", "ra": "二", "cb": ["甲"], "co": [{"value": "CN"}], "cd": [1000, 2000]})
    b = create(thing, {"name": f"{t}-b", "ra": "v1", "cb": ["c1", "c2"], "co": ["CN", "US"], "ln": [{"instanceId": a}]})
    c = create(
        thing, {"name": f"{t}-c", "co": ["JP"], "cd": [1000, None], "ln": [{"instanceId": a}, {"instanceId": b}]}
    )
    assert call(thing, f"{a}/get", method="GET")["record"]["ra"] == "v2"  # the option's value is stored
    mine = {"name": {"$search": t}}

    def where(condition: dict[str, Any]) -> set[str]:
        found = call(thing, "list", {"filter": {"where": {"$and": [mine, condition]}}, "pageSize": 200})
        return {r["_id"] for r in found["records"]}

    def yida(search: Any) -> set[str]:
        return yida_search(weda_base, search) & {a, b, c}

    # Options by label or value, as the Yida search finds them.
    assert where({"ra": {"$eq": "二"}}) == where({"ra": "v2"}) == yida({"radioField_ra": "二"}) == {a}
    assert where({"ra": {"$in": ["二", "一"]}}) == yida(
        [{"key": "radioField_ra", "value": ["二", "一"], "operator": "in"}]
    )
    assert where({"ra": {"$in": ["二", "一"]}}) == {a, b}
    assert where({"ra": {"$neq": "二"}}) == {b, c}
    assert where({"ra": {"$nin": ["二"]}}) == {b, c}
    assert where({"cb": {"$eq": "乙"}}) == yida({"checkboxField_cb": ["乙"]}) == {b}
    assert where({"cb": {"$in": ["甲"]}}) == yida([{"key": "checkboxField_cb", "value": ["甲"], "operator": "in"}])
    assert where({"cb": {"$in": ["甲"]}}) == {a, b}
    # Countries by their codes, in any shape they are written or read in.
    cn = yida([{"key": "countrySelectField_co", "value": "CN", "operator": "eq"}])
    assert cn == {a, b}
    assert where({"co": {"$eq": "CN"}}) == where({"co": [{"value": "CN"}]}) == where({"co": {"$in": ["CN"]}}) == cn
    assert where({"co": {"$in": ["US", "JP"]}}) == yida(
        [{"key": "countrySelectField_co", "value": ["US", "JP"], "operator": "in"}]
    )
    assert where({"co": {"$in": ["US", "JP"]}}) == {b, c}
    assert where({"co": {"$eq": ["CN", "US"]}}) == {b}  # every country named
    assert where({"co": {"$in": []}}) == set()
    # Relations by the related records' ids (or links).
    assert where({"ln": {"$in": [a]}}) == where({"ln": {"$eq": a}}) == {b, c}
    assert where({"ln": {"$in": [{"instanceId": b}, "FINST-NONE"]}}) == {c}
    assert where({"ln": {"$eq": [a, b]}}) == {c}
    # A date range equal to a [start, end] pair (null: an open end), or not.
    assert where({"cd": {"$eq": [1000, 2000]}}) == {a}
    assert where({"cd": {"$eq": [1000, None]}}) == {c}
    assert where({"cd": {"$neq": [1000, 2000]}}) == {b, c}
    assert where({"co": {"$empty": True}}) == set() and where({"cd": {"$empty": True}}) == {b}

    # What a field cannot be compared by is refused the data-model way, naming the field by its name.
    for condition in (
        {"co": {"$gt": "CN"}},
        {"ln": {"$nin": [a]}},
        {"cd": {"$in": [[1000, 2000]]}},
        {"ad": {"$eq": "x"}},
    ):
        body = refused(thing, "list", {"filter": {"where": condition}})
        assert body["code"] == "UNSUPPORTED_OPERATION", (condition, body)
        assert body["message"].startswith(f"{next(iter(condition))}: "), body
    for condition in ({"cd": {"$eq": 1000}}, {"ln": {"$in": [1]}}, {"co": {"$eq": 5}}):
        assert refused(thing, "list", {"filter": {"where": condition}})["code"] == "INVALID_PARAMETER", condition
