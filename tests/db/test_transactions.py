"""Transactions under concurrency: each is all or nothing, and committed when its block exits.

On SQLite, transactions queued behind one another share one COMMIT (group commit, each in its own
savepoint); these tests hold on both databases.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from zida.core.errors import Conflict
from zida.db import Database, database, open_database

pytestmark = pytest.mark.anyio


class Refused(Exception):
    """A failure raised inside a transaction block."""


async def _probe_table(db: Database, name: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(f"CREATE TABLE IF NOT EXISTS {name} (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")


async def test_concurrent_transactions_are_each_all_or_nothing(db: Database) -> None:
    await _probe_table(db, "zt_tx_probe")
    seen_after_exit: list[bool] = []

    async def one(i: int) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO zt_tx_probe (name, n) VALUES (:name, :n)", {"name": f"a{i}", "n": i})
            await tx.execute("INSERT INTO zt_tx_probe (name, n) VALUES (:name, :n)", {"name": f"b{i}", "n": i})
            await asyncio.sleep(0)  # let the others queue up behind this one
            if i % 5 == 0:
                raise Refused(f"item {i}")
        # Committed once the block has exited: another connection sees it.
        seen_after_exit.append(
            await db.fetchval("SELECT count(*) FROM zt_tx_probe WHERE name IN (:a, :b)", {"a": f"a{i}", "b": f"b{i}"})
            == 2
        )

    results = await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, Refused)]
    assert sorted(str(r) for r in refused) == sorted(f"item {i}" for i in range(0, 20, 5))
    assert all(r is None for r in results if not isinstance(r, Refused))
    assert seen_after_exit == [True] * 16
    rows = await db.fetch("SELECT name FROM zt_tx_probe")
    assert sorted(r["name"] for r in rows) == sorted(f"{p}{i}" for i in range(20) if i % 5 for p in "ab")


async def test_a_failing_statement_undoes_only_its_own_transaction(db: Database) -> None:
    await _probe_table(db, "zt_tx_unique")
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO zt_tx_unique (name, n) VALUES ('taken', 0)")

    async def insert(name: str, n: int) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO zt_tx_unique (name, n) VALUES (:name, :n)", {"name": f"{name}-first", "n": n})
            await asyncio.sleep(0)
            await tx.execute("INSERT INTO zt_tx_unique (name, n) VALUES (:name, :n)", {"name": name, "n": n})

    results = await asyncio.gather(insert("free-1", 1), insert("taken", 2), insert("free-2", 3), return_exceptions=True)
    assert results[0] is None and results[2] is None
    # The database's unique violation: a concurrent change, as each dialect reports it (not a 500).
    assert isinstance(results[1], Conflict) and results[1].reason == "db.concurrent_change", results[1]
    rows = await db.fetch("SELECT name, n FROM zt_tx_unique ORDER BY name")
    assert [(r["name"], r["n"]) for r in rows] == [
        ("free-1", 1),
        ("free-1-first", 1),
        ("free-2", 3),
        ("free-2-first", 3),
        ("taken", 0),
    ]


async def test_transactions_queued_behind_one_another_share_a_commit(db: Database) -> None:
    """Group commit holds with statements run off the event loop: 20 transactions at once, far fewer COMMITs."""
    if db.sql.name != "sqlite":
        pytest.skip("group commit is SQLite's (PostgreSQL commits each transaction on its own connection)")
    await _probe_table(db, "zt_tx_group")
    commits: list[str] = []
    writer = db._writer  # type: ignore[attr-defined]

    def trace(statement: str) -> None:
        if statement == "COMMIT":
            commits.append(statement)

    writer.set_trace_callback(trace)
    try:

        async def one(i: int) -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO zt_tx_group (name, n) VALUES (:name, :n)", {"name": f"g{i}", "n": i})
                await tx.fetchval("SELECT count(*) FROM zt_tx_group")
                await asyncio.sleep(0)

        await asyncio.gather(*(one(i) for i in range(20)))
    finally:
        writer.set_trace_callback(None)
    assert await db.fetchval("SELECT count(*) FROM zt_tx_group") == 20
    assert 1 <= len(commits) <= 5, f"{len(commits)} COMMITs for 20 queued transactions"


async def test_an_error_of_the_body_itself_passes_as_it_is_and_undoes_the_transaction(db: Database) -> None:
    """A ``ConnectionError`` the caller's own code raises inside a transaction (an HTTP call it makes) is its error,
    not the database's: it is not reported as the database being unreachable, and what the block wrote is undone."""
    await _probe_table(db, "zt_tx_body")
    with pytest.raises(ConnectionRefusedError, match="the receiver"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO zt_tx_body (name, n) VALUES ('undone', 1)")
            raise ConnectionRefusedError("the receiver refused the connection")
    assert await db.fetchval("SELECT count(*) FROM zt_tx_body WHERE name = 'undone'") == 0


async def test_a_foreign_key_violation_is_a_concurrent_change_and_writes_nothing(db: Database) -> None:
    """The parent a write names was deleted by a change committed in between (its existence was checked before)."""
    async with db.transaction() as tx:
        await tx.execute("CREATE TABLE IF NOT EXISTS zt_tx_parent (id INTEGER PRIMARY KEY)")
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS zt_tx_child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL"
            " REFERENCES zt_tx_parent (id))"
        )
    with pytest.raises(Conflict) as raised:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO zt_tx_child (id, parent) VALUES (1, 404)")
    assert raised.value.reason == "db.concurrent_change"
    assert await db.fetchval("SELECT count(*) FROM zt_tx_child") == 0


async def test_writers_queued_behind_another_process_s_lock_all_give_up_at_one_deadline(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock: the writers queued in this one give up together at the deadline
    (``db.busy``, 503 with Retry-After), where each waited the full time after the one before it (30, 60, 90 s)."""
    if db.sql.name != "sqlite":
        pytest.skip("SQLite's file lock (PostgreSQL locks rows)")
    await _probe_table(db, "zt_tx_lock_probe")
    monkeypatch.setattr(database, "_WRITE_LOCK_SECONDS", 0.5)
    path = db.path  # type: ignore[attr-defined]
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:

        async def write(n: int) -> float:
            started = asyncio.get_running_loop().time()
            with pytest.raises(Conflict) as busy:
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO zt_tx_lock_probe (name, n) VALUES (:n, 1)", {"n": f"w{n}"})
            assert busy.value.reason == "db.busy" and busy.value.details.get("retry_after") == 1
            return asyncio.get_running_loop().time() - started

        waited = await asyncio.gather(*(write(n) for n in range(4)))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert max(waited) < 1.4, waited  # one deadline for all (0.5 s), not 0.5 s more for each in the queue (2 s)
    assert await db.fetchval("SELECT COUNT(*) FROM zt_tx_lock_probe WHERE name LIKE 'w%'") == 0


async def test_waits_for_another_change_s_lock_or_a_free_connection_end_as_busy(db: Database, loaded_url: str) -> None:
    """PostgreSQL: a wait for a row another change holds ends a little before the budget as ``db.busy`` (503 and
    Retry-After: try again), not as the request's own fault (``TooExpensive``, 400); a wait for a connection of a
    pool whose every connection is busy ends at the budget the same way (it waited without end)."""
    if db.sql.name != "postgresql":
        pytest.skip("PostgreSQL's row locks and connection pool")
    await _probe_table(db, "zt_tx_wait_probe")
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO zt_tx_wait_probe (name, n) VALUES ('held', 1) ON CONFLICT DO NOTHING")
    small = await open_database(loaded_url, 1, statement_timeout=0.5)
    try:
        async with db.transaction() as holder:
            await holder.execute("UPDATE zt_tx_wait_probe SET n = n + 1 WHERE name = 'held'")
            with pytest.raises(Conflict) as locked:
                async with small.transaction() as tx:
                    await tx.execute("UPDATE zt_tx_wait_probe SET n = n + 1 WHERE name = 'held'")
            assert locked.value.reason == "db.busy" and locked.value.details.get("retry_after") == 1
        async with small.transaction() as busy:
            await busy.fetchval("SELECT 1")
            with pytest.raises(Conflict) as waited:
                await small.fetchval("SELECT 1")  # its one connection is this transaction's
            assert waited.value.reason == "db.busy" and "all 1 busy" in waited.value.message
        assert await small.fetchval("SELECT n FROM zt_tx_wait_probe WHERE name = 'held'") == 2
    finally:
        await small.close()


async def test_a_member_of_a_group_cancelled_leaves_the_others_their_commit(tmp_path: Path) -> None:
    """SQLite's group commit: the members wait on one future for the COMMIT. One of them cancelled (its client left)
    cancelled that future, and the others raised ``CancelledError`` though nobody cancelled them and their rows were
    written."""
    db = await open_database(f"sqlite:///{tmp_path}/group.db")
    try:
        async with db.transaction() as tx:
            await tx.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
        gate = asyncio.Event()

        async def first() -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t (n) VALUES (1)")
                await asyncio.sleep(0.01)  # the second queues meanwhile

        async def second() -> None:
            await asyncio.sleep(0.005)
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t (n) VALUES (2)")
                await gate.wait()

        cancelled, kept = asyncio.ensure_future(first()), asyncio.ensure_future(second())
        await asyncio.sleep(0.05)  # the first waits for the group's COMMIT, the second is in its block
        cancelled.cancel()
        await asyncio.sleep(0)
        gate.set()
        await kept  # neither cancelled nor failed
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert [r["n"] for r in await db.fetch("SELECT n FROM t ORDER BY n")] == [1, 2]
    finally:
        await db.close()
