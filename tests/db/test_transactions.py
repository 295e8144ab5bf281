"""Transactions under concurrency: each is all or nothing, and committed when its block exits.

On SQLite, transactions queued behind one another share one COMMIT (group commit, each in its own
savepoint); these tests hold on both databases.
"""

from __future__ import annotations

import asyncio

import pytest

from zida.core.errors import Conflict
from zida.db import Database

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
