"""One settings object, read once from the environment (prefix ``ZIDA_``) by :func:`load_settings`.

Every setting is read here and nowhere else: a module that needs one receives it from ``Settings`` (objects
created at import, such as module-level caches, are configured at startup). A variable that is set but empty
counts as unset; a value that cannot be used (not a number, negative, an unknown choice) is refused at startup
with a ``ValueError`` naming the variable.
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "SQLITE_SYNCHRONOUS_MODES",
    "Settings",
    "load_settings",
    "require_secret_key",
    "secret_key_for",
    "sqlite_path",
]

DEFAULT_DATABASE_URL = "sqlite:///var/zida.db"
# PRAGMA synchronous values an operator may choose (FULL: a commit survives a power cut; NORMAL: only a crash).
SQLITE_SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class Settings:
    """Runtime configuration of one Zida process (every field has the default ``load_settings`` uses)."""

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    # Shared store for several workers or hosts (cache invalidation, counters); None: in-process memory store.
    redis_url: str | None = None
    # Root of every Redis key, so several installations can share one Redis.
    redis_prefix: str = "zida"
    token_ttl_seconds: int = 7200
    timezone: str = "Asia/Shanghai"
    db_pool_size: int = 8
    max_body_bytes: int = 16 * 1024 * 1024
    # Lifetime of a cached entry (app actors, forms, directory): the staleness bound without a shared store.
    cache_seconds: float = 5.0
    # How often each worker checks the shared store for other workers' cache invalidations.
    cache_sync_seconds: float = 0.5
    # How long the end of a served page is remembered to continue the next page with an index seek.
    page_cursor_seconds: float = 600.0
    sqlite_synchronous: str = "FULL"
    extra: dict[str, str] = field(default_factory=dict)


def secret_key_for(database_url: str) -> str:
    """Return ``ZIDA_SECRET_KEY`` or, for a local SQLite file, a key kept in a file beside it.

    The server key encrypts secrets the API must give back (an app's systemToken, a corp's taskApiCode)
    and derives access tokens. PostgreSQL deployments must set ZIDA_SECRET_KEY explicitly; an embedded
    SQLite database gets a generated key in ``<db dir>/secret.key`` (mode 0600) so that ``make run`` works
    with no configuration.
    """
    key = os.environ.get("ZIDA_SECRET_KEY", "").strip()
    if key:
        return key
    if database_url.startswith("sqlite"):
        db_path = sqlite_path(database_url)
        key_file = (Path(db_path).parent if db_path != ":memory:" else Path("var")) / "secret.key"
    elif os.environ.get("ZIDA_SECRET_KEY_FILE"):
        key_file = Path(os.environ["ZIDA_SECRET_KEY_FILE"])
        if not key_file.exists():
            return ""
    else:
        return ""  # a shared database needs a key set on purpose: see require_secret_key()
    if key_file.exists():
        return key_file.read_text().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def require_secret_key(settings: Settings) -> str:
    """The server key, or a clear error when a PostgreSQL deployment has none configured."""
    if not settings.secret_key:
        raise ValueError(
            "ZIDA_SECRET_KEY is required with PostgreSQL (or ZIDA_SECRET_KEY_FILE naming a file that holds it):"
            " every worker and every zida command must use the same key"
        )
    return settings.secret_key


def sqlite_path(database_url: str) -> str:
    """The file path of a ``sqlite:///path`` URL (``:memory:`` stays as is)."""
    rest = database_url.split(":", 1)[1]
    rest = rest[3:] if rest.startswith("///") else rest.lstrip("/")
    return rest.split("?", 1)[0] or ":memory:"


def _env(name: str) -> str | None:
    """The variable's value with surrounding blanks removed; None when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or None


def _int_env(name: str, default: int, *, minimum: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def _seconds_env(name: str, default: float, *, positive: bool = False) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise ValueError(f"{name} must be a number of seconds {bound}, not {raw!r}")
    return value


def _choice_env(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _env(name)
    if raw is None:
        return default
    if raw.upper() not in choices:
        raise ValueError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, not {raw!r}")
    return raw.upper()


def _timezone_env(name: str, default: str) -> str:
    zone = _env(name) or default
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name} must be an IANA time zone such as Asia/Shanghai, not {zone!r}") from None
    return zone


def _redis_url_env(name: str) -> str | None:
    url = _env(name)
    if url is not None and not url.startswith(_REDIS_SCHEMES):
        raise ValueError(f"{name} must be a redis://, rediss:// or unix:// URL, not {url.split('@')[-1]!r}")
    return url


def load_settings(database_url: str | None = None) -> Settings:
    """Build settings from the environment; ``database_url`` overrides ``ZIDA_DATABASE_URL``."""
    url = database_url or _env("ZIDA_DATABASE_URL") or DEFAULT_DATABASE_URL
    defaults = Settings()
    return Settings(
        database_url=url,
        secret_key=secret_key_for(url),
        redis_url=_redis_url_env("ZIDA_REDIS_URL"),
        redis_prefix=_env("ZIDA_REDIS_PREFIX") or defaults.redis_prefix,
        token_ttl_seconds=_int_env("ZIDA_TOKEN_TTL_SECONDS", defaults.token_ttl_seconds, minimum=1),
        timezone=_timezone_env("ZIDA_TIMEZONE", defaults.timezone),
        db_pool_size=_int_env("ZIDA_DB_POOL_SIZE", defaults.db_pool_size, minimum=1),
        max_body_bytes=_int_env("ZIDA_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1),
        cache_seconds=_seconds_env("ZIDA_CACHE_SECONDS", defaults.cache_seconds),
        cache_sync_seconds=_seconds_env("ZIDA_CACHE_SYNC_SECONDS", defaults.cache_sync_seconds, positive=True),
        page_cursor_seconds=_seconds_env("ZIDA_PAGE_CURSOR_SECONDS", defaults.page_cursor_seconds),
        sqlite_synchronous=_choice_env(
            "ZIDA_SQLITE_SYNCHRONOUS", defaults.sqlite_synchronous, SQLITE_SYNCHRONOUS_MODES
        ),
    )
