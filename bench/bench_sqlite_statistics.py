"""What stale SQLite statistics cost an indexed search, and what ``refresh_sqlite_statistics`` gives back.

    python bench/bench_sqlite_statistics.py --records 200000

A fresh SQLite database with the records benchmark's bundle and three small forms: the database is analysed while
those hold 5 records each and the benchmark form none (as ``PRAGMA optimize`` does after a bundle's index builds in
a young database), then the benchmark form grows to ``--records`` records. A new connection source (a server
started now) runs ``--searches`` searches through the core query path (``search_form_instances``: one indexed
equality on ``textField_title``, page of 20 and the total); then the statistics are refreshed as each server
process does at startup and every ten minutes, and the same connections run the same searches again. Prints the
milliseconds per search (median and p95) before and after, the plan of the search's condition each time, and how
long the refresh took. The database is rebuilt each run (``var/bench/statistics.db``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_records import APP, SECRET, instance_rows  # noqa: E402
from zida.bundle.loader import load_bundle, parse_bundle, read_bundle  # noqa: E402
from zida.core.apps.queries import get_form  # noqa: E402
from zida.core.principals import AppActor  # noqa: E402
from zida.core.records.filters import Condition, Page, RecordQuery  # noqa: E402
from zida.core.records.filters.compiler import FilterCompiler  # noqa: E402
from zida.core.records.filters.indexes import refresh_sqlite_statistics  # noqa: E402
from zida.core.records.queries import search_form_instances  # noqa: E402
from zida.core.records.store import _insert_sql  # noqa: E402
from zida.crypto import SecretBox  # noqa: E402
from zida.db import Database, open_database  # noqa: E402
from zida.db.migrate import upgrade  # noqa: E402

SMALL_FORMS = 3  # forms of 5 records each, analysed while the benchmark form is still empty


async def _insert(db: Database, form_uuid: str, start: int, count: int) -> None:
    form = await db.fetchrow(
        "SELECT f.id, f.app_pk, a.corp_pk FROM form f JOIN app a ON a.id = f.app_pk WHERE f.form_uuid = :u",
        {"u": form_uuid},
    )
    assert form is not None
    rng = random.Random(start)
    for first in range(start, start + count, 10_000):
        numbers = range(first, min(first + 10_000, start + count))
        rows = instance_rows(numbers, rng, form["corp_pk"], form["app_pk"], form["id"], "STATS")
        async with db.transaction() as tx:
            await tx.executemany(_insert_sql(tx), rows)


_EXPLAINED = itertools.count()


async def _searches(db: Database, count: int) -> tuple[list[float], str]:
    """``count`` searches for random titles: the ms each took, and the plan of the searched condition."""
    row = await db.fetchrow(
        "SELECT a.id, a.corp_pk, u.id AS user_pk FROM app a JOIN org_user u ON u.corp_pk = a.corp_pk"
        " WHERE a.app_type = :a AND u.user_id = :u",
        {"a": APP["appType"], "u": APP["userId"]},
    )
    assert row is not None
    actor = AppActor(row["corp_pk"], row["id"], APP["appType"], row["user_pk"], APP["userId"], "admin", True)
    form = await get_form(db, actor, "FORM-BENCH")
    rng = random.Random(7)
    took = []
    for _ in range(count):
        query = RecordQuery(
            filter=Condition("textField_title", "eq", f"title-{rng.randrange(50_000)}"), page=Page(1, 20)
        )
        started = time.perf_counter()
        await search_form_instances(db, actor, form, query)
        took.append((time.perf_counter() - started) * 1000)
    compiler = FilterCompiler(db.sql, form.fields, form.pk)
    where = compiler.where(Condition("textField_title", "eq", "title-1"))
    # A statement run first (it makes the connection notice a changed schema), then an EXPLAIN with a new text each
    # time (a prepared one is not planned again).
    await db.fetchval("SELECT count(*) FROM form WHERE id = :f", {"f": form.pk})
    plan = await db.fetch(
        f"EXPLAIN QUERY PLAN SELECT id FROM form_instance WHERE form_pk = {form.pk} AND {where}"
        f" /* {next(_EXPLAINED)} */",
        compiler.params,
    )
    return took, "; ".join(str(r["detail"]) for r in plan)


def _summary(took: list[float]) -> str:
    ordered = sorted(took)
    return f"median {statistics.median(ordered):.2f} ms, p95 {ordered[int(len(ordered) * 0.95)]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    path = ROOT / "var" / "bench" / "statistics.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    asyncio.run(run(url, args.records, args.searches))


async def run(url: str, records: int, searches: int) -> None:
    """Build the young database, grow it, search before and after the refresh (module docstring)."""
    raw = read_bundle(ROOT / "bench" / "bundle.yaml")
    forms = raw["apps"][0]["forms"]
    forms += [
        {
            "formUuid": f"FORM-SMALL-{n}",
            "title": f"小表{n}",
            "fields": [{"fieldId": "textField_title", "component": "TextField", "label": "标题", "searchable": True}],
        }
        for n in range(SMALL_FORMS)
    ]
    db = await open_database(url)
    try:
        await load_bundle(db, SecretBox(SECRET), parse_bundle(raw))
        for n in range(SMALL_FORMS):
            await _insert(db, f"FORM-SMALL-{n}", 0, 5)
        await db.execute("ANALYZE")  # a young database's statistics: three forms of 5 records, one empty
        print(f"analysed with {SMALL_FORMS} forms of 5 records; growing FORM-BENCH to {records:,} …", flush=True)
        await _insert(db, "FORM-BENCH", 0, records)
    finally:
        await db.close()
    server = await open_database(url)  # a server started now: its connections load these statistics
    try:
        before, plan_before = await _searches(server, searches)
        print(f"stale statistics:     {_summary(before)}\n  plan: {plan_before}", flush=True)
        started = time.perf_counter()
        refreshed = await refresh_sqlite_statistics(server)
        print(f"refresh: {refreshed}, {(time.perf_counter() - started) * 1000:.0f} ms", flush=True)
        after, plan_after = await _searches(server, searches)
        print(f"refreshed statistics: {_summary(after)}\n  plan: {plan_after}", flush=True)
        print(f"median before / after: {statistics.median(before) / statistics.median(after):.0f}x")
    finally:
        await server.close()


if __name__ == "__main__":
    main()
