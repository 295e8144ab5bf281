"""Structured logs of a live server: one line per request whose id is the one the client got (in ``x-request-id``
and wherever the dialect puts its own), with its corp, credential, route template, status and duration — and never
a secret: token requests of every dialect, failed sign-ins, ``?access_token=`` on oapi routes and systemTokens in
query strings and bodies, all logged at debug level, leave no secret, token or password in any line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from tests.conftest import fresh_database, load_fixture_bundle
from tests.observability.servers import LoggedServer
from zida.observability.logs import logging_config, redact
from zida.settings import Settings

A_ALL = ("keyA-all", "secret-a-all-0001")
A_READ = ("keyA-read", "secret-a-read-0001")
WEDA = ("AKIDwedatest0001", "weda-test-key-0001")
APP = {"appType": "APP_A1", "systemToken": "ST-A1-SECRET-TOKEN", "userId": "admin1"}
FORM = "FORM-A1ALL"
INSTANCES = "/v1.0/yida/forms/instances"
# What a careless client sends by mistake: wrong secrets are secrets too.
WRONG = ["wrong-secret-a-77", "Wrong-Pass-9!x", "ST-WRONG-SYSTEM-TOKEN-5", "bogus-token-abcdef123456"]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("logs")) as url:
        for bundle in ("corp_a.yaml", "corp_weda.yaml"):
            load_fixture_bundle(url, bundle)
        yield url


def _lines(text: str) -> list[dict[str, Any]]:
    """The JSON lines of a server's output (every line must be one)."""
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))  # a line that is not JSON fails here
    return out


class Traffic(NamedTuple):
    """What the secret traffic sent (its secrets, some answers by name, every request id) and the server's output."""

    secrets: list[str]
    answers: dict[str, httpx.Response]
    sent: list[str]
    text: str


def _secret_traffic(base: str) -> tuple[list[str], dict[str, httpx.Response], list[str]]:
    """Token requests, sign-ins and calls carrying secrets, in every dialect; the secrets and tokens they involved,
    and some answers by name."""
    secrets = [A_ALL[1], A_READ[1], WEDA[1], APP["systemToken"], "DemoPass123!@#", *WRONG]
    answers: dict[str, httpx.Response] = {}
    sent: list[str] = []

    def count(reply: httpx.Response) -> None:
        sent.append(reply.headers["x-request-id"])

    with httpx.Client(base_url=base, timeout=30, event_hooks={"response": [count]}) as http:
        # DingTalk: v1.0 token, wrong secret, the legacy /gettoken (secrets in the query string), corp token.
        reply = http.post("/v1.0/oauth2/accessToken", json={"appKey": A_ALL[0], "appSecret": A_ALL[1]})
        token = reply.json()["accessToken"]
        answers["token"] = reply
        answers["bad_token"] = http.post("/v1.0/oauth2/accessToken", json={"appKey": A_ALL[0], "appSecret": WRONG[0]})
        legacy = http.get("/gettoken", params={"appkey": A_READ[0], "appsecret": A_READ[1]}).json()["access_token"]
        http.get("/gettoken", params={"appkey": A_READ[0], "appsecret": WRONG[0]})
        corp = http.post(
            "/v1.0/oauth2/corpA/token",
            json={"grant_type": "client_credentials", "client_id": A_ALL[0], "client_secret": A_ALL[1]},
        ).json()["access_token"]
        secrets += [token, legacy, corp]
        headers = {"x-acs-dingtalk-access-token": token}
        # systemToken in a body and in a query string; a wrong one; a wrong access token.
        body = {**APP, "formUuid": FORM, "formDataJson": json.dumps({"textField_t1": "日志"})}
        saved = http.post(INSTANCES, json=body, headers=headers)
        answers["save"] = saved
        record = saved.json()["result"]
        answers["get"] = http.get(f"{INSTANCES}/{record}", params={**APP, "formUuid": FORM}, headers=headers)
        http.get(f"{INSTANCES}/{record}", params={**APP, "systemToken": WRONG[2]}, headers=headers)
        answers["bad_access"] = http.get(
            f"{INSTANCES}/{record}", params=APP, headers={"x-acs-dingtalk-access-token": WRONG[3]}
        )
        http.post(f"{INSTANCES}/search", json={**APP, "formUuid": FORM, "systemToken": WRONG[2]}, headers=headers)
        # oapi: the token in the query string, right and wrong.
        answers["oapi"] = http.post("/topapi/v2/user/get", params={"access_token": legacy}, json={"userid": "u1"})
        answers["oapi_bad"] = http.post("/topapi/v2/user/get", params={"access_token": WRONG[3]}, json={"userid": "u1"})
        http.get("/call_back/get_call_back", params={"access_token": token})
        # WeDa: client credentials (right, wrong), a user's sign-in (right, wrong password), a renewal.
        weda = http.post("/auth/v1/token/clientCredential", auth=WEDA, json={"grant_type": "client_credentials"})
        weda_token = weda.json()["access_token"]
        http.post("/auth/v1/token/clientCredential", auth=(WEDA[0], WRONG[0]), json={})
        signed = http.post(
            "/auth/v1/signin",
            params={"client_id": "lowcode-test0001"},
            json={"username": "zhangsan", "password": "DemoPass123!@#"},
        ).json()
        http.post(
            "/auth/v1/signin",
            params={"client_id": "lowcode-test0001"},
            json={"username": "zhangsan", "password": WRONG[1]},
        )
        renewed = http.post(
            "/auth/v1/token", json={"grant_type": "refresh_token", "refresh_token": signed["refresh_token"]}
        ).json()
        secrets += [weda_token, signed["access_token"], signed["refresh_token"], renewed.get("access_token", "")]
        bearer = {"authorization": f"Bearer {weda_token}"}
        answers["weda_model"] = http.post("/v1/model/prod/expense/list", json={"pageSize": 1}, headers=bearer)
        answers["weda_model_bad"] = http.post(
            "/v1/model/prod/expense/list", json={}, headers={"authorization": f"Bearer {WRONG[3]}"}
        )
        # Admin: a bearer token, right and wrong.
        answers["admin"] = http.get("/admin/v1/credentials", headers={"authorization": f"Bearer {token}"})
        answers["admin_bad"] = http.get("/admin/v1/credentials", headers={"authorization": f"Bearer {WRONG[3]}"})
        answers["unknown"] = http.get("/v1.0/no/such/route", params={"access_token": token})
    return [s for s in secrets if s], answers, sent


@pytest.fixture(scope="module")
def json_server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    server = LoggedServer(
        database,
        tmp_path_factory.mktemp("logs") / "json.log",
        ZIDA_LOG_FORMAT="json",
        ZIDA_LOG_LEVEL="debug",
        ZIDA_RATE_LIMIT_QPS="0",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traffic(json_server: LoggedServer) -> Traffic:
    """The secret traffic sent, and every line the server wrote by the time it stopped."""
    secrets, answers, sent = _secret_traffic(json_server.base)
    json_server.stop()
    return Traffic(secrets, answers, sent, json_server.log_text())


def test_no_secret_token_or_password_in_any_line(traffic: Traffic) -> None:
    secrets, answers, sent, text = traffic
    assert answers["token"].status_code == 200 and answers["get"].status_code == 200
    assert len(secrets) >= 15
    assert len(sent) >= 20 and len(set(sent)) == len(sent)
    for request_id in sent:  # every request was logged, at debug level, once
        assert text.count(f'"request_id":"{request_id}"') == 1
    for secret in secrets:
        assert secret not in text, f"a secret reached the log: {secret[:4]}…"
    assert "authorization" not in text.lower() and "bearer" not in text.lower()


def test_one_line_per_request_with_the_id_the_client_got(traffic: Traffic) -> None:
    answers, text = traffic.answers, traffic.text
    lines = _lines(text)
    access = {line["request_id"]: line for line in lines if line["logger"] == "zida.access"}
    for name, reply in answers.items():
        request_id = reply.headers["x-request-id"]
        assert len(request_id) == 32, name
        line = access[request_id]  # the client's id is the line's
        assert line["status"] == reply.status_code and line["duration_ms"] >= 0, name
        assert set(line) >= {"time", "level", "msg", "dialect", "corp", "credential", "method", "route"}
    # The id is also where each dialect puts its own.
    assert answers["get"].headers["x-acs-request-id"] == answers["get"].headers["x-request-id"]
    assert answers["bad_access"].json()["requestid"] == answers["bad_access"].headers["x-request-id"]
    assert answers["oapi_bad"].json()["request_id"] == answers["oapi_bad"].headers["x-request-id"]
    assert answers["oapi"].json()["request_id"] == answers["oapi"].headers["x-request-id"]
    assert answers["weda_model"].json()["requestId"] == answers["weda_model"].headers["x-request-id"]
    assert answers["unknown"].json()["requestid"] == answers["unknown"].headers["x-request-id"]
    # Route templates, never an id; the caller once known.
    got = access[answers["get"].headers["x-request-id"]]
    assert (got["dialect"], got["route"], got["method"]) == ("dingtalk", f"{INSTANCES}/{{id}}", "GET")
    assert (got["corp"], got["credential"]) == ("corpA", A_ALL[0])
    token = access[answers["token"].headers["x-request-id"]]
    assert (token["route"], token["credential"], token["corp"]) == ("/v1.0/oauth2/accessToken", A_ALL[0], "corpA")
    failed = access[answers["bad_token"].headers["x-request-id"]]
    assert failed["credential"] is None and failed["status"] != 200  # what a failed request typed: never written
    oapi = access[answers["oapi"].headers["x-request-id"]]
    assert (oapi["dialect"], oapi["route"], oapi["corp"]) == ("dingtalk-oapi", "/topapi/v2/user/get", "corpA")
    model = access[answers["weda_model"].headers["x-request-id"]]
    assert model["route"] == "/v1/model/{env}/{model}/list" and model["corp"] == "corpWeda"
    assert access[answers["admin"].headers["x-request-id"]]["dialect"] == "admin"
    assert access[answers["unknown"].headers["x-request-id"]]["route"] == "unmatched"
    assert all(answer.headers["x-request-id"].count(",") == 0 for answer in answers.values())  # one id, not two
    # Other lines (uvicorn's start-up) are JSON too.
    assert any(line["logger"].startswith("uvicorn") for line in lines)


def test_text_lines_and_the_access_log_switch(database: str, tmp_path: Path) -> None:
    text_server = LoggedServer(database, tmp_path / "text.log", ZIDA_LOG_FORMAT="text")
    quiet = LoggedServer(database, tmp_path / "quiet.log", ZIDA_ACCESS_LOG="off")
    try:
        reply = httpx.post(
            f"{text_server.base}/v1.0/oauth2/accessToken", json={"appKey": A_ALL[0], "appSecret": A_ALL[1]}
        )
        httpx.post(f"{quiet.base}/v1.0/oauth2/accessToken", json={"appKey": A_ALL[0], "appSecret": A_ALL[1]})
    finally:
        text_server.stop()
        quiet.stop()
    request_id = reply.headers["x-request-id"]
    line = next(line for line in text_server.log_text().splitlines() if request_id in line)
    assert " zida.access request " in line and "route=/v1.0/oauth2/accessToken" in line and "status=200" in line
    assert f"credential={A_ALL[0]}" in line and A_ALL[1] not in text_server.log_text()
    assert "zida.access" not in quiet.log_text() and "uvicorn" in quiet.log_text()


def test_redaction_masks_what_a_message_might_carry() -> None:
    cases = {
        "GET /gettoken?appkey=k&appsecret=s3cr3t&x=1": "s3cr3t",
        '{"appSecret": "abc-123", "appKey": "k"}': "abc-123",
        "systemToken=ST-XYZ-1 userId=u1": "ST-XYZ-1",
        "authorization: Bearer eyJhbGciOi.x.y": "eyJhbGciOi",
        "POST /topapi/v2/user/get?access_token=tok-987": "tok-987",
        "{'password': 'p@ss w0rd'}": "p@ss",
        "client_secret=cs-1&refresh_token=rt-2": "rt-2",
    }
    for message, secret in cases.items():
        masked = redact(message)
        assert secret not in masked and "***" in masked, message
    assert redact("user u1 saved FINST-1 in 3 ms") == "user u1 saved FINST-1 in 3 ms"


def test_logging_config_follows_the_settings() -> None:
    config = logging_config(Settings(log_format="text", log_level="warning", access_log=False), None)
    assert config["formatters"]["zida"]["()"].endswith("TextFormatter")
    assert config["loggers"]["zida"]["level"] == "WARNING" and config["loggers"]["zida.access"]["level"] == "CRITICAL"
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
    config = logging_config(Settings(), "debug")
    assert (
        config["formatters"]["zida"]["()"].endswith("JsonFormatter") and config["loggers"]["zida"]["level"] == "DEBUG"
    )
