"""Run the Alembic migrations (same scripts for SQLite and PostgreSQL).

Alembic and SQLAlchemy are imported only to migrate: ``zida serve`` and every other command check the schema against
``SCHEMA_HEADS`` with one query, and start about half a second sooner for it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from zida.core.errors import Misconfigured
from zida.db.database import Database, is_postgres, postgres_dsn
from zida.settings import sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Engine

__all__ = ["SCHEMA_HEADS", "check_schema", "schema_heads", "sync_engine", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"
# The revision every migrated database is at: the head of migrations/versions. A new migration moves it (a test holds
# it equal to what Alembic finds there, schema_heads()).
SCHEMA_HEADS = frozenset({"0024"})


def sync_engine(url: str) -> Engine:
    """A synchronous SQLAlchemy engine for ``url`` (psycopg for PostgreSQL), for migrations only."""
    from sqlalchemy import create_engine

    if is_postgres(url):
        dsn, settings = postgres_dsn(url)
        options = " ".join(f"-c{k}={v}" for k, v in settings.items())
        engine_url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        if options:
            engine_url += ("&" if "?" in engine_url else "?") + "options=" + quote(options)
        return create_engine(engine_url)
    path = sqlite_path(url)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(f"sqlite:///{path}")


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def check_schema(db: Database) -> None:
    """Raise ``Misconfigured`` unless the database has every migration (``zida migrate`` was run)."""
    heads = set(SCHEMA_HEADS)
    try:
        current = {str(r["version_num"]) for r in await db.fetch("SELECT version_num FROM alembic_version")}
    except Exception:  # no alembic_version table: never migrated (the drivers raise their own error types)
        current = set()
    if current != heads:
        raise Misconfigured(
            f"the database schema is not current ({', '.join(sorted(current)) or 'empty'}; needs"
            f" {', '.join(sorted(heads))}): run `zida migrate --database {db.url}`",
            reason="server.schema_not_migrated",
        )


def schema_heads() -> frozenset[str]:
    """The head revisions Alembic finds in the migration scripts."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` to ``revision``; creates the PostgreSQL schema in search_path if needed."""
    from alembic import command
    from sqlalchemy import text

    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            if is_postgres(url):
                schema = postgres_dsn(url)[1].get("search_path")
                if schema:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            else:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
