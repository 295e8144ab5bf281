"""The v1.0 contacts API (``alibabacloud_dingtalk.contact_1_0``, the official SDK, unmodified) against a live Zida:
name search of users and departments, batch get, a user by union id, by DingTalk id; errors and the auth matrix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from alibabacloud_dingtalk.contact_1_0 import models
from alibabacloud_dingtalk.contact_1_0.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models

from tests.conformance.sdk import A_CONTACTS, A_READ, B_ALL, Sdk, expect_error
from tests.conftest import ServerProcess


class Contacts:
    """The contact_1_0 client pointed at Zida, calling with one credential's token."""

    def __init__(self, sdk: Sdk, endpoint: str) -> None:
        self.sdk = sdk
        self.client = Client(open_api_models.Config(protocol="http"))
        self.client._endpoint = endpoint

    def call(
        self, api: str, *args: Any, credential: tuple[str, str] | None = A_CONTACTS, token: str | None = None
    ) -> Any:
        """``client.<api>_with_options(*args, <Api>Headers(token), RuntimeOptions())``; the body as a dict."""
        model = "".join(p[:1].upper() + p[1:] for p in api.split("_"))
        headers = getattr(models, model + "Headers")()
        headers.x_acs_dingtalk_access_token = token if credential is None else self.sdk.token(credential)
        response = getattr(self.client, api + "_with_options")(*args, headers, util_models.RuntimeOptions())
        assert response.status_code == 200
        return response.body.to_map()

    def search_users(self, word: str, offset: int = 0, size: int = 10, full: int | None = None, **kw: Any) -> Any:
        request = models.SearchUserRequest(query_word=word, offset=offset, size=size, full_match_field=full)
        return self.call("search_user", request, **kw)

    def search_departments(self, word: str, offset: int = 0, size: int = 10, **kw: Any) -> Any:
        return self.call(
            "search_department", models.SearchDepartmentRequest(query_word=word, offset=offset, size=size), **kw
        )

    def batch_get(self, user_ids: list[str], **kw: Any) -> Any:
        return self.call("batch_get_user", models.BatchGetUserRequest(user_id_list=user_ids), **kw)

    def user(self, union_id: str, **kw: Any) -> Any:
        return self.call("get_user", union_id, **kw)

    def by_dingtalk_id(self, dingtalk_id: str, **kw: Any) -> Any:
        return self.call("get_user_by_ding_talk_id", models.GetUserByDingTalkIdRequest(dingtalk_id=dingtalk_id), **kw)


@pytest.fixture(scope="module")
def contacts(server: ServerProcess) -> Contacts:
    return Contacts(Sdk(server.endpoint), server.endpoint)


def _union_id(server: ServerProcess, sdk: Sdk, user_id: str) -> str:
    answer = httpx.post(
        f"http://{server.endpoint}/topapi/v2/user/get",
        params={"access_token": sdk.token(A_CONTACTS)},
        json={"userid": user_id},
    ).json()
    return str(answer["result"]["unionid"])


def test_search_users_by_part_of_their_name(contacts: Contacts) -> None:
    assert contacts.search_users("张") == {"hasMore": False, "totalCount": 1, "list": ["u1"]}
    assert contacts.search_users("李四", full=1) == {"hasMore": False, "totalCount": 1, "list": ["u2"]}
    assert contacts.search_users("李", full=1) == {"hasMore": False, "totalCount": 0, "list": []}
    assert contacts.search_users("理员") == {"hasMore": False, "totalCount": 1, "list": ["admin1"]}
    assert contacts.search_users("管理员") == {"hasMore": False, "totalCount": 1, "list": ["admin1"]}
    assert contacts.search_users("没有这个人") == {"hasMore": False, "totalCount": 0, "list": []}


def test_search_departments(contacts: Contacts) -> None:
    assert contacts.search_departments("部") == {"hasMore": False, "totalCount": 2, "list": [10, 20]}
    assert contacts.search_departments("部", offset=0, size=1) == {"hasMore": True, "totalCount": 2, "list": [10]}
    assert contacts.search_departments("部", offset=1, size=1) == {"hasMore": False, "totalCount": 2, "list": [20]}
    assert contacts.search_departments("公司") == {"hasMore": False, "totalCount": 1, "list": [1]}


def test_batch_get_users(contacts: Contacts) -> None:
    answer = contacts.batch_get(["u2", "u1", "nobody"])
    assert [(u["userid"], u["name"]) for u in answer["userList"]] == [("u2", "李四"), ("u1", "张三")]
    assert answer["unauthorizedUserIdList"] == [] and all(len(u["unionid"]) > 8 for u in answer["userList"])


def test_a_user_by_union_id_and_by_dingtalk_id(contacts: Contacts, server: ServerProcess) -> None:
    union_id = _union_id(server, contacts.sdk, "admin1")
    assert contacts.user(union_id) == {
        "nick": "管理员",
        "unionId": union_id,
        "email": "admin1@a.example",
        "visitor": False,
    }
    assert contacts.by_dingtalk_id("u3") == {"userId": "u3"}


BadCall = Callable[[Contacts], Any]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.search_users(""), "invalidParameter.parameter.parameterIsEmpty"),
        (lambda c: c.search_users("张", size=0), "invalidParameter.parameter.error"),
        (lambda c: c.search_users("张", size=101), "invalidParameter.parameter.error"),
        (lambda c: c.search_users("张", offset=-1), "invalidParameter.parameter.error"),
        (lambda c: c.search_users("张" * 101), "invalidParameter.parameter.error"),
        (lambda c: c.search_departments(""), "invalidParameter.parameter.parameterIsEmpty"),
        (lambda c: c.batch_get([f"u{n}" for n in range(101)]), "invalidParameter.parameter.error"),
        (lambda c: c.user("no-such-union-id"), "failure.user.userNotExist"),
        (lambda c: c.user("me"), "invalidParameter.parameter.error"),
        (lambda c: c.by_dingtalk_id("nobody"), "failure.user.userNotExist"),
    ],
)
def test_bad_input(contacts: Contacts, call: BadCall, code: str) -> None:
    expect_error(lambda: call(contacts), code, 400)


ROUTES: list[BadCall] = [
    lambda c, **kw: c.search_users("张", **kw),
    lambda c, **kw: c.search_departments("部", **kw),
    lambda c, **kw: c.batch_get(["u1"], **kw),
    lambda c, **kw: c.user("some-union-id", **kw),
    lambda c, **kw: c.by_dingtalk_id("u1", **kw),
]


@pytest.mark.parametrize(
    "call", ROUTES, ids=["search_user", "search_department", "batch_get", "get_user", "dingtalk_id"]
)
def test_auth_matrix(contacts: Contacts, call: Any) -> None:
    expect_error(lambda: call(contacts, credential=None, token=None), "AuthenticationFailed.MissingParameter", 400)
    expect_error(lambda: call(contacts, credential=None, token="not-a-token"), "InvalidAuthentication", 400)
    expect_error(lambda: call(contacts, credential=A_READ), "Forbidden.AccessDenied.AccessTokenPermissionDenied", 403)


def test_corp_b_sees_nothing_of_corp_a(contacts: Contacts, server: ServerProcess) -> None:
    assert contacts.search_users("张", credential=B_ALL) == {"hasMore": False, "totalCount": 0, "list": []}
    assert contacts.search_departments("研发", credential=B_ALL) == {"hasMore": False, "totalCount": 0, "list": []}
    assert contacts.batch_get(["u1", "admin1"], credential=B_ALL)["userList"] == []
    union_id = _union_id(server, contacts.sdk, "u1")
    expect_error(lambda: contacts.user(union_id, credential=B_ALL), "failure.user.userNotExist", 400)
    expect_error(lambda: contacts.by_dingtalk_id("u1", credential=B_ALL), "failure.user.userNotExist", 400)
    assert contacts.search_users("乙", credential=B_ALL) == {"hasMore": False, "totalCount": 1, "list": ["bAdmin"]}
