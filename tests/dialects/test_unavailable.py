"""The database out of reach (``Unavailable``, raised by ``zida.db`` for lost or refused PostgreSQL connections) in
every dialect's words: a retryable answer with ``Retry-After``, never the 500 of a bug. The live proof, PostgreSQL
stopped under load, is ``tests/reliability/test_pg_restart.py``."""

from __future__ import annotations

import orjson
import pytest

from zida.core.errors import Unavailable
from zida.db.database import _pg_errors
from zida.dialects.admin.http import ERRORS as ADMIN
from zida.dialects.dingtalk.http import ERRORS as DINGTALK
from zida.dialects.dingtalk.oapi import ERRORS as OAPI
from zida.dialects.weda.http import API_ERRORS, AUTH_ERRORS, MODEL_ERRORS

DOWN = Unavailable(
    "the database cannot be reached right now; try again shortly", reason="db.unavailable", retry_after=1
)


def _answer(format_: object) -> tuple[int, dict[str, object], str | None]:
    response = format_.error(DOWN, "REQ1")  # type: ignore[attr-defined]
    return response.status_code, orjson.loads(response.body), response.headers.get("retry-after")


def test_dingtalk_v1_is_503_service_unavailable() -> None:
    status, body, after = _answer(DINGTALK)
    assert (status, body["code"], body["requestid"], after) == (503, "ServiceUnavailable", "REQ1", "1")


def test_oapi_is_errcode_minus_one() -> None:
    status, body, _ = _answer(OAPI)
    assert (status, body["errcode"]) == (200, -1)  # oapi answers HTTP 200 to everything


def test_weda_formats_are_503_with_their_codes() -> None:
    status, body, after = _answer(MODEL_ERRORS)
    assert (status, body["code"], after) == (503, "SERVICE_UNAVAILABLE", "1")
    status, body, after = _answer(API_ERRORS)
    assert (status, body["Response"]["Error"]["Code"], after) == (503, "ServiceUnavailable", "1")  # type: ignore[index]
    status, body, after = _answer(AUTH_ERRORS)
    assert (status, body["error"], after) == (503, "unavailable", "1")


def test_admin_is_503_db_unavailable() -> None:
    status, body, after = _answer(ADMIN)
    assert (status, body["error"]["code"], after) == (503, "db.unavailable", "1")  # type: ignore[index]


class _Refused(ConnectionRefusedError):
    pass


class InternalClientError(Exception):
    """The name asyncpg gives a pooled connection that PostgreSQL ended while it sat idle."""


@pytest.mark.anyio
@pytest.mark.parametrize(
    "raised",
    [
        _Refused(111, "Connection refused"),
        type("AdminShutdownError", (Exception,), {"sqlstate": "57P01"})("terminating connection"),
        type("ConnectionDoesNotExistError", (Exception,), {"sqlstate": "08003"})("connection was closed"),
        InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    ],
)
async def test_postgres_connection_errors_are_unavailable(raised: Exception) -> None:
    with pytest.raises(Unavailable):
        async with _pg_errors():
            raise raised


@pytest.mark.anyio
async def test_other_postgres_errors_are_not_unavailable() -> None:
    with pytest.raises(ValueError):
        async with _pg_errors():
            raise ValueError("a bug stays a bug")
