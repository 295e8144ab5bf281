"""``zida doctor``: each check's verdict for a healthy setup and for each thing that breaks one (read-only)."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from tests.stores import TEST_REDIS_URL
from zida.db.migrate import sync_engine


def doctor(database: str, **env: str) -> tuple[int, dict[str, str]]:
    """Exit code and ``check → "status: detail"`` (the last line of each check)."""
    result = subprocess.run(
        [sys.executable, "-m", "zida.cli", "doctor", "--database", database],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    lines: dict[str, str] = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        check, _, detail = rest.strip().partition(": ")
        lines[check] = f"{status}: {detail}"
    return result.returncode, lines


def migrate(database: str, **env: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "zida.cli", "migrate", "--database", database],
        capture_output=True,
        env={**os.environ, **env},
        timeout=300,
        check=True,
    )


def test_a_healthy_embedded_database(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'zida.db'}"
    migrate(database)
    code, found = doctor(database, ZIDA_REDIS_URL=TEST_REDIS_URL)
    assert code == 0, found
    assert found["database"].startswith("ok") and found["schema"] == "ok: every migration is applied"
    assert found["shared store"] == "ok: Redis answers"
    assert found["disk (database)"].startswith(("ok", "warn")) and "GiB free" in found["disk (database)"]
    assert not (tmp_path / "files").exists()  # read-only: nothing created


def test_what_breaks_a_setup_is_a_failure_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    code, found = doctor(f"sqlite:///{missing}")
    assert code == 1 and found["database"].startswith("fail: ") and "does not exist" in found["database"]
    assert not missing.exists()  # read-only: it made no empty database file
    never_migrated = tmp_path / "new.db"
    sqlite3.connect(never_migrated).close()
    code, found = doctor(f"sqlite:///{never_migrated}")
    assert code == 1 and found["schema"].startswith("fail: the database schema is not current")
    database = f"sqlite:///{tmp_path / 'zida.db'}"
    migrate(database, ZIDA_SECRET_KEY="the-first-key-of-this-db")
    subprocess.run(  # a server start records the key's fingerprint
        [sys.executable, "-c", "import asyncio, sys\n"
         "from zida.core.access.tokens import check_server_key\nfrom zida.crypto import SecretBox\n"
         "from zida.db import open_database\n"
         "async def go():\n db = await open_database(sys.argv[1])\n"
         " await check_server_key(db, SecretBox('the-first-key-of-this-db'))\n await db.close()\n"
         "asyncio.run(go())", database],
        check=True, timeout=60,
    )  # fmt: skip
    assert doctor(database, ZIDA_SECRET_KEY="the-first-key-of-this-db")[0] == 0
    code, found = doctor(database, ZIDA_SECRET_KEY="another-key")
    assert code == 1 and found["server key"].startswith("fail: ZIDA_SECRET_KEY is not the key")
    code, found = doctor(database, ZIDA_SECRET_KEY="the-first-key-of-this-db", ZIDA_REDIS_URL="redis://127.0.0.1:1/0")
    assert code == 1 and found["shared store"].startswith("fail: Redis does not answer")
    code, found = doctor("postgresql://postgres@127.0.0.1:1/none", ZIDA_SECRET_KEY="k")
    assert code == 1 and found["database"].startswith("fail")


LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"  # CI's PostgreSQL (README: make test)


def test_a_postgresql_database_that_sorts_text_by_a_language_s_rules_is_a_warning() -> None:
    """SQLite and the ``C`` collation sort text by code point; a database created with ICU's ``en-US`` does not:
    a warning that names it (the same searches would order text differently). Both databases are made here, whatever
    the server's default collation."""
    admin = sync_engine(LOCAL_POSTGRES).execution_options(isolation_level="AUTOCOMMIT")
    made = {
        "ok": f"zt_doctor_{secrets.token_hex(4)}",  # LC_COLLATE C.UTF-8
        "warn": f"zt_doctor_{secrets.token_hex(4)}",  # ICU en-US
    }
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {made['ok']} TEMPLATE template0 LOCALE 'C.UTF-8'"))
        conn.execute(
            text(
                f"CREATE DATABASE {made['warn']} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
                " LOCALE 'C.UTF-8'"
            )
        )
    try:
        code, found = doctor(LOCAL_POSTGRES.rsplit("/", 1)[0] + "/" + made["ok"])
        assert found["collation"] == "ok: C.UTF-8: text sorts by code point, as on SQLite", found
        code, found = doctor(LOCAL_POSTGRES.rsplit("/", 1)[0] + "/" + made["warn"])
        assert found["collation"].startswith("warn: en-US: text sorts by that language's rules"), found
        assert code == 1 and found["schema"].startswith("fail")  # never migrated: the other checks still ran
    finally:
        with admin.connect() as conn:
            for name in made.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
