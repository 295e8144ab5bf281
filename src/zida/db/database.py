"""One small async database interface with two backends: ``sqlite3`` in-process and ``asyncpg``.

SQL is written once with ``:name`` placeholders; the PostgreSQL backend rewrites them to ``$n`` (cached per
statement). Where the two SQL dialects differ (JSON access, row locks) repositories ask ``db.sql`` for the
right fragment. Every mutation runs inside ``async with db.transaction() as tx`` so that it commits or
rolls back as one unit.

SQLite runs synchronously on the event loop: indexed statements take microseconds, which is cheaper than a
thread hop per call. One connection writes (serialised by an ``asyncio.Lock`` and ``BEGIN IMMEDIATE``, so
several processes can share the file), another reads outside transactions (WAL keeps readers unblocked).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from zida.core.errors import Conflict
from zida.settings import SQLITE_SYNCHRONOUS_MODES, sqlite_path

__all__ = [
    "Connection",
    "Database",
    "PostgresDatabase",
    "Row",
    "SqlDialect",
    "SqliteDatabase",
    "open_database",
    "postgres_dsn",
]

Row = Mapping[str, Any]
Params = Mapping[str, Any]

_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class SqlDialect:
    """SQL fragments that differ between SQLite and PostgreSQL."""

    name = "sqlite"
    for_update = ""
    json_cast = ""

    def json_text(self, column: str, key: str) -> str:
        """Expression for the scalar at ``column.key`` as text/number (exactly what indexes are built on)."""
        return f"json_extract({column}, '$.{key}')"

    def json_number(self, column: str, key: str) -> str:
        """Numeric expression for ``column.key``."""
        return f"json_extract({column}, '$.{key}')"

    def json_param(self, name: str) -> str:
        """A parameter holding JSON text, typed for the database."""
        return f":{name}"


class PostgresDialect(SqlDialect):
    """PostgreSQL variants of the fragments."""

    name = "postgresql"
    for_update = " FOR UPDATE"
    json_cast = "::jsonb"

    def json_text(self, column: str, key: str) -> str:
        return f"({column}->>'{key}')"

    def json_number(self, column: str, key: str) -> str:
        # Guarded cast: a stray non-number (a field whose type changed) is NULL, never an error.
        return f"(CASE WHEN jsonb_typeof({column}->'{key}') = 'number' THEN ({column}->>'{key}')::numeric END)"

    def json_param(self, name: str) -> str:
        return f"CAST(:{name} AS jsonb)"


class Connection(Protocol):
    """What repositories use: the same calls inside and outside a transaction."""

    sql: SqlDialect

    async def fetch(self, query: str, params: Params | None = None) -> list[Row]: ...

    async def fetchrow(self, query: str, params: Params | None = None) -> Row | None: ...

    async def fetchval(self, query: str, params: Params | None = None) -> Any: ...

    async def execute(self, query: str, params: Params | None = None) -> int: ...

    async def executemany(self, query: str, params: Iterable[Params]) -> None: ...


class Database(Connection, Protocol):
    """A connection source that can also open transactions."""

    url: str

    def transaction(self) -> Any: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...


# ---------------------------------------------------------------- SQLite


class _SqliteConn:
    sql = SqlDialect()

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch(self, query: str, params: Params | None = None) -> list[Row]:
        return self._conn.execute(query, params or {}).fetchall()

    async def fetchrow(self, query: str, params: Params | None = None) -> Row | None:
        row: Row | None = self._conn.execute(query, params or {}).fetchone()
        return row

    async def fetchval(self, query: str, params: Params | None = None) -> Any:
        row = self._conn.execute(query, params or {}).fetchone()
        return None if row is None else row[0]

    async def execute(self, query: str, params: Params | None = None) -> int:
        return self._conn.execute(query, params or {}).rowcount

    async def executemany(self, query: str, params: Iterable[Params]) -> None:
        self._conn.executemany(query, list(params))


# How long a writer waits for another process (another worker, ``zida load``) to release the write lock.
_WRITE_LOCK_SECONDS = 30.0
# At most this many transactions share one COMMIT (bounds the latency of the first of them).
_MAX_GROUP = 32


def _connect_sqlite(path: str, busy_timeout_ms: int, synchronous: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return conn


class SqliteDatabase(_SqliteConn):
    """Embedded SQLite file (WAL, foreign keys on, durable commits)."""

    def __init__(self, url: str, synchronous: str = "FULL") -> None:
        # FULL (the default): a commit is on disk when it returns, even through a power cut (NORMAL in WAL mode
        # only survives application crashes). ZIDA_SQLITE_SYNCHRONOUS=NORMAL (Settings.sqlite_synchronous, passed
        # through open_database) trades that for speed where the operator accepts it.
        synchronous = synchronous.upper()
        if synchronous not in SQLITE_SYNCHRONOUS_MODES:  # it is spliced into a PRAGMA: only the known words
            raise ValueError(f"SQLite synchronous mode must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.url = url
        self.path = sqlite_path(url)
        super().__init__(_connect_sqlite(self.path, busy_timeout_ms=5_000, synchronous=synchronous))
        # The writer never sleeps inside SQLite (that would stall the event loop): it retries BEGIN below.
        self._writer = _connect_sqlite(self.path, busy_timeout_ms=0, synchronous=synchronous)
        self._write_lock = asyncio.Lock()
        self._queued = 0  # transactions waiting for the write lock
        self._batch: asyncio.Future[None] | None = None  # the COMMIT the open SQLite transaction's members await
        self._batch_size = 0
        self._flushes: set[asyncio.Task[None]] = set()
        # COMMITs (the fsyncs) run here, never queued behind other work of the default executor (scrypt…).
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="zida-sqlite-commit")

    async def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, waiting asynchronously while another process holds the write lock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WRITE_LOCK_SECONDS
        pause = 0.0005
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if loop.time() >= deadline:
                    raise Conflict(
                        f"the database file stayed locked by another process for {_WRITE_LOCK_SECONDS:.0f} s;"
                        " nothing was written, try again",
                        reason="db.busy",
                    ) from exc
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.001)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteConn]:
        """A transaction: all of it or nothing is written, and it is durable when the block has exited.

        Group commit: transactions queued behind one another in this process share one SQLite transaction,
        each inside its own SAVEPOINT (a failing one is rolled back alone), and one COMMIT — one fsync — made by
        the last of them in a thread, so the event loop keeps serving while the disk syncs. Each waits for that
        COMMIT before it returns; if it fails, every member of the group raises.
        """
        self._queued += 1
        try:
            await self._write_lock.acquire()
        except BaseException:
            if self._batch is not None and self._queued == 1 and not self._write_lock.locked():
                # Cancelled while the group's last member counted on us to COMMIT: someone must.
                flush = asyncio.get_running_loop().create_task(self._flush())
                self._flushes.add(flush)
                flush.add_done_callback(self._flushes.discard)
            raise
        finally:
            self._queued -= 1
        try:
            if self._batch is None:
                await self._begin()
                self._batch = asyncio.get_running_loop().create_future()
                self._batch_size = 0
            batch = self._batch
            self._batch_size += 1
            self._writer.execute("SAVEPOINT zida_tx")
            try:
                yield _SqliteConn(self._writer)
            except BaseException:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK TO zida_tx")
                    self._writer.execute("RELEASE zida_tx")
                else:  # SQLite rolled the whole transaction back (an I/O error…): the group's work is lost
                    self._end_batch(sqlite3.OperationalError("the transaction was rolled back by SQLite"))
                raise
            else:
                self._writer.execute("RELEASE zida_tx")
            finally:
                if self._batch is batch and (self._queued == 0 or self._batch_size >= _MAX_GROUP):
                    await self._commit_batch()
        finally:
            self._write_lock.release()
        await batch

    async def _flush(self) -> None:
        async with self._write_lock:
            if self._batch is not None:
                await self._commit_batch()

    async def _commit_batch(self) -> None:
        """COMMIT the open transaction in a thread (waiting for it even if cancelled: the connection is busy)."""
        commit = asyncio.get_running_loop().run_in_executor(self._committer, self._writer.execute, "COMMIT")
        cancelled = False
        while not commit.done():
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError:
                cancelled = True
        error = commit.exception()
        if error is not None and self._writer.in_transaction:
            self._writer.execute("ROLLBACK")
        self._end_batch(error)
        if cancelled:
            raise asyncio.CancelledError

    def _end_batch(self, error: BaseException | None) -> None:
        batch, self._batch = self._batch, None
        if batch is not None and not batch.done():
            if error is None:
                batch.set_result(None)
            else:
                batch.set_exception(error)

    async def close(self) -> None:
        async with self._write_lock:  # no transaction is open, and any pending COMMIT has finished
            if self._batch is not None:
                await self._commit_batch()
        self._committer.shutdown(wait=True)
        self._conn.close()
        self._writer.close()

    async def ping(self) -> bool:
        return bool(await self.fetchval("SELECT 1") == 1)


# ---------------------------------------------------------------- PostgreSQL


@lru_cache(maxsize=4096)
def _to_numbered(query: str) -> tuple[str, tuple[str, ...]]:
    names: list[str] = []

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(repl, query), tuple(names)


def _args(query: str, params: Params | None) -> tuple[str, list[Any]]:
    text, names = _to_numbered(query)
    params = params or {}
    return text, [params[n] for n in names]


# PostgreSQL aborts one of two transactions that wait on each other (deadlock) or, at stricter isolation
# levels, a transaction that lost a race: the caller's change was not made and may simply be tried again.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


@asynccontextmanager
async def _concurrency_as_conflict() -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        if getattr(exc, "sqlstate", None) in _RETRYABLE_SQLSTATES:
            raise Conflict(
                "a concurrent change got in the way; nothing was written, try again", reason="db.concurrent_change"
            ) from exc
        raise


class _PgConn:
    sql: SqlDialect = PostgresDialect()

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, query: str, params: Params | None = None) -> list[Row]:
        text, args = _args(query, params)
        async with _concurrency_as_conflict():
            rows: list[Row] = await self._conn.fetch(text, *args)
        return rows

    async def fetchrow(self, query: str, params: Params | None = None) -> Row | None:
        text, args = _args(query, params)
        async with _concurrency_as_conflict():
            row: Row | None = await self._conn.fetchrow(text, *args)
        return row

    async def fetchval(self, query: str, params: Params | None = None) -> Any:
        text, args = _args(query, params)
        async with _concurrency_as_conflict():
            return await self._conn.fetchval(text, *args)

    async def execute(self, query: str, params: Params | None = None) -> int:
        text, args = _args(query, params)
        async with _concurrency_as_conflict():
            status: str = await self._conn.execute(text, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, query: str, params: Iterable[Params]) -> None:
        text, names = _to_numbered(query)
        async with _concurrency_as_conflict():
            await self._conn.executemany(text, [[p[n] for n in names] for p in params])


def postgres_dsn(url: str) -> tuple[str, dict[str, str]]:
    """Split a ``postgresql://…?search_path=x`` URL into a libpq DSN and server settings."""
    parts = urlsplit(url)
    scheme = "postgresql"
    query = dict(parse_qsl(parts.query))
    settings = {k: query.pop(k) for k in list(query) if k in ("search_path", "application_name")}
    rest = "&".join(f"{k}={v}" for k, v in query.items())
    return urlunsplit((scheme, parts.netloc, parts.path, rest, "")), settings


async def _keep_session(conn: Any) -> None:
    """Released connections skip asyncpg's ``RESET ALL; UNLISTEN *; CLOSE ALL; …`` round trip: Zida leaves no
    session state behind (no SET, LISTEN, session advisory locks or cursors outside a transaction), and asyncpg
    still rolls back a transaction left open."""


class PostgresDatabase(_PgConn):
    """PostgreSQL through an asyncpg pool."""

    def __init__(self, url: str, pool: Any) -> None:
        self.url = url
        self._pool = pool
        super().__init__(pool)

    @classmethod
    async def connect(cls, url: str, pool_size: int = 8) -> PostgresDatabase:
        import asyncpg

        dsn, settings = postgres_dsn(url)
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=pool_size, server_settings=settings, reset=_keep_session
        )
        return cls(url, pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgConn]:
        async with self._pool.acquire() as conn, _concurrency_as_conflict(), conn.transaction():
            yield _PgConn(conn)

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self) -> bool:
        return bool(await self.fetchval("SELECT 1") == 1)


def is_postgres(url: str) -> bool:
    """True for ``postgresql://`` / ``postgres://`` URLs."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


async def open_database(url: str, pool_size: int = 8, *, sqlite_synchronous: str = "FULL") -> Database:
    """Open the database named by ``url`` (``sqlite:///path`` or ``postgresql://…``).

    ``pool_size`` applies to PostgreSQL, ``sqlite_synchronous`` (FULL, NORMAL or EXTRA) to SQLite.
    """
    if is_postgres(url):
        return await PostgresDatabase.connect(url, pool_size)
    if url.startswith("sqlite:"):
        return SqliteDatabase(url, synchronous=sqlite_synchronous)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://…")


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Split ``items`` into slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
