"""Shared pieces of the reliability tests: their size, fresh databases of either kind, a private PostgreSQL
cluster that a test may stop and start, and a ``zida serve`` child process that may be killed.

``RELIABILITY_SIZE`` is ``short`` (CI: ``make reliability-short``, a few minutes) or ``long`` (``make
reliability``: the sizes issue 15 names). ``RELIABILITY_PG_URL`` (else ``ZIDA_TEST_DATABASE`` when it is a
PostgreSQL URL, else the local test database) is the shared PostgreSQL where the tests make fresh schemas; the
tests that stop PostgreSQL never touch it, they start their own cluster.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, load_fixture_bundle
from zida.core.workflow.consistency import find_problems
from zida.db import open_database
from zida.db.database import is_postgres
from zida.db.migrate import sync_engine, upgrade

__all__ = [
    "LONG",
    "PG_URL",
    "SIZE",
    "PrivateCluster",
    "Size",
    "fresh_url",
    "kinds",
    "private_cluster",
    "wait_healthy",
    "workflow_problems",
]

LONG = os.environ.get("RELIABILITY_SIZE", "short") == "long"
_test_db = os.environ.get("ZIDA_TEST_DATABASE", "")
PG_URL = os.environ.get("RELIABILITY_PG_URL") or (
    _test_db if is_postgres(_test_db) else "postgresql://postgres@127.0.0.1:5432/test"
)
PG_BIN = Path(os.environ.get("RELIABILITY_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class Size:
    """How much each proof does, short (CI) or long (``make reliability``)."""

    kill_rounds: int = 20 if LONG else 3
    kill_clients: int = 32
    fuzz_examples: int = 50 if LONG else 30  # per operation: ~400 operations
    fuzz_minimum: int = 20_000 if LONG else 10_000  # requests the run must have sent (issue 15: >= 10,000 in CI)
    soak_seconds: float = 600.0 if LONG else 60.0


SIZE = Size()


def kinds() -> list[str]:
    """The databases a proof runs on: both."""
    return ["sqlite", "postgresql"]


def _with_schema(url: str, schema: str) -> str:
    return url + ("&" if "?" in url else "?") + f"search_path={schema}"


@contextmanager
def fresh_url(kind: str, directory: Path, *bundles: str) -> Iterator[str]:
    """A migrated database with ``bundles`` (tests/fixtures names) loaded: a SQLite file in ``directory``, or a
    new schema on the shared PostgreSQL, dropped after."""
    schema = ""
    if kind == "postgresql":
        schema = "zr_" + secrets.token_hex(6)
        url = _with_schema(PG_URL, schema)
    else:
        url = f"sqlite:///{directory / 'zida.db'}"
    try:
        upgrade(url)
        for bundle in bundles:
            load_fixture_bundle(url, bundle)
        yield url
    finally:
        if schema:
            engine = sync_engine(PG_URL)
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            engine.dispose()


def workflow_problems(url: str) -> list[str]:
    """Every workflow rule broken anywhere in the database (``zida.core.workflow.consistency``)."""

    async def check() -> list[str]:
        db = await open_database(url)
        try:
            return await find_problems(db)
        finally:
            await db.close()

    return asyncio.run(check())


class PrivateCluster:
    """A PostgreSQL cluster of this test alone (initdb in a temp dir, trust auth, loopback, a free port): the
    shared one on 5432 is never stopped."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"no PostgreSQL server binaries in {PG_BIN} (RELIABILITY_PG_BIN)")
        self.dir = Path(tempfile.mkdtemp(prefix="zida-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # PostgreSQL refuses to run as root (CI containers): then its programs run as the postgres system user.
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        done = subprocess.run([*self._as, str(PG_BIN / program), *args], capture_output=True, text=True)
        if check and done.returncode:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        """Start the cluster and wait until it answers."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (``fast``: open connections are ended; ``immediate``: as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop the cluster if it runs, and delete its files."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster, started; removed after the test."""
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def wait_healthy(base_url: str, seconds: float = 30) -> None:
    """Until ``/healthz`` answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base_url} not healthy in {seconds} s")
