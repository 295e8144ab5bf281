"""Fixtures of the core-level tests: the core corps loaded for each module and a handle on corpCoreMain per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import load_fixture_bundle
from tests.core.corp import CorpCoreMain
from zida.clock import now_ms
from zida.core.workflow.consistency import find_problems
from zida.db import Database


@pytest.fixture(scope="module")
def core_url(loaded_url: str) -> str:
    """The session database with corpCoreMain and corpCoreOther (kept apart from it) loaded for the module."""
    load_fixture_bundle(loaded_url, "corp_core_main.yaml")
    load_fixture_bundle(loaded_url, "corp_core_other.yaml")
    return loaded_url


@pytest.fixture
async def corp(core_url: str, db: Database, request: pytest.FixtureRequest) -> CorpCoreMain:
    """corpCoreMain as the test module's ``Corp`` subclass if it has one, else as ``CorpCoreMain``."""
    rows = await db.fetch(
        "SELECT a.app_type, a.id, a.corp_pk FROM app a JOIN corp c ON c.id = a.corp_pk WHERE c.corp_id = 'corpCoreMain'"
    )
    corp_class: type[CorpCoreMain] = getattr(request.module, "Corp", CorpCoreMain)
    return corp_class(db, rows[0]["corp_pk"], {r["app_type"]: r["id"] for r in rows})


@pytest.fixture
async def consistent_workflow(corp: CorpCoreMain) -> AsyncIterator[None]:
    """After the test, whatever it did to an approval, the corp's stored workflow keeps every rule."""
    started = now_ms() - 1
    yield
    assert await find_problems(corp.db, corp_pk=corp.corp_pk, since=started) == []
