"""``zida doctor``: what an operator checks before (or instead of) starting a server, read-only.

Each check answers ``ok``, ``warn`` (works, but look at it) or ``fail`` (``zida serve`` would refuse, or requests
would fail): the settings and the server key, the database (reachable, schema current, the key it was set up
with; on PostgreSQL, whether text sorts by code point as on SQLite), the shared store (Redis, when configured),
and the free disk space where Zida writes (the SQLite database's directory and the local files directory).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from zida.crypto import SecretBox
from zida.db import Database, open_database
from zida.db.migrate import check_schema
from zida.settings import Settings, require_secret_key, sqlite_path
from zida.stores import open_store

__all__ = ["MIN_FREE_BYTES", "Finding", "diagnose"]

MIN_FREE_BYTES = 1024**3  # below this, or below 5% of the disk, free space is a warning


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome: ``ok``, ``warn`` or ``fail``, and what was found."""

    check: str
    status: str
    detail: str


async def _database(settings: Settings, box: SecretBox | None) -> list[Finding]:
    url = settings.database_url
    path = sqlite_path(url) if url.startswith("sqlite") else None
    if path is not None and path != ":memory:" and not await asyncio.to_thread(os.path.exists, path):
        # Opening it would make an empty file: the doctor only looks.
        return [Finding("database", "fail", f"{path} does not exist (`zida migrate` creates it)")]
    try:
        db: Database = await open_database(settings.database_url, 1)
    except Exception as exc:  # every driver raises its own kind
        return [Finding("database", "fail", f"cannot open {settings.database_url}: {exc}")]
    try:
        try:
            reachable = await db.ping()
        except Exception as exc:
            return [Finding("database", "fail", f"{settings.database_url} does not answer: {exc}")]
        if not reachable:
            return [Finding("database", "fail", f"{settings.database_url} does not answer")]
        found = [Finding("database", "ok", f"{settings.database_url} answers")]
        if db.sql.name == "postgresql":
            found.append(await _collation(db))
        try:
            await check_schema(db)
            found.append(Finding("schema", "ok", "every migration is applied"))
        except Exception as exc:
            found.append(Finding("schema", "fail", str(exc)))
            return found
        stored = await db.fetchval("SELECT value FROM server_meta WHERE name = 'server_key_fingerprint'")
        if box is None:
            return found
        if stored is None:
            found.append(Finding("server key", "ok", "not recorded yet: the first server records this key"))
        elif hmac.compare_digest(str(stored), box.derive("server-key-fingerprint", "zida")):
            found.append(Finding("server key", "ok", "the key this database was set up with"))
        else:
            found.append(Finding("server key", "fail", "ZIDA_SECRET_KEY is not the key this database was set up with"))
        return found
    finally:
        await db.close()


# Texts whose order differs between code points and every language's rules (case, accents, punctuation, digits).
_PROBE = "(VALUES ('B'), ('a'), ('É'), ('z'), ('_'), ('10'), ('9')) AS probe(t)"


async def _collation(db: Database) -> Finding:
    """PostgreSQL: a database created with a language's collation (``en_US.UTF-8``, ICU ``en-US``) sorts and compares
    text by that language's rules (``apple, Banana, Émile``), where SQLite and the ``C`` collation go by code point
    (``Banana, apple, Émile``): searches' text order and ranges would differ from the embedded database's."""
    same = await db.fetchval(f'SELECT array_agg(t ORDER BY t) = array_agg(t ORDER BY t COLLATE "C") FROM {_PROBE}')
    locale = await db.fetchval(
        "SELECT COALESCE(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale', d.datcollate)"
        " FROM pg_database d WHERE d.datname = current_database()"
    )
    if same:
        return Finding("collation", "ok", f"{locale}: text sorts by code point, as on SQLite")
    return Finding(
        "collation",
        "warn",
        f"{locale}: text sorts by that language's rules, not by code point as on SQLite (searches' text order and"
        " ranges differ); create the database with LC_COLLATE 'C' or 'C.UTF-8' (and LOCALE_PROVIDER libc)",
    )


async def _store(settings: Settings) -> Finding:
    if not settings.redis_url:
        return Finding("shared store", "ok", "no Redis: each process keeps its own caches and counters (one host)")
    store = open_store(settings)
    try:
        await store.get("doctor")
        return Finding("shared store", "ok", "Redis answers")
    except Exception as exc:
        return Finding("shared store", "fail", f"Redis does not answer: {exc}")
    finally:
        await store.close()


def _disk(label: str, path: Path) -> Finding:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    usage = shutil.disk_usage(existing)
    detail = f"{usage.free / 1024**3:.1f} GiB free of {usage.total / 1024**3:.1f} GiB at {path}"
    low = usage.free < MIN_FREE_BYTES or usage.free < usage.total * 0.05
    return Finding(f"disk ({label})", "warn" if low else "ok", detail)


async def diagnose(settings: Settings) -> list[Finding]:
    """Every check, in order (nothing is written)."""
    from zida.core.files.storage import default_files_dir

    found: list[Finding] = []
    box: SecretBox | None = None
    try:
        box = SecretBox(require_secret_key(settings))
        found.append(Finding("server key", "ok", "set"))
    except Exception as exc:
        found.append(Finding("server key", "fail", str(exc)))
    found.extend(await _database(settings, box))
    found.append(await _store(settings))
    if settings.database_url.startswith("sqlite") and sqlite_path(settings.database_url) != ":memory:":
        found.append(_disk("database", Path(sqlite_path(settings.database_url)).parent))
    if not settings.files_url:
        found.append(_disk("files", default_files_dir(settings)))
    return found
