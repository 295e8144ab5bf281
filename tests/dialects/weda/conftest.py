"""A live Zida with the WeDa corps loaded, and raw-HTTP WeDa clients of it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import load_fixture_bundle

ENV_ID = "lowcode-test0001"
SECRET = ("AKIDwedatest0001", "weda-test-key-0001")
READ_ONLY = ("AKIDwedaread0001", "weda-read-key-0001")
OTHER_SECRET = ("AKIDwedaother001", "weda-other-key-0001")
MODEL = "/v1/model/prod/expense"


@pytest.fixture(scope="session")
def weda_url(loaded_url: str) -> str:
    """The session database with both WeDa corps loaded (idempotent)."""
    load_fixture_bundle(loaded_url, "corp_weda.yaml")
    load_fixture_bundle(loaded_url, "corp_weda_other.yaml")
    load_fixture_bundle(loaded_url, "corp_weda_pre.yaml")
    return loaded_url


class Weda:
    """A WeDa integration over plain HTTP: a client-credential token, or a signed-in user's."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.token = token

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.http.request(method, path, json=body, headers=headers, **kw)

    def model(self, op: str, body: Any = None, method: str = "POST") -> dict[str, Any]:
        """A data-model call that must succeed: its ``data``."""
        reply = self.call(method, f"{MODEL}/{op}", body)
        assert reply.status_code == 200, reply.text
        payload = reply.json()
        assert "code" not in payload, payload
        assert payload["requestId"]
        data: dict[str, Any] = payload["data"]
        return data

    def model_error(self, op: str, body: Any = None, method: str = "POST") -> dict[str, Any]:
        """A data-model call that must fail the data-model way (HTTP 200, ``{code, message, requestId}``)."""
        reply = self.call(method, f"{MODEL}/{op}", body)
        assert reply.status_code == 200, reply.text
        payload: dict[str, Any] = reply.json()
        assert payload["code"] and payload["message"] and payload["requestId"], payload
        assert "data" not in payload
        return payload


def credential_token(base_url: str, secret: tuple[str, str] = SECRET) -> str:
    reply = httpx.post(
        f"{base_url}/auth/v1/token/clientCredential", auth=secret, json={"grant_type": "client_credentials"}
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


def user_token(base_url: str, username: str, password: str, env: str = ENV_ID) -> str:
    reply = httpx.post(
        f"{base_url}/auth/v1/signin",
        params={"client_id": env},
        content=f'{{"username": "{username}", "password": "{password}"}}',
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


@pytest.fixture(scope="session")
def weda_base(weda_url: str, base_url: str) -> str:
    """The live server's base URL, once the WeDa corps are loaded."""
    return base_url


@pytest.fixture(scope="session")
def weda(weda_base: str) -> Weda:
    """The integration of corpWeda (client credentials: acts as the app's admin)."""
    return Weda(weda_base, credential_token(weda_base))


@pytest.fixture(scope="session")
def zhangsan(weda_base: str) -> Weda:
    """User wuser1 (sign-in name zhangsan), signed in."""
    return Weda(weda_base, user_token(weda_base, "zhangsan", "DemoPass123!@#"))


@pytest.fixture(scope="session")
def lisi(weda_base: str) -> Weda:
    """User wuser2 (signs in with his userId), signed in."""
    return Weda(weda_base, user_token(weda_base, "wuser2", "lisi-pass-5678"))
