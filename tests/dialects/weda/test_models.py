"""WeDa data models over form records: every operation, the where DSL, select, order and paging, errors that change
nothing, the access policy, and one record seen through both dialects."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.dialects.weda.conftest import MODEL, Weda


def tag() -> str:
    return uuid.uuid4().hex[:10]


def make(weda: Weda, t: str, **fields: Any) -> str:
    record_id: str = weda.model("create", {"data": {"title": f"{t}-{fields.pop('name', 'x')}", **fields}})["id"]
    return record_id


def titles(data: dict[str, Any]) -> list[str]:
    return [r["title"] for r in data["records"]]


def test_create_get_and_system_fields(weda: Weda) -> None:
    t = tag()
    record_id = make(weda, t, amount=12.5, kind="差旅", tags=["紧急"], spentOn=1735689600000)
    record = weda.model(f"{record_id}/get", method="GET")["record"]
    assert record["_id"] == record_id and record_id.startswith("FINST-")
    assert record["title"] == f"{t}-x" and record["amount"] == 12.5 and record["kind"] == "差旅"
    assert record["tags"] == ["紧急"] and record["spentOn"] == 1735689600000
    assert record["owner"] == record["createBy"] == record["updateBy"] == "wadmin"  # the app's first admin
    assert record["createdAt"] == record["updatedAt"] > 0
    by_filter = weda.model("get", {"filter": {"where": {"_id": {"$eq": record_id}}}, "select": {"$master": True}})
    assert by_filter["record"] == record
    none = weda.model("get", {"filter": {"where": {"title": {"$eq": f"{t}-nothing"}}}})
    assert none == {"record": None}


def test_where_operators_order_paging_and_count(weda: Weda) -> None:
    t = tag()
    for name, amount, kind in (("a", 10, "差旅"), ("b", 20, "餐饮"), ("c", 30, "办公"), ("d", 40, "差旅")):
        make(weda, t, name=name, amount=amount, kind=kind)
    mine = {"title": {"$search": t}}

    def query(where: dict[str, Any], **more: Any) -> dict[str, Any]:
        return weda.model("list", {"filter": {"where": {"$and": [mine, where]}}, "getCount": True, **more})

    assert titles(query({"amount": {"$gt": 20}}, orderBy=[{"amount": "asc"}])) == [f"{t}-c", f"{t}-d"]
    assert query({"amount": {"$gte": 20, "$lte": 30}})["total"] == 2
    assert query({"amount": {"$lt": 20}})["total"] == 1
    assert query({"kind": {"$eq": "差旅"}})["total"] == 2
    assert query({"kind": {"$neq": "差旅"}})["total"] == 2
    assert query({"kind": {"$in": ["餐饮", "办公"]}})["total"] == 2
    assert query({"kind": {"$nin": ["餐饮", "办公"]}})["total"] == 2
    assert query({"$or": [{"amount": {"$eq": 10}}, {"$and": [{"kind": "办公"}, {"amount": 30}]}]})["total"] == 2
    assert query({"title": {"$search_ci": f"{t.upper()}-A"}})["total"] == 1
    assert query({"title": {"$search": f"{t}-A"}})["total"] == 0  # $search is case-sensitive
    assert query({"title": {"$search": f"{t}-a"}})["total"] == 1
    assert query({"title": {"$nsearch": f"{t}-A"}})["total"] == 4
    assert titles(query({"title": {"$nsearch": f"{t}-a"}}, orderBy=[{"amount": "asc"}])) == [
        f"{t}-b",
        f"{t}-c",
        f"{t}-d",
    ]
    assert query({"title": {"$nsearch_ci": f"{t}-"}})["total"] == 0
    assert query({"note": {"$nsearch": "x"}})["total"] == 4  # absent notes do not contain it
    assert query({"note": {"$empty": True}})["total"] == 4
    assert query({"note": {"$nempty": True}})["total"] == 0
    page = query({}, orderBy=[{"amount": "desc"}], pageSize=3, pageNumber=2)
    assert titles(page) == [f"{t}-a"] and page["total"] == 4
    assert query({}, orderBy=[{"amount": "desc"}], pageSize=3.0, pageNumber=2.0) == page  # 2.0 is 2 (README)
    no_count = weda.model("list", {"filter": {"where": mine}, "pageSize": 2})
    assert "total" not in no_count and len(no_count["records"]) == 2
    selected = query({"amount": {"$eq": 10}}, select={"title": True})["records"]
    assert selected == [{"_id": selected[0]["_id"], "title": f"{t}-a"}]
    simple = weda.model("list?pageSize=2&pageNumber=1&getCount=true", method="GET")
    assert len(simple["records"]) == 2 and simple["total"] >= 4
    widest = weda.model("list", {"pageSize": 200, "getCount": True})  # WeDa's largest page
    assert len(widest["records"]) == min(200, widest["total"])


def test_update_upsert_and_delete_by_filter(weda: Weda) -> None:
    t = tag()
    ids = {name: make(weda, t, name=name, amount=1, kind="办公") for name in ("a", "b", "c")}
    one = weda.model("update", {"filter": {"where": {"_id": {"$eq": ids["a"]}}}, "data": {"amount": 5}}, "PUT")
    assert one == {"count": 1}
    assert weda.model(f"{ids['a']}/get", method="GET")["record"]["amount"] == 5
    many = weda.model("updateMany", {"filter": {"where": {"title": {"$search": t}}}, "data": {"kind": "餐饮"}}, "PUT")
    assert many["count"] == 3 and set(many["legalIdList"]) == set(ids.values()) and many["illegalIdList"] == []
    miss = weda.model("update", {"filter": {"where": {"title": {"$eq": f"{t}-zzz"}}}, "data": {"amount": 9}}, "PUT")
    assert miss == {"count": 0}
    created = weda.model(
        "upsert",
        {"filter": {"where": {"title": {"$eq": f"{t}-u"}}}, "create": {"title": f"{t}-u", "amount": 1}, "update": {}},
    )
    assert created["count"] == 0 and created["id"].startswith("FINST-")
    updated = weda.model(
        "upsert",
        {"filter": {"where": {"title": {"$eq": f"{t}-u"}}}, "create": {"title": f"{t}-u"}, "update": {"amount": 7}},
    )
    assert updated == {"count": 1, "id": ""}
    assert weda.model(f"{created['id']}/get", method="GET")["record"]["amount"] == 7
    assert weda.model("delete", {"filter": {"where": {"_id": {"$eq": ids["a"]}}}}) == {"count": 1}
    gone = weda.model("deleteMany", {"filter": {"where": {"title": {"$search": t}}}})
    assert gone["count"] == 3
    assert weda.model("list", {"filter": {"where": {"title": {"$search": t}}}, "getCount": True})["total"] == 0
    by_id = make(weda, t, name="z")
    assert weda.model(f"{by_id}/delete", method="DELETE") == {"count": 1}
    assert weda.model(f"{by_id}/delete", method="DELETE") == {"count": 0}


def test_integers_wider_than_64_bits_keep_their_digits_in_text_and_are_searched_without_failing(weda: Weda) -> None:
    t, wide = tag(), 123456789012345678901234567890  # Python's json writes the literal exactly, as a JS BigInt would
    record_id = make(weda, t, note=wide, amount=wide)
    record = weda.model(f"{record_id}/get", method="GET")["record"]
    assert record["note"] == str(wide) and record["amount"] == float(wide)
    mine = {"title": {"$search": t}}

    def count(where: dict[str, Any]) -> int:
        total: int = weda.model("list", {"filter": {"where": {"$and": [mine, where]}}, "getCount": True})["total"]
        return total

    assert count({"note": {"$search": wide}}) == 1 and count({"note": {"$eq": str(wide)}}) == 1
    assert count({"amount": {"$gte": wide}}) == 1 and count({"amount": {"$lt": -(2**64)}}) == 0
    assert count({"amount": {"$in": [wide, -(2**70)]}}) == 1


def test_bad_input_answers_in_the_model_format_and_changes_nothing(weda: Weda) -> None:
    t = tag()
    before = weda.model("list", {"getCount": True})["total"]
    cases: list[tuple[str, Any, str]] = [
        ("create", {"data": {"title": t, "nosuch": 1}}, "INVALID_PARAMETER"),
        ("create", {"data": {"title": t, "amount": "many"}}, "INVALID_PARAMETER"),
        ("create", {"data": {"title": t, "kind": "旅游"}}, "INVALID_PARAMETER"),
        ("create", {"data": [1, 2]}, "INVALID_PARAMETER"),
        ("createMany", {"data": [{"title": f"{t}-ok"}, {"title": f"{t}-bad", "amount": "x"}]}, "INVALID_PARAMETER"),
        ("createMany", {"data": []}, "INVALID_PARAMETER"),
        ("list", {"filter": {"where": {"amount": {"$between": [1, 2]}}}}, "INVALID_PARAMETER"),
        ("list", {"filter": {"where": {"nosuch": {"$eq": 1}}}}, "INVALID_PARAMETER"),
        ("list", {"filter": {"where": {"$or": {"a": 1}}}}, "INVALID_PARAMETER"),
        ("list", {"filter": {"where": {"amount": {"$gt": "lots"}}}}, "INVALID_PARAMETER"),
        ("list", {"filter": "nope"}, "INVALID_PARAMETER"),
        ("list", {"pageSize": 0}, "INVALID_PARAMETER"),
        ("list", {"pageSize": 201}, "INVALID_PARAMETER"),
        ("list", {"pageSize": 1.5}, "INVALID_PARAMETER"),
        ("list", {"pageNumber": 1e300}, "INVALID_PARAMETER"),
        ("list", {"pageSize": "²"}, "INVALID_PARAMETER"),  # str.isdigit() takes it, int() does not: was a 500
        ("list", {"pageSize": "１２"}, "INVALID_PARAMETER"),  # full-width digits are not a number here
        ("list", {"pageNumber": "١٢"}, "INVALID_PARAMETER"),
        ("list", {"orderBy": [{"amount": "up"}]}, "INVALID_PARAMETER"),
        ("list", {"orderBy": [{"a": "asc"}, {"b": "asc"}, {"c": "asc"}, {"d": "asc"}]}, "INVALID_PARAMETER"),
        ("list", {"filter": {"where": {"title": {"$nsearch": ["x"]}}}}, "INVALID_PARAMETER"),
        ("list", {"filter": {"where": {"amount": {"$nsearch": "1"}}}}, "INVALID_PARAMETER"),
        ("update", {"data": {"amount": 1}}, "MISSING_PARAMETER"),
        (
            "upsert",
            {"filter": {"where": {"title": {"$eq": t}}}, "create": {"title": t, "amount": "x"}},
            "INVALID_PARAMETER",
        ),
    ]
    for op, body, code in cases:
        error = weda.model_error(op, body, "PUT" if op in ("update", "updateMany") else "POST")
        assert error["code"] == code, (op, body, error)
    assert weda.model_error("list?pageNumber=%C2%B2", method="GET")["code"] == "INVALID_PARAMETER"
    # Messages name the model's fields as the caller knows them, never Zida's field ids.
    for op, body in (
        ("createMany", {"data": [{"title": f"{t}-ok"}, {"title": f"{t}-bad", "amount": "x"}]}),
        ("create", {"data": {"title": t, "kind": "旅游"}}),
        ("list", {"filter": {"where": {"amount": {"$gt": "lots"}}}}),
    ):
        message = weda.model_error(op, body)["message"]
        assert "Field_" not in message and ("amount" in message or "kind" in message), (op, message)
    # …and the model, its records and their system fields in its words, not the form's.
    assert weda.model_error("list", {"filter": {"where": {"createdAt": {"$eq": "abc"}}}})["message"].startswith(
        "createdAt: "
    )
    two = [weda.model("create", {"data": {"title": f"{t}-twin", "amount": 1}})["id"] for _ in range(2)]
    upsert = {"filter": {"where": {"title": {"$eq": f"{t}-twin"}}}, "create": {"title": "x"}, "update": {"amount": 2}}
    assert weda.model_error("upsert", upsert)["message"].endswith("matches more than one record of data model expense")
    missing = weda.model_error("FINST-NOPE/get", method="GET")["message"]
    assert missing == "record FINST-NOPE does not exist or was deleted", missing
    weda.model("deleteMany", {"filter": {"where": {"_id": {"$in": two}}}}, method="POST")
    assert weda.model("list", {"getCount": True})["total"] == before


def test_unknown_model_env_and_route(weda: Weda) -> None:
    reply = weda.call("POST", "/v1/model/prod/nosuch/list", {})
    assert reply.status_code == 200 and reply.json()["code"] == "DATASOURCE_NOT_EXIST"
    for env in ("staging", "PROD", "prod "):
        reply = weda.call("POST", f"/v1/model/{env}/expense/list", {})
        assert reply.status_code == 200 and reply.json()["code"] == "INVALID_ENV", env
    reply = weda.call("POST", f"{MODEL}/frobnicate", {})
    assert reply.json()["code"] == "INVALID_ACTION"
    wrong_method = weda.call("GET", f"{MODEL}/create")
    assert wrong_method.json()["code"] == "INVALID_REQUEST"
    plain_form = weda.call("POST", "/v1/model/prod/FORM-WEDA-PLAIN/list", {})
    assert plain_form.json()["code"] == "DATASOURCE_NOT_EXIST"  # a form without modelName is no model


def test_signed_in_users_see_what_the_access_policy_lets_them(weda: Weda, zhangsan: Weda, lisi: Weda) -> None:
    t = tag()
    mine = zhangsan.model("create", {"data": {"title": f"{t}-zs", "amount": 1}})["id"]
    assert zhangsan.model(f"{mine}/get", method="GET")["record"]["createBy"] == "wuser1"
    where = {"filter": {"where": {"title": {"$search": t}}}, "getCount": True}
    assert lisi.model("list", where)["total"] == 0  # not his record, not an admin
    assert weda.model("list", where)["total"] == 1  # the integration acts as the app's admin
    denied = lisi.model_error(f"{mine}/get", method="GET")
    assert denied["code"] in ("RESOURCE_NOT_FOUND", "PERMISSION_DENIED")
    assert lisi.model("deleteMany", {"filter": {"where": {"title": {"$search": t}}}})["count"] == 0
    assert zhangsan.model(f"{mine}/get", method="GET")["record"]["_id"] == mine


def test_a_model_record_is_a_yida_form_record(weda: Weda, weda_base: str) -> None:
    t = tag()
    record_id = make(weda, t, amount=3, kind="餐饮")
    token = httpx.post(
        f"{weda_base}/v1.0/oauth2/accessToken",
        json={"appKey": "weda-dingtalk-key", "appSecret": "weda-dingtalk-secret"},
    ).json()["accessToken"]
    reply = httpx.get(
        f"{weda_base}/v1.0/yida/forms/instances/{record_id}",
        params={"appType": "APP_WEDA_MAIN", "systemToken": "ST-WEDA-MAIN-APP", "userId": "wadmin"},
        headers={"x-acs-dingtalk-access-token": token},
    )
    assert reply.status_code == 200, reply.text
    data = reply.json()["formData"]
    assert data["textField_title"] == f"{t}-x" and data["numberField_amount"] == 3


def test_relations_filter_and_show_related_records(weda: Weda, zhangsan: Weda) -> None:
    t = tag()

    def project(name: str, city: str) -> str:
        reply = weda.call("POST", "/v1/model/prod/project/create", {"data": {"name": f"{t}-{name}", "city": city}})
        project_id: str = reply.json()["data"]["id"]
        return project_id

    sz, bj = project("深", "深圳"), project("北", "北京")
    make(weda, t, name="a", amount=1, project=[{"instanceId": sz}])
    make(weda, t, name="b", amount=2, project=[{"instanceId": bj}, {"instanceId": sz}])
    make(weda, t, name="c", amount=3, project=[{"instanceId": bj}])
    make(weda, t, name="d", amount=4)
    mine = {"title": {"$search": t}}

    def related(where: dict[str, Any], **more: Any) -> dict[str, Any]:
        body = {"filter": {"where": mine, "relateWhere": {"project": {"where": where}}}, "orderBy": [{"amount": "asc"}]}
        return weda.model("list", {**body, **more})

    assert titles(related({"city": {"$eq": "深圳"}})) == [f"{t}-a", f"{t}-b"]
    assert titles(related({"city": {"$in": ["北京"]}})) == [f"{t}-b", f"{t}-c"]
    assert titles(related({"city": {"$eq": "上海"}})) == []
    shown = related({"city": {"$eq": "北京"}}, select={"title": True, "project": {"city": True}})["records"]
    assert [r["project"] for r in shown] == [
        [{"_id": bj, "city": "北京"}, {"_id": sz, "city": "深圳"}],
        [{"_id": bj, "city": "北京"}],
    ]
    assert set(shown[0]) == {"_id", "title", "project"}
    one = weda.model(
        "get",
        {"filter": {"where": {"title": {"$eq": f"{t}-a"}}}, "select": {"$master": True, "project": {"$master": True}}},
    )["record"]
    assert one["amount"] == 1 and one["project"][0]["name"] == f"{t}-深"
    # zhangsan reads none of the admin's records, related ones included.
    hidden = zhangsan.model(
        "list", {"filter": {"where": mine, "relateWhere": {"project": {"where": {"city": {"$eq": "深圳"}}}}}}
    )
    assert hidden["records"] == []

    for body, code in (
        ({"filter": {"relateWhere": {"title": {"where": {}}}}}, "INVALID_PARAMETER"),  # not a relation
        ({"filter": {"relateWhere": {"loose": {"where": {"x": 1}}}}}, "UNSUPPORTED_OPERATION"),  # no related model
        ({"filter": {"relateWhere": {"project": {"where": {"nope": 1}}}}}, "INVALID_PARAMETER"),
        ({"filter": {"relateWhere": ["project"]}}, "INVALID_PARAMETER"),
        ({"select": {"loose": {"x": True}}}, "UNSUPPORTED_OPERATION"),
    ):
        assert weda.model_error("list", body)["code"] == code, body
