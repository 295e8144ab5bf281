"""Test fixtures: a real database (SQLite file or a fresh PostgreSQL schema) and a real server on a free port.

``ZIDA_TEST_DATABASE`` selects the database: ``sqlite`` (default) or a ``postgresql://`` URL, in which
case the session works in its own schema and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from zida.bundle.loader import load_bundle, parse_bundle, read_bundle
from zida.crypto import SecretBox
from zida.db import Database, open_database
from zida.db.database import is_postgres
from zida.db.migrate import sync_engine, upgrade

FIXTURES = Path(__file__).parent / "fixtures"
SECRET_KEY = "zida-test-server-key"
TEST_DATABASE = os.environ.get("ZIDA_TEST_DATABASE", "sqlite")

os.environ["ZIDA_SECRET_KEY"] = SECRET_KEY
# The suites call one API many times a second with one credential; rate limits have their own tests, which set them.
os.environ.setdefault("ZIDA_RATE_LIMIT_QPS", "0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# Modules that never touch the database ZIDA_TEST_DATABASE names (they make their own SQLite files, or use none): the
# PostgreSQL suite would only run them a second time, on the same two cores as the SQLite suite (make test).
DATABASE_FREE = (
    "tests/test_cli.py",
    "tests/test_doctor.py",
    "tests/test_outbound.py",
    "tests/core/test_errors.py",
    "tests/core/workflow/test_conditions.py",
    "tests/db/test_migrate.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, leave out the ``DATABASE_FREE`` modules (the SQLite suite runs them)."""
    if not is_postgres(TEST_DATABASE):
        return
    kept, left_out = [], []
    for item in items:
        (left_out if item.nodeid.split("::", 1)[0] in DATABASE_FREE else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def _with_schema(url: str, schema: str) -> str:
    return url + ("&" if "?" in url else "?") + f"search_path={schema}"


@contextmanager
def fresh_database(directory: Path, revision: str = "heads") -> Iterator[str]:
    """A migrated, empty database (a new PostgreSQL schema, dropped after; or a SQLite file in ``directory``), at
    ``revision`` (the latest by default)."""
    if is_postgres(TEST_DATABASE):
        schema = "zt_" + secrets.token_hex(6)
        url = _with_schema(TEST_DATABASE, schema)
        upgrade(url, revision)
        try:
            yield url
        finally:
            with engine_at(TEST_DATABASE) as engine, engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        url = f"sqlite:///{directory / 'zida.db'}"
        upgrade(url, revision)
        yield url


@contextmanager
def engine_at(url: str) -> Iterator[Engine]:
    """A SQLAlchemy engine on the database at ``url`` for the block (migration tests write and read rows around
    ``upgrade``), disposed after it."""
    engine = sync_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for the whole session."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


def load_fixture_bundle(url: str, name: str) -> None:
    """Load ``tests/fixtures/<name>`` into the database at ``url``."""
    load_bundle_file(url, FIXTURES / name)


def load_bundle_file(url: str, path: Path) -> None:
    """Load the bundle file at ``path`` into the database at ``url``."""

    async def go() -> None:
        db = await open_database(url)
        try:
            await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(read_bundle(path), str(path)))
        finally:
            await db.close()

    asyncio.run(go())


@pytest.fixture(scope="session")
def loaded_url(database_url: str) -> str:
    """The session database with the two fixture corps loaded."""
    load_fixture_bundle(database_url, "corp_a.yaml")
    load_fixture_bundle(database_url, "corp_b.yaml")
    return database_url


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    """The database at ``url``, open for the block and closed after it."""
    database = await open_database(url)
    try:
        yield database
    finally:
        await database.close()


class _RolledBack(Exception):
    """Ends a transaction that must change nothing."""


async def plan_of(db: Database, form_pk: int, statement: str, params: dict[str, object], data: str) -> str:
    """The plan of ``statement``: on SQLite as it is; on PostgreSQL once the form has 20,000 more records (the size
    at which an index pays), for a transaction that is rolled back. ``data``: their ``data``, SQL of ``n``."""
    return (await plans_of(db, form_pk, [(statement, params)], data))[0]


async def plans_of(db: Database, form_pk: int, statements: list[tuple[str, dict[str, object]]], data: str) -> list[str]:
    """``plan_of`` for several statements, on one fill of the form (on PostgreSQL, 20,000 records cost seconds)."""
    if db.sql.name == "sqlite":
        plans = []
        for statement, params in statements:
            rows = await db.fetch(f"EXPLAIN QUERY PLAN {statement}", params)
            plans.append("\n".join(str(r["detail"]) for r in rows))
        return plans
    plans = []
    try:
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title,"
                " originator_user_id, modifier_user_id, created_at, modified_at, data, data_version)"
                " SELECT 'FILL-' || n, corp_pk, app_pk, form_pk, form_version, title, originator_user_id,"
                f" modifier_user_id, created_at + n, modified_at, {data}, 1 FROM generate_series(1, 20000) AS n,"
                " (SELECT * FROM form_instance WHERE form_pk = :f LIMIT 1) r",
                {"f": form_pk},
            )
            await tx.execute("ANALYZE form_instance")
            for statement, params in statements:
                rows = await tx.fetch(f"EXPLAIN {statement}", params)
                plans.append("\n".join(str(next(iter(dict(r).values()))) for r in rows))
            raise _RolledBack
    except _RolledBack:
        pass
    return plans


@pytest.fixture
async def db(loaded_url: str) -> AsyncIterator[Database]:
    """An open connection source on the session database."""
    async with opened(loaded_url) as database:
        yield database


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_healthy(
    spawn: Callable[[int], subprocess.Popen[bytes]], port: int | None, wait: float, describe: Callable[[], str] = str
) -> tuple[int, subprocess.Popen[bytes]]:
    """``spawn(port)`` a server and wait until it answers ``/healthz``: (its port, its process).

    With no ``port`` given, a free one is chosen; another process (the other suite of ``make test``) may take it
    before the server binds it, and the server exits: then it starts again on another port, up to three times.
    ``describe()`` adds what the server wrote to the error of one that never became healthy."""
    for attempt in range(3):
        chosen = port or free_port()
        proc = spawn(chosen)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{chosen}/healthz", timeout=1).status_code == 200
                    and proc.poll() is None
                ):
                    return chosen, proc
            except httpx.HTTPError:
                time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"zida serve did not become healthy in {wait:.0f} s{describe()}")
        if port is not None or attempt == 2:
            break
    raise RuntimeError(f"zida serve exited with {proc.returncode}{describe()}")


class ServerProcess:
    """``zida serve`` in a child process (on ``port``, or a free one; ``workers`` processes sharing it)."""

    def __init__(self, database_url: str, port: int | None = None, *, workers: int = 1, **env: str) -> None:
        def spawn(chosen: int) -> subprocess.Popen[bytes]:
            command = [sys.executable, "-m", "zida.cli", "serve", "--port", str(chosen), "--log-level", "warning"]
            return subprocess.Popen(
                command + (["--workers", str(workers)] if workers > 1 else []),
                env={**os.environ, "ZIDA_DATABASE_URL": database_url, "ZIDA_SECRET_KEY": SECRET_KEY, **env},
            )

        self.port, self.proc = start_healthy(spawn, port, 30 * workers)
        self.endpoint = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def server(loaded_url: str) -> Iterator[ServerProcess]:
    """A live Zida on a free port, serving the session database."""
    proc = ServerProcess(loaded_url)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def base_url(server: ServerProcess) -> str:
    return f"http://{server.endpoint}"
