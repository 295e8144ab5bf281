"""The shared request layer as each dialect's mount answers through it: unknown routes, wrong methods and bodies
over the size limit in the dialect's own error format, for every path prefix."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess

LIMIT = 2048


@pytest.fixture(scope="module")
def small(loaded_url: str) -> Iterator[str]:
    """A live server whose bodies may be at most LIMIT bytes."""
    proc = ServerProcess(loaded_url, ZIDA_MAX_BODY_BYTES=str(LIMIT))
    yield f"http://{proc.endpoint}"
    proc.stop()


def dingtalk_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["requestid"], body


def admin_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


# "/" is the web console's (a redirect to /console/); /consolex is nobody's.
@pytest.mark.parametrize("path", ["/v1.0/nope", "/v2.0/yida/nope", "/nope", "/consolex", "/gettoken/x"])
def test_paths_no_dialect_serves_answer_in_dingtalks_format(base_url: str, path: str) -> None:
    dingtalk_error(httpx.get(base_url + path, timeout=10), 404, "NotFound")


@pytest.mark.parametrize("path", ["/admin/v1/nope", "/admin/", "/admin/v2/events"])
def test_admin_paths_answer_in_the_admin_format(base_url: str, path: str) -> None:
    admin_error(httpx.get(base_url + path, timeout=10), 404, "route.not_found")


def test_wrong_methods_answer_in_each_dialects_format(base_url: str) -> None:
    dingtalk_error(httpx.get(base_url + "/v1.0/oauth2/accessToken", timeout=10), 405, "MethodNotAllowed")
    admin_error(httpx.post(base_url + "/admin/v1/events", timeout=10), 405, "request.method_not_allowed")
    admin_error(httpx.post(base_url + "/healthz", timeout=10), 405, "request.method_not_allowed")
    # A path with parameters: the routes taking PUT are tried first, then every route of the path for the 405.
    dingtalk_error(httpx.put(base_url + "/v1.0/yida/forms/instances/FINST-1", timeout=10), 405, "MethodNotAllowed")
    dingtalk_error(httpx.get(base_url + "/v1.0/todo/users/u/tasks", timeout=10), 405, "MethodNotAllowed")
    # A platform API Zida does not serve, whose path fits a route with a parameter: the answer says what is served.
    sort_users = httpx.post(base_url + "/v1.0/contact/users/sort", json={}, timeout=10)
    dingtalk_error(sort_users, 405, "MethodNotAllowed")
    assert sort_users.headers["allow"] == "GET, HEAD", sort_users.headers
    assert sort_users.json()["message"].endswith("Zida serves only GET, HEAD there"), sort_users.json()


def test_a_body_over_the_limit_is_refused_before_it_is_read(small: str) -> None:
    big = b'{"appKey": "' + b"x" * LIMIT + b'", "appSecret": "y"}'
    dingtalk_error(httpx.post(small + "/v1.0/oauth2/accessToken", content=big, timeout=10), 413, "RequestTooLarge")


def test_a_streamed_body_over_the_limit_is_refused_too(small: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"appKey": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}'

    response = httpx.post(small + "/v1.0/oauth2/accessToken", content=chunks(), timeout=10)
    dingtalk_error(response, 413, "RequestTooLarge")


def test_a_body_within_the_limit_is_served(small: str) -> None:
    response = httpx.post(
        small + "/v1.0/oauth2/accessToken", json={"appKey": "keyA-all", "appSecret": "secret-a-all-0001"}, timeout=10
    )
    assert response.status_code == 200 and response.json()["accessToken"], response.text


def test_a_streamed_body_within_the_limit_is_served_whole(small: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"appKey": "keyA-all",'
        yield b' "appSecret": "secret-a-all-0001"}'

    response = httpx.post(small + "/v1.0/oauth2/accessToken", content=chunks(), timeout=10)
    assert response.status_code == 200 and response.json()["accessToken"], response.text


def test_an_oapi_form_body_over_the_limit_is_refused(small: str) -> None:
    form = {"userid": "x" * LIMIT}
    response = httpx.post(small + "/topapi/v2/user/get?access_token=none", data=form, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["errcode"] != 0, body  # oapi answers errors with HTTP 200
    assert f"larger than {LIMIT} bytes" in body["errmsg"], body
