"""``zida backup`` / ``zida restore``: a copy made while a live server writes holds every acknowledged record and
restores into a database a server starts on; a restore never replaces data without ``--force``.

SQLite tests run in the SQLite suite, PostgreSQL ones (``pg_dump``/``pg_restore`` into a database created for the
test and dropped after) in the PostgreSQL suite."""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import TEST_DATABASE, ServerProcess, fresh_database, load_fixture_bundle
from tests.test_cli import zida
from zida.backup import BackupError, backup_database, pg_environment, shown_url
from zida.db.database import is_postgres
from zida.db.migrate import sync_engine

on_sqlite = pytest.mark.skipif(is_postgres(TEST_DATABASE), reason="SQLite's backup runs in the SQLite suite")
on_postgres = pytest.mark.skipif(not is_postgres(TEST_DATABASE), reason="pg_dump runs in the PostgreSQL suite")

APP = {"appType": "APP_B1", "systemToken": "ST-B1-SECRET-TOKEN", "userId": "bAdmin", "formUuid": "FORM-B1ONE"}


def token(base: str) -> str:
    response = httpx.post(
        base + "/v1.0/oauth2/accessToken", json={"appKey": "keyB-all", "appSecret": "secret-b-all-0001"}, timeout=10
    )
    return str(response.json()["accessToken"])


def save(client: httpx.Client, base: str, access: str, n: int) -> str:
    response = client.post(
        base + "/v1.0/yida/forms/instances",
        json={**APP, "formDataJson": f'{{"textField_t1": "record {n}"}}'},
        headers={"x-acs-dingtalk-access-token": access},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["result"])


def get(base: str, access: str, instance_id: str) -> httpx.Response:
    return httpx.get(
        f"{base}/v1.0/yida/forms/instances/{instance_id}",
        params={k: v for k, v in APP.items() if k != "formUuid"},
        headers={"x-acs-dingtalk-access-token": access},
        timeout=10,
    )


class Writer:
    """Saves records one after another until stopped; the ids the server acknowledged, in order."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.access = token(base)
        self.acked: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client() as client:
            n = 0
            while not self._stop.is_set() and n < 5000:  # bounded
                self.acked.append(save(client, self.base, self.access, n))
                n += 1

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.acked) >= count, "the writer did not get going"

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


def doctor_passes(url: str) -> None:
    result = zida("doctor", database=url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    schema: every migration is applied" in result.stdout


@on_sqlite
def test_a_sqlite_backup_made_while_a_server_writes_restores_every_acknowledged_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    assert zida("migrate", database=url).returncode == 0
    load_fixture_bundle(url, "corp_b.yaml")
    server = ServerProcess(url)
    backup = tmp_path / "backups" / "zida.db"
    try:
        with Writer(f"http://{server.endpoint}") as writer:
            writer.wait_for(30)
            before = list(writer.acked)
            made = zida("backup", str(backup), database=url)
            assert made.returncode == 0, made.stderr
            assert "SQLite online backup" in made.stdout and "keep the server key" in made.stderr
            writer.wait_for(len(before) + 20)  # the server kept writing after the copy
    finally:
        server.stop()
    assert backup.stat().st_mode & 0o077 == 0  # it holds the corp's data: the owner's alone
    restored_url = f"sqlite:///{tmp_path / 'restored' / 'zida.db'}"
    result = zida("restore", str(backup), database=restored_url)
    assert result.returncode == 0, result.stderr
    assert "the schema is current" in result.stdout
    conn = sqlite3.connect(tmp_path / "restored" / "zida.db")
    restored = {r[0] for r in conn.execute("SELECT instance_id FROM form_instance")}
    conn.close()
    assert set(before) <= restored  # every record acknowledged before the backup began
    assert restored <= set(writer.acked)  # and nothing that was never acknowledged
    assert len(restored) < len(writer.acked)  # the copy is one moment: later records are not in it
    doctor_passes(restored_url)
    again = ServerProcess(restored_url)
    try:
        base = f"http://{again.endpoint}"
        response = get(base, token(base), before[-1])
        assert response.status_code == 200 and response.json()["formData"]["textField_t1"].startswith("record ")
    finally:
        again.stop()


@on_sqlite
def test_a_restore_under_another_server_key_says_so_at_once(tmp_path: Path) -> None:
    """Restored beside no secret.key (and no ZIDA_SECRET_KEY), a new key is made there: the restore says that it is not
    the database's key, instead of reporting success and leaving ``zida serve`` to refuse it later."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert zida("migrate", database=url).returncode == 0
    load_fixture_bundle(url, "corp_b.yaml")
    backup = tmp_path / "a.backup"
    assert zida("backup", str(backup), database=url).returncode == 0
    restored_url = f"sqlite:///{tmp_path / 'elsewhere' / 'zida.db'}"
    without_key = {k: v for k, v in os.environ.items() if k != "ZIDA_SECRET_KEY"}
    result = zida("restore", str(backup), database=restored_url, env=without_key)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not the one this database was set up with" in result.stderr and "secret.key" in result.stderr
    again = zida("restore", str(backup), "--force", database=restored_url)  # with the original key
    assert again.returncode == 0 and "the schema is current" in again.stdout, again.stderr
    doctor_passes(restored_url)


@on_sqlite
def test_restore_refuses_to_replace_a_database_without_force(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    zida("migrate", database=url)
    load_fixture_bundle(url, "corp_b.yaml")
    backup = tmp_path / "a.backup"
    assert zida("backup", str(backup), database=url).returncode == 0
    again = zida("backup", str(backup), database=url)
    assert again.returncode != 0 and f"{backup} exists: choose another name or pass --force" in again.stderr
    assert zida("backup", str(backup), "--force", database=url).returncode == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    zida("migrate", database=other)
    refused = zida("restore", str(backup), database=other)
    assert refused.returncode != 0 and "already holds a database" in refused.stderr and "--force" in refused.stderr
    conn = sqlite3.connect(tmp_path / "other.db")
    assert conn.execute("SELECT count(*) FROM corp").fetchone()[0] == 0  # untouched
    conn.close()
    forced = zida("restore", str(backup), "--force", database=other)
    assert forced.returncode == 0, forced.stderr
    conn = sqlite3.connect(tmp_path / "other.db")
    assert conn.execute("SELECT corp_id FROM corp").fetchall() == [("corpB",)]
    conn.close()
    doctor_passes(other)
    (tmp_path / "notes.txt").write_text("not a backup")
    for path, message in (
        (tmp_path / "notes.txt", "is neither a SQLite database nor a pg_dump custom-format archive"),
        (tmp_path / "none.db", "there is no backup file at"),
    ):
        bad = zida("restore", str(path), database=f"sqlite:///{tmp_path / 'new.db'}")
        assert bad.returncode != 0 and message in bad.stderr, bad.stderr
    wrong = zida("restore", str(backup), database="postgresql://postgres@127.0.0.1:5432/test")
    assert wrong.returncode != 0 and "is a sqlite backup: it restores into a sqlite database" in wrong.stderr


def test_the_postgresql_password_goes_in_the_environment_never_on_a_command_line() -> None:
    env, schema = pg_environment("postgresql://zida:s%40cret@db.example:6432/prod?sslmode=require&search_path=z1")
    assert env == {
        "PGHOST": "db.example",
        "PGPORT": "6432",
        "PGUSER": "zida",
        "PGPASSWORD": "s@cret",
        "PGDATABASE": "prod",
        "PGSSLMODE": "require",
    }
    assert schema == "z1"
    with pytest.raises(BackupError, match="'keepalives'"):
        pg_environment("postgresql://h/db?keepalives=1")


def _counts(url: str) -> dict[str, int]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("corp", "org_user", "credential", "form", "form_instance", "audit_log", "outbox_event")
            }
    finally:
        engine.dispose()


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A new, empty PostgreSQL database next to the test one (dropped after)."""
    name = "zt_restore_" + secrets.token_hex(5)
    admin = sync_engine(TEST_DATABASE).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield TEST_DATABASE.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@on_postgres
def test_a_postgresql_backup_restores_into_a_new_database_a_server_starts_on(
    tmp_path: Path, empty_database: str
) -> None:
    with fresh_database(tmp_path) as url:
        load_fixture_bundle(url, "corp_b.yaml")
        server = ServerProcess(url)
        backup = tmp_path / "zida.dump"
        try:
            with Writer(f"http://{server.endpoint}") as writer:
                writer.wait_for(20)
                before = list(writer.acked)
                made = zida("backup", str(backup), database=url)
                assert made.returncode == 0, made.stderr
                assert "pg_dump --format=custom" in made.stdout
        finally:
            server.stop()
        source = _counts(url)
        schema = url.split("search_path=", 1)[1]
        target = f"{empty_database}?search_path={schema}"
        result = zida("restore", str(backup), database=target)
        assert result.returncode == 0, result.stderr
        assert "the schema is current" in result.stdout
        restored = _counts(target)
        assert restored["form_instance"] >= len(before) and restored["corp"] == source["corp"] == 1
        assert {k: v for k, v in restored.items() if k not in ("form_instance", "audit_log", "outbox_event")} == {
            k: v for k, v in source.items() if k not in ("form_instance", "audit_log", "outbox_event")
        }
        doctor_passes(target)
        refused = zida("restore", str(backup), database=target)
        assert refused.returncode != 0 and "restore into an empty database, or pass --force" in refused.stderr
        assert _counts(target) == restored
        forced = zida("restore", str(backup), "--force", database=target)
        assert forced.returncode == 0, forced.stderr
        assert _counts(target) == restored
        again = ServerProcess(target)
        try:
            base = f"http://{again.endpoint}"
            access = token(base)
            for instance_id in before:
                assert get(base, access, instance_id).status_code == 200
        finally:
            again.stop()


def test_messages_never_show_a_password() -> None:
    assert shown_url("postgresql://zida:s3cret@db:5432/zida?sslmode=require") == (
        "postgresql://zida:***@db:5432/zida?sslmode=require"
    )
    assert "hunter2" not in shown_url("postgresql://db/zida?user=zida&password=hunter2")
    with pytest.raises(BackupError) as refused:
        backup_database("mysql://root:hunter2@db/zida", "/tmp/never.db")
    assert "hunter2" not in str(refused.value)


@on_sqlite
def test_names_with_uri_characters_and_a_failed_copy_leave_nothing_behind(tmp_path: Path) -> None:
    source = tmp_path / "zida%41 1.db"  # as a file: URI unquoted, "%41" would open "zidaA 1.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (42)")
    report = backup_database(f"sqlite:///{source}", tmp_path / "copy.db")
    with sqlite3.connect(report.path) as copy:
        assert copy.execute("SELECT x FROM t").fetchall() == [(42,)]  # that file's copy
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError):
        backup_database(f"sqlite:///{broken}", tmp_path / "never.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["zida%41 1.db", "copy.db", "broken.db"])
