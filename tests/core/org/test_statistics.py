"""A bulk write of the directory (``zida load`` of an org, ``zida users import``) leaves PostgreSQL with statistics
of what it wrote, so that the next reads are planned for the org's real size; smaller writes leave them to
autovacuum. (SQLite plans these reads from its indexes alone: there is nothing to refresh.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import SECRET_KEY, TEST_DATABASE, fresh_database, opened
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.org.actions import BULK_DIRECTORY_ROWS
from zida.core.org.models import CorpRef
from zida.core.org.repository import find_corp
from zida.crypto import SecretBox
from zida.db import Database
from zida.db.database import is_postgres
from zida.org_import import import_users, read_users_csv

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not is_postgres(TEST_DATABASE), reason="PostgreSQL's planner statistics"),
]

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from org_bundle import CORP, org_bundle  # noqa: E402  (bench/org_bundle.py: the contacts benchmark's org)


async def vacuumed(db: Database, table: str) -> bool:
    """Whether ``table`` has been vacuumed by hand (which marks its pages all-visible, as far as no older snapshot
    of another session still needs their rows: so the visibility map itself is not asserted here)."""
    query = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = to_regclass(:t)"
    count = await db.fetchval(query, {"t": table})
    return int(count or 0) > 0


async def planned_rows(db: Database, table: str) -> float:
    """The rows the planner believes ``table`` has (-1: never analyzed)."""
    value = await db.fetchval("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)", {"t": table})
    return float(value)


async def test_a_bulk_load_refreshes_the_directorys_statistics(tmp_path: Path) -> None:
    users = BULK_DIRECTORY_ROWS + 200
    with fresh_database(tmp_path) as url:
        async with opened(url) as db:
            small = org_bundle(users=20, departments=5)
            await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(small))
            assert await planned_rows(db, "org_user") <= 0  # 21 rows written: left to autovacuum
            assert not await vacuumed(db, "org_user")

            await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(org_bundle(users=users, departments=50)))
            assert await planned_rows(db, "org_user") == users
            assert await planned_rows(db, "user_department") >= users
            assert await planned_rows(db, "department") == 50
            assert await vacuumed(db, "org_user") and await vacuumed(db, "user_name_gram")


async def test_a_bulk_users_import_refreshes_them_too(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as url:
        async with opened(url) as db:
            await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(org_bundle(users=10, departments=3)))
            corp = await find_corp(db, CORP)
            assert corp is not None
            lines = ["userId,name,departments"] + [f"imp{i:05d},导入{i},2" for i in range(BULK_DIRECTORY_ROWS)]
            rows, _ = read_users_csv("\n".join(lines).encode())
            report = await import_users(db, CorpRef(corp.pk, corp.corp_id), rows)
            assert report.outcomes["created"] == BULK_DIRECTORY_ROWS
            assert await planned_rows(db, "org_user") == BULK_DIRECTORY_ROWS + 10
