"""Token endpoints: ``oauth2_1_0.get_access_token`` and ``get_token`` through the SDK, ``/gettoken`` and the corp
token raw."""

from __future__ import annotations

import time

import httpx
import pytest
from alibabacloud_dingtalk.oauth2_1_0 import models as oauth_models
from alibabacloud_tea_util import models as util_models

from tests.conformance.conftest import run_sql
from tests.conformance.sdk import A_ALL, A_READ, APP_A1, Sdk, expect_error

TTL_MS = 7200 * 1000


def fresh_token(sdk: Sdk, app_key: str, app_secret: str) -> oauth_models.GetAccessTokenResponse:
    """A token request that bypasses the SDK helper's cache."""
    return sdk.oauth.get_access_token(oauth_models.GetAccessTokenRequest(app_key=app_key, app_secret=app_secret))


def token_expiry(url: str, app_key: str) -> int:
    rows = run_sql(
        url,
        "SELECT t.expires_at FROM access_token t JOIN credential c ON c.id = t.credential_pk"
        " WHERE c.app_key = :k ORDER BY t.expires_at DESC",
        {"k": app_key},
    )
    return int(rows[0]["expires_at"])


def test_access_token_shape(sdk: Sdk) -> None:
    response = fresh_token(sdk, *A_ALL)
    assert response.status_code == 200
    assert response.body.expire_in == 7200
    assert isinstance(response.body.access_token, str) and len(response.body.access_token) >= 16


def test_asking_again_within_validity_returns_the_same_token_renewed(sdk: Sdk, loaded_url: str) -> None:
    first = fresh_token(sdk, *A_ALL).body.access_token
    # Pretend the token is about to lapse: asking again must hand back the same token, valid 7200 s again.
    run_sql(
        loaded_url,
        "UPDATE access_token SET expires_at = :e WHERE credential_pk = (SELECT id FROM credential WHERE app_key = :k)",
        {"e": int(time.time() * 1000) + 60_000, "k": A_ALL[0]},
    )
    before = int(time.time() * 1000)
    second = fresh_token(sdk, *A_ALL).body
    assert second.access_token == first
    assert second.expire_in == 7200
    assert token_expiry(loaded_url, A_ALL[0]) >= before + TTL_MS - 1000
    listed = sdk.call("get_form_list_in_app", **APP_A1, user_id="admin1", token=second.access_token)
    assert listed.body.success is True


@pytest.mark.parametrize(
    ("app_key", "app_secret"),
    [(A_ALL[0], "wrong-secret"), ("no-such-key", "whatever"), (A_ALL[0], A_READ[1])],
    ids=["bad-secret", "unknown-key", "secret-of-another-credential"],
)
def test_bad_credentials_are_invalid_client(sdk: Sdk, app_key: str, app_secret: str) -> None:
    err = expect_error(lambda: fresh_token(sdk, app_key, app_secret), "invalidClientIdOrSecret", 400)
    assert "clientSecret" in err.data["message"]


def test_missing_app_secret_is_missing_parameter(sdk: Sdk) -> None:
    expect_error(lambda: fresh_token(sdk, A_ALL[0], ""), "missingParameter", 400)


def test_gettoken_answers_in_oapi_format(sdk: Sdk, base_url: str) -> None:
    response = httpx.get(f"{base_url}/gettoken", params={"appkey": A_ALL[0], "appsecret": A_ALL[1]})
    assert response.status_code == 200
    body = response.json()
    assert body["errcode"] == 0 and body["errmsg"] == "ok" and body["expires_in"] == 7200
    # One token per app: the legacy endpoint hands out the same token as the v1.0 one.
    assert body["access_token"] == fresh_token(sdk, *A_ALL).body.access_token


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({}, 40035),
        ({"appkey": A_ALL[0]}, 40035),
        ({"appkey": A_ALL[0], "appsecret": "wrong"}, 40096),
        ({"appkey": "no-such-key", "appsecret": "wrong"}, 40096),
    ],
    ids=["nothing", "no-secret", "bad-secret", "unknown-key"],
)
def test_gettoken_errors_are_http_200_with_errcode(base_url: str, params: dict[str, str], errcode: int) -> None:
    response = httpx.get(f"{base_url}/gettoken", params=params)
    assert response.status_code == 200
    body = response.json()
    assert body["errcode"] == errcode
    assert body["errmsg"]
    assert "access_token" not in body


def test_corp_token_is_snake_case_and_usable(sdk: Sdk, base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/v1.0/oauth2/corpA/token",
        json={"client_id": A_READ[0], "client_secret": A_READ[1], "grant_type": "client_credentials"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == 7200
    listed = sdk.call("get_form_list_in_app", **APP_A1, user_id="admin1", token=body["access_token"])
    assert listed.body.result.total_count == 2


@pytest.mark.parametrize(
    ("corp", "body", "status", "code"),
    [
        (
            "corpB",
            {"client_id": A_ALL[0], "client_secret": A_ALL[1], "grant_type": "client_credentials"},
            400,
            "invalid.client",
        ),
        (
            "corpA",
            {"client_id": A_ALL[0], "client_secret": "wrong", "grant_type": "client_credentials"},
            400,
            "invalid.client",
        ),
        (
            "corpA",
            {"client_id": A_ALL[0], "client_secret": A_ALL[1], "grant_type": "password"},
            400,
            "unsupported.grant.type",
        ),
        ("corpA", {"client_id": A_ALL[0], "client_secret": A_ALL[1]}, 400, "unsupported.grant.type"),
        ("corpA", {"grant_type": "client_credentials"}, 400, "missingParameter"),
    ],
    ids=["other-corp", "bad-secret", "bad-grant-type", "no-grant-type", "no-client"],
)
def test_corp_token_errors(base_url: str, corp: str, body: dict[str, str], status: int, code: str) -> None:
    response = httpx.post(f"{base_url}/v1.0/oauth2/{corp}/token", json=body)
    assert response.status_code == status
    error = response.json()
    assert error["code"] == code
    assert error["message"] and error["requestid"]
    assert "access_token" not in error


def test_expired_token_is_invalid_authentication(sdk: Sdk, loaded_url: str) -> None:
    # Issuing drops the server's cached check of this token, so the next use reads the expiry from the database.
    token = fresh_token(sdk, *A_READ).body.access_token
    run_sql(
        loaded_url,
        "UPDATE access_token SET expires_at = 1 WHERE credential_pk = (SELECT id FROM credential WHERE app_key = :k)",
        {"k": A_READ[0]},
    )
    err = expect_error(
        lambda: sdk.call("get_form_list_in_app", **APP_A1, user_id="admin1", token=token),
        "InvalidAuthentication",
        400,
    )
    assert "不合法的access_token" in err.data["message"]
    # After expiry, asking again yields a new token that works.
    renewed = fresh_token(sdk, *A_READ).body.access_token
    sdk.forget(A_READ)
    assert renewed != token
    listed = sdk.call("get_form_list_in_app", **APP_A1, user_id="admin1", token=renewed)
    assert listed.body.success is True


def test_missing_header_is_missing_parameter(sdk: Sdk) -> None:
    err = expect_error(
        lambda: sdk.call("get_form_list_in_app", **APP_A1, user_id="admin1", token=None),
        "AuthenticationFailed.MissingParameter",
        400,
    )
    assert "x-acs-dingtalk-access-token" in err.data["message"]


def test_token_in_query_string_is_not_accepted(sdk: Sdk, base_url: str) -> None:
    response = httpx.get(
        f"{base_url}/v1.0/yida/forms",
        params={
            "access_token": sdk.token(),
            "appType": "APP_A1",
            "systemToken": APP_A1["system_token"],
            "userId": "admin1",
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == "AuthenticationFailed.MissingParameter"


def test_unknown_token_is_invalid_authentication(sdk: Sdk) -> None:
    expect_error(
        lambda: sdk.call("get_form_list_in_app", **APP_A1, user_id="admin1", token="0" * 32),
        "InvalidAuthentication",
        400,
    )


def corp_token(sdk: Sdk, corp_id: str, **fields: str) -> oauth_models.GetTokenResponse:
    """``oauth2_1_0.get_token_with_options``: the client-credentials token of a corp, through the SDK."""
    return sdk.oauth.get_token_with_options(
        corp_id, oauth_models.GetTokenRequest(**fields), {}, util_models.RuntimeOptions()
    )


def test_corp_token_through_the_sdk(sdk: Sdk) -> None:
    response = corp_token(sdk, "corpA", client_id=A_READ[0], client_secret=A_READ[1], grant_type="client_credentials")
    assert response.status_code == 200
    assert response.body.expires_in == 7200
    token = response.body.access_token
    assert isinstance(token, str) and len(token) >= 16
    # One token per app: the corp route hands out the token the internal-app route does, and it works.
    assert token == fresh_token(sdk, *A_READ).body.access_token
    listed = sdk.call("get_form_list_in_app", **APP_A1, user_id="admin1", token=token)
    assert listed.body.result.total_count == 2


@pytest.mark.parametrize(
    ("corp", "fields", "code"),
    [
        (
            "corpA",
            {"client_id": A_ALL[0], "client_secret": "wrong", "grant_type": "client_credentials"},
            "invalid.client",
        ),
        (
            "corpA",
            {"client_id": "no-such-key", "client_secret": "x", "grant_type": "client_credentials"},
            "invalid.client",
        ),
        (
            "corpZ",
            {"client_id": A_ALL[0], "client_secret": A_ALL[1], "grant_type": "client_credentials"},
            "invalid.client",
        ),
        (
            "corpB",
            {"client_id": A_ALL[0], "client_secret": A_ALL[1], "grant_type": "client_credentials"},
            "invalid.client",
        ),
        (
            "corpA",
            {"client_id": A_ALL[0], "client_secret": A_ALL[1], "grant_type": "password"},
            "unsupported.grant.type",
        ),
        ("corpA", {"client_id": A_ALL[0], "client_secret": A_ALL[1]}, "unsupported.grant.type"),
        ("corpA", {"grant_type": "client_credentials"}, "missingParameter"),
    ],
    ids=[
        "bad-secret",
        "unknown-client",
        "unknown-corp",
        "other-corp",
        "wrong-grant-type",
        "no-grant-type",
        "no-client",
    ],
)
def test_corp_token_errors_through_the_sdk(sdk: Sdk, corp: str, fields: dict[str, str], code: str) -> None:
    err = expect_error(lambda: corp_token(sdk, corp, **fields), code, 400)
    assert err.message and "access_token" not in err.data
