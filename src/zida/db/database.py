"""One small async database interface with two backends: ``sqlite3`` in-process and ``asyncpg``.

SQL is written once with ``:name`` placeholders; the SQLite backend rewrites them to ``?`` and the PostgreSQL
backend to ``$n`` (cached per statement text). Where the two SQL dialects differ (JSON access, row locks)
repositories ask ``db.sql`` for the right fragment. Every mutation runs inside ``async with db.transaction() as
tx`` so that it commits or rolls back as one unit.

No statement holds the event loop for long. SQLite runs a statement on the loop first (an indexed one takes
microseconds, less than a thread hop would cost): a read that uses 5 ms of CPU there is stopped and runs again
off the loop, outside a transaction in a small pool of reader connections with a thread each, inside one on the
writer connection's thread; a write cannot be stopped halfway without losing its transaction, so a slow write
holds the loop once. A statement text that usually takes that long goes straight off the loop. One connection
writes (serialised by an ``asyncio.Lock`` and ``BEGIN IMMEDIATE``, so several processes can share the file; WAL
keeps readers unblocked). Every statement has a time budget (``statement_timeout``; SQLite:
``Connection.interrupt`` from a timer off the loop, a progress handler on it; PostgreSQL: the
``statement_timeout`` setting) and past it raises ``TooExpensive``: nothing was changed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import queue
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from zida.core.errors import Conflict, InvalidArgument, TooExpensive, Unavailable
from zida.settings import DEFAULT_SQLITE_READERS, SQLITE_SYNCHRONOUS_MODES, sqlite_path

__all__ = [
    "Connection",
    "Database",
    "PoolUse",
    "PostgresDatabase",
    "Row",
    "SqlDialect",
    "SqliteDatabase",
    "observe_statements",
    "open_database",
    "postgres_dsn",
]

log = logging.getLogger("zida.db")

Row = Mapping[str, Any]
Params = Mapping[str, Any]

# Told the seconds each statement took, as its caller waited for it (zida.observability.metrics when ZIDA_METRICS is
# on); None: statements are not timed at all.
_statement_observer: Callable[[float], None] | None = None


def observe_statements(observer: Callable[[float], None] | None) -> None:
    """Report each statement's time in seconds to ``observer`` from now on (None: stop timing)."""
    global _statement_observer
    _statement_observer = observer


class _Timed:
    """Reports how long its block took to the statement observer, if there is one (two clock reads)."""

    __slots__ = ("started",)

    async def __aenter__(self) -> None:
        self.started = time.perf_counter()

    async def __aexit__(self, *exc: object) -> None:
        if _statement_observer is not None:
            _statement_observer(time.perf_counter() - self.started)


class PoolUse(NamedTuple):
    """A database's connections now: how many it may hold, how many are busy, how many callers wait for one."""

    size: int
    in_use: int
    waiting: int


# A ``:name`` placeholder (not a ``::`` cast), or a string literal, quoted name or comment to leave alone.
_TOKENS = re.compile(
    r"'[^']*(?:''[^']*)*'|\"[^\"]*(?:\"\"[^\"]*)*\"|--[^\n]*|/\*.*?\*/|(?<![:\w]):([A-Za-z_]\w*)", re.S
)
# Statement texts up to this long are cached (at most _CACHED_TEXTS of them per cache, the least recently used
# dropped first): a longer one (built from a request's many conditions) is rewritten each time, which is linear.
# So each cache keyed by statement text holds at most 8 MiB whatever clients send (Zida's usual texts are < 2 KiB).
_CACHED_TEXT = 8_192
_CACHED_TEXTS = 1_024


class SqlDialect:
    """SQL fragments that differ between SQLite and PostgreSQL."""

    name = "sqlite"
    for_update = ""
    # A row lock that foreign-key checks of other transactions (inserting rows that name the row) do not wait for.
    for_no_key_update = ""
    json_cast = ""
    # Contains-matching that ignores case: SQLite's LIKE folds ASCII letters (PostgreSQL's ILIKE folds all of them).
    like = "LIKE"

    def json_text(self, column: str, key: str) -> str:
        """Expression for the scalar at ``column.key`` as text/number (exactly what indexes are built on)."""
        return f"json_extract({column}, '$.{key}')"

    def json_number(self, column: str, key: str) -> str:
        """Numeric expression for ``column.key``."""
        return f"json_extract({column}, '$.{key}')"

    def json_param(self, name: str) -> str:
        """A parameter holding JSON text, typed for the database."""
        return f":{name}"

    def values_like(self, column: str, param: str) -> str:
        """Some text or number anywhere in the JSON ``column`` is ``like`` the pattern ``:param`` (escaped with
        ``\\``): its values as a reader sees them, not its keys or punctuation (a number as its text)."""
        return (
            f"EXISTS (SELECT 1 FROM json_tree({column}) AS leaf WHERE leaf.type IN ('text', 'integer', 'real')"
            f" AND leaf.atom LIKE :{param} ESCAPE '\\')"
        )


class PostgresDialect(SqlDialect):
    """PostgreSQL variants of the fragments."""

    name = "postgresql"
    for_update = " FOR UPDATE"
    for_no_key_update = " FOR NO KEY UPDATE"
    json_cast = "::jsonb"
    like = "ILIKE"

    def json_text(self, column: str, key: str) -> str:
        return f"({column}->>'{key}')"

    def json_number(self, column: str, key: str) -> str:
        # Guarded cast: a stray non-number (a field whose type changed) is NULL, never an error.
        return f"(CASE WHEN jsonb_typeof({column}->'{key}') = 'number' THEN ({column}->>'{key}')::numeric END)"

    def json_param(self, name: str) -> str:
        return f"CAST(:{name} AS jsonb)"

    def values_like(self, column: str, param: str) -> str:
        values = 'strict $.** ? (@.type() == "string" || @.type() == "number")'
        return (
            f"EXISTS (SELECT 1 FROM jsonb_path_query({column}, '{values}') AS leaf(value)"
            f" WHERE (leaf.value #>> '{{}}') ILIKE :{param} ESCAPE '\\')"
        )


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

    def pool_use(self) -> PoolUse: ...


# ---------------------------------------------------------------- SQLite

# SQLite parses ``:name`` placeholders in time that grows with the square of their count (each name is looked up
# in the list of those seen so far), and so does the driver when it binds a mapping (40,000 of them: 9.8 s); ``?``
# costs the same per value however many there are. Each statement text is rewritten once to ``?`` and the names
# in order (a repeated name is bound once per occurrence); string literals, quoted names and comments are kept.


def _positional_uncached(query: str) -> tuple[str, tuple[str, ...]]:
    names: list[str] = []

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        names.append(name)
        return "?"

    return _TOKENS.sub(repl, query), tuple(names)


_positional_cached = lru_cache(maxsize=_CACHED_TEXTS)(_positional_uncached)


def _positional(query: str) -> tuple[str, tuple[str, ...]]:
    """``query`` with ``?`` for each ``:name``, and the names in order."""
    return _positional_cached(query) if len(query) <= _CACHED_TEXT else _positional_uncached(query)


def _values(names: tuple[str, ...], params: Params) -> list[Any]:
    try:
        return [params[n] for n in names]
    except KeyError as exc:
        raise sqlite3.ProgrammingError(f"You did not supply a value for binding parameter :{exc.args[0]}.") from None


def _bound(query: str, params: Params | Sequence[Any] | None) -> tuple[str, Sequence[Any]]:
    if params is None:
        params = {}
    elif type(params) is not dict and not isinstance(params, Mapping):
        return query, params  # already positional
    text, names = _positional(query)
    return text, _values(names, params) if names else ()


# What a statement job returns: all rows, the first row, the first column of the first row, the row count.
_FETCH, _ROW, _VAL, _COUNT, _MANY = range(5)


def _run(conn: sqlite3.Connection, kind: int, query: str, params: Any) -> Any:
    """Run one statement to its end (the cursor is closed: no statement stays active on the connection)."""
    try:
        if kind == _MANY:
            text, names = _positional(query)
            rows = [_values(names, p) if isinstance(p, Mapping) else p for p in params]
            conn.executemany(text, rows).close()
            return None
        text, values = _bound(query, params)
        cur = conn.execute(text, values)
    except OverflowError as exc:  # a Python int past 64 bits, refused before SQLite ran anything
        raise _out_of_range() from exc
    try:
        if kind == _FETCH:
            return cur.fetchall()
        if kind == _COUNT:
            return cur.rowcount
        row = cur.fetchone()
        return row if kind == _ROW or row is None else row[0]
    finally:
        cur.close()


# SQLite's limits on one statement: a request that reaches them asked for too much, it is not a server fault.
_SQLITE_LIMITS = (
    "too many SQL variables",
    "Expression tree is too large",
    "parser stack overflow",
    "LIKE or GLOB pattern too complex",
    "string or blob too big",
    "too many terms in compound SELECT",
    "too many FROM clause terms",
    "at most 64 tables in a join",
)


def _statement_timeout(seconds: float) -> TooExpensive:
    return TooExpensive(
        f"the request took longer than the {seconds:g} s one database statement may take and was stopped;"
        " nothing was changed: narrow it (fewer or more selective conditions) and try again"
    )


def in_list(prefix: str, values: Sequence[object]) -> tuple[str, dict[str, object]]:
    """The placeholders of an ``IN (…)`` list (``:p0, :p1, …``) and the parameters they name."""
    names = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{n}" for n in names), names


def _out_of_range() -> InvalidArgument:
    return InvalidArgument(
        "a value is out of the range this server stores (numbers fit in 64 bits)", reason="argument.invalid"
    )


def _too_large() -> TooExpensive:
    return TooExpensive(
        "the request is larger than one database statement may be (too many values or conditions);"
        " nothing was changed: narrow it and try again"
    )


def _concurrent_change(constraint: BaseException | None = None) -> Conflict:
    if constraint is not None:  # a race, or a check an action lacks: the operator sees which constraint refused it
        log.warning("a constraint refused a write (a concurrent change, or a check missing): %s", constraint)
    return Conflict("a concurrent change got in the way; nothing was written, try again", reason="db.concurrent_change")


# A unique or foreign-key constraint refusing a write: a race with another change (see _RETRYABLE_SQLSTATES).
_SQLITE_RACES = ("UNIQUE constraint failed", "FOREIGN KEY constraint failed")


def _sqlite_error(error: BaseException, expired: float | None) -> BaseException:
    """The error a statement raised, as Zida reports it (the budget and SQLite's limits as TooExpensive, a
    constraint that caught a concurrent change as Conflict)."""
    if isinstance(error, sqlite3.IntegrityError) and str(error).startswith(_SQLITE_RACES):
        out_race = _concurrent_change(error)
        out_race.__cause__ = error
        return out_race
    if isinstance(error, sqlite3.OperationalError):
        text = str(error)
        if expired is not None and text == "interrupted":
            out: BaseException = _statement_timeout(expired)
        elif text.startswith(_SQLITE_LIMITS):
            out = _too_large()
        else:
            return error
        out.__cause__ = error
        return out
    return error


def _reraise(error: sqlite3.OperationalError | sqlite3.IntegrityError, expired: float | None) -> NoReturn:
    """Raise ``error`` (being handled) as Zida reports it."""
    out = _sqlite_error(error, expired)
    if out is error:
        raise error
    raise out from error


class _LoopBudget:
    """A progress handler stopping a statement on the event loop once it has used ``limit`` seconds of CPU (SQLite
    then raises "interrupted"). CPU time, so that a statement is not cut short because the OS ran another thread
    meanwhile; read from the handler's first call on (after ``_PROGRESS_STEPS`` VM steps), so that the many
    statements too short to reach it cost no clock read at all."""

    __slots__ = ("expired", "limit", "started")

    def __init__(self) -> None:
        self.arm(math.inf)

    def arm(self, limit: float) -> None:
        self.limit = limit
        self.started: float | None = None
        self.expired = False

    def __call__(self) -> int:
        now = time.thread_time()
        if self.started is None:
            self.started = now
        elif now - self.started > self.limit:
            self.expired = True
            return 1
        return 0

    def used(self) -> float:
        """CPU time used so far (0 when the handler was never called: a short statement)."""
        return 0.0 if self.started is None else time.thread_time() - self.started


def _write_lock_busy() -> Conflict:
    return Conflict(
        f"the database stayed locked for writing for {_WRITE_LOCK_SECONDS:.0f} s (another process, or the writes"
        " queued before this one); nothing was written, try again",
        reason="db.busy",
        retry_after=1,
    )


def _lost_transaction() -> Conflict:
    return Conflict(
        "the database transaction this change shared with others was stopped (one of them took too long or"
        " failed to write); nothing was written, try again",
        reason="db.busy",
    )


# Called on the loop with a job's result or error and the CPU time it took.
Done = Callable[[Any, BaseException | None, float], None]


class _Worker:
    """One thread running jobs for one SQLite connection, one at a time; results come back to the loop."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, Callable[[], Any], Done] | None]
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, fn, done = job
            started = time.thread_time()
            try:
                result, error = fn(), None
            except BaseException as exc:  # handed to the waiter on the loop
                result, error = None, exc
            with suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(done, result, error, time.thread_time() - started)

    def submit(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], done: Done) -> None:
        self._jobs.put((loop, fn, done))

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()


class _Lane:
    """A connection and the one thread that uses it."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self.conn = conn
        self.worker = _Worker(name)


async def _wait_out(future: asyncio.Future[Any]) -> Any:
    """``future``'s result, waiting for it even if cancelled meanwhile (its connection is busy until then)."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait((future,))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return future.result()


class _SqliteTx:
    """Statements of one transaction, run by the writer's thread."""

    sql = SqlDialect()

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def fetch(self, query: str, params: Params | None = None) -> list[Row]:
        rows: list[Row] = await self._db._write(_FETCH, query, params)
        return rows

    async def fetchrow(self, query: str, params: Params | None = None) -> Row | None:
        row: Row | None = await self._db._write(_ROW, query, params)
        return row

    async def fetchval(self, query: str, params: Params | None = None) -> Any:
        return await self._db._write(_VAL, query, params)

    async def execute(self, query: str, params: Params | None = None) -> int:
        count: int = await self._db._write(_COUNT, query, params)
        return count

    async def executemany(self, query: str, params: Iterable[Params]) -> None:
        await self._db._write(_MANY, query, list(params))


# How long a writer waits for another process (another worker, ``zida load``) to release the write lock.
_WRITE_LOCK_SECONDS = 30.0
# At most this many transactions share one COMMIT (bounds the latency of the first of them).
_MAX_GROUP = 32
# A statement first runs on the event loop: most take microseconds, a thread hop costs 10-40 µs (measured: every
# statement of a transaction on the writer's thread cut durable saves from ~2,000 to ~1,500 req/s in the records
# benchmark). A read (outside a transaction, or a query inside one) gets this much CPU there; past it, it is
# stopped (a read changes nothing) and runs again off the loop with the statement budget. A write cannot be
# stopped halfway without losing its transaction (SQLite rolls the whole transaction back): it runs to its end
# or to the statement budget, holding the loop that once; a write that took longer than this runs on the
# writer's thread from then on. Zida's writes touch the rows of one request by key (microseconds); the
# statements a client can make slow are reads. 5 ms: an indexed search statement takes up to ~2 ms with a cold
# cache on a 1M-record form; at 2 ms some moved back and forth and waited behind slow ones in the pool (p99 up).
_ON_LOOP_SECONDS = 0.005
# A statement goes straight off the loop when its text is longer than this (parsing a long text cannot be stopped
# halfway) or when its text usually takes half the budget or more: the CPU time of each text that was once slow
# is kept as a moving average (weight of the last run _COST_WEIGHT; at most _SLOW_SHAPES texts, by digest). An
# average, so that a text slow for some parameters and fast for most (a count over a popular value) keeps running
# on the loop, and one near the budget does not go back and forth paying for an attempt on the loop each time.
_ON_LOOP_TEXT = 8_192
_OFF_LOOP_COST = _ON_LOOP_SECONDS / 2
_COST_WEIGHT = 0.3
_SLOW_SHAPES = 512
# How often (in SQLite VM steps) a statement on the loop checks its budget.
_PROGRESS_STEPS = 1_000
# A statement that only reads: stopping it undoes nothing else (SQLite keeps the transaction). One that starts
# as a query and names no writing keyword anywhere (a keyword inside a literal makes it count as a write: safe).
_QUERY = re.compile(r"\s*\(*\s*(?:SELECT|WITH|VALUES)\b", re.I)
_WRITING = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE|UPSERT|CREATE|DROP|ALTER|PRAGMA|ANALYZE|VACUUM)\b", re.I)
# Schema changes and maintenance (an index built over a whole form, ANALYZE): rare, possibly long, never worth
# the risk of holding the loop; they always run on the writer's thread.
_MAINTENANCE = re.compile(r"\s*(?:CREATE|DROP|ALTER|ANALYZE|PRAGMA|VACUUM|REINDEX)\b", re.I)


# What a statement of a transaction is, for where it may run.
_READ, _WRITE, _MAINTAIN = range(3)


# A list of numbered placeholders (``in_list``: ``:u0, :u1, …``): its length makes another text, not another statement.
_PLACEHOLDER_LIST = re.compile(r":([A-Za-z_]+?)\d+(?:\s*,\s*:\1\d+)*")


@lru_cache(maxsize=_CACHED_TEXTS)
def _shape(query: str) -> int:
    """What a statement's cost is remembered by: its text with each ``IN`` list of numbered placeholders as one
    (a slow ``DELETE … IN (:p0 … :p499)`` sends the same statement of 37 ids off the loop too; it used to be new
    text, run on the loop again, for each number of ids)."""
    return hash(_PLACEHOLDER_LIST.sub(r":\1*", query))


@lru_cache(maxsize=_CACHED_TEXTS)  # only texts up to _ON_LOOP_TEXT (= _CACHED_TEXT) are asked about
def _statement_kind(query: str) -> int:
    if _MAINTENANCE.match(query):
        return _MAINTAIN
    return _READ if _QUERY.match(query) and not _WRITING.search(query) else _WRITE


# Reads map the file's first GiB instead of copying each page through read() into every connection's own 2 MB
# cache: a random user's topapi/v2/user/get in a 100,000-user org (144 MB) took 10.7 µs of SQL instead of 12.9
# (BENCHMARKS.md, contacts). Writes still go through write() and fsync: durability is unchanged. The mapping is
# address space, not memory: the pages are the OS's page cache, shared by every connection and worker.
_MMAP_BYTES = 1 << 30


def _connect_sqlite(
    path: str, busy_timeout_ms: int, synchronous: str, *, query_only: bool = False
) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
    if query_only:
        conn.execute("PRAGMA query_only=1")
    return conn


class SqliteDatabase:
    """Embedded SQLite file (WAL, foreign keys on, durable commits); no statement runs long on the event loop.

    Reads outside transactions run first on the loop, on a query-only connection of their own, with 5 ms of CPU
    (most take microseconds: a thread hop costs ten times more than an indexed read, and the records benchmark
    showed it); a read past that is stopped and runs again in the pool of ``readers`` query-only connections,
    each with its own thread. Transactions run on one writer connection: BEGIN, SAVEPOINT and RELEASE on the
    loop, COMMIT on the writer's thread, statements on the loop the same way (a read past 5 ms runs again on
    the writer's thread; a write runs to its end, see ``_ON_LOOP_SECONDS``). A statement text that is usually
    slow goes straight to a thread (see ``_OFF_LOOP_COST``). Every statement has ``statement_timeout`` seconds:
    then it is stopped and raises ``TooExpensive`` (inside a transaction, the transaction is rolled back).
    """

    sql = SqlDialect()

    def __init__(
        self,
        url: str,
        synchronous: str = "FULL",
        *,
        readers: int = DEFAULT_SQLITE_READERS,
        statement_timeout: float | None = None,
    ) -> None:
        # FULL (the default): a commit is on disk when it returns, even through a power cut (NORMAL in WAL mode
        # only survives application crashes). ZIDA_SQLITE_SYNCHRONOUS=NORMAL (Settings.sqlite_synchronous, passed
        # through open_database) trades that for speed where the operator accepts it.
        synchronous = synchronous.upper()
        if synchronous not in SQLITE_SYNCHRONOUS_MODES:  # it is spliced into a PRAGMA: only the known words
            raise ValueError(f"SQLite synchronous mode must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        if readers < 1:
            raise ValueError(f"SQLite needs at least one reader connection, not {readers}")
        self.url = url
        self.path = sqlite_path(url)
        self._budget = statement_timeout or None  # None or 0: no budget
        # The writer never sleeps inside SQLite: it retries BEGIN below (asynchronously). It is opened first:
        # it turns WAL on, which the query-only readers cannot.
        self._writer = _connect_sqlite(self.path, busy_timeout_ms=0, synchronous=synchronous)
        self._writer_lane = _Lane(self._writer, "zida-sqlite-writer")
        self._writer_budget = _LoopBudget()  # set as the writer's progress handler while it runs on the loop
        # Reads on the loop: no busy wait either (a locked file sends the read to the pool, which waits there).
        self._loop_reader = _connect_sqlite(self.path, busy_timeout_ms=0, synchronous=synchronous, query_only=True)
        self._loop_budget = _LoopBudget()
        self._loop_reader.set_progress_handler(self._loop_budget, _PROGRESS_STEPS)
        self._cost: dict[int, float] = {}  # statement text digest → average CPU seconds, for texts once slow
        self._readers = [
            _Lane(
                _connect_sqlite(self.path, busy_timeout_ms=5_000, synchronous=synchronous, query_only=True),
                f"zida-sqlite-reader-{i}",
            )
            for i in range(readers)
        ]
        self._idle = list(self._readers)
        # Tasks waiting for a reader, the one whose request has waited longest first: a request's second slow
        # statement goes before the first of a request that came later (as when every statement ran on the loop,
        # a request's statements one after the other), instead of queueing behind all of them again.
        self._waiting: list[tuple[float, int, asyncio.Future[_Lane]]] = []
        self._arrivals: weakref.WeakKeyDictionary[asyncio.Task[Any], float] = weakref.WeakKeyDictionary()
        self._order = itertools.count()
        self._write_lock = asyncio.Lock()
        self._queued = 0  # transactions waiting for the write lock
        self._batch: asyncio.Future[None] | None = None  # the COMMIT the open SQLite transaction's members await
        self._batch_size = 0
        self._flushes: set[asyncio.Task[None]] = set()

    # -- running one statement

    def _submit(
        self, lane: _Lane, fn: Callable[[], Any], release: Callable[[], None] | None, cost: list[float]
    ) -> asyncio.Future[Any]:
        """Run ``fn`` on ``lane``'s thread under the statement budget; ``release`` once the thread is done, which
        also puts the CPU time it took in ``cost``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        budget = self._budget
        expired: float | None = None
        finished = False

        def expire() -> None:
            nonlocal expired
            expired = budget
            lane.conn.interrupt()  # the statement raises "interrupted" (a write: SQLite rolls its transaction back)

        timer = loop.call_later(budget, expire) if budget else None

        def done(result: Any, error: BaseException | None, cpu: float) -> None:
            nonlocal finished
            finished = True
            cost[0] = cpu
            if timer is not None:
                timer.cancel()
            if not future.done():  # else: its waiter went away
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(_sqlite_error(error, expired))
            if release is not None:
                # After the waiter's next step (scheduled just now): if it asks for a reader again right away (its
                # request's next statement), it is waiting by then, and goes first.
                loop.call_soon(release)

        def abandoned(f: asyncio.Future[Any]) -> None:
            if f.cancelled() and not finished:
                lane.conn.interrupt()

        if release is not None:  # a read nobody waits for any more is stopped (the writer is waited out instead)
            future.add_done_callback(abandoned)
        lane.worker.submit(loop, fn, done)
        return future

    async def _read(self, kind: int, query: str, params: Params | None) -> Any:
        if _statement_observer is None:
            return await self._read_untimed(kind, query, params)
        async with _Timed():
            return await self._read_untimed(kind, query, params)

    async def _read_untimed(self, kind: int, query: str, params: Params | None) -> Any:
        shape = _shape(query)
        if len(query) <= _ON_LOOP_TEXT and self._cost.get(shape, 0.0) < _OFF_LOOP_COST:
            budget = self._loop_budget
            budget.arm(_ON_LOOP_SECONDS)
            try:
                result = _run(self._loop_reader, kind, query, params)
            except sqlite3.OperationalError as exc:
                if budget.expired:
                    self._remember(shape, query, _ON_LOOP_SECONDS)
                elif "locked" not in str(exc) and "busy" not in str(exc):
                    _reraise(exc, None)
            else:
                if shape in self._cost:
                    self._remember(shape, query, budget.used())
                return result
        lane = await self._acquire()
        cost = [math.inf]  # until the job has run (an abandoned one counts as slow)
        try:
            return await self._submit(
                lane, partial(_run, lane.conn, kind, query, params), partial(self._release, lane), cost
            )
        finally:
            self._remember(shape, query, cost[0])

    async def _acquire(self) -> _Lane:
        """A reader connection, waiting for one (the longest-waiting request first)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        arrived = loop.time() if task is None else self._arrivals.setdefault(task, loop.time())
        if self._idle and not self._waiting:
            return self._idle.pop()
        future: asyncio.Future[_Lane] = loop.create_future()
        heapq.heappush(self._waiting, (arrived, next(self._order), future))
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed a reader just as it was cancelled
                self._release(future.result())
            raise

    def _release(self, lane: _Lane) -> None:
        while self._waiting:
            future = heapq.heappop(self._waiting)[2]
            if not future.done():  # else: its waiter was cancelled
                future.set_result(lane)
                return
        self._idle.append(lane)

    def _remember(self, shape: int, query: str, took: float) -> None:
        """Fold the CPU time a statement took into its text's average (from its first slow run on)."""
        took = min(took, 1.0)  # an abandoned one counts as very slow, not forever
        average = self._cost.get(shape)
        if average is None:
            if took >= _ON_LOOP_SECONDS and len(query) <= _ON_LOOP_TEXT:
                if len(self._cost) >= _SLOW_SHAPES:
                    del self._cost[next(iter(self._cost))]  # the first remembered
                self._cost[shape] = took
            return
        average += (took - average) * _COST_WEIGHT
        if average < _OFF_LOOP_COST / 10:
            del self._cost[shape]  # fast again for good
        else:
            self._cost[shape] = average

    async def _write(self, kind: int, query: str, params: Any) -> Any:
        if _statement_observer is None:
            return await self._write_untimed(kind, query, params)
        async with _Timed():
            return await self._write_untimed(kind, query, params)

    async def _write_untimed(self, kind: int, query: str, params: Any) -> Any:
        """A statement of the open transaction: on the loop while its shape is fast, else on the writer's thread
        (waited out even if cancelled)."""
        if not self._writer.in_transaction:  # SQLite rolled it back (a statement past its budget, an I/O error)
            raise _lost_transaction()
        shape = _shape(query)
        if (
            len(query) <= _ON_LOOP_TEXT
            and self._cost.get(shape, 0.0) < _OFF_LOOP_COST
            and (kind_of := _statement_kind(query)) != _MAINTAIN
        ):
            read = kind_of == _READ
            budget = self._writer_budget
            budget.arm(_ON_LOOP_SECONDS if read else (self._budget or math.inf))
            # Only while on the loop: on the writer's thread a Python callback would have to take the GIL.
            self._writer.set_progress_handler(budget, _PROGRESS_STEPS)
            try:
                return _run(self._writer, kind, query, params)
            except sqlite3.IntegrityError as exc:
                _reraise(exc, None)
            except sqlite3.OperationalError as exc:
                if not budget.expired:
                    _reraise(exc, None)
                if not read:  # SQLite rolled the transaction back
                    _reraise(exc, self._budget)
            finally:
                self._writer.set_progress_handler(None, 0)
                if budget.started is not None or shape in self._cost:  # measured, or to be averaged
                    self._remember(shape, query, budget.used())
        cost = [math.inf]
        try:
            return await _wait_out(
                self._submit(self._writer_lane, partial(_run, self._writer, kind, query, params), None, cost)
            )
        finally:
            self._remember(shape, query, cost[0])

    # -- the Connection interface (reads outside transactions; a write outside one is a transaction of its own)

    async def fetch(self, query: str, params: Params | None = None) -> list[Row]:
        rows: list[Row] = await self._read(_FETCH, query, params)
        return rows

    async def fetchrow(self, query: str, params: Params | None = None) -> Row | None:
        row: Row | None = await self._read(_ROW, query, params)
        return row

    async def fetchval(self, query: str, params: Params | None = None) -> Any:
        return await self._read(_VAL, query, params)

    async def execute(self, query: str, params: Params | None = None) -> int:
        async with self.transaction() as tx:
            return await tx.execute(query, params)

    async def executemany(self, query: str, params: Iterable[Params]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(query, params)

    # -- transactions

    async def _begin(self, deadline: float) -> None:
        """``BEGIN IMMEDIATE``, waiting asynchronously while another process holds the write lock, until
        ``deadline`` (the loop's time)."""
        loop = asyncio.get_running_loop()
        pause = 0.0005
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if loop.time() >= deadline:
                    raise _write_lock_busy() from exc
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.001)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTx]:
        """A transaction: all of it or nothing is written, and it is durable when the block has exited.

        Group commit: transactions queued behind one another in this process share one SQLite transaction,
        each inside its own SAVEPOINT (a failing one is rolled back alone), and one COMMIT — one fsync — made by
        the last of them on the writer's thread, so the event loop keeps serving while the disk syncs (slow
        statements run there too, see ``_write``). Each waits for that COMMIT before it returns; if it fails,
        every member of the group raises. A write statement stopped past its budget makes SQLite roll the
        whole shared transaction back: that member raises ``TooExpensive``, the members before it in the group
        ``Conflict`` (``db.busy``, try again); nothing of any of them is written, and the members after it
        start a new transaction.
        """
        # One deadline for the whole wait, for this process's writer and then the file's lock: writers queued
        # behind one that waits for another process each waited _WRITE_LOCK_SECONDS more, one after the other.
        deadline = asyncio.get_running_loop().time() + _WRITE_LOCK_SECONDS
        self._queued += 1
        try:
            async with asyncio.timeout_at(deadline):
                await self._write_lock.acquire()
        except BaseException as exc:
            if self._batch is not None and self._queued == 1 and not self._write_lock.locked():
                # Cancelled while the group's last member counted on us to COMMIT: someone must.
                flush = asyncio.get_running_loop().create_task(self._flush())
                self._flushes.add(flush)
                flush.add_done_callback(self._flushes.discard)
            if isinstance(exc, TimeoutError):
                raise _write_lock_busy() from None
            raise
        finally:
            self._queued -= 1
        try:
            if self._batch is None:
                await self._begin(deadline)
                self._batch = asyncio.get_running_loop().create_future()
                self._batch_size = 0
            batch = self._batch
            self._batch_size += 1
            self._writer.execute("SAVEPOINT zida_tx")
            try:
                yield _SqliteTx(self)
            except BaseException:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK TO zida_tx")
                    self._writer.execute("RELEASE zida_tx")
                else:  # SQLite rolled the whole transaction back: the group's work is lost
                    self._end_batch(_lost_transaction())
                raise
            else:
                if not self._writer.in_transaction:  # lost, though the block went on (it caught the error)
                    lost = _lost_transaction()
                    self._end_batch(lost)
                    raise lost
                self._writer.execute("RELEASE zida_tx")
            finally:
                if self._batch is batch and (self._queued == 0 or self._batch_size >= _MAX_GROUP):
                    await self._commit_batch()
        finally:
            self._write_lock.release()
        # Shielded: the group's members share the future, and one of them cancelled (its client left) must not
        # cancel the others' wait for a COMMIT that writes their rows too.
        await asyncio.shield(batch)

    async def _flush(self) -> None:
        async with self._write_lock:
            if self._batch is not None:
                await self._commit_batch()

    async def _commit_batch(self) -> None:
        """COMMIT the open transaction on the writer's thread (waited out even if cancelled: the connection is
        busy); without a budget (a COMMIT is not stopped halfway)."""
        loop = asyncio.get_running_loop()
        commit: asyncio.Future[None] = loop.create_future()

        def done(_: Any, error: BaseException | None, __: float) -> None:
            if error is None:
                commit.set_result(None)
            else:
                commit.set_exception(error)

        self._writer_lane.worker.submit(loop, partial(self._writer.execute, "COMMIT"), done)
        cancelled = False
        while not commit.done():
            try:
                await asyncio.wait((commit,))
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
                batch.exception()  # retrieved: a group of one has nobody else awaiting it

    async def close(self) -> None:
        async with self._write_lock:  # no transaction is open, and any pending COMMIT has finished
            if self._batch is not None:
                await self._commit_batch()
        for lane in (*self._readers, self._writer_lane):
            lane.conn.interrupt()  # a read still running (nobody waits for it) stops now
            lane.worker.stop()
            lane.conn.close()
        self._loop_reader.close()

    async def ping(self) -> bool:
        return bool(await self.fetchval("SELECT 1") == 1)

    def pool_use(self) -> PoolUse:
        """The reader connections and the writer: busy ones, and reads and transactions waiting for one."""
        busy = len(self._readers) - len(self._idle) + (1 if self._write_lock.locked() else 0)
        return PoolUse(len(self._readers) + 1, busy, len(self._waiting) + self._queued)


# ---------------------------------------------------------------- PostgreSQL


def _numbered_uncached(query: str) -> tuple[str, tuple[str, ...]]:
    names: dict[str, int] = {}

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        return f"${names.setdefault(name, len(names) + 1)}"

    return _TOKENS.sub(repl, query), tuple(names)


_numbered_cached = lru_cache(maxsize=_CACHED_TEXTS)(_numbered_uncached)


def _to_numbered(query: str) -> tuple[str, tuple[str, ...]]:
    """``query`` with ``$n`` for each ``:name`` (a repeated name keeps its number), and the names by number."""
    return _numbered_cached(query) if len(query) <= _CACHED_TEXT else _numbered_uncached(query)


# The most arguments one PostgreSQL statement may bind (its protocol counts them in 16 bits).
_PG_MAX_ARGUMENTS = 32767


def _args(query: str, params: Params | None) -> tuple[str, list[Any]]:
    text, names = _to_numbered(query)
    if len(names) > _PG_MAX_ARGUMENTS:
        raise _too_large()
    params = params or {}
    return text, [params[n] for n in names]


# PostgreSQL aborts one of two transactions that wait on each other (deadlock) or, at stricter isolation
# levels, a transaction that lost a race: the caller's change was not made and may simply be tried again. A unique
# or foreign-key violation (23505, 23503) is such a race too: every action checks what it names before it writes,
# so the constraint only catches a change committed in between (two sign-in names taken at once, a department
# deleted while a user joins it); tried again, the request gets the action's own answer.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "23505", "23503"})
# Class 08 (connection exceptions) and 57P01–57P03 (the server shutting down, crashed, or not accepting
# connections yet): PostgreSQL is out of reach, which says nothing about the request; it may succeed shortly.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# 57014 query_canceled: the statement_timeout stopped it. Class 54 program_limit_exceeded: too many columns,
# arguments, a statement too complex (stack depth): the request asked for more than one statement may do.
_CANCELED = "57014"
# 55P03 lock_not_available: the lock_timeout (a little under the budget) stopped a wait for a lock another change
# held. Nothing about the request: retryable, as a busy database.
_LOCK_WAIT = "55P03"
_LOCK_SHARE_OF_BUDGET = 0.8


def _unreachable(exc: Exception) -> bool:
    """True when ``exc`` says PostgreSQL could not be reached or dropped the connection (not a problem of the
    statement): refused or reset sockets, timeouts connecting, a shutdown, a connection closed under asyncpg."""
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and (state.startswith("08") or state in _UNAVAILABLE_SQLSTATES):
        return True
    if isinstance(exc, ConnectionError | TimeoutError):  # refused, reset, or no answer connecting
        return True
    # asyncpg.InterfaceError on a connection it found closed (the pool hands out a new one next time), and its
    # InternalClientError on a pooled connection the server ended while it sat idle (seen when PostgreSQL stops
    # under load: "cannot switch to state 15; another operation (2) is in progress" at BEGIN)
    name = type(exc).__name__
    return (name in ("InterfaceError", "ConnectionDoesNotExistError") and "closed" in str(exc)) or (
        name == "InternalClientError" and "another operation" in str(exc)
    )


def _locked_out(budget: float | None) -> Conflict:
    waited = f" for {budget * _LOCK_SHARE_OF_BUDGET:g} s" if budget else ""
    return Conflict(
        f"what this change needs stayed locked by another change{waited}; nothing was written, try again",
        reason="db.busy",
        retry_after=1,
    )


def _pool_busy(size: int, budget: float) -> Conflict:
    return Conflict(
        f"no database connection was free within {budget:g} s (all {size} busy, or a new one slow to open);"
        " nothing was done, try again",
        reason="db.busy",
        retry_after=1,
    )


class _BoundedPool:
    """The pool's single statements, each on a connection waited for at most the budget (asyncpg's own
    ``pool.fetch`` waits without end: a cheap request queued behind slow ones for minutes)."""

    def __init__(self, pool: Any, budget: float | None) -> None:
        self.pool = pool
        self.budget = budget

    async def acquire(self) -> Any:
        """A connection of the pool, or ``db.busy`` once the budget has passed without one."""
        try:
            return await self.pool.acquire(timeout=self.budget)
        except TimeoutError:
            assert self.budget is not None
            raise _pool_busy(self.pool.get_max_size(), self.budget) from None

    async def _on_connection(self, method: str, *args: Any) -> Any:
        conn = await self.acquire()
        try:
            return await getattr(conn, method)(*args)
        finally:
            await self.pool.release(conn)

    async def fetch(self, text: str, *args: Any) -> Any:
        return await self._on_connection("fetch", text, *args)

    async def fetchrow(self, text: str, *args: Any) -> Any:
        return await self._on_connection("fetchrow", text, *args)

    async def fetchval(self, text: str, *args: Any) -> Any:
        return await self._on_connection("fetchval", text, *args)

    async def execute(self, text: str, *args: Any) -> Any:
        return await self._on_connection("execute", text, *args)

    async def executemany(self, text: str, args: Any) -> Any:
        return await self._on_connection("executemany", text, args)


def _unavailable() -> Unavailable:
    return Unavailable(
        "the database cannot be reached right now; try again shortly", reason="db.unavailable", retry_after=1
    )


class _Body:
    """What a transaction's body raised: its own error, which its statements already reported as Zida does (a
    ``ConnectionError`` of the caller's own, an HTTP call made inside the transaction, is not the database's)."""

    raised: BaseException | None = None


@asynccontextmanager
async def _pg_errors(budget: float | None = None, body: _Body | None = None) -> AsyncIterator[None]:
    """PostgreSQL's errors as Zida reports them (a race as Conflict, the budget and limits as TooExpensive, a lost
    server as Unavailable); what a transaction's ``body`` raised passes as it is."""
    try:
        yield
    except Exception as exc:
        if body is not None and body.raised is exc:
            raise
        if _unreachable(exc):
            raise _unavailable() from exc
        state = getattr(exc, "sqlstate", None)
        if state in _RETRYABLE_SQLSTATES:
            raise _concurrent_change(exc if state.startswith("23") else None) from exc
        if state == _LOCK_WAIT:
            raise _locked_out(budget) from exc
        if state == _CANCELED and budget:
            raise _statement_timeout(budget) from exc
        if isinstance(state, str) and state.startswith("54"):
            raise _too_large() from exc
        if type(exc).__name__ == "DataError" and "invalid input for query argument" in str(exc):
            # asyncpg refused to encode a value (a number past 64 bits…) before sending the statement
            raise _out_of_range() from exc
        raise


class _PgConn:
    sql: SqlDialect = PostgresDialect()

    def __init__(self, conn: Any, budget: float | None = None) -> None:
        self._conn = conn
        self._budget = budget

    async def fetch(self, query: str, params: Params | None = None) -> list[Row]:
        text, args = _args(query, params)
        async with _pg_errors(self._budget), _Timed():
            rows: list[Row] = await self._conn.fetch(text, *args)
        return rows

    async def fetchrow(self, query: str, params: Params | None = None) -> Row | None:
        text, args = _args(query, params)
        async with _pg_errors(self._budget), _Timed():
            row: Row | None = await self._conn.fetchrow(text, *args)
        return row

    async def fetchval(self, query: str, params: Params | None = None) -> Any:
        text, args = _args(query, params)
        async with _pg_errors(self._budget), _Timed():
            return await self._conn.fetchval(text, *args)

    async def execute(self, query: str, params: Params | None = None) -> int:
        text, args = _args(query, params)
        async with _pg_errors(self._budget), _Timed():
            status: str = await self._conn.execute(text, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, query: str, params: Iterable[Params]) -> None:
        text, names = _to_numbered(query)
        async with _pg_errors(self._budget), _Timed():
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
    """PostgreSQL through an asyncpg pool (every connection with the ``statement_timeout`` budget, if any)."""

    def __init__(self, url: str, pool: Any, statement_timeout: float | None = None) -> None:
        self.url = url
        self._pool = pool
        self._bounded = _BoundedPool(pool, statement_timeout or None)
        super().__init__(self._bounded, statement_timeout or None)

    @classmethod
    async def connect(cls, url: str, pool_size: int = 8, statement_timeout: float | None = None) -> PostgresDatabase:
        import asyncpg

        dsn, settings = postgres_dsn(url)
        if statement_timeout:
            settings["statement_timeout"] = str(max(1, round(statement_timeout * 1000)))  # milliseconds
            # A wait for another change's lock ends a little before the budget: busy (try again), not too expensive.
            settings["lock_timeout"] = str(max(1, round(statement_timeout * 1000 * _LOCK_SHARE_OF_BUDGET)))
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=pool_size, server_settings=settings, reset=_keep_session
        )
        return cls(url, pool, statement_timeout)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgConn]:
        body = _Body()
        async with _pg_errors(self._budget, body):
            conn = await self._bounded.acquire()
            try:
                async with conn.transaction():
                    try:
                        yield _PgConn(conn, self._budget)
                    except BaseException as exc:  # its statements' errors are reported already (not a rollback's)
                        body.raised = exc
                        raise
            finally:
                await self._pool.release(conn)

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self) -> bool:
        return bool(await self.fetchval("SELECT 1") == 1)

    def pool_use(self) -> PoolUse:
        """The pool's connections: its most, those lent out (asyncpg does not say how many callers wait: 0)."""
        return PoolUse(self._pool.get_max_size(), self._pool.get_size() - self._pool.get_idle_size(), 0)


def is_postgres(url: str) -> bool:
    """True for ``postgresql://`` / ``postgres://`` URLs."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


async def open_database(
    url: str,
    pool_size: int = 8,
    *,
    sqlite_synchronous: str = "FULL",
    sqlite_readers: int = DEFAULT_SQLITE_READERS,
    statement_timeout: float | None = None,
) -> Database:
    """Open the database named by ``url`` (``sqlite:///path`` or ``postgresql://…``).

    ``pool_size`` applies to PostgreSQL; ``sqlite_synchronous`` (FULL, NORMAL or EXTRA) and ``sqlite_readers``
    (reader connections, each with its thread) to SQLite. ``statement_timeout`` (seconds; None or 0: none, the
    default, for commands that build indexes or load data) is the budget of every statement: past it the
    statement is stopped and raises ``TooExpensive`` (the server passes ``Settings.statement_timeout_seconds``).
    """
    if is_postgres(url):
        return await PostgresDatabase.connect(url, pool_size, statement_timeout)
    if url.startswith("sqlite:"):
        return SqliteDatabase(
            url, synchronous=sqlite_synchronous, readers=sqlite_readers, statement_timeout=statement_timeout
        )
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://…")


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Split ``items`` into slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
