"""Fixtures of the files core tests."""

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import fresh_database, load_fixture_bundle, opened
from tests.core.files.s3 import moto_server
from zida.db import Database

__all__ = ["corp_a_db", "corp_a_url", "moto_server"]


@pytest.fixture(scope="module")
def corp_a_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database of the test module's own, with corp A loaded."""
    with fresh_database(tmp_path_factory.mktemp("corp-a")) as url:
        load_fixture_bundle(url, "corp_a.yaml")
        yield url


@pytest.fixture
async def corp_a_db(corp_a_url: str) -> AsyncIterator[Database]:
    """That database, opened for one test."""
    async with opened(corp_a_url) as database:
        yield database
