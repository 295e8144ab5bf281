"""SQLite's statistics of the records table kept true to its size (``refresh_sqlite_statistics``).

Statistics taken while the forms were small go on calling ``form_pk = N`` a handful of records, and a form's own
field index, empty when they were taken, has none: without a refresh an indexed equality on the grown form reads the
whole form through ``ix_form_instance_created``. PostgreSQL's statistics are ANALYZE's and autovacuum's: the refresh
does nothing there.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import SECRET_KEY, ServerProcess, fresh_database
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.apps.queries import parse_fields
from zida.core.records.filters import Condition
from zida.core.records.filters.compiler import FilterCompiler
from zida.core.records.filters.indexes import planned_indexes, refresh_sqlite_statistics
from zida.crypto import SecretBox
from zida.db import Database, open_database

pytestmark = pytest.mark.anyio

BUNDLE = {
    "corp": {"corpId": "corpStats", "name": "统计"},
    "departments": [{"deptId": 1, "name": "根"}],
    "users": [{"userId": "sa", "name": "甲", "departments": [1]}],
    "apps": [
        {
            "appType": "APP_STATS",
            "name": "统计",
            "systemToken": "ST-STATS-0001",
            "admins": ["sa"],
            "forms": [
                {
                    "formUuid": f"FORM-STATS-{n}",
                    "title": f"表{n}",
                    "fields": [
                        {"fieldId": "textField_code", "component": "TextField", "label": "C", "searchable": True}
                    ],
                }
                for n in range(4)
            ],
        }
    ],
}


@pytest.fixture
def stats_url(tmp_path: Path) -> Iterator[str]:
    """A fresh database (four forms, each with one searchable field, are loaded by ``stats_db``)."""
    with fresh_database(tmp_path) as database_url:
        yield database_url


@pytest.fixture
async def stats_db(stats_url: str) -> AsyncIterator[Database]:
    database = await open_database(stats_url)
    try:
        await load_bundle(database, SecretBox(SECRET_KEY), parse_bundle(BUNDLE))
        yield database
    finally:
        await database.close()


async def _add_records(db: Database, form_uuid: str, count: int, start: int = 0) -> None:
    form = await db.fetchrow(
        "SELECT f.id, f.app_pk, a.corp_pk FROM form f JOIN app a ON a.id = f.app_pk WHERE f.form_uuid = :u",
        {"u": form_uuid},
    )
    assert form is not None
    rows = [
        {
            "instance_id": f"FINST-{form_uuid}-{i:07d}",
            "corp_pk": form["corp_pk"],
            "app_pk": form["app_pk"],
            "form_pk": form["id"],
            "data": json.dumps({"textField_code": f"c{i}"}),
            "at": 1_700_000_000_000 + i,
        }
        for i in range(start, start + count)
    ]
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title,"
            " originator_user_id, modifier_user_id, created_at, modified_at, data, data_version)"
            " VALUES (:instance_id, :corp_pk, :app_pk, :form_pk, 1, 't', 'sa', 'sa', :at, :at,"
            f" {tx.sql.json_param('data')}, 1)",
            rows,
        )


_PLANS = itertools.count()


async def _plan(db: Database, form_uuid: str) -> tuple[str, str]:
    """The plan of an equality search on the form's searchable field, and the name of that field's index."""
    form_pk = int(await db.fetchval("SELECT id FROM form WHERE form_uuid = :u", {"u": form_uuid}))
    fields = parse_fields(
        form_pk, 1, await db.fetchval("SELECT fields FROM form_version WHERE form_pk = :f", {"f": form_pk})
    )
    compiler = FilterCompiler(db.sql, fields, form_pk)
    where = compiler.where(Condition("textField_code", "eq", "c5"))
    statement = f"SELECT id FROM form_instance WHERE form_pk = {form_pk} AND {where}"
    # A statement run first: running one is what makes a connection notice a changed schema and load it again (an
    # EXPLAIN runs no transaction, and a prepared one is not prepared again). Both run on the event loop's reader;
    # the EXPLAIN's text is new each time, so the connection's statement cache does not hand back an old plan.
    assert await db.fetchval("SELECT count(*) FROM form WHERE id = :f", {"f": form_pk}) == 1
    rows = await db.fetch(f"EXPLAIN QUERY PLAN {statement}{' ' * next(_PLANS)}", compiler.params)
    index = next(i.name for i in planned_indexes("sqlite", form_pk, fields) if i.field_id == "textField_code")
    return "\n".join(str(r["detail"]) for r in rows), index


async def test_statistics_of_small_forms_are_taken_again_once_a_form_has_grown(
    stats_url: str, stats_db: Database
) -> None:
    if stats_db.sql.name != "sqlite":
        await _add_records(stats_db, "FORM-STATS-0", 2_000)
        assert await refresh_sqlite_statistics(stats_db) is False  # PostgreSQL: ANALYZE and autovacuum keep its own
        return
    for n in (1, 2, 3):
        await _add_records(stats_db, f"FORM-STATS-{n}", 5)
    await stats_db.execute("ANALYZE")  # what PRAGMA optimize did after the load, while each form held 5 records
    assert await refresh_sqlite_statistics(stats_db) is False  # true to the table: nothing to do
    await _add_records(stats_db, "FORM-STATS-0", 5_000)
    # A server started now: its connections load the schema, and these statistics, from here on.
    restarted = await open_database(stats_url, sqlite_readers=1)
    try:
        plan, index = await _plan(restarted, "FORM-STATS-0")
        assert index not in plan, plan  # stale: the whole form in creation order

        assert await refresh_sqlite_statistics(stats_db) is True
        plan, index = await _plan(restarted, "FORM-STATS-0")  # the same connections: they reloaded them
        assert index in plan, plan
    finally:
        await restarted.close()
    counted = await stats_db.fetchval(
        "SELECT stat FROM sqlite_stat1 WHERE tbl = 'form_instance' AND idx = 'ix_form_instance_created'"
    )
    assert int(str(counted).split()[0]) >= 2_500
    assert await refresh_sqlite_statistics(stats_db) is False  # taken: nothing more until the size changes again
    assert not await stats_db.fetchval("SELECT 1 FROM sqlite_master WHERE name = 'zida_statistics_reload'")


async def test_without_statistics_nothing_is_analysed(stats_db: Database) -> None:
    await _add_records(stats_db, "FORM-STATS-0", 5_000)
    assert await refresh_sqlite_statistics(stats_db) is False
    if stats_db.sql.name == "sqlite":
        assert not await stats_db.fetchval(
            "SELECT count(*) FROM sqlite_master m WHERE m.name = 'sqlite_stat1'"
            " AND EXISTS (SELECT 1 FROM sqlite_stat1 WHERE tbl = 'form_instance')"
        )
        plan, index = await _plan(stats_db, "FORM-STATS-0")
        assert index in plan, plan  # SQLite plans from the indexes' shapes, and that serves the search


async def test_a_starting_server_refreshes_stale_statistics(stats_url: str, stats_db: Database) -> None:
    if stats_db.sql.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL's statistics are ANALYZE's and autovacuum's")
    for n in (1, 2, 3):
        await _add_records(stats_db, f"FORM-STATS-{n}", 5)
    await stats_db.execute("ANALYZE")
    await _add_records(stats_db, "FORM-STATS-0", 5_000)
    server = ServerProcess(stats_url)
    try:
        deadline = time.monotonic() + 20
        counted = 15
        while counted < 2_500 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            stat = await stats_db.fetchval(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = 'form_instance' AND idx = 'ix_form_instance_created'"
            )
            counted = int(str(stat).split()[0])
    finally:
        server.stop()
    assert counted >= 2_500
