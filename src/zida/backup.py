"""``zida backup`` and ``zida restore``: a consistent copy of the whole database while servers keep running, and
putting one back (README "Backup and restore").

* **SQLite**: the online backup API (``sqlite3.Connection.backup``) copies the database in one step, inside one read
  transaction: with WAL, servers keep reading and writing meanwhile and the copy is the database as it was when the
  step began (every commit before it, none after). The copy is written beside the target and renamed into place, so
  a backup file is never half written. A restore copies the backup into the database file the same way (servers
  writing to it wait for the copy).
* **PostgreSQL**: ``pg_dump --format=custom`` and ``pg_restore``, run as subprocesses with the connection taken from
  the database URL and passed in libpq's environment variables (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``,
  ``PGDATABASE``, ``PGSSLMODE``…): a password is never on a command line, where ``ps`` would show it. (A
  ``service=`` or ``passfile=`` in the URL works too.) A URL with ``search_path`` dumps that schema only, and
  restores it under the same name. ``pg_restore`` runs as one transaction that stops at the first error
  (``--single-transaction --exit-on-error``), so a failed restore leaves the target as it was; objects are owned by
  the restoring role (``--no-owner``), so a backup restores into another cluster with other role names.
* **A restore never replaces data by accident**: a target that holds any table (the URL's schema on PostgreSQL) is
  refused unless ``force`` is given; then SQLite's file is overwritten and PostgreSQL's objects of the backup are
  dropped first (``--clean --if-exists``). The server key is not in the database: back up ``ZIDA_SECRET_KEY`` (or
  the ``secret.key`` file beside an SQLite database) separately; a database restored under another key is refused
  by ``zida serve``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from zida.core.errors import InvalidArgument
from zida.db.database import is_postgres
from zida.settings import sqlite_path

__all__ = [
    "BackupError",
    "BackupReport",
    "backup_database",
    "pg_environment",
    "restore_database",
    "shown_url",
]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_MAGIC = b"PGDMP"
# URL parameters that become libpq environment variables (the rest of libpq's are refused: say what you mean).
_PG_PARAMETERS = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslpassword": "PGSSLPASSWORD",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


class BackupError(InvalidArgument):
    """A backup or restore that cannot be made: what is wrong and what to do."""

    default_reason = "backup.invalid"


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What was written: the file or database, and how many bytes the backup holds."""

    path: str
    size: int
    how: str


def pg_environment(url: str) -> tuple[dict[str, str], str | None]:
    """libpq's environment for the database at ``url`` (secrets included, never on a command line) and the schema
    the URL's ``search_path`` names, if any."""
    parts = urlsplit(url)
    env: dict[str, str] = {}
    if parts.hostname:
        env["PGHOST"] = unquote(parts.hostname)
    if parts.port:
        env["PGPORT"] = str(parts.port)
    if parts.username:
        env["PGUSER"] = unquote(parts.username)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    if parts.path.strip("/"):
        env["PGDATABASE"] = unquote(parts.path.strip("/"))
    schema = None
    for key, value in parse_qsl(parts.query):
        if key == "search_path":
            schema = value.strip() or None
            if schema is not None and "," in schema:
                raise BackupError(f"search_path {schema!r} names several schemas: name the one Zida uses")
        elif key in _PG_PARAMETERS:
            env[_PG_PARAMETERS[key]] = value
        else:
            raise BackupError(f"the database URL's parameter {key!r} is not one zida backup knows how to pass on")
    return env, schema


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client of the server's version"
            " (Debian: apt-get install postgresql-client)"
        )
    return found


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    """Run a PostgreSQL client tool with libpq's variables; a failure says what it printed (never the env)."""
    # The command is the tool's path and file names the operator gave; the connection is in the environment.
    result = subprocess.run(  # noqa: S603
        command, env={**os.environ, **env}, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise BackupError(f"{what} failed: {detail}")


def _partial(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def _read_only(path: str | Path) -> str:
    """The ``file:`` URI that opens ``path`` read-only (quoted: ``#``, ``?`` or ``%`` in a name stay the name's)."""
    return Path(path).resolve().as_uri() + "?mode=ro"


def shown_url(url: str) -> str:
    """A database URL as messages show it: without its password (in the authority or a ``password=`` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(
        f"{k}=***" if k.lower() == "password" else (f"{k}={v}" if v else k) for k, v in parse_qsl(parts.query, True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _check_target_file(target: Path, force: bool) -> None:
    if target.is_dir():
        raise BackupError(f"{target} is a directory: name the backup file")
    if target.exists() and not force:
        raise BackupError(f"{target} exists: choose another name or pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)


def _backup_sqlite(url: str, target: Path) -> BackupReport:
    source_path = sqlite_path(url)
    if source_path == ":memory:" or not Path(source_path).exists():
        raise BackupError(f"there is no database file at {source_path}")
    partial = _partial(target)
    partial.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(_read_only(source_path), uri=True, timeout=30)
        try:
            copy = sqlite3.connect(partial)
            try:
                # One step (pages=-1): one read transaction, so the copy is one moment of the database.
                source.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
                if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise BackupError(f"the copy of {source_path} does not pass SQLite's quick_check")
            finally:
                copy.close()
        finally:
            source.close()
    except (sqlite3.Error, BackupError) as exc:
        partial.unlink(missing_ok=True)  # nothing half-written is left beside the target
        raise exc if isinstance(exc, BackupError) else BackupError(f"backup of {source_path} failed: {exc}") from exc
    os.replace(partial, target)
    return BackupReport(str(target), target.stat().st_size, "SQLite online backup")


def _backup_postgres(url: str, target: Path) -> BackupReport:
    env, schema = pg_environment(url)
    partial = _partial(target)
    partial.unlink(missing_ok=True)
    command = [_tool("pg_dump"), "--format=custom", "--file", str(partial)]
    if schema:
        command += ["--schema", schema]
    try:
        _run(command, env, "pg_dump")
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return BackupReport(str(target), target.stat().st_size, "pg_dump --format=custom")


def backup_database(url: str, target: str | Path, *, force: bool = False) -> BackupReport:
    """Write a consistent copy of the database at ``url`` to the file ``target`` (replaced only with ``force``)."""
    path = Path(target)
    _check_target_file(path, force)
    if is_postgres(url):
        return _backup_postgres(url, path)
    if url.startswith("sqlite:"):
        return _backup_sqlite(url, path)
    raise BackupError(f"unsupported database URL {shown_url(url)}: use sqlite:///path or postgresql://…")


def _backup_kind(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    if head.startswith(_SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(_PG_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is neither a SQLite database nor a pg_dump custom-format archive")


def _sqlite_tables(path: str) -> int:
    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return 0
    conn = sqlite3.connect(_read_only(path), uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc}): remove it or restore elsewhere") from None
    finally:
        conn.close()


def _restore_sqlite(backup: Path, url: str, force: bool) -> BackupReport:
    target = sqlite_path(url)
    if target == ":memory:":
        raise BackupError("restore needs a database file, not :memory:")
    tables = _sqlite_tables(target)
    if tables and not force:
        raise BackupError(
            f"{target} already holds a database ({tables} tables): restore into a new file, or pass --force to"
            " replace it"
        )
    source = sqlite3.connect(_read_only(backup), uri=True)
    try:
        if source.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"{backup} does not pass SQLite's quick_check: it is damaged")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        dest = sqlite3.connect(target, timeout=30)
        try:
            source.backup(dest)
            dest.execute("PRAGMA journal_mode=WAL")  # as zida opens it
        finally:
            dest.close()
    finally:
        source.close()
    return BackupReport(target, backup.stat().st_size, "SQLite backup API")


def _postgres_tables(url: str, schema: str) -> int:
    from sqlalchemy import text

    from zida.db.migrate import sync_engine

    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"), {"s": schema})
            return int(found.scalar_one())
    except Exception as exc:  # the driver's own kinds: cannot connect, no such database
        raise BackupError(f"cannot reach the target database: {exc}") from None
    finally:
        engine.dispose()


def _needs_trigrams(pg_restore: str, backup: Path) -> bool:
    """Whether the archive's indexes use pg_trgm (its DDL only: no data is read)."""
    ddl = subprocess.run(  # noqa: S603 (the tool's path and the operator's file)
        [pg_restore, "--schema-only", "--file", "-", str(backup)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return "gin_trgm_ops" in ddl.stdout


def _create_trigrams(url: str) -> bool:
    """Create pg_trgm in the target as migration 0012 does (a schema-only dump does not hold the extension its
    indexes use); whether it was created here."""
    from sqlalchemy import text

    from zida.db.migrate import sync_engine

    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar():
                return False
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
            return True
    except Exception as exc:
        raise BackupError(f"the backup's indexes need the pg_trgm extension, which cannot be created: {exc}") from None
    finally:
        engine.dispose()


def _drop_trigrams(url: str) -> None:
    from sqlalchemy import text

    from zida.db.migrate import sync_engine

    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP EXTENSION IF EXISTS pg_trgm"))
    finally:
        engine.dispose()


def _restore_postgres(backup: Path, url: str, force: bool) -> BackupReport:
    env, schema = pg_environment(url)
    pg_restore = _tool("pg_restore")
    try:
        _run([pg_restore, "--list", str(backup)], {}, "reading the archive")
    except BackupError as exc:
        raise BackupError(f"{backup} is not a readable pg_dump archive: {exc.message}") from None
    tables = _postgres_tables(url, schema or "public")
    if tables and not force:
        raise BackupError(
            f"the target database already has {tables} tables in schema {schema or 'public'}: restore into an empty"
            " database, or pass --force to replace the backup's objects"
        )
    command = [pg_restore, "--no-owner", "--single-transaction", "--exit-on-error"]
    if force:
        command += ["--clean", "--if-exists"]
    if "PGDATABASE" in env:
        target = env["PGDATABASE"]
    elif "PGSERVICE" in env:
        target = f"service={env['PGSERVICE']}"
    else:
        raise BackupError("the database URL names no database to restore into (postgresql://host/DATABASE)")
    command += ["--dbname", target, str(backup)]
    created = _needs_trigrams(pg_restore, backup) and _create_trigrams(url)
    try:
        _run(command, env, "pg_restore")
    except BackupError:
        if created:  # the failed restore changed nothing: neither does this
            _drop_trigrams(url)
        raise
    return BackupReport(shown_url(url), backup.stat().st_size, "pg_restore")


def restore_database(backup: str | Path, url: str, *, force: bool = False) -> BackupReport:
    """Put the backup file ``backup`` into the database at ``url`` (an empty one, unless ``force``)."""
    path = Path(backup)
    if not path.is_file():
        raise BackupError(f"there is no backup file at {path}")
    kind = _backup_kind(path)
    wanted = "postgresql" if is_postgres(url) else "sqlite"
    if kind != wanted:
        raise BackupError(f"{path} is a {kind} backup: it restores into a {kind} database, not {shown_url(url)}")
    if kind == "postgresql":
        return _restore_postgres(path, url, force)
    return _restore_sqlite(path, url, force)
