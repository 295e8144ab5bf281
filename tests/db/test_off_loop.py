"""No statement holds the event loop, every statement has a time budget (issue 9), on both databases.

* A slow statement runs while the same loop keeps its timers and serves other statements within milliseconds
  (measured with a concurrent probe; bounds are generous for a noisy 2-core machine).
* Past ``statement_timeout`` a statement is stopped and raises ``TooExpensive``; the database stays usable.
* A transaction stopped that way changes nothing; on SQLite, the transactions that shared its COMMIT fail
  cleanly (``Conflict`` ``db.busy``) and those queued behind it are not harmed.
* SQLite binds ``?`` positionally: 40,000 values in one statement cost milliseconds, not seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from zida.core.errors import Conflict, TooExpensive
from zida.db import Database, in_list, open_database
from zida.db.database import _bound

pytestmark = pytest.mark.anyio

# Counts to :n, one row at a time: about a second per few million on either database.
COUNT_TO = (
    "WITH RECURSIVE c(x) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT x + 1 FROM c WHERE x < :n)"
    " SELECT count(*) FROM c"
)
ENDLESS = 10**12  # stopped by the budget long before it ends
# Writes :n rows into {table}: slow enough (hundreds of ms) to be remembered as slow.
SLOW_INSERT = (
    "INSERT INTO {table} (name, n)"
    " WITH RECURSIVE c(x) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT x + 1 FROM c WHERE x < :n)"
    " SELECT :tag || x, x FROM c{where}"
)


def _is_sqlite(db: Database) -> bool:
    return db.sql.name == "sqlite"


@pytest.fixture
async def budgeted(loaded_url: str) -> AsyncIterator[Database]:
    """The session database with a 0.2 s budget per statement."""
    database = await open_database(loaded_url, statement_timeout=0.2)
    try:
        yield database
    finally:
        await database.close()


async def _table(db: Database, name: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(f"CREATE TABLE IF NOT EXISTS {name} (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        await tx.execute(f"DELETE FROM {name}")


class _LoopProbe:
    """Turns the loop over and over while a slow statement runs: a 5 ms timer, then a fast statement.

    No latency bound (timings are not asserted): a statement holding the loop lets no turn finish while it runs,
    one off the loop lets many. ``during`` counts the turns that finished while an awaitable was pending.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.turns = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            assert await self.db.fetchval("SELECT 1") == 1
            self.turns += 1

    async def during(self, awaitable: Awaitable[Any]) -> tuple[Any, int]:
        """``awaitable``'s result and how many turns finished while it was pending."""
        await asyncio.sleep(0.02)  # the probe is running
        before = self.turns
        result = await awaitable
        return result, self.turns - before

    async def __aenter__(self) -> _LoopProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


# Turns that must finish while a slow statement runs (each takes a few ms; the statements run for hundreds).
MIN_TURNS = 5


# -- nothing blocks the loop


async def test_a_slow_statement_leaves_the_loop_free(db: Database) -> None:
    async with _LoopProbe(db) as probe:
        count, turns = await probe.during(db.fetchval(COUNT_TO, {"n": 2_000_000}))
    assert count == 2_000_000
    assert turns >= MIN_TURNS, f"the loop turned {turns} times while a slow read ran"


async def test_a_slow_statement_in_a_transaction_leaves_the_loop_free(db: Database) -> None:
    async with _LoopProbe(db) as probe, db.transaction() as tx:
        count, turns = await probe.during(tx.fetchval(COUNT_TO, {"n": 2_000_000}))
    assert count == 2_000_000
    assert turns >= MIN_TURNS, f"the loop turned {turns} times while a slow read ran in a transaction"


async def test_more_slow_reads_than_readers_do_not_hold_up_fast_ones(loaded_url: str) -> None:
    db = await open_database(loaded_url, sqlite_readers=2)
    try:
        slow = [asyncio.ensure_future(db.fetchval(COUNT_TO, {"n": 1_000_000})) for _ in range(4)]
        await asyncio.sleep(0.05)
        fast = 0  # fast reads answered before the first slow one finished (none if they queued behind them)
        while not any(s.done() for s in slow):
            assert await db.fetchval("SELECT 1") == 1
            fast += 1
            await asyncio.sleep(0.005)
        assert await asyncio.gather(*slow) == [1_000_000] * 4
        assert fast >= MIN_TURNS, f"{fast} fast reads were answered while 4 slow ones held 2 readers"
    finally:
        await db.close()


async def test_a_write_that_was_slow_runs_off_the_loop_from_then_on(db: Database) -> None:
    if not _is_sqlite(db):
        pytest.skip("asyncpg never holds the loop")
    await _table(db, "zt_slow_write")
    write = SLOW_INSERT.format(table="zt_slow_write", where="")
    # The first time it runs on the loop: a write stopped halfway would lose its whole transaction.
    async with db.transaction() as tx:
        await tx.execute(write, {"n": 300_000, "tag": "first"})
    async with _LoopProbe(db) as probe, db.transaction() as tx:
        count, turns = await probe.during(tx.execute(write, {"n": 300_000, "tag": "again"}))
    assert count == 300_000
    assert turns >= MIN_TURNS, f"the loop turned {turns} times while a write known to be slow ran"
    assert await db.fetchval("SELECT count(*) FROM zt_slow_write") == 600_000


async def test_a_slow_write_s_cost_holds_for_its_statement_whatever_the_length_of_its_id_list(db: Database) -> None:
    """A slow ``… IN (:p0, :p1, …)`` sends the same statement with another number of ids off the loop too (each
    length was new text, run to its end on the loop: varying it held the loop again and again)."""
    if not _is_sqlite(db):
        pytest.skip("asyncpg never holds the loop")
    await _table(db, "zt_slow_list")

    def listed(count: int) -> tuple[str, dict[str, Any]]:
        placeholders, params = in_list("p", [-i for i in range(1, count + 1)])
        return SLOW_INSERT.format(table="zt_slow_list", where=f" WHERE x NOT IN ({placeholders})"), params

    text, params = listed(3)
    async with db.transaction() as tx:  # the first run: on the loop, found slow
        await tx.execute(text, {**params, "n": 300_000, "tag": "first"})
    text, params = listed(37)
    async with _LoopProbe(db) as probe, db.transaction() as tx:
        count, turns = await probe.during(tx.execute(text, {**params, "n": 300_000, "tag": "again"}))
    assert count == 300_000
    assert turns >= MIN_TURNS, f"the loop turned {turns} times while a write known to be slow ran"


async def test_building_an_index_never_holds_the_loop(db: Database) -> None:
    await _table(db, "zt_ddl")
    async with db.transaction() as tx:
        await tx.execute("DROP INDEX IF EXISTS zt_ddl_ix")
        await tx.execute(
            "INSERT INTO zt_ddl (name, n)"
            " WITH RECURSIVE c(x) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT x + 1 FROM c WHERE x < :n)"
            " SELECT 'row ' || x, x FROM c",
            {"n": 400_000},
        )
    async with _LoopProbe(db) as probe, db.transaction() as tx:
        _, turns = await probe.during(tx.execute("CREATE INDEX zt_ddl_ix ON zt_ddl (lower(name), n)"))
    assert turns >= MIN_TURNS, f"the loop turned {turns} times while an index was built"


async def test_a_request_s_next_slow_read_goes_before_later_requests(loaded_url: str) -> None:
    """With every reader busy, a request that already ran a slow read gets the next free one before requests that
    came after it (as when statements ran on the loop, one request's after the other): fewer requests time out."""
    db = await open_database(loaded_url, sqlite_readers=1)
    if not _is_sqlite(db):
        await db.close()
        pytest.skip("SQLite's reader pool")
    order: list[str] = []

    async def request(name: str, statements: int) -> None:
        for i in range(statements):
            await db.fetchval(COUNT_TO, {"n": 300_000})
            order.append(f"{name}{i}")

    try:
        first = asyncio.ensure_future(request("a", 3))
        await asyncio.sleep(0.02)  # a's first read is running off the loop
        later = [asyncio.ensure_future(request(name, 1)) for name in "bc"]
        await asyncio.gather(first, *later)
    finally:
        await db.close()
    assert order == ["a0", "a1", "a2", "b0", "c0"]


# -- the statement budget


async def test_a_statement_past_its_budget_is_too_expensive_and_the_database_goes_on(budgeted: Database) -> None:
    with pytest.raises(TooExpensive, match=r"longer than the 0\.2 s .*nothing was changed") as stopped:
        await budgeted.fetchval(COUNT_TO, {"n": ENDLESS})
    assert stopped.value.reason == "request.too_expensive"
    # Every connection it could have run on is usable: the one that was stopped and the others.
    assert [await budgeted.fetchval("SELECT 1") for _ in range(10)] == [1] * 10
    assert await budgeted.fetchval(COUNT_TO, {"n": 10_000}) == 10_000


async def test_concurrent_statements_past_the_budget_all_stop(budgeted: Database) -> None:
    # 5 endless statements on a pool of fewer readers: they take turns, each stopped at its own budget.
    results = await asyncio.gather(
        *(budgeted.fetchval(COUNT_TO, {"n": ENDLESS}) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, TooExpensive) for r in results), results
    assert await budgeted.fetchval(COUNT_TO, {"n": 100_000}) == 100_000


async def test_a_read_past_the_budget_in_a_transaction_undoes_the_transaction(budgeted: Database) -> None:
    await _table(budgeted, "zt_budget_read")
    with pytest.raises(TooExpensive):
        async with budgeted.transaction() as tx:
            await tx.execute("INSERT INTO zt_budget_read (name, n) VALUES ('before', 1)")
            await tx.fetchval(COUNT_TO, {"n": ENDLESS})
    assert await budgeted.fetchval("SELECT count(*) FROM zt_budget_read") == 0
    async with budgeted.transaction() as tx:  # the writer is fine
        await tx.execute("INSERT INTO zt_budget_read (name, n) VALUES ('after', 2)")
    assert await budgeted.fetchval("SELECT name FROM zt_budget_read") == "after"


async def test_an_interrupted_write_transaction_changes_nothing(budgeted: Database) -> None:
    await _table(budgeted, "zt_budget_write")
    with pytest.raises(TooExpensive):
        async with budgeted.transaction() as tx:
            await tx.execute("INSERT INTO zt_budget_write (name, n) VALUES ('first', 1)")
            await tx.execute(  # a write that runs past the budget: stopped halfway through its rows
                "INSERT INTO zt_budget_write (name, n)"
                " WITH RECURSIVE c(x) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT x + 1 FROM c WHERE x < :n)"
                " SELECT 'row ' || x, x FROM c",
                {"n": ENDLESS},
            )
    assert await budgeted.fetchval("SELECT count(*) FROM zt_budget_write") == 0
    async with budgeted.transaction() as tx:
        await tx.execute("INSERT INTO zt_budget_write (name, n) VALUES ('later', 2)")
    assert [r["name"] for r in await budgeted.fetch("SELECT name FROM zt_budget_write")] == ["later"]


async def test_an_interrupted_write_spares_the_transactions_queued_behind_it(budgeted: Database) -> None:
    """On SQLite, A's block ends while B and C wait, so B joins A's open SQLite transaction (group commit) and its
    interrupted write rolls A back too: A fails cleanly (``db.busy``, nothing written), C starts afresh. On
    PostgreSQL every transaction is its own: A commits."""
    await _table(budgeted, "zt_budget_group")
    a_inside = asyncio.Event()

    async def a() -> None:
        async with budgeted.transaction() as tx:
            await tx.execute("INSERT INTO zt_budget_group (name, n) VALUES ('a', 1)")
            a_inside.set()
            await asyncio.sleep(0.1)  # B and C queue up meanwhile

    async def b() -> None:
        await a_inside.wait()
        async with budgeted.transaction() as tx:
            await tx.execute("INSERT INTO zt_budget_group (name, n) VALUES ('b', 2)")
            await tx.execute(
                "INSERT INTO zt_budget_group (name, n)"
                " WITH RECURSIVE c(x) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT x + 1 FROM c WHERE x < :n)"
                " SELECT 'b' || x, x FROM c",
                {"n": ENDLESS},
            )

    async def c() -> None:
        await a_inside.wait()
        await asyncio.sleep(0.01)  # behind B
        async with budgeted.transaction() as tx:
            await tx.execute("INSERT INTO zt_budget_group (name, n) VALUES ('c', 3)")

    result_a, result_b, result_c = await asyncio.gather(a(), b(), c(), return_exceptions=True)
    assert isinstance(result_b, TooExpensive), result_b
    assert result_c is None, result_c
    names = sorted(r["name"] for r in await budgeted.fetch("SELECT name FROM zt_budget_group"))
    if _is_sqlite(budgeted):
        assert isinstance(result_a, Conflict) and result_a.reason == "db.busy", result_a
        assert names == ["c"]
    else:
        assert result_a is None
        assert names == ["a", "c"]


async def test_a_block_that_swallows_the_budget_error_writes_nothing(budgeted: Database) -> None:
    if not _is_sqlite(budgeted):
        pytest.skip("PostgreSQL refuses every later statement of an aborted transaction by itself")
    await _table(budgeted, "zt_budget_swallow")
    with pytest.raises(Conflict) as lost:
        async with budgeted.transaction() as tx:
            await tx.execute("INSERT INTO zt_budget_swallow (name, n) VALUES ('kept?', 1)")
            with pytest.raises(TooExpensive):
                await tx.execute(
                    "INSERT INTO zt_budget_swallow (name, n)"
                    " WITH RECURSIVE c(x) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT x + 1 FROM c WHERE x < :n)"
                    " SELECT 'r' || x, x FROM c",
                    {"n": ENDLESS},
                )
            # The SQLite transaction is gone: a further statement must not run on its own (autocommit).
            with pytest.raises(Conflict):
                await tx.execute("INSERT INTO zt_budget_swallow (name, n) VALUES ('orphan', 2)")
    assert lost.value.reason == "db.busy"
    assert await budgeted.fetchval("SELECT count(*) FROM zt_budget_swallow") == 0


async def test_a_cancelled_slow_read_frees_its_connection(loaded_url: str) -> None:
    # No budget and one reader: if cancelling did not stop the statement, the next slow read would wait forever.
    db = await open_database(loaded_url, sqlite_readers=1)
    try:
        endless = asyncio.ensure_future(db.fetchval(COUNT_TO, {"n": ENDLESS}))
        await asyncio.sleep(0.2)
        endless.cancel()
        with pytest.raises(asyncio.CancelledError):
            await endless
        assert await asyncio.wait_for(db.fetchval(COUNT_TO, {"n": 300_000}), 10) == 300_000
    finally:
        await db.close()


async def test_a_cancelled_transaction_statement_is_waited_out_and_rolled_back(db: Database) -> None:
    await _table(db, "zt_cancel_tx")

    async def slow_write() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO zt_cancel_tx (name, n) VALUES ('x', 1)")
            await tx.fetchval(COUNT_TO, {"n": 1_500_000})

    task = asyncio.ensure_future(slow_write())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.fetchval("SELECT count(*) FROM zt_cancel_tx") == 0
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO zt_cancel_tx (name, n) VALUES ('y', 2)")
    assert await db.fetchval("SELECT name FROM zt_cancel_tx") == "y"


# -- positional parameters (SQLite)


async def test_forty_thousand_values_are_bound_by_position(db: Database) -> None:
    """SQLite parses ``:name`` in time growing with the square of their count (40,000: ~10 s); ``?`` is linear."""
    if not _is_sqlite(db):
        pytest.skip("asyncpg binds $n positionally already (and accepts at most 32,767 arguments)")
    n = 40_000
    query = "SELECT count(*) FROM (SELECT 1 WHERE :probe IN (" + ", ".join(f":v{i}" for i in range(n)) + "))"
    params: dict[str, Any] = {f"v{i}": i for i in range(n)} | {"probe": n - 1}
    text, values = _bound(query, params)
    assert ":" not in text and text.count("?") == n + 1
    assert list(values) == [n - 1, *range(n)]
    assert await db.fetchval(query, params) == 1
    async with db.transaction() as tx:  # the writer binds the same way
        assert await tx.fetchval(query, params) == 1


async def test_placeholders_repeat_and_literals_are_left_alone(db: Database) -> None:
    row = await db.fetchrow(
        "SELECT CAST(:a AS INTEGER) + CAST(:a AS INTEGER) + CAST(:b AS INTEGER) AS total,"
        " ':a is not a parameter' AS text, \":b\" AS quoted"
        ' FROM (SELECT 1 AS ":b") AS q -- :c in a comment\n /* :d too */',
        {"a": 1, "b": 10},
    )
    assert row is not None
    assert (row["total"], row["text"], row["quoted"]) == (12, ":a is not a parameter", 1)
    with pytest.raises((KeyError, Exception), match="b"):
        await db.fetchval("SELECT CAST(:a AS INTEGER) + CAST(:b AS INTEGER)", {"a": 1})


async def test_executemany_binds_each_row_by_name(db: Database) -> None:
    await _table(db, "zt_many")
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO zt_many (name, n) VALUES (:name || '-' || :name, :n)",
            [{"name": f"r{i}", "n": i, "unused": None} for i in range(500)],
        )
    assert await db.fetchval("SELECT count(*) FROM zt_many") == 500
    assert await db.fetchval("SELECT name FROM zt_many WHERE n = :n", {"n": 7}) == "r7-r7"
    await db.executemany("INSERT INTO zt_many (name, n) VALUES (:name, :n)", [{"name": "top", "n": -1}])
    assert await db.execute("DELETE FROM zt_many WHERE n < :n", {"n": 10}) == 11  # outside a transaction: one
    assert await db.fetchval("SELECT count(*) FROM zt_many") == 490


def test_statement_text_caches_are_bounded_in_entries_and_bytes() -> None:
    """Texts built from a request's conditions vary without end: the caches keyed by them keep at most
    ``_CACHED_TEXTS`` texts of at most ``_CACHED_TEXT`` characters each; a longer text is rewritten, not kept."""
    from zida.db import database

    caches = (database._positional_cached, database._numbered_cached, database._statement_kind)
    for cache in caches:
        cache.cache_clear()
    for i in range(database._CACHED_TEXTS + 100):
        query = f"SELECT :a AS n{i}"
        assert database._positional(query) == (f"SELECT ? AS n{i}", ("a",))
        assert database._to_numbered(query) == (f"SELECT $1 AS n{i}", ("a",))
        database._statement_kind(query)
    assert [cache.cache_info().currsize for cache in caches] == [database._CACHED_TEXTS] * 3
    asked = [cache.cache_info().misses + cache.cache_info().hits for cache in caches[:2]]
    long = "SELECT :a, :b" + " " * database._CACHED_TEXT
    for _ in range(2):
        assert database._positional(long) == ("SELECT ?, ?" + " " * database._CACHED_TEXT, ("a", "b"))
        assert database._to_numbered(long) == ("SELECT $1, $2" + " " * database._CACHED_TEXT, ("a", "b"))
    assert [cache.cache_info().misses + cache.cache_info().hits for cache in caches[:2]] == asked
