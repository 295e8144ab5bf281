"""The request budget (issue 9) on a live server, for every route a probe reaches: JSON nesting refused at parse
time, long search values, many condition values, bound values per statement, text per component, record and page
size, and numbers as numbers. Each found problem of the issue is a case here; none may answer 5xx.

Writes only to the limits corp (``tests/fixtures/corp_limits.yaml``).
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ServerProcess, load_fixture_bundle
from zida.core.errors import InvalidArgument
from zida.dialects.http import decode_json, text_nests_deeper

KEY = ("keyL-all", "secret-l-all-0001")
ADMIN_KEY = ("keyL-admin", "secret-l-admin-0001")
APP = {"appType": "APP_LIMITS", "systemToken": "ST-LIMITS-SECRET-TOKEN", "userId": "ladmin"}
FORM = "FORM-LIMITS-ALL"
Y = "/v1.0/yida/forms/instances"

BAD = "invalidParameter.parameter.error"
EXPECT_NUMBER = "invalidParameter.parameter.expectDoubleButNonNumeric"
FORM_DATA = "invalidState.form.invalidFormData"
TOO_EXPENSIVE = "invalidParameter.request.tooExpensive"


@pytest.fixture(scope="session")
def limits_corp(loaded_url: str) -> str:
    """The session database with the limits corp loaded (idempotent: every module using it may ask)."""
    load_fixture_bundle(loaded_url, "corp_limits.yaml")
    return loaded_url


class Client:
    """Raw HTTP as a DingTalk client of the limits corp (the SDK would refuse to send some of these)."""

    def __init__(self, base_url: str, key: tuple[str, str] = KEY) -> None:
        self.base = base_url
        self.http = httpx.Client(base_url=base_url, timeout=60)
        reply = self.http.post("/v1.0/oauth2/accessToken", json={"appKey": key[0], "appSecret": key[1]})
        assert reply.status_code == 200, reply.text
        self.headers = {"x-acs-dingtalk-access-token": reply.json()["accessToken"]}

    def send(self, method: str, path: str, body: Any = None, *, raw: str | bytes | None = None) -> httpx.Response:
        """``body`` as JSON (with the app's credentials), or ``raw`` text exactly as given."""
        if raw is None:
            raw = json.dumps({**APP, "formUuid": FORM, **(body or {})})
        return self.http.request(
            method, path, content=raw, headers={**self.headers, "content-type": "application/json"}
        )

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.send("POST", path, body, **kw)

    def save(self, values: dict[str, Any]) -> httpx.Response:
        return self.post(Y, {"formDataJson": json.dumps(values)})

    def search(self, search: Any = None, **fields: Any) -> httpx.Response:
        body = dict(fields)
        if search is not None:
            body["searchFieldJson"] = search if isinstance(search, str) else json.dumps(search)
        return self.post(f"{Y}/search", body)

    def query_all(self, conditions: Any = None, **fields: Any) -> httpx.Response:
        body = dict(fields)
        if conditions is not None:
            body["searchCondition"] = conditions if isinstance(conditions, str) else json.dumps(conditions)
        return self.post(f"{Y}/advances/queryAll", body)

    def count(self, marker: str) -> int:
        reply = self.search({"textField_lt": marker})
        assert reply.status_code == 200, reply.text
        return int(reply.json()["totalCount"])


def refused(reply: httpx.Response, code: str = BAD, status: int = 400, *, says: str = "") -> dict[str, Any]:
    """A DingTalk error of ``code``; its message short whatever the request held."""
    assert reply.status_code == status, reply.text[:500]
    body: dict[str, Any] = reply.json()
    assert body["code"] == code and body["requestid"], body
    assert says in body["message"], body
    assert len(body["message"]) < 400, body["message"][:500]
    return body


def ok(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text[:500]
    body: dict[str, Any] = reply.json()
    return body


def cond(key: str, operator: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"key": key, "value": value, "operator": operator, **extra}


def marker() -> str:
    return f"限-{secrets.token_hex(5)}"


def nested(depth: int, kind: str = "[") -> str:
    """JSON text nesting ``depth`` arrays (or objects) around 1, built without recursion."""
    if kind == "[":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.fixture(scope="module")
def client(limits_corp: str, base_url: str) -> Iterator[Client]:
    c = Client(base_url)
    yield c
    c.http.close()


# -- JSON nesting: refused at parse time, the same for every parameter of every route ------------------------------

DEPTHS = [65, 300, 1000, 1024, 1025, 5000]


def _deep_requests(depth: int) -> list[tuple[str, str, str]]:
    """(method, path, raw body) of each place a JSON value nests ``depth`` levels."""
    app = json.dumps({**APP, "formUuid": FORM})[1:-1]

    def body(member: str) -> str:  # the body object holding the app's credentials and ``member``
        return "{" + app + ", " + member + "}"

    def text(json_text: str) -> str:  # JSON text inside a string parameter
        return json.dumps(json_text)

    deeper = nested(depth - 1)  # one level fewer: the body's own object is the first
    deeper_object = nested(depth - 1, "{")
    return [
        ("POST", f"{Y}/search", body('"searchFieldJson": ' + text('{"textField_lt": ' + deeper + "}"))),
        ("POST", f"{Y}/search", body('"searchFieldJson": ' + deeper_object)),
        ("POST", f"{Y}/search", body('"dynamicOrder": ' + text(nested(depth)))),
        ("POST", f"{Y}/search", body('"currentPage": ' + deeper)),
        ("POST", f"{Y}/advances/queryAll", body('"searchCondition": ' + text(nested(depth)))),
        ("POST", f"{Y}/advances/queryAll", body('"orderConfigJson": ' + text(nested(depth, "{")))),
        ("POST", f"{Y}/advances/query", body('"pageSize": ' + deeper_object)),
        ("POST", f"{Y}/query", body('"searchFieldJson": ' + text(nested(depth)))),
        ("POST", Y, body('"formDataJson": ' + text(nested(depth, "{")))),
        ("POST", f"{Y}/batchSave", body('"formDataJsonList": [' + text(nested(depth)) + "]")),
        ("PUT", f"{Y}/datas", body('"updateFormDataJsonMap": ' + text(nested(depth, "{")))),
        ("POST", f"{Y}/insertOrUpdate", body('"searchCondition": ' + text(nested(depth)))),
        ("POST", f"{Y}/ids/query", body('"formInstanceIdList": ' + text(nested(depth)))),
        ("POST", "/v2.0/yida/forms/instances/search", body('"useAlias": ' + deeper)),
        ("POST", "/v1.0/yida/processes/instances", body('"searchFieldJson": ' + text(nested(depth)))),
        ("POST", "/v1.0/yida/forms/employeeFields", body('"targetFieldJson": ' + text(nested(depth)))),
        ("POST", "/v1.0/yida/tasks/execute", body('"processInstanceId": ' + deeper)),
        ("POST", "/v1.0/oauth2/accessToken", nested(depth, "{")),
    ]


@pytest.mark.parametrize("depth", DEPTHS)
def test_json_nested_past_the_limit_is_refused_everywhere(client: Client, depth: int) -> None:
    for method, path, raw in _deep_requests(depth):
        reply = client.send(method, path, raw=raw)
        body = refused(reply)
        assert "deeper than 64 levels" in body["message"], (path, body)


def test_the_admin_api_refuses_deep_json_in_its_own_format(limits_corp: str, base_url: str) -> None:
    token = httpx.post(
        f"{base_url}/v1.0/oauth2/accessToken", json={"appKey": ADMIN_KEY[0], "appSecret": ADMIN_KEY[1]}
    ).json()["accessToken"]
    for depth in DEPTHS:
        reply = httpx.post(
            f"{base_url}/admin/v1/tasks/1/return",
            content='{"userId": "ladmin", "remark": ' + nested(depth - 1) + "}",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            timeout=60,
        )
        assert reply.status_code == 400, reply.text[:300]
        assert reply.json()["error"]["code"] == "request.too_deep", reply.text[:300]


def test_json_at_the_depth_limit_is_accepted(client: Client) -> None:
    m = marker()
    address = '{"a":' * 63 + "1" + "}" * 63  # the 64th level is formDataJson's own object
    raw = '{"textField_lt": "%s", "addressField_lad": %s}' % (m, address)  # noqa: UP031
    ok(client.post(Y, {"formDataJson": raw}))
    refused(client.post(Y, {"formDataJson": raw.replace('{"a":', '{"a":{"a":', 1).replace("}}", "}}}", 1)}))
    assert client.count(m) == 1
    # The body itself: 64 levels in all (searchFieldJson decoded with the body counts inside it).
    body = json.dumps({**APP, "formUuid": FORM})[:-1] + ', "searchFieldJson": {"textField_lt": %s}}'
    ok(client.post(f"{Y}/search", raw=body % nested(62).replace("1", json.dumps(m), 1)))
    refused(client.post(f"{Y}/search", raw=body % nested(63)), says="deeper than 64")


def test_a_deep_value_in_a_string_is_text(client: Client) -> None:
    # Only JSON is measured: a text value that looks like deep JSON is stored as written.
    m = marker()
    ok(client.save({"textField_lt": m, "textareaField_la": nested(5000)}))
    assert client.count(m) == 1


# -- long search values: LIKE patterns SQLite refuses past 50,000 bytes -------------------------------------------

LONG = {"50001": "a" * 50_001, "percent": "%" * 25_001, "cjk": "中" * 17_000, "underscore": "_" * 1_001}


@pytest.mark.parametrize("value", list(LONG.values()), ids=list(LONG))
def test_a_long_contains_value_is_refused_on_every_text_kind(client: Client, value: str) -> None:
    for search in ({"textField_lt": value}, {"textField_plain": value}, {"textareaField_la": value}):
        refused(client.search(search), says="at most 1000 characters")
    for conditions in (
        [cond("textField_lt", "like", value)],
        [cond("textField_plain", "contains", value)],
        [cond("title", "like", value)],
        [cond("title", "contains", value)],
        [cond("textField_lrow", "like", value, parentId="tableField_lrows")],
        [cond("textField_lrow", "contains", value, parentId="tableField_lrows")],
        [cond("addressField_lad", "like", value)],
        [cond("checkboxField_lcp", "like", value)],
    ):
        refused(client.query_all(conditions), says="at most 1000 characters")
        upsert = {"searchCondition": json.dumps(conditions), "formDataJson": "{}"}
        assert client.post(f"{Y}/insertOrUpdate", upsert).status_code == 400


def test_a_contains_value_at_the_limit_is_searched(client: Client) -> None:
    m = marker()
    text = m + "%_\\" * 400
    ok(client.save({"textField_lt": text, "tableField_lrows": [{"textField_lrow": text}]}))
    probe = text[:1000]
    assert len(probe) == 1000
    assert ok(client.search({"textField_lt": probe}))["totalCount"] == 1
    assert ok(client.query_all([cond("textField_lrow", "like", probe, parentId="tableField_lrows")]))["totalCount"] == 1


# -- many values in one condition, bound values per statement, conditions per search ----------------------------

CHECKS = [f"c{i:02d}" for i in range(1, 13)]
MISSING = [f"x{i:03d}" for i in range(987)]  # with the 12 options: 999 values, as in the issue


def test_a_check_box_condition_of_999_values_is_answered(client: Client) -> None:
    m = marker()
    ok(client.save({"textField_lt": m, "checkboxField_lc": CHECKS, "checkboxField_lcp": CHECKS}))
    ok(client.save({"textField_lt": m, "checkboxField_lc": CHECKS[:10], "checkboxField_lcp": CHECKS[:10]}))
    mine = cond("textField_lt", "eq", m)
    for field in ("checkboxField_lc", "checkboxField_lcp"):
        assert ok(client.search({"textField_lt": m, field: CHECKS + MISSING}))["totalCount"] == 0
        assert ok(client.search({"textField_lt": m, field: CHECKS[:11]}))["totalCount"] == 1
        assert ok(client.search({"textField_lt": m, field: CHECKS[:10]}))["totalCount"] == 2
        assert ok(client.query_all([mine, cond(field, "contains", CHECKS + MISSING)]))["totalCount"] == 0
        assert ok(client.query_all([mine, cond(field, "in", [*MISSING, CHECKS[11]])]))["totalCount"] == 1
        assert ok(client.query_all([mine, cond(field, "contains", json.dumps(CHECKS[:11]))]))["totalCount"] == 1
    rows = [cond("checkboxField_lrow", "contains", CHECKS + MISSING, parentId="tableField_lrows")]
    assert ok(client.query_all([mine, *rows]))["totalCount"] == 0
    users = [cond("employeeField_lemp", "contains", [f"u{i}" for i in range(999)])]
    assert ok(client.query_all([mine, *users]))["totalCount"] == 0


def test_a_statement_binding_more_values_than_the_budget_is_too_expensive(client: Client) -> None:
    six = [cond("textField_lt", "in", [f"v{i}-{j}" for j in range(1000)]) for i in range(6)]
    body = refused(client.query_all(six), TOO_EXPENSIVE, says="5000")
    assert "narrower" in body["message"]
    ok(client.query_all(six[:4]))


def test_more_conditions_or_values_than_the_limits_are_refused(client: Client) -> None:
    refused(client.query_all([cond("textField_lt", "eq", str(i)) for i in range(201)]), says="200 conditions")
    refused(client.search({f"unknown_{i}": 1 for i in range(100_000)}), says="200 conditions")
    refused(client.query_all([cond("textField_lt", "in", [str(i) for i in range(1001)])]), says="1000 values")
    refused(client.query_all(None, orderConfigJson=json.dumps({f"k{i}": "+" for i in range(100_000)})), says="16 keys")
    ok(client.query_all([cond("textField_lt", "eq", str(i)) for i in range(200)]))


# -- text per component, record size, batches ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "chars"),
    [
        ("textField_lt", 10_000),
        ("serialNumberField_ls", 10_000),
        ("textareaField_la", 50_000),
        ("editorField_le", 80_000),
    ],
)
def test_text_per_component_is_limited(client: Client, field: str, chars: int) -> None:
    m = marker()
    values = {"textField_plain": m, field: "x" * chars}
    ok(client.save(values))
    refused(client.save({**values, field: "x" * (chars + 1)}), FORM_DATA, says=f"at most {chars}")
    refused(client.save({"tableField_lrows": [{"textField_lrow": "x" * 10_001}]}), FORM_DATA, says="at most 10000")
    found = ok(client.query_all([cond("textField_plain", "eq", m)]))
    assert found["totalCount"] == 1 and len(found["data"][0]["formData"][field]) == chars


def test_a_record_larger_than_the_limit_is_refused_also_when_merged(client: Client) -> None:
    m = marker()
    half = "中" * 50_000  # 150,000 bytes of UTF-8: two of them are more than 256 KiB
    refused(client.save({"textField_lt": m, "textareaField_la": half, "textareaField_lb": half}), FORM_DATA)
    instance_id = ok(client.save({"textField_lt": m, "textareaField_la": half}))["result"]
    update = {"formInstanceId": instance_id, "updateFormDataJson": json.dumps({"textareaField_lb": half})}
    refused(client.send("PUT", Y, update), FORM_DATA, says="bytes")
    ok(
        client.send(
            "PUT", Y, {**update, "updateFormDataJson": json.dumps({"textareaField_la": None, "textareaField_lb": half})}
        )
    )
    assert client.count(m) == 1


def test_a_batch_of_oversized_texts_stores_nothing(client: Client) -> None:
    # The 10 MB batchSave of 100 KB texts: each text is past TextareaField's 50,000 characters.
    m = marker()
    items = [json.dumps({"textField_lt": m, "textareaField_la": "x" * 100_000}) for _ in range(100)]
    reply = client.post(f"{Y}/batchSave", {"formDataJsonList": items, "noExecuteExpression": True})
    refused(reply, FORM_DATA, says="at most 50000")
    kept = client.post(
        f"{Y}/batchSave",
        {"formDataJsonList": items[:3], "noExecuteExpression": True, "keepRunningAfterException": True},
    )
    assert ok(kept)["result"] == [] and len(kept.json()["failures"]) == 3
    assert client.count(m) == 0


# -- numbers are numbers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.5, "1.5", "１", "١", "۲", "1_0", "0x1", True, " ", [1], {"a": 1}], ids=repr)
def test_page_numbers_are_whole_ascii_numbers(client: Client, value: Any) -> None:
    for name in ("currentPage", "pageSize"):
        refused(client.search(None, **{name: value}), says=name)
    refused(client.query_all(None, pageNumber=value), says="pageNumber")


def test_integral_page_numbers_are_read(client: Client) -> None:
    assert ok(client.search(None, currentPage=2.0))["currentPage"] == 2
    assert ok(client.search(None, currentPage=" 3 "))["currentPage"] == 3
    assert ok(client.query_all(None, pageNumber="2", pageSize=5.0))["pageNumber"] == 2


@pytest.mark.parametrize("text", ["１２", "١٢", "1_000", "12\u3000"])
def test_numbers_in_other_scripts_are_refused_as_values_and_in_searches(client: Client, text: str) -> None:
    m = marker()
    refused(client.save({"textField_lt": m, "numberField_ln": text}), EXPECT_NUMBER, says="numberField_ln")
    refused(client.search({"numberField_ln": text}), EXPECT_NUMBER)
    refused(client.query_all([cond("numberField_ln", "gt", text)]), EXPECT_NUMBER)
    assert client.count(m) == 0


def test_a_tiny_number_literal_is_refused_as_its_text_is(client: Client) -> None:
    m = marker()
    for raw in (
        '{"textField_lt": "%s", "numberField_ln": 1e-400}',
        '{"textField_lt": "%s", "numberField_ln": [1E-999]}',
    ):
        refused(client.post(Y, {"formDataJson": raw % m}), says="1")
    refused(client.post(Y, {"formDataJson": '{"textField_lt": "%s", "numberField_ln": "1e-400"}' % m}), EXPECT_NUMBER)  # noqa: UP031
    # In the body itself, and in a search.
    app = json.dumps({**APP, "formUuid": FORM})[:-1]
    refused(client.post(f"{Y}/search", raw=app + ', "currentPage": 1e-400}'), says="out of the range")
    refused(client.query_all('[{"key": "numberField_ln", "operator": "gt", "value": 1e-400}]'), says="out of the range")
    assert client.count(m) == 0
    # A small number a double holds is a number; the same characters in a string are text.
    ok(client.post(Y, {"formDataJson": '{"textField_lt": "%s", "numberField_ln": 1e-300}' % m}))  # noqa: UP031
    ok(client.post(Y, {"formDataJson": '{"textField_lt": "%s", "textField_plain": "1e-400"}' % m}))  # noqa: UP031
    assert client.count(m) == 2


# Integer literals orjson reads as doubles: past 2**64 - 1, and below -2**63.
WIDE = "123456789012345678901234567890"
WIDE_NEGATIVE = "-9223372036854775809"


def _wide_values(m: str) -> str:
    """Form data whose integers are wider than 64 bits, as JSON text (the literals written out, not rounded)."""
    return (
        f'{{"textField_lt": "{m}", "textField_plain": {WIDE}, "textareaField_la": {WIDE_NEGATIVE},'
        f' "numberField_ln": {WIDE}, "cascadeSelectField_lcas": [{WIDE}],'
        f' "addressField_lad": {{"address": "x", "postcode": {WIDE}}},'
        f' "attachmentField_lat": [{{"downloadUrl": "https://example.com/a.pdf", "size": {WIDE}}}],'
        f' "tableField_lrows": [{{"textField_lrow": {WIDE}, "numberField_lrow": {WIDE_NEGATIVE}}}]}}'
    )


def _stored(client: Client, m: str) -> dict[str, Any]:
    reply = ok(client.search({"textField_lt": m}))
    assert reply["totalCount"] == 1, reply
    values: dict[str, Any] = reply["data"][0]["formData"]
    return values


def test_a_text_field_keeps_every_digit_of_an_integer_wider_than_64_bits(client: Client) -> None:
    # The platform (Java) reads such a literal exactly; orjson alone would store "1.2345678901234568e+29".
    m = marker()
    ok(client.post(Y, {"formDataJson": _wide_values(m)}))
    stored = _stored(client, m)
    assert stored["textField_plain"] == WIDE and stored["textareaField_la"] == WIDE_NEGATIVE
    assert stored["cascadeSelectField_lcas"] == [WIDE]
    assert stored["numberField_ln"] == float(WIDE)  # a number field holds a double, as before
    # Nested numbers are numbers, stored as doubles (these components are answered as JSON text).
    assert json.loads(stored["addressField_lad"])["postcode"] == float(WIDE)
    assert json.loads(stored["attachmentField_lat"])[0]["size"] == float(WIDE)
    [row] = stored["tableField_lrows"]
    assert row["textField_lrow"] == WIDE and row["numberField_lrow"] == float(WIDE_NEGATIVE)
    # A search for those digits finds the record; the same digits in a string were always text.
    assert client.count(m) == 1
    found = ok(client.search({"textField_lt": m, "textField_plain": WIDE[3:15]}))
    assert found["totalCount"] == 1


def test_every_form_data_parameter_reads_wide_integers_exactly(client: Client) -> None:
    m = marker()
    instance = ok(client.post(Y, {"formDataJson": json.dumps({"textField_lt": m})}))["result"]
    ok(client.send("PUT", Y, {"formInstanceId": instance, "updateFormDataJson": f'{{"textField_plain": {WIDE}}}'}))
    assert _stored(client, m)["textField_plain"] == WIDE
    mapping = json.dumps({instance: "PLACEHOLDER"}).replace('"PLACEHOLDER"', f'{{"textField_plain": {WIDE_NEGATIVE}}}')
    ok(client.send("PUT", f"{Y}/datas", {"updateFormDataJsonMap": mapping, "noExecuteExpression": True}))
    assert _stored(client, m)["textField_plain"] == WIDE_NEGATIVE
    batch = marker()
    items = [f'{{"textField_lt": "{batch}", "textField_plain": {WIDE}}}']
    ok(client.post(f"{Y}/batchSave", {"formDataJsonList": items, "noExecuteExpression": True}))
    assert _stored(client, batch)["textField_plain"] == WIDE


# -- error messages quote briefly ----------------------------------------------------------------------------------


def test_error_messages_never_carry_the_whole_value(client: Client) -> None:
    huge = "键" * 100_000
    for reply in (
        client.search({huge: 1}),
        client.query_all([cond(huge, "eq", 1)]),
        client.query_all([cond("textField_lt", huge, 1)]),
        client.query_all([cond("numberField_ln", "gt", huge)]),
        client.query_all([cond("gmt_create", "gt", huge)]),
        client.search(None, currentPage=huge),
        client.search(None, useAlias=huge),
        client.query_all(None, orderConfigJson=json.dumps({huge: "+"})),
        client.save({huge: 1}),
        client.save({"numberField_ln": huge}),
        client.save({"selectField_lsel": huge}),
        client.post("/v2.0/yida/forms/instances", {"useAlias": True, "formDataJson": json.dumps({huge: 1})}),
    ):
        assert reply.status_code == 400, reply.text[:300]
        assert len(reply.json()["message"]) < 400, reply.json()["message"][:300]


# -- the settings reach the server ---------------------------------------------------------------------------------

SMALL = {
    "ZIDA_MAX_JSON_DEPTH": "8",
    "ZIDA_MAX_SEARCH_CONDITIONS": "3",
    "ZIDA_MAX_SEARCH_VALUES": "4",
    "ZIDA_MAX_BOUND_VALUES": "6",
    "ZIDA_MAX_SEARCH_CHARS": "5",
    "ZIDA_MAX_TEXT_CHARS": "20",
    "ZIDA_MAX_TEXTAREA_CHARS": "30",
    "ZIDA_MAX_EDITOR_CHARS": "40",
    "ZIDA_MAX_RECORD_BYTES": "2048",
    "ZIDA_MAX_PAGE_BYTES": "20480",
}


@pytest.fixture(scope="module")
def small(limits_corp: str) -> Iterator[Client]:
    """A live server with a small budget."""
    proc = ServerProcess(limits_corp, **SMALL)
    c = Client(f"http://{proc.endpoint}")
    yield c
    c.http.close()
    proc.stop()


def test_every_limit_setting_reaches_the_server(small: Client) -> None:
    m = marker()[:10]
    refused(small.search('{"textField_lt": %s}' % nested(8)), says="deeper than 8")  # noqa: UP031
    refused(small.save({"textField_lt": m, "addressField_lad": json.loads(nested(8, "{"))}), says="deeper than 8")
    ok(small.save({"textField_lt": m, "addressField_lad": json.loads(nested(7, "{"))}))
    refused(small.query_all([cond("textField_lt", "eq", str(i)) for i in range(4)]), says="3 conditions")
    refused(small.query_all([cond("textField_lt", "in", list("abcde"))]), says="4 values")
    refused(small.query_all([cond("textField_lt", "in", list("abcd"))] * 2), TOO_EXPENSIVE)
    refused(small.search({"textField_lt": "abcdef"}), says="at most 5 characters")
    ok(small.search({"textField_lt": "abcde"}))
    refused(small.save({"textField_lt": "x" * 21}), FORM_DATA, says="at most 20")
    refused(small.save({"textareaField_la": "x" * 31}), FORM_DATA, says="at most 30")
    refused(small.save({"editorField_le": "x" * 41}), FORM_DATA, says="at most 40")
    rows = [{"textField_lrow": "x" * 20} for _ in range(60)]
    refused(small.save({"textField_lt": m, "tableField_lrows": rows}), FORM_DATA, says="at most 2048")
    ok(small.save({"textField_lt": m, "tableField_lrows": rows[:5]}))
    # A page holds ZIDA_MAX_PAGE_BYTES // ZIDA_MAX_RECORD_BYTES = 10 records of the largest size.
    refused(small.search({}, pageSize=11), TOO_EXPENSIVE, says="at most 10")
    refused(small.query_all(None, pageSize=11), TOO_EXPENSIVE, says="at most 10")
    refused(small.post("/v1.0/yida/processes/instances?pageSize=11", {}), TOO_EXPENSIVE, says="at most 10")
    ok(small.search({}, pageSize=10))
    ok(small.post(f"{Y}/ids/APP_LIMITS/{FORM}?pageSize=10", {}))
    refused(small.post(f"{Y}/ids/APP_LIMITS/{FORM}?pageSize=11", {}), TOO_EXPENSIVE)


# -- the shared decoding, in process --------------------------------------------------------------------------------


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests more than ``limit`` arrays/objects (``{}`` is one level); iterative: the
    walk of the value that ``text_nests_deeper`` reads from the text instead (the property test's reference)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def test_depth_is_measured_without_recursion() -> None:
    deep: list[Any] = []
    node = deep
    for _ in range(200_000):  # far past Python's recursion limit
        node.append([])
        node = node[0]
    assert json_depth_exceeds(deep, 64)
    assert not json_depth_exceeds(deep, 200_001)
    assert not json_depth_exceeds("[[[[", 1) and not json_depth_exceeds(1, 1)
    assert not json_depth_exceeds({"a": [1, {"b": []}]}, 4) and json_depth_exceeds({"a": [1, {"b": []}]}, 3)


_TRICKY_TEXT = st.sampled_from(["", "x", "[", "]", "{}", '"', "\\", '\\"[', "}{", "中文[", "\u2028"])
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TRICKY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TRICKY_TEXT, children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_JSON_VALUES, st.integers(min_value=1, max_value=12), st.booleans())
def test_the_depth_read_from_the_text_is_the_depth_of_the_value(value: Any, limit: int, ascii_only: bool) -> None:
    """``decode_json`` checks the depth on the text (brackets inside strings, escaped quotes, any spacing)."""
    raw = json.dumps(value, ensure_ascii=ascii_only, indent=1 if limit % 2 else None).encode()
    assert text_nests_deeper(raw, limit) == json_depth_exceeds(value, limit)


def test_a_wide_body_of_millions_of_values_is_checked_at_c_speed() -> None:
    """A 16 MB body of 5 million empty arrays took the worker's loop 4 s when the decoded value was walked."""
    wide = b'{"x":[' + b",".join([b"[]"] * 5_000_000) + b"]}"
    assert not text_nests_deeper(wide, 64) and text_nests_deeper(wide, 2)
    assert text_nests_deeper(b"[" * 65 + b"]" * 65, 64) and not text_nests_deeper(b"[" * 64 + b"]" * 64, 64)


@pytest.mark.parametrize("depth", [65, 1024, 1025, 100_000])
def test_decoding_refuses_deep_json_the_same_way_at_any_depth(depth: int) -> None:
    for text in (nested(depth), nested(depth, "{"), nested(depth).encode()):
        with pytest.raises(InvalidArgument) as err:
            decode_json(text, "searchFieldJson", param="searchFieldJson")
        assert err.value.reason == "request.too_deep" and err.value.param == "searchFieldJson"
    if depth <= 1024:  # within orjson's own limit a larger budget takes it
        assert json_depth_exceeds(decode_json(nested(depth), "x", max_depth=depth), depth - 1)


def test_decoding_keeps_what_is_within_the_budget() -> None:
    assert decode_json(nested(64), "x") == json.loads(nested(64))
    assert decode_json('{"a": "1e-400", "b": "[[[[[[[[[["}', "x") == {"a": "1e-400", "b": "[[[[[[[[[["}
    assert decode_json("[1e-300, 2.5e-3, 0e-999, 0.0E-5]", "x") == [1e-300, 2.5e-3, 0.0, 0.0]
    assert decode_json('"\\\\u0000"', "x") == "\\u0000"  # the six characters, not a NUL


def test_decoding_form_data_reads_integers_wider_than_64_bits_exactly() -> None:
    text = '{"a": 123456789012345678901234567890, "b": [-9223372036854775809], "c": "1234567890123456789012", "d": 1.5}'
    assert decode_json(text, "x", exact_integers=True) == {
        "a": 123456789012345678901234567890,
        "b": [-9223372036854775809],
        "c": "1234567890123456789012",
        "d": 1.5,
    }
    assert decode_json(text, "x")["a"] == 1.2345678901234568e29  # other parameters: orjson's double, as before
    assert decode_json(text.encode(), "x", exact_integers=True)["b"] == [-(2**63) - 1]
    assert decode_json("[18446744073709551615]", "x", exact_integers=True) == [2**64 - 1]
    with pytest.raises(InvalidArgument) as err:  # still refused the same way
        decode_json("[1" + "0" * 400 + "]", "formDataJson", exact_integers=True)
    assert err.value.reason == "request.number_out_of_range"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1e-400]", "request.number_out_of_range"),
        ('{"n": -2.5E-999}', "request.number_out_of_range"),
        ("1e400", "request.number_out_of_range"),
        ('{"a": "\\u0000"}', "request.nul_character"),
        ("[1,", "argument.bad_json"),
        ("", "argument.bad_json"),
    ],
)
def test_decoding_refusals(text: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decode_json(text, "formDataJson")
    assert err.value.reason == reason
    assert len(err.value.message) < 200


def _answered(base_url: str, status: str | None = None) -> float:
    """Requests the server counted (with ``status``; None: any), from its metrics, all routes."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("zida_http_requests_total{") and (status is None or f'status="{status}"' in line)
    )


def test_a_client_gone_before_the_end_of_its_body_is_not_a_server_error(base_url: str) -> None:
    """A client closing the connection halfway through its body was logged as an unhandled error (500) with a
    traceback, on routes that need no token: anyone could fill the logs. It is the client's error now."""
    host, port = base_url.removeprefix("http://").split(":")
    before_500, before = _answered(base_url, "500"), _answered(base_url)
    paths = ("/v1.0/oauth2/accessToken", "/topapi/v2/user/get?access_token=x", "/auth/v1/token/clientCredential")
    for path in paths:
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            head += "Content-Length: 1000\r\n\r\n"
            conn.sendall(head.encode() + b'{"appKey": "')
    deadline = time.monotonic() + 15
    while _answered(base_url) < before + len(paths) and time.monotonic() < deadline:
        time.sleep(0.2)  # the metrics are flushed every second
    assert _answered(base_url) >= before + len(paths)
    assert _answered(base_url, "500") == before_500  # oapi answers HTTP 200 with its errcode, the others 400
