"""One settings object, read from the environment (prefix ``ZIDA_``)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "load_settings", "require_secret_key", "secret_key_for"]

DEFAULT_DATABASE_URL = "sqlite:///var/zida.db"


@dataclass(frozen=True)
class Settings:
    """Runtime configuration of one Zida process."""

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    redis_url: str | None = None
    token_ttl_seconds: int = 7200
    timezone: str = "Asia/Shanghai"
    db_pool_size: int = 8
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


def load_settings(database_url: str | None = None) -> Settings:
    """Build settings from the environment; ``database_url`` overrides ``ZIDA_DATABASE_URL``."""
    url = database_url or os.environ.get("ZIDA_DATABASE_URL") or DEFAULT_DATABASE_URL
    return Settings(
        database_url=url,
        secret_key=secret_key_for(url),
        redis_url=os.environ.get("ZIDA_REDIS_URL") or None,
        token_ttl_seconds=int(os.environ.get("ZIDA_TOKEN_TTL_SECONDS", "7200")),
        timezone=os.environ.get("ZIDA_TIMEZONE", "Asia/Shanghai"),
        db_pool_size=int(os.environ.get("ZIDA_DB_POOL_SIZE", "8")),
    )
