"""Shared fixtures of the SDK conformance tests: one SDK per session, direct database access, fresh records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conformance.sdk import APP_A1, Sdk
from zida.db import open_database


@pytest.fixture(scope="session")
def sdk(server) -> Iterator[Sdk]:  # type: ignore[no-untyped-def]
    """The official SDK pointed at the session's server (tokens cached per credential)."""
    yield Sdk(server.endpoint)


def run_sql(url: str, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run one statement on the session database, outside the server (for setting up states)."""

    async def go() -> list[dict[str, Any]]:
        db = await open_database(url)
        try:
            if query.lstrip().upper().startswith("SELECT"):
                return [dict(r) for r in await db.fetch(query, params)]
            await db.execute(query, params)
            return []
        finally:
            await db.close()

    return asyncio.run(go())


@pytest.fixture
def save(sdk: Sdk) -> Callable[..., str]:
    """Save a record through the SDK and return its formInstanceId."""

    def go(data: dict[str, Any], user: str = "admin1", form: str = "FORM-A1ALL", app: dict[str, str] = APP_A1) -> str:
        response = sdk.call("save_form_data", **app, user_id=user, form_uuid=form, form_data_json=json.dumps(data))
        assert response.status_code == 200
        result: str = response.body.result
        assert result.startswith("FINST-")
        return result

    return go
