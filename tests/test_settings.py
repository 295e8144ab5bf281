"""Every ``ZIDA_*`` variable is read once into ``Settings``; a value Zida cannot use is refused, naming it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from zida.core.errors import TooExpensive
from zida.db import open_database
from zida.db.database import SqliteDatabase, is_postgres
from zida.settings import DEFAULT_DATABASE_URL, Settings, load_settings

# Everything load_settings reads except the secret key (kept: without it a default SQLite URL writes a key file).
VARIABLES = [
    "ZIDA_DATABASE_URL",
    "ZIDA_REDIS_URL",
    "ZIDA_REDIS_PREFIX",
    "ZIDA_TOKEN_TTL_SECONDS",
    "ZIDA_TIMEZONE",
    "ZIDA_DB_POOL_SIZE",
    "ZIDA_MAX_BODY_BYTES",
    "ZIDA_CACHE_SECONDS",
    "ZIDA_CACHE_SYNC_SECONDS",
    "ZIDA_PAGE_CURSOR_SECONDS",
    "ZIDA_SQLITE_SYNCHRONOUS",
    "ZIDA_SQLITE_READERS",
    "ZIDA_STATEMENT_TIMEOUT_SECONDS",
    "ZIDA_TOKEN_FAILURES_PER_MINUTE",
    "ZIDA_RATE_LIMIT_QPS",
    "ZIDA_RATE_LIMIT_CORP_QPS",
    "ZIDA_UMASK",
]


# The request budget's variables (README "Limits"), with a usable value each and the field it sets.
LIMIT_VARIABLES = {
    "ZIDA_MAX_JSON_DEPTH": ("16", "max_json_depth", 16),
    "ZIDA_MAX_SEARCH_CONDITIONS": ("20", "max_search_conditions", 20),
    "ZIDA_MAX_SEARCH_VALUES": ("50", "max_search_values", 50),
    "ZIDA_MAX_BOUND_VALUES": ("500", "max_bound_values", 500),
    "ZIDA_MAX_SEARCH_CHARS": ("100", "max_search_chars", 100),
    "ZIDA_MAX_TEXT_CHARS": ("200", "max_text_chars", 200),
    "ZIDA_MAX_TEXTAREA_CHARS": ("2000", "max_textarea_chars", 2000),
    "ZIDA_MAX_EDITOR_CHARS": ("3000", "max_editor_chars", 3000),
    "ZIDA_MAX_RECORD_BYTES": ("65536", "max_record_bytes", 65536),
    "ZIDA_MAX_PAGE_BYTES": ("1048576", "max_page_bytes", 1048576),
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ZIDA_* variable but a known secret key."""
    for name in [*VARIABLES, *LIMIT_VARIABLES]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZIDA_SECRET_KEY", "settings-test-key")
    return monkeypatch


def test_defaults() -> None:
    settings = load_settings()
    assert settings == Settings(database_url=DEFAULT_DATABASE_URL, secret_key="settings-test-key")
    assert settings.redis_url is None
    assert settings.redis_prefix == "zida"
    assert settings.token_ttl_seconds == 7200
    assert (settings.rate_limit_qps, settings.rate_limit_corp_qps) == (20, 0)  # the platform's 20 per app and API
    assert settings.timezone == "Asia/Shanghai"
    assert settings.db_pool_size == 8
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert settings.cache_seconds == 5
    assert settings.cache_sync_seconds == 0.5
    assert settings.page_cursor_seconds == 600
    assert settings.sqlite_synchronous == "FULL"
    assert settings.sqlite_readers == 1
    assert settings.statement_timeout_seconds == 10


def test_every_variable_is_read(clean_env: pytest.MonkeyPatch) -> None:
    values = {
        "ZIDA_DATABASE_URL": "postgresql://zida@db.internal/zida",
        "ZIDA_REDIS_URL": "redis://:pw@cache.internal:6380/2",
        "ZIDA_REDIS_PREFIX": "zida-staging",
        "ZIDA_TOKEN_TTL_SECONDS": "600",
        "ZIDA_TIMEZONE": "Europe/Berlin",
        "ZIDA_DB_POOL_SIZE": "20",
        "ZIDA_MAX_BODY_BYTES": "1024",
        "ZIDA_CACHE_SECONDS": "2.5",
        "ZIDA_CACHE_SYNC_SECONDS": "0.25",
        "ZIDA_PAGE_CURSOR_SECONDS": "30",
        "ZIDA_SQLITE_SYNCHRONOUS": "normal",
        "ZIDA_SQLITE_READERS": "6",
        "ZIDA_STATEMENT_TIMEOUT_SECONDS": "2.5",
        "ZIDA_TOKEN_FAILURES_PER_MINUTE": "20",
        "ZIDA_RATE_LIMIT_QPS": "50",
        "ZIDA_RATE_LIMIT_CORP_QPS": "400",
        "ZIDA_UMASK": "007",
    }
    for name, value in values.items():
        clean_env.setenv(name, value)
    assert set(values) == set(VARIABLES)
    assert load_settings() == Settings(
        database_url="postgresql://zida@db.internal/zida",
        secret_key="settings-test-key",
        redis_url="redis://:pw@cache.internal:6380/2",
        redis_prefix="zida-staging",
        token_ttl_seconds=600,
        timezone="Europe/Berlin",
        db_pool_size=20,
        max_body_bytes=1024,
        cache_seconds=2.5,
        cache_sync_seconds=0.25,
        page_cursor_seconds=30,
        sqlite_synchronous="NORMAL",
        sqlite_readers=6,
        statement_timeout_seconds=2.5,
        token_failures_per_minute=20,
        rate_limit_qps=50,
        rate_limit_corp_qps=400,
        umask=0o007,
    )


def test_the_argument_overrides_the_database_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ZIDA_DATABASE_URL", "postgresql://zida@db.internal/zida")
    assert load_settings("postgresql://other/db").database_url == "postgresql://other/db"


def test_empty_values_count_as_unset(clean_env: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        clean_env.setenv(name, "  ")
    assert load_settings() == load_settings(DEFAULT_DATABASE_URL)
    assert load_settings() == Settings(secret_key="settings-test-key")


def test_zero_disables_caches_and_page_cursors(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ZIDA_CACHE_SECONDS", "0")
    clean_env.setenv("ZIDA_PAGE_CURSOR_SECONDS", "0")
    settings = load_settings()
    assert settings.cache_seconds == 0
    assert settings.page_cursor_seconds == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ZIDA_TOKEN_TTL_SECONDS", "two hours"),
        ("ZIDA_TOKEN_TTL_SECONDS", "0"),
        ("ZIDA_TOKEN_TTL_SECONDS", "-7200"),
        ("ZIDA_TOKEN_TTL_SECONDS", "7200.5"),
        ("ZIDA_DB_POOL_SIZE", "0"),
        ("ZIDA_DB_POOL_SIZE", "eight"),
        ("ZIDA_MAX_BODY_BYTES", "-1"),
        ("ZIDA_MAX_BODY_BYTES", "16M"),
        ("ZIDA_CACHE_SECONDS", "-1"),
        ("ZIDA_CACHE_SECONDS", "soon"),
        ("ZIDA_CACHE_SECONDS", "nan"),
        ("ZIDA_CACHE_SECONDS", "inf"),
        ("ZIDA_CACHE_SYNC_SECONDS", "0"),
        ("ZIDA_CACHE_SYNC_SECONDS", "-0.5"),
        ("ZIDA_CACHE_SYNC_SECONDS", "fast"),
        ("ZIDA_PAGE_CURSOR_SECONDS", "-600"),
        ("ZIDA_PAGE_CURSOR_SECONDS", "10m"),
        ("ZIDA_SQLITE_SYNCHRONOUS", "OFF"),
        ("ZIDA_SQLITE_SYNCHRONOUS", "full; DROP TABLE corp"),
        ("ZIDA_SQLITE_READERS", "0"),
        ("ZIDA_SQLITE_READERS", "-2"),
        ("ZIDA_SQLITE_READERS", "two"),
        ("ZIDA_SQLITE_READERS", "2.5"),
        ("ZIDA_STATEMENT_TIMEOUT_SECONDS", "-1"),
        ("ZIDA_STATEMENT_TIMEOUT_SECONDS", "10s"),
        ("ZIDA_STATEMENT_TIMEOUT_SECONDS", "nan"),
        ("ZIDA_STATEMENT_TIMEOUT_SECONDS", "inf"),
        ("ZIDA_TIMEZONE", "Mars/Olympus_Mons"),
        ("ZIDA_TIMEZONE", "../../etc/passwd"),
        ("ZIDA_REDIS_URL", "127.0.0.1:6379"),
        ("ZIDA_REDIS_URL", "http://cache.internal"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        load_settings()


@pytest.mark.parametrize(
    ("name", "unit"), [("ZIDA_FILES_UNATTACHED_HOURS", "hours"), ("ZIDA_EVENTS_RETENTION_DAYS", "days")]
)
def test_a_refused_duration_names_its_unit(clean_env: pytest.MonkeyPatch, name: str, unit: str) -> None:
    clean_env.setenv(name, "0")
    with pytest.raises(ValueError, match=f"{name} must be a number of {unit} greater than 0"):
        load_settings()


def test_a_refused_redis_url_does_not_show_its_password(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ZIDA_REDIS_URL", "http://admin:s3cret@cache.internal:6379")
    with pytest.raises(ValueError, match="ZIDA_REDIS_URL") as refused:
        load_settings()
    assert "s3cret" not in str(refused.value)


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "pragma"), [(None, 2), ("FULL", 2), ("NORMAL", 1), ("extra", 3)])
async def test_sqlite_synchronous_reaches_the_database(tmp_path: Path, mode: str | None, pragma: int) -> None:
    url = f"sqlite:///{tmp_path / 'zida.db'}"
    db = await (open_database(url) if mode is None else open_database(url, sqlite_synchronous=mode))
    try:
        assert await db.fetchval("PRAGMA synchronous") == pragma
        async with db.transaction() as tx:  # the writer connection too
            assert await tx.fetchval("PRAGMA synchronous") == pragma
    finally:
        await db.close()


@pytest.mark.anyio
async def test_an_unknown_sqlite_synchronous_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FULL, NORMAL or EXTRA"):
        await open_database(f"sqlite:///{tmp_path / 'zida.db'}", sqlite_synchronous="OFF; VACUUM")


# -- the request budget (README "Limits") -------------------------------------------------------------------------


def test_limit_defaults() -> None:
    settings = load_settings()
    assert settings.max_json_depth == 64
    assert settings.max_search_conditions == 200
    assert settings.max_search_values == 1_000
    assert settings.max_bound_values == 5_000
    assert settings.max_search_chars == 1_000
    assert settings.max_text_chars == 10_000
    assert settings.max_textarea_chars == 50_000
    assert settings.max_editor_chars == 80_000
    assert settings.max_record_bytes == 256 * 1024
    # A page of the largest size Yida allows (100) of records of the largest size fits the page budget.
    assert settings.max_page_bytes == 100 * settings.max_record_bytes


@pytest.mark.parametrize("name", sorted(LIMIT_VARIABLES))
def test_every_limit_variable_is_read(clean_env: pytest.MonkeyPatch, name: str) -> None:
    raw, field, value = LIMIT_VARIABLES[name]
    clean_env.setenv(name, raw)
    settings = load_settings()
    assert getattr(settings, field) == value
    others = {f for _, f, _ in LIMIT_VARIABLES.values()} - {field}
    assert all(getattr(settings, f) == getattr(Settings(), f) for f in others)


def test_all_limit_variables_together(clean_env: pytest.MonkeyPatch) -> None:
    for name, (raw, _, _) in LIMIT_VARIABLES.items():
        clean_env.setenv(name, raw)
    settings = load_settings()
    assert {f: getattr(settings, f) for _, f, _ in LIMIT_VARIABLES.values()} == {
        f: v for _, f, v in LIMIT_VARIABLES.values()
    }


def test_empty_limit_values_count_as_unset(clean_env: pytest.MonkeyPatch) -> None:
    for name in LIMIT_VARIABLES:
        clean_env.setenv(name, "")
    assert load_settings() == Settings(secret_key="settings-test-key")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ZIDA_MAX_JSON_DEPTH", "7"),  # below what a sub-table row's attachment list needs
        ("ZIDA_MAX_JSON_DEPTH", "deep"),
        ("ZIDA_MAX_SEARCH_CONDITIONS", "0"),
        ("ZIDA_MAX_SEARCH_VALUES", "-1"),
        ("ZIDA_MAX_BOUND_VALUES", "5k"),
        ("ZIDA_MAX_SEARCH_CHARS", "0"),
        ("ZIDA_MAX_TEXT_CHARS", "1e4"),
        ("ZIDA_MAX_TEXTAREA_CHARS", "0"),
        ("ZIDA_MAX_EDITOR_CHARS", "-80000"),
        ("ZIDA_MAX_RECORD_BYTES", "256K"),
        ("ZIDA_MAX_PAGE_BYTES", "0"),
    ],
)
def test_bad_limit_values_are_refused_naming_the_variable(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        load_settings()


def test_a_page_must_hold_one_record_of_the_largest_size(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ZIDA_MAX_RECORD_BYTES", "4096")
    clean_env.setenv("ZIDA_MAX_PAGE_BYTES", "4095")
    with pytest.raises(ValueError, match=r"ZIDA_MAX_PAGE_BYTES .* ZIDA_MAX_RECORD_BYTES"):
        load_settings()
    clean_env.setenv("ZIDA_MAX_PAGE_BYTES", "4096")
    assert load_settings().max_page_bytes == 4096


# -- the database's reader pool and statement budget (issue 9) ----------------------------------------------------


def test_a_zero_statement_timeout_means_no_budget(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ZIDA_STATEMENT_TIMEOUT_SECONDS", "0")
    assert load_settings().statement_timeout_seconds == 0


@pytest.mark.anyio
async def test_sqlite_readers_and_the_statement_budget_reach_the_database(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'zida.db'}", sqlite_readers=3, statement_timeout=0.1)
    try:
        assert isinstance(db, SqliteDatabase)
        assert len(db._readers) == 3
        # More endless reads than readers: each stops at its own budget.
        endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        results = await asyncio.gather(*(db.fetchval(endless) for _ in range(4)), return_exceptions=True)
        assert all(isinstance(r, TooExpensive) and "0.1 s" in str(r) for r in results), results
    finally:
        await db.close()
    with pytest.raises(ValueError, match="at least one reader"):
        await open_database(f"sqlite:///{tmp_path / 'zida.db'}", sqlite_readers=0)


@pytest.mark.anyio
async def test_the_statement_budget_reaches_postgresql() -> None:
    url = os.environ.get("ZIDA_TEST_DATABASE", "sqlite")
    if not is_postgres(url):
        pytest.skip("needs ZIDA_TEST_DATABASE=postgresql://…")
    db = await open_database(url, statement_timeout=0.25)
    try:
        assert await db.fetchval("SHOW statement_timeout") == "250ms"
        with pytest.raises(TooExpensive, match=r"0\.25 s"):
            await db.fetchval("SELECT pg_sleep(2)")
        assert await db.fetchval("SELECT 1") == 1
    finally:
        await db.close()
    unbudgeted = await open_database(url)  # commands (migrate, load, reindex) keep the server's own default
    try:
        assert await unbudgeted.fetchval("SHOW statement_timeout") != "250ms"
    finally:
        await unbudgeted.close()


def test_token_failures_and_umask(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ZIDA_TOKEN_FAILURES_PER_MINUTE", "0")
    clean_env.setenv("ZIDA_UMASK", "027")
    settings = load_settings()
    assert (settings.token_failures_per_minute, settings.umask) == (0, 0o027)
    for name, bad in (("ZIDA_TOKEN_FAILURES_PER_MINUTE", "-1"), ("ZIDA_UMASK", "8"), ("ZIDA_UMASK", "1000")):
        clean_env.setenv(name, bad)
        with pytest.raises(ValueError, match=name):
            load_settings()
        clean_env.delenv(name)
