"""Transport-level errors answer in DingTalk's v1.0 format ``{code, message, requestid}`` (raw HTTP)."""

from __future__ import annotations

import httpx
import pytest
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models

from tests.conformance.sdk import APP_A1, Sdk, expect_error


def assert_dingtalk_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["requestid"], str) and body["requestid"]


@pytest.mark.parametrize(
    "path", ["/v1.0/yida/nothing", "/v1.0/oauth2/corpA/token/extra", "/v2.0/yida/nope", "/nope", "/v1.0/yida/forms/"]
)
def test_unknown_route_is_404_json(base_url: str, path: str) -> None:
    assert_dingtalk_error(httpx.get(base_url + path), 404, "NotFound")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/v1.0/yida/forms/instances"),
        ("GET", "/v1.0/oauth2/accessToken"),
        ("DELETE", "/v1.0/yida/forms/instances/search"),
        ("PUT", "/v1.0/yida/forms"),
    ],
)
def test_wrong_method_is_405_json(base_url: str, method: str, path: str) -> None:
    assert_dingtalk_error(httpx.request(method, base_url + path), 405, "MethodNotAllowed")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
@pytest.mark.parametrize("path", ["/v1.0/oauth2/accessToken", "/v1.0/yida/forms/instances/search"])
def test_malformed_json_body_is_400_json(sdk: Sdk, base_url: str, path: str, body: bytes) -> None:
    response = httpx.post(
        base_url + path,
        content=body,
        headers={"content-type": "application/json", "x-acs-dingtalk-access-token": sdk.token()},
    )
    assert_dingtalk_error(response, 400, "invalidParameter")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1.0/yida/nothing", 404, "NotFound"),
        ("PATCH", "/v1.0/yida/forms/instances", 405, "MethodNotAllowed"),
    ],
)
def test_sdk_surfaces_transport_errors_as_tea_exceptions(
    sdk: Sdk, method: str, path: str, status: int, code: str
) -> None:
    # `execute` is what every generated `*_with_options` ends in: same transport, same error handling.
    params = open_api_models.Params(
        action="Probe",
        version="yida_1.0",
        protocol="HTTP",
        pathname=path,
        method=method,
        auth_type="AK",
        style="ROA",
        req_body_type="none",
        body_type="json",
    )
    request = open_api_models.OpenApiRequest(headers={"x-acs-dingtalk-access-token": sdk.token()})
    err = expect_error(lambda: sdk.yida.execute(params, request, util_models.RuntimeOptions()), code, status)
    assert "request id" in err.message


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_gettoken_answers_a_wrong_method_in_the_oapi_format(base_url: str, method: str) -> None:
    # oapi errors are HTTP 200 with an errcode (dingtalk-platform §2.1); legacy clients raise on any other status.
    response = httpx.request(method, base_url + "/gettoken", params={"appkey": "keyA-all", "appsecret": "x"})
    assert response.status_code == 200
    assert response.json() == {"errcode": 43001, "errmsg": "需要GET请求"}


def test_healthz(base_url: str) -> None:
    response = httpx.get(base_url + "/healthz")
    assert response.status_code == 200
    assert response.json()["database"] is True


def test_success_carries_a_request_id_header(sdk: Sdk, base_url: str) -> None:
    response = httpx.get(
        base_url + "/v1.0/yida/forms",
        params={"appType": "APP_A1", "systemToken": APP_A1["system_token"], "userId": "admin1"},
        headers={"x-acs-dingtalk-access-token": sdk.token()},
    )
    assert response.status_code == 200
    assert response.headers["x-acs-request-id"]
    assert response.json()["success"] is True
