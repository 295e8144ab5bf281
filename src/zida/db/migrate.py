"""Run the Alembic migrations (same scripts for SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from zida.db.database import is_postgres, postgres_dsn
from zida.settings import sqlite_path

__all__ = ["sync_engine", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"


def sync_engine(url: str) -> Engine:
    """A synchronous SQLAlchemy engine for ``url`` (psycopg for PostgreSQL), for migrations only."""
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


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` to ``revision``; creates the PostgreSQL schema in search_path if needed."""
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            if is_postgres(url):
                schema = postgres_dsn(url)[1].get("search_path")
                if schema:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            else:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
