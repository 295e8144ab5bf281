"""The ``zida`` CLI as an admin runs it: migrate, load (twice), dump, errors naming the path."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import FIXTURES, free_port

ROOT = Path(__file__).parents[1]


def zida(*args: str, database: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``zida <args> --database <database>`` in a subprocess (with this process's environment unless ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "zida.cli", *args, "--database", database],
        capture_output=True,
        text=True,
        env={**os.environ} if env is None else env,
        timeout=120,
        check=False,
    )


def test_migrate_load_dump(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    assert zida("migrate", database=database).returncode == 0
    first = zida("load", str(ROOT / "demo" / "bundle.yaml"), database=database)
    assert first.returncode == 0, first.stderr
    assert "users: 5 created" in first.stdout
    second = zida("load", str(ROOT / "demo" / "bundle.yaml"), database=database)
    assert "users: 0 created, 0 updated, 5 unchanged" in second.stdout
    dumped = zida("dump", "--corp", "dingcorp0001", database=database)
    assert dumped.returncode == 0, dumped.stderr
    data = yaml.safe_load(dumped.stdout)
    assert data["corp"]["corpId"] == "dingcorp0001"
    assert data["apps"][0]["forms"][0]["formUuid"] == "FORM-EXPENSE0000000000000001"
    assert "demo-secret-change-me" not in dumped.stdout and "ST-DEMO-CHANGE-ME" not in dumped.stdout


def test_a_big_org_loads_with_a_progress_bar(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from org_bundle import org_bundle  # bench/org_bundle.py: the generated org of the contacts benchmark

    database = f"sqlite:///{tmp_path / 'cli.db'}"
    zida("migrate", database=database)
    bundle = tmp_path / "org.json"
    bundle.write_text(json.dumps(org_bundle(users=3000, departments=200)))
    result = zida("load", str(bundle), database=database)
    assert result.returncode == 0, result.stderr
    assert "users: 3000 created" in result.stdout
    bars = [line for line in result.stderr.splitlines() if line.startswith("users ")]
    # Not a terminal: a line per tenth, the last one full.
    assert bars[-1].endswith("3,000/3,000") and "[" + "#" * 30 + "]" in bars[-1]
    assert len(bars) == 3  # 1,000, 2,000 and 3,000 of 3,000: tenths 3, 6 and 10
    assert not [line for line in result.stderr.splitlines() if line.startswith("departments")]  # < 1,000: quiet


def test_load_errors_name_file_and_path(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    zida("migrate", database=database)
    bundle = yaml.safe_load((FIXTURES / "corp_b.yaml").read_text())
    bundle["apps"][0]["forms"][0]["fields"][0]["component"] = "NopeField"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(bundle, allow_unicode=True))
    result = zida("load", str(bad), database=database)
    assert result.returncode != 0
    assert f"{bad}: apps[0].forms[0].fields[0].component: unknown component 'NopeField'" in result.stderr
    missing = zida("dump", "--corp", "nobody", database=database)
    assert missing.returncode != 0 and "nobody" in missing.stderr


def test_foreseeable_failures_are_one_error_line_and_create_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    # Each of these was a traceback; an unsupported URL was even read as a file path, and migrated there.
    monkeypatch.chdir(tmp_path)
    cases = [
        (("migrate",), "mysql://user@host/prod", "unsupported database URL"),
        (("dump", "--corp", "c1"), f"sqlite:///{tmp_path / 'never-migrated.db'}", "run `zida migrate"),
        (("dump", "--corp", "c1"), "postgresql://nobody@127.0.0.1:1/none", "cannot use the database"),
    ]
    for args, database, words in cases:
        result = zida(*args, database=database)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("Error: ") and words in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no ./user@host/prod, no empty never-migrated.db
    bad = tmp_path / "bad.yaml"
    bad.write_text("corp: {corpId: c1, name: x}\nfoo: 1\n")
    example = subprocess.run(
        [sys.executable, "-m", "zida.cli", "example", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert example.returncode == 1 and example.stderr.startswith(f"Error: {bad}: foo: "), example.stderr


def test_serve_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()
    result = zida("serve", "--port", "1", database=f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.returncode != 0
    assert "schema is not current" in result.stderr and "zida migrate" in result.stderr
    # A file that is not there is not made by a command that only reads or loads.
    for args in (["serve", "--port", "1"], ["load", str(FIXTURES / "corp_b.yaml")], ["dump", "--corp", "x"]):
        missing = zida(*args, database=f"sqlite:///{tmp_path / 'missing.db'}")
        assert missing.returncode == 1 and "there is no database at" in missing.stderr, missing.stderr
        assert not (tmp_path / "missing.db").exists()


def test_serve_refuses_a_port_or_worker_count_out_of_range_in_one_line(tmp_path: Path) -> None:
    for option, value in (("--port", "99999"), ("--port", "-1"), ("--workers", "0")):
        result = zida("serve", option, value, database=f"sqlite:///{tmp_path / 'z.db'}")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"Invalid value for '{option}'" in result.stderr


def test_another_server_key_is_refused_before_it_breaks_anything(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'keyed.db'}"
    zida("migrate", database=database)
    assert zida("load", str(FIXTURES / "corp_b.yaml"), database=database).returncode == 0
    env = {**os.environ, "ZIDA_SECRET_KEY": "another-key"}
    for args in (["load", str(FIXTURES / "corp_b.yaml")], ["serve", "--port", "1"]):
        result = zida(*args, database=database, env=env)
        assert result.returncode != 0, args
        assert "ZIDA_SECRET_KEY is not the key this database was set up with" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_postgresql_needs_an_explicit_server_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ZIDA_SECRET_KEY", "ZIDA_SECRET_KEY_FILE")}
    result = subprocess.run(
        [sys.executable, "-m", "zida.cli", "load", str(FIXTURES / "corp_b.yaml")],
        capture_output=True,
        text=True,
        env={**env, "ZIDA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "ZIDA_SECRET_KEY is required with PostgreSQL" in result.stderr
    assert not (tmp_path / "var").exists()  # no key file was made up on the side


def test_serve_says_so_when_the_port_is_taken(tmp_path: Path) -> None:
    import socket

    database = f"sqlite:///{tmp_path / 'busy.db'}"
    zida("migrate", database=database)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = zida("serve", "--port", str(port), "--example", str(ROOT / "demo" / "bundle.yaml"), database=database)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "appSecret" not in result.stdout  # no credentials printed for a server that never started


def test_the_snippet_make_run_prints_works_with_the_official_sdk(tmp_path: Path) -> None:
    """What `make run` does (migrate, load the demo, serve with --example), then the printed snippet run as pasted."""
    import socket
    import time

    import httpx

    database = f"sqlite:///{tmp_path / 'demo.db'}"
    assert zida("migrate", database=database).returncode == 0
    assert zida("load", str(ROOT / "demo" / "bundle.yaml"), database=database).returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = ["serve", "--database", database, "--port", str(port), "--example", str(ROOT / "demo" / "bundle.yaml")]
    server = subprocess.Popen(
        [sys.executable, "-m", "zida.cli", *serve],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        printed = []
        for line in server.stdout:
            printed.append(line)
            if line.startswith("curl:"):
                break
        text = "".join(printed)
        assert f"Zida is serving on http://127.0.0.1:{port}" in text
        snippet = text.split("Paste into python (pip install alibabacloud-dingtalk):\n", 1)[1].split("curl:", 1)[0]
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        result = subprocess.run(
            [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        saved, found = result.stdout.splitlines()
        assert saved.startswith("saved FINST-")
        assert found.startswith("1 records;") and "Hello from the official SDK" in found
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_starts_at_once_on_the_port_of_a_killed_server(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'restart.db'}"
    assert zida("migrate", database=database).returncode == 0
    port = str(free_port())
    command = [sys.executable, "-m", "zida.cli", "serve", "--port", port, "--database", database]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else proc.returncode
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                time.sleep(0.05)
        proc.kill()
        raise AssertionError("zida serve did not come up")

    first = start()
    # Clients hold keep-alive connections when the server dies: the kernel closes its end first, which leaves the
    # port in TIME_WAIT for a minute.
    clients = [httpx.Client() for _ in range(4)]
    for client in clients:
        assert client.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    time.sleep(0.2)
    second = start()  # a supervisor's first restart succeeds
    for client in clients:
        client.close()
    second.terminate()
    second.wait(10)


def test_the_files_zida_creates_are_the_owners_alone(tmp_path: Path) -> None:
    database = tmp_path / "private" / "zida.db"
    url = f"sqlite:///{database}"
    env = {k: v for k, v in os.environ.items() if k != "ZIDA_SECRET_KEY"}  # the embedded database's own key file
    env_umask = os.umask(0o022)  # a typical shell's mask
    try:
        for args in (["migrate"], ["load", str(FIXTURES / "corp_b.yaml")]):
            result = zida(*args, database=url, env=env)
            assert result.returncode == 0, result.stderr
    finally:
        os.umask(env_umask)
    created = [p for p in database.parent.iterdir()]
    assert {p.name for p in created} >= {"zida.db", "secret.key"}
    for path in created:
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is {oct(path.stat().st_mode)}"
    assert database.parent.stat().st_mode & 0o077 == 0


def test_a_bad_umask_is_refused_clearly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zida.cli", "migrate", "--database", f"sqlite:///{tmp_path / 'x.db'}"],
        capture_output=True,
        text=True,
        env={**os.environ, "ZIDA_UMASK": "999"},
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "ZIDA_UMASK" in result.stderr


def test_credentials_from_the_command_line(tmp_path: Path) -> None:
    import asyncio

    from zida.core.access.tokens import TokenService
    from zida.core.errors import Unauthenticated
    from zida.crypto import SecretBox
    from zida.db import open_database

    database = f"sqlite:///{tmp_path / 'cli.db'}"
    zida("migrate", database=database)
    assert zida("load", str(FIXTURES / "corp_b.yaml"), database=database).returncode == 0

    def token_for(client_id: str, secret: str) -> str:
        async def go() -> str:
            db = await open_database(database)
            try:
                tokens = TokenService(db, SecretBox(os.environ["ZIDA_SECRET_KEY"]))
                return (await tokens.issue(client_id, secret)).token
            finally:
                await db.close()

        return asyncio.run(go())

    made = zida(
        "credentials", "create", "--corp", "corpB", "--scope", "Yida.Form.Read", "--app-key", "cli-key",
        "--rate-limit", "5", database=database,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "cli-key  scopes: records.read  rate limit: 5" in made.stdout
    secret = made.stdout.split("appSecret: ", 1)[1].split()[0]
    assert token_for("cli-key", secret)
    changed = zida("credentials", "update", "--corp", "corpB", "cli-key", "--rate-limit", "default", database=database)
    assert "cli-key  scopes: records.read  rate limit: default" in changed.stdout, changed.stderr
    rotated = zida("credentials", "rotate", "--corp", "corpB", "cli-key", database=database)
    new_secret = rotated.stdout.split("appSecret: ", 1)[1].split()[0]
    assert new_secret != secret and token_for("cli-key", new_secret)
    try:
        token_for("cli-key", secret)
        raise AssertionError("the old secret still obtains tokens")
    except Unauthenticated:
        pass
    listed = zida("credentials", "list", "--corp", "corpB", database=database)
    assert "cli-key" in listed.stdout and new_secret not in listed.stdout
    assert zida("credentials", "revoke", "--corp", "corpB", "cli-key", database=database).returncode == 0
    assert "cli-key" not in zida("credentials", "list", "--corp", "corpB", database=database).stdout
    for args, message in (
        (("list", "--corp", "nobody"), "corp nobody does not exist"),
        (("create", "--corp", "corpB", "--scope", "Nope.Scope"), "Nope.Scope"),
        (("update", "--corp", "corpB", "keyB-all", "--rate-limit", "many"), "whole number"),
        (("create", "--corp", "corpB", "--scope", "*", "--rate-limit", "-3"), "rate"),
        (("revoke", "--corp", "corpB", "cli-key"), "does not exist"),
    ):
        refused = zida("credentials", *args, database=database)
        assert refused.returncode != 0 and message in refused.stderr, (args, refused.stderr)


def test_ctrl_c_in_an_import_or_a_load_writes_nothing_and_exits_130(tmp_path: Path) -> None:
    # A load or an import runs its statements without yielding to the event loop: asyncio's Ctrl-C handler only
    # cancelled the command at its COMMIT, which it waited out: every user was written, then "Aborted!", exit 1.
    sys.path.insert(0, str(ROOT / "bench"))
    from org_bundle import org_bundle

    database = f"sqlite:///{tmp_path / 'cli.db'}"
    zida("migrate", database=database)
    assert zida("load", str(FIXTURES / "corp_b.yaml"), database=database).returncode == 0
    users = tmp_path / "staff.csv"
    users.write_text("userId,name\n" + "".join(f"u{n},N{n}\n" for n in range(40000)))
    bundle = tmp_path / "org.json"
    bundle.write_text(json.dumps(org_bundle(users=20000, departments=100)))

    def stored_users() -> int:
        with sqlite3.connect(tmp_path / "cli.db") as conn:
            return int(conn.execute("SELECT count(*) FROM org_user").fetchone()[0])

    before = stored_users()
    for args in (["users", "import", "--corp", "corpB", str(users)], ["load", str(bundle)]):
        process = subprocess.Popen(
            [sys.executable, "-m", "zida.cli", *args, "--database", database],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        seen = process.stderr.readline()  # the progress bar's first tenth: the transaction is under way
        assert "/" in seen, seen
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130 and "Traceback" not in err, err
        assert "Error: interrupted" in err, err
        assert stored_users() == before


def test_a_bundle_whose_aliases_explode_or_loop_is_refused_at_once(tmp_path: Path) -> None:
    # "Billion laughs": 9 levels of 9 aliases parse into a few objects standing for 387 million values, which the
    # bundle's checks visited one by one (a minute of CPU and more); an alias of its own holder was a traceback.
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    zida("migrate", database=database)
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)]
    bombs = {
        "laughs.yaml": "\n".join([*lines, "corp: {corpId: c1, name: *l8}"]) + "\n",
        "loop.yaml": "corp: &c {corpId: c1, name: x, again: *c}\n",
    }
    for name, text in bombs.items():
        bomb = tmp_path / name
        bomb.write_text(text)
        started = time.monotonic()
        for args in (["load", str(bomb)], ["load", str(bomb)]):
            loaded = zida(*args, database=database)
            assert loaded.returncode == 1 and "Traceback" not in loaded.stderr, loaded.stderr
            assert loaded.stderr.startswith(f"Error: {bomb}: ") and "alias" in loaded.stderr, loaded.stderr
        example = subprocess.run(
            [sys.executable, "-m", "zida.cli", "example", str(bomb)], capture_output=True, text=True, timeout=60
        )
        assert example.returncode == 1 and "alias" in example.stderr, example.stderr
        assert time.monotonic() - started < 30
    # A bundle that uses an alias or two as intended still loads.
    plain = yaml.safe_load((FIXTURES / "corp_b.yaml").read_text())
    text = yaml.safe_dump(plain, allow_unicode=True).replace("corpId: corpB", "corpId: &corp corpB", 1)
    anchored = tmp_path / "anchored.yaml"
    anchored.write_text(text)
    assert zida("load", str(anchored), database=database).returncode == 0


def test_a_hint_naming_the_database_url_never_shows_its_password(tmp_path: Path) -> None:
    # "the database schema is not current …: run `zida migrate --database postgresql://user:PASSWORD@…`"
    pg = os.environ.get("ZIDA_TEST_DATABASE", "postgresql://postgres@127.0.0.1:5432/test")
    if not pg.startswith("postgresql://"):
        pg = "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"zt_cli_pw_{os.getpid()}"
    parts = pg.split("://", 1)[1].split("@", 1)
    user = parts[0].split(":", 1)[0] if len(parts) == 2 else "postgres"
    host = parts[-1].split("?", 1)[0]
    url = f"postgresql://{user}:s3cret-pw@{host}?search_path={schema}&password=s3cret-pw"
    env = {**os.environ, "ZIDA_SECRET_KEY": "k" * 43}
    for args in (["credentials", "list", "--corp", "c1"], ["dump", "--corp", "c1"]):
        result = zida(*args, database=url, env=env)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "s3cret-pw" not in result.stderr and "s3cret-pw" not in result.stdout, result.stderr
        assert "zida migrate --database postgresql://" in result.stderr and ":***@" in result.stderr, result.stderr
