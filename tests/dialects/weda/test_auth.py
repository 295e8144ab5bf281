"""WeDa's sign-in service: client-credential tokens, users' sign-in, renewal, who am I, sign-out, and its errors."""

from __future__ import annotations

import httpx

from tests.dialects.weda.conftest import ENV_ID, MODEL, READ_ONLY, SECRET, Weda, credential_token, user_token


def test_client_credential_token_as_the_private_deployment_guide_shows(weda_base: str) -> None:
    reply = httpx.post(
        f"{weda_base}/auth/v1/token/clientCredential",
        auth=SECRET,
        json={"grant_type": "client_credentials", "envName": "ignored"},
    )
    assert reply.status_code == 200 and reply.reason_phrase == "OK"
    body = reply.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 259200 and body["access_token"]
    again = httpx.post(f"{weda_base}/auth/v1/token/clientCredential", auth=SECRET, json={})
    assert again.json()["access_token"] == body["access_token"]  # same token within validity, renewed


def test_wrong_or_missing_client_secret_is_refused_oauth_style(weda_base: str) -> None:
    wrong = httpx.post(f"{weda_base}/auth/v1/token/clientCredential", auth=(SECRET[0], "not-the-key-at-all"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client" and wrong.json()["error_description"]
    unknown = httpx.post(f"{weda_base}/auth/v1/token/clientCredential", auth=("AKIDnobody", "whatever-key"))
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    missing = httpx.post(f"{weda_base}/auth/v1/token/clientCredential", json={"grant_type": "client_credentials"})
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"
    garbled = httpx.post(
        f"{weda_base}/auth/v1/token/clientCredential", headers={"authorization": "Basic !!!not-base64"}
    )
    assert garbled.status_code == 401 and garbled.json()["error"] == "invalid_client"
    grant = httpx.post(f"{weda_base}/auth/v1/token/clientCredential", auth=SECRET, json={"grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_sign_in_by_username_or_user_id_and_user_me(weda_base: str) -> None:
    reply = httpx.post(
        f"{weda_base}/auth/v1/signin",
        params={"client_id": ENV_ID},
        json={"username": "zhangsan", "password": "DemoPass123!@#"},
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 7200 and body["sub"] == "wuser1"
    assert body["access_token"] and body["refresh_token"]
    me = httpx.get(f"{weda_base}/auth/v1/user/me", headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["sub"] == "wuser1" and me.json()["name"] == "张三" and me.json()["username"] == "zhangsan"
    # wuser2 has no username: he signs in with his userId
    assert user_token(weda_base, "wuser2", "lisi-pass-5678")


def test_bad_sign_ins_say_invalid_username_or_password(weda_base: str) -> None:
    for username, password in (
        ("zhangsan", "wrong-password"),
        ("wuser1", "DemoPass123!@#"),  # he has a username: his userId is not his sign-in name
        ("nobody", "DemoPass123!@#"),
        ("wnopass", "anything-at-all"),  # a user without a password cannot sign in
    ):
        reply = httpx.post(
            f"{weda_base}/auth/v1/signin",
            params={"client_id": ENV_ID},
            json={"username": username, "password": password},
        )
        assert reply.status_code == 400, username
        assert reply.json()["error"] == "invalid_username_or_password", username
    unknown_env = httpx.post(
        f"{weda_base}/auth/v1/signin", params={"client_id": "lowcode-nope"}, json={"username": "a", "password": "b"}
    )
    assert unknown_env.status_code == 404 and unknown_env.json()["error"] == "not_found"
    # two WeDa environments on this server: the environment must be named
    nameless = httpx.post(f"{weda_base}/auth/v1/signin", json={"username": "zhangsan", "password": "DemoPass123!@#"})
    assert nameless.status_code == 400 and nameless.json()["error"] == "invalid_request"
    malformed = httpx.post(f"{weda_base}/auth/v1/signin", params={"client_id": ENV_ID}, content=b"{not json")
    assert malformed.status_code == 400 and malformed.json()["error"] == "invalid_request"


def test_same_sign_in_name_in_another_environment_is_another_user(weda_base: str) -> None:
    reply = httpx.post(
        f"{weda_base}/auth/v1/signin",
        params={"client_id": "lowcode-other0001"},
        json={"username": "zhangsan", "password": "other-pass-1234"},
    )
    assert reply.status_code == 200 and reply.json()["sub"] == "oadmin"
    token = reply.json()["access_token"]
    other = Weda(weda_base, token).model("list", {"getCount": True})
    mine = Weda(weda_base, credential_token(weda_base)).model("list", {"getCount": True})
    assert {r["_id"] for r in other["records"]}.isdisjoint({r["_id"] for r in mine["records"]})


def test_refresh_rotates_and_spends_the_refresh_token(weda_base: str) -> None:
    first = httpx.post(
        f"{weda_base}/auth/v1/signin",
        params={"client_id": ENV_ID},
        json={"username": "zhangsan", "password": "DemoPass123!@#"},
    ).json()
    renewed = httpx.post(
        f"{weda_base}/auth/v1/token",
        params={"client_id": ENV_ID},
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": ENV_ID},
    )
    assert renewed.status_code == 200
    second = renewed.json()
    assert second["access_token"] != first["access_token"] and second["refresh_token"] != first["refresh_token"]
    assert Weda(weda_base, second["access_token"]).model("list", {})["records"] is not None
    spent = httpx.post(
        f"{weda_base}/auth/v1/token",
        params={"client_id": ENV_ID},
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"


def test_sign_out_ends_the_session(weda_base: str) -> None:
    token = user_token(weda_base, "wuser2", "lisi-pass-5678")
    headers = {"authorization": f"Bearer {token}"}
    assert httpx.post(f"{weda_base}/auth/v1/user/signout", headers=headers).status_code == 200
    after = httpx.post(f"{weda_base}{MODEL}/list", headers=headers, json={})
    assert after.status_code == 401 and after.json()["code"] == "INVALID_ACCESS_TOKEN"


def test_user_me_needs_a_user_token(weda_base: str) -> None:
    token = credential_token(weda_base)
    reply = httpx.get(f"{weda_base}/auth/v1/user/me", headers={"authorization": f"Bearer {token}"})
    assert reply.status_code == 403 and reply.json()["error"] == "permission_denied"
    anonymous = httpx.get(f"{weda_base}/auth/v1/user/me")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthenticated"


def test_gateway_refuses_missing_invalid_tokens_and_missing_scopes(weda_base: str) -> None:
    missing = httpx.post(f"{weda_base}{MODEL}/list", json={})
    assert missing.status_code == 401 and missing.json()["code"] == "MISSING_CREDENTIALS"
    invalid = httpx.post(f"{weda_base}{MODEL}/list", json={}, headers={"authorization": "Bearer forged"})
    assert invalid.status_code == 401
    assert invalid.json()["code"] == "INVALID_ACCESS_TOKEN" and invalid.json()["requestId"]
    reader = Weda(weda_base, credential_token(weda_base, READ_ONLY))
    assert reader.model("list", {}) is not None
    denied = reader.model_error("create", {"data": {"title": "x"}})
    assert denied["code"] == "PERMISSION_DENIED"


def test_unknown_auth_route_answers_in_the_auth_format(weda_base: str) -> None:
    reply = httpx.post(f"{weda_base}/auth/v1/nope", json={})
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"


def test_a_signed_in_user_s_token_is_no_dingtalk_app_token(weda_base: str) -> None:
    """DingTalk's APIs take an app's token: the userId they name is the app's word. A WeDa session's token (every
    scope but admin) used to pass there, so any user could approve as his manager or rename colleagues."""
    session = user_token(weda_base, "zhangsan", "DemoPass123!@#")
    app = httpx.post(
        f"{weda_base}/v1.0/oauth2/accessToken",
        json={"appKey": "weda-dingtalk-key", "appSecret": "weda-dingtalk-secret"},
    ).json()["accessToken"]
    v1 = {"x-acs-dingtalk-access-token": session}
    execute = {"processInstanceId": "x", "taskId": 1, "actionerUserId": "wadmin", "result": "agree"}
    for method, path, body in (
        ("POST", "/v1.0/workflow/processInstances/execute", execute),
        ("GET", "/v1.0/contact/users/wadmin", None),
        ("GET", "/v1.0/yida/forms/instances/FINST-X?appType=APP_WEDA_MAIN&systemToken=x&userId=wadmin", None),
    ):
        refused = httpx.request(method, f"{weda_base}{path}", json=body, headers=v1)
        assert refused.status_code == 400 and refused.json()["code"] == "InvalidAuthentication", (path, refused.text)
    rename = {"userid": "wadmin", "name": "改名"}
    for token in (session, app):
        answer = httpx.post(f"{weda_base}/topapi/v2/user/update", params={"access_token": token}, json=rename).json()
        assert (answer["errcode"] != 0) == (token == session), answer
        if token == session:
            assert answer["errcode"] == 88 and "不合法的access_token" in answer["errmsg"] + answer.get("sub_msg", "")
            stored = httpx.post(
                f"{weda_base}/topapi/v2/user/get", params={"access_token": app}, json={"userid": "wadmin"}
            ).json()
            assert stored["result"]["name"] == "管理员"
    httpx.post(
        f"{weda_base}/topapi/v2/user/update", params={"access_token": app}, json={"userid": "wadmin", "name": "管理员"}
    )
    download = httpx.get(f"{weda_base}/ossFileHandle", params={"fileName": "FILE-" + "0" * 32, "access_token": session})
    assert download.status_code == 400 and download.json()["code"] == "InvalidAuthentication"
