"""The auth matrix of every events-out route: no token, a bad token, a credential without the permission, and
another corp's credential (which sees nothing of this corp's callbacks, failures or subscriptions)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conformance.events.conftest import EV_ALL, EV_NOSUB, Events
from tests.conformance.events.receiver import AES_KEY, TOKEN, Receiver
from tests.conformance.sdk import B_ALL
from tests.conftest import load_fixture_bundle

OTHER_ADMIN = ("corpadmin-admin", "corpadmin-secret-admin-01")

OAPI = [
    ("POST", "/call_back/register_call_back"),
    ("POST", "/call_back/update_call_back"),
    ("GET", "/call_back/get_call_back"),
    ("GET", "/call_back/delete_call_back"),
    ("GET", "/call_back/get_call_back_failed_result"),
    ("POST", "/topapi/callback/failrecord/list"),
    ("POST", "/topapi/callback/failrecord/confirm"),
]


def oapi(events: Events, method: str, path: str, token: str | None, body: Any = None) -> dict[str, Any]:
    params = {"access_token": token} if token is not None else {}
    answer = httpx.request(method, events.base + path, params=params, json=body or {}, timeout=30)
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()
    return result


def gateway_code(answer: dict[str, Any], path: str) -> int:
    """The errcode, unwrapped from topapi's 88 (sub_code) when it is one."""
    if path.startswith("/topapi/"):
        assert answer["errcode"] == 88 and answer["request_id"]
        return int(answer["sub_code"])
    return int(answer["errcode"])


@pytest.mark.parametrize(("method", "path"), OAPI, ids=[p for _, p in OAPI])
def test_oapi_routes(events: Events, method: str, path: str) -> None:
    missing = 40000 if path.startswith("/topapi/") else 40014  # topapi's gateway: "access_token is blank"
    assert gateway_code(oapi(events, method, path, None), path) == missing
    assert gateway_code(oapi(events, method, path, "not-a-token"), path) == 40014
    assert gateway_code(oapi(events, method, path, events.token(EV_NOSUB)), path) == 60011


def test_another_corp_sees_nothing(events: Events, receiver: Receiver) -> None:
    client = events.oapi(EV_ALL)
    client.callback.register_call_back(["bpms_instance_change"], TOKEN, AES_KEY, receiver.url)
    try:
        other = events.token(B_ALL)
        assert oapi(events, "GET", "/call_back/get_call_back", other)["errcode"] == 71007
        assert oapi(events, "GET", "/call_back/delete_call_back", other)["errcode"] == 71007
        failed = oapi(events, "GET", "/call_back/get_call_back_failed_result", other)
        assert (failed["errcode"], failed["failed_list"]) == (0, [])
        listed = oapi(events, "POST", "/topapi/callback/failrecord/list", other, {"req": {}})
        assert (listed["errcode"], listed["failed_list"]) == (0, [])
        v1 = httpx.get(events.base + "/v1.0/event/callbacks/failedResults",
                       headers={"x-acs-dingtalk-access-token": other}).json()  # fmt: skip
        assert v1 == {"failedList": [], "hasMore": False}
        assert client.callback.get_call_back()["url"] == receiver.url  # untouched
    finally:
        client.callback.delete_call_back()


def test_v1_failed_results(events: Events) -> None:
    url = events.base + "/v1.0/event/callbacks/failedResults"
    assert httpx.get(url).json()["code"] == "AuthenticationFailed.MissingParameter"
    assert httpx.get(url, headers={"x-acs-dingtalk-access-token": "nope"}).json()["code"] == "InvalidAuthentication"
    denied = httpx.get(url, headers={"x-acs-dingtalk-access-token": events.token(EV_NOSUB)})
    assert (denied.status_code, denied.json()["code"]) == (403, "Forbidden.AccessDenied.AccessTokenPermissionDenied")
    bad = httpx.get(url, params={"beginTime": "soon"}, headers={"x-acs-dingtalk-access-token": events.token()})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalidParameter.parameter.error")


ADMIN = [
    ("GET", "/admin/v1/event-subscriptions", None),
    ("POST", "/admin/v1/event-subscriptions", {"appKey": "ev-http", "kind": "stream", "tags": ["*"]}),
    ("GET", "/admin/v1/event-subscriptions/{id}", None),
    ("PATCH", "/admin/v1/event-subscriptions/{id}", {"tags": ["*"]}),
    ("DELETE", "/admin/v1/event-subscriptions/{id}", None),
    ("GET", "/admin/v1/event-subscriptions/{id}/deliveries", None),
    ("POST", "/admin/v1/event-subscriptions/{id}/redeliver", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN, ids=[f"{m} {p}" for m, p, _ in ADMIN])
def test_admin_routes(events: Events, method: str, path: str, body: Any) -> None:
    load_fixture_bundle(events.url, "corp_admin.yaml")
    made = events.admin("POST", "/admin/v1/event-subscriptions", {"appKey": "ev-all", "kind": "stream", "tags": ["*"]})
    assert made.status_code == 201, made.text
    pk = made.json()["id"]
    target = events.base + path.format(id=pk)
    try:
        for token, status, code in (
            (None, 401, "auth.token_missing"),
            ("not-a-token", 401, "auth.token_invalid"),
            (events.token(EV_NOSUB), 403, "auth.scope_missing"),
        ):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answer = httpx.request(method, target, json=body, headers=headers)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
        other = {"Authorization": f"Bearer {events.sdk.token(OTHER_ADMIN)}"}
        answer = httpx.request(method, target, json=body, headers=other)
        if "{id}" in path:
            assert (answer.status_code, answer.json()["error"]["code"]) == (404, "event.subscription_not_found")
        elif method == "GET":
            assert answer.json() == {"subscriptions": []}
        else:
            assert (answer.status_code, answer.json()["error"]["code"]) == (404, "credential.not_found")
        assert events.admin("GET", f"/admin/v1/event-subscriptions/{pk}").status_code == 200
    finally:
        events.admin("DELETE", f"/admin/v1/event-subscriptions/{pk}")
