"""Every ``ZIDA_*`` variable is read once into ``Settings``; a value Zida cannot use is refused, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from zida.db import open_database
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
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ZIDA_* variable but a known secret key."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZIDA_SECRET_KEY", "settings-test-key")
    return monkeypatch


def test_defaults() -> None:
    settings = load_settings()
    assert settings == Settings(database_url=DEFAULT_DATABASE_URL, secret_key="settings-test-key")
    assert settings.redis_url is None
    assert settings.redis_prefix == "zida"
    assert settings.token_ttl_seconds == 7200
    assert settings.timezone == "Asia/Shanghai"
    assert settings.db_pool_size == 8
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert settings.cache_seconds == 5
    assert settings.cache_sync_seconds == 0.5
    assert settings.page_cursor_seconds == 600
    assert settings.sqlite_synchronous == "FULL"


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
