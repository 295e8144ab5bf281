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
from typing import TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_SQLITE_READERS",
    "SQLITE_SYNCHRONOUS_MODES",
    "Settings",
    "file_umask",
    "load_settings",
    "require_secret_key",
    "secret_key_for",
    "sqlite_path",
]

DEFAULT_DATABASE_URL = "sqlite:///var/zida.db"
# PRAGMA synchronous values an operator may choose (FULL: a commit survives a power cut; NORMAL: only a crash).
SQLITE_SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")
# SQLite reader connections per server process, each with its own thread (the reads that outgrow the event loop).
# 1: a worker runs no more slow reads at once than it did on its loop (measured: 2 per worker on 2 cores with 2
# workers made broad searches slower); about cores ÷ workers suits a machine with cores to spare.
DEFAULT_SQLITE_READERS = 1
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
    # WeDa: client-credential tokens (72 h, as WeDa), signed-in users' access and refresh tokens (2 h, 31 days).
    weda_token_ttl_seconds: int = 259200
    session_ttl_seconds: int = 7200
    refresh_ttl_seconds: int = 31 * 86400
    timezone: str = "Asia/Shanghai"
    db_pool_size: int = 8
    max_body_bytes: int = 16 * 1024 * 1024
    # The cost budget of one request (README "Limits"; defaults far above what a Yida integration sends).
    # Nesting of any JSON value: the body, and each JSON text inside a string parameter, counted separately.
    max_json_depth: int = 64
    # One search: conditions, values of one condition, values bound by its statement, characters of a
    # contains/like value (a LIKE pattern).
    max_search_conditions: int = 200
    max_search_values: int = 1_000
    max_bound_values: int = 5_000
    max_search_chars: int = 1_000
    # Characters of one stored text value: TextField/SerialNumberField, TextareaField, EditorField and
    # DigitalSignatureField; bytes of one record's stored values (all fields, as JSON).
    max_text_chars: int = 10_000
    max_textarea_chars: int = 50_000
    max_editor_chars: int = 80_000
    max_record_bytes: int = 256 * 1024
    # One page of records: pageSize × max_record_bytes may not exceed it (default: 100 records of the largest size).
    max_page_bytes: int = 100 * 256 * 1024
    # Lifetime of a cached entry (app actors, forms, directory): the staleness bound without a shared store.
    cache_seconds: float = 5.0
    # How often each worker checks the shared store for other workers' cache invalidations.
    cache_sync_seconds: float = 0.5
    # How long the end of a served page is remembered to continue the next page with an index seek.
    page_cursor_seconds: float = 600.0
    sqlite_synchronous: str = "FULL"
    # SQLite: reader connections (each with a thread) for the reads that take longer than a few milliseconds; each
    # worker process has its own. A slow read waits for a free one; fast reads never do (they run on the loop).
    sqlite_readers: int = DEFAULT_SQLITE_READERS
    # Longest one database statement of a request may run; then it is stopped and the request answered with
    # TooExpensive, nothing changed (SQLite: interrupted; PostgreSQL: statement_timeout). 0: no limit.
    statement_timeout_seconds: float = 10.0
    # Failed token requests per client id and minute before the next ones are refused unchecked (0: no limit).
    token_failures_per_minute: int = 10
    # Rate limits (zida.core.access.limits): calls per second a credential may make to each API (a credential's own
    # ``rateLimit`` overrides it; the platform's documented 20 for a standard-edition app), and to all APIs
    # together per corp. 0: no limit. Counted in the shared store: one budget across workers with Redis.
    rate_limit_qps: int = 20
    rate_limit_corp_qps: int = 0
    # The file-mode mask of what Zida creates (the SQLite database and its -wal/-shm files, var/, secret.key):
    # 0o077 keeps them the owner's alone.
    umask: int = 0o077
    # Events out (README "Events"): the delivery worker, HTTP callbacks and Stream mode.
    events_enabled: bool = True
    # ``/docs``: a page listing the OpenAPI document (``/openapi.json`` is always served).
    api_docs: bool = False
    # The web console (README "Console") at ``/console/``, ``/`` redirecting to it.
    console_enabled: bool = True
    events_poll_seconds: float = 0.1
    callback_timeout_seconds: float = 1.5
    callback_retry_seconds: tuple[float, ...] = (10.0, 30.0)
    events_max_backoff_seconds: float = 300.0
    events_retry_window_seconds: float = 86400.0
    events_retention_days: float = 7.0
    stream_ack_seconds: float = 30.0
    stream_ticket_seconds: float = 90.0
    stream_ping_seconds: float = 30.0
    # The address clients reach this server at (Stream mode's WebSocket endpoint); None: the request's own host.
    public_url: str | None = None
    # Files (README "Files"): where they are kept (None: ``files/`` beside the SQLite database, or ``var/files``;
    # ``s3://bucket/prefix``: an S3-compatible service at ``files_s3_endpoint`` with these keys), the largest file,
    # each corp's quota (0: none), the content types allowed (empty: any), how long an upload nobody attached is
    # kept, and what deleting a record does to its files (``keep``: kept for its history; ``remove``: gc removes
    # them once no live record references them).
    files_url: str | None = None
    files_s3_endpoint: str | None = None
    files_s3_region: str = "us-east-1"
    files_s3_access_key: str | None = None
    files_s3_secret_key: str | None = None
    files_max_bytes: int = 100 * 1024 * 1024
    files_quota_bytes: int = 10 * 1024 * 1024 * 1024
    files_allowed_types: tuple[str, ...] = ()
    files_unattached_hours: float = 24.0
    files_on_record_delete: str = "KEEP"
    # Metrics and logs (README "Metrics and logs", zida.observability): ``/metrics`` on or off; the bearer token a
    # scrape must send (None: loopback clients only); prometheus_client's multi-process directory (its own variable
    # PROMETHEUS_MULTIPROC_DIR, which ``zida serve --workers N`` sets to a fresh directory); the log line format
    # (json or text), the level, and the one line per request.
    metrics: bool = True
    metrics_token: str | None = None
    metrics_dir: str | None = None
    log_format: str = "json"
    log_level: str = "info"
    access_log: bool = True
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


def _seconds_env(name: str, default: float, *, positive: bool = False, unit: str = "seconds") -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of {unit}, not {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise ValueError(f"{name} must be a number of {unit} {bound}, not {raw!r}")
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


# The deepest JSON a Yida request legitimately holds is 5 levels (a sub-table row's attachment list in formDataJson).
_MIN_JSON_DEPTH = 8


class _Limits(TypedDict):
    """The request budget's fields of ``Settings``."""

    max_json_depth: int
    max_search_conditions: int
    max_search_values: int
    max_bound_values: int
    max_search_chars: int
    max_text_chars: int
    max_textarea_chars: int
    max_editor_chars: int
    max_record_bytes: int
    max_page_bytes: int


def _limits_env(defaults: Settings) -> _Limits:
    """The request budget's settings (``ZIDA_MAX_*`` beyond the body size); a page must hold one largest record."""
    limits: _Limits = {
        "max_json_depth": _int_env("ZIDA_MAX_JSON_DEPTH", defaults.max_json_depth, minimum=_MIN_JSON_DEPTH),
        "max_search_conditions": _int_env("ZIDA_MAX_SEARCH_CONDITIONS", defaults.max_search_conditions, minimum=1),
        "max_search_values": _int_env("ZIDA_MAX_SEARCH_VALUES", defaults.max_search_values, minimum=1),
        "max_bound_values": _int_env("ZIDA_MAX_BOUND_VALUES", defaults.max_bound_values, minimum=1),
        "max_search_chars": _int_env("ZIDA_MAX_SEARCH_CHARS", defaults.max_search_chars, minimum=1),
        "max_text_chars": _int_env("ZIDA_MAX_TEXT_CHARS", defaults.max_text_chars, minimum=1),
        "max_textarea_chars": _int_env("ZIDA_MAX_TEXTAREA_CHARS", defaults.max_textarea_chars, minimum=1),
        "max_editor_chars": _int_env("ZIDA_MAX_EDITOR_CHARS", defaults.max_editor_chars, minimum=1),
        "max_record_bytes": _int_env("ZIDA_MAX_RECORD_BYTES", defaults.max_record_bytes, minimum=1),
        "max_page_bytes": _int_env("ZIDA_MAX_PAGE_BYTES", defaults.max_page_bytes, minimum=1),
    }
    if limits["max_page_bytes"] < limits["max_record_bytes"]:
        raise ValueError(
            f"ZIDA_MAX_PAGE_BYTES ({limits['max_page_bytes']}) must be at least ZIDA_MAX_RECORD_BYTES"
            f" ({limits['max_record_bytes']}): a page holds at least one record"
        )
    return limits


def check_database_url(url: str) -> str:
    """The URL when Zida can open it (``sqlite:///path``, ``postgresql://…``/``postgres://…``), else a ValueError
    saying so: before anything is created (an unsupported one was read as an SQLite file's path)."""
    scheme = url.split(":", 1)[0].split("+", 1)[0] if ":" in url else ""
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"unsupported database URL {url[:200]!r}: use sqlite:///path or postgresql://…")
    return url


def load_settings(database_url: str | None = None) -> Settings:
    """Build settings from the environment; ``database_url`` overrides ``ZIDA_DATABASE_URL``."""
    url = check_database_url(database_url or _env("ZIDA_DATABASE_URL") or DEFAULT_DATABASE_URL)
    defaults = Settings()
    return Settings(
        database_url=url,
        secret_key=secret_key_for(url),
        redis_url=_redis_url_env("ZIDA_REDIS_URL"),
        redis_prefix=_env("ZIDA_REDIS_PREFIX") or defaults.redis_prefix,
        token_ttl_seconds=_int_env("ZIDA_TOKEN_TTL_SECONDS", defaults.token_ttl_seconds, minimum=1),
        weda_token_ttl_seconds=_int_env("ZIDA_WEDA_TOKEN_TTL_SECONDS", defaults.weda_token_ttl_seconds, minimum=1),
        session_ttl_seconds=_int_env("ZIDA_SESSION_TTL_SECONDS", defaults.session_ttl_seconds, minimum=1),
        refresh_ttl_seconds=_int_env("ZIDA_REFRESH_TTL_SECONDS", defaults.refresh_ttl_seconds, minimum=1),
        timezone=_timezone_env("ZIDA_TIMEZONE", defaults.timezone),
        db_pool_size=_int_env("ZIDA_DB_POOL_SIZE", defaults.db_pool_size, minimum=1),
        max_body_bytes=_int_env("ZIDA_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1),
        **_limits_env(defaults),
        cache_seconds=_seconds_env("ZIDA_CACHE_SECONDS", defaults.cache_seconds),
        cache_sync_seconds=_seconds_env("ZIDA_CACHE_SYNC_SECONDS", defaults.cache_sync_seconds, positive=True),
        page_cursor_seconds=_seconds_env("ZIDA_PAGE_CURSOR_SECONDS", defaults.page_cursor_seconds),
        sqlite_synchronous=_choice_env(
            "ZIDA_SQLITE_SYNCHRONOUS", defaults.sqlite_synchronous, SQLITE_SYNCHRONOUS_MODES
        ),
        sqlite_readers=_int_env("ZIDA_SQLITE_READERS", defaults.sqlite_readers, minimum=1),
        statement_timeout_seconds=_seconds_env("ZIDA_STATEMENT_TIMEOUT_SECONDS", defaults.statement_timeout_seconds),
        token_failures_per_minute=_int_env(
            "ZIDA_TOKEN_FAILURES_PER_MINUTE", defaults.token_failures_per_minute, minimum=0
        ),
        rate_limit_qps=_int_env("ZIDA_RATE_LIMIT_QPS", defaults.rate_limit_qps, minimum=0),
        rate_limit_corp_qps=_int_env("ZIDA_RATE_LIMIT_CORP_QPS", defaults.rate_limit_corp_qps, minimum=0),
        umask=file_umask(),
        events_enabled=_switch_env("ZIDA_EVENTS", defaults.events_enabled),
        api_docs=_switch_env("ZIDA_API_DOCS", defaults.api_docs),
        metrics=_switch_env("ZIDA_METRICS", defaults.metrics),
        metrics_token=_env("ZIDA_METRICS_TOKEN"),
        metrics_dir=_env("PROMETHEUS_MULTIPROC_DIR"),
        log_format=_choice_env("ZIDA_LOG_FORMAT", defaults.log_format.upper(), ("JSON", "TEXT")).lower(),
        log_level=_choice_env(
            "ZIDA_LOG_LEVEL", defaults.log_level.upper(), ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        ).lower(),
        access_log=_switch_env("ZIDA_ACCESS_LOG", defaults.access_log),
        console_enabled=_switch_env("ZIDA_CONSOLE", defaults.console_enabled),
        events_poll_seconds=_seconds_env("ZIDA_EVENTS_POLL_SECONDS", defaults.events_poll_seconds, positive=True),
        callback_timeout_seconds=_seconds_env(
            "ZIDA_CALLBACK_TIMEOUT_SECONDS", defaults.callback_timeout_seconds, positive=True
        ),
        callback_retry_seconds=_seconds_list_env("ZIDA_CALLBACK_RETRY_SECONDS", defaults.callback_retry_seconds),
        events_max_backoff_seconds=_seconds_env(
            "ZIDA_EVENTS_MAX_BACKOFF_SECONDS", defaults.events_max_backoff_seconds, positive=True
        ),
        events_retry_window_seconds=_seconds_env(
            "ZIDA_EVENTS_RETRY_WINDOW_SECONDS", defaults.events_retry_window_seconds, positive=True
        ),
        events_retention_days=_seconds_env(
            "ZIDA_EVENTS_RETENTION_DAYS", defaults.events_retention_days, positive=True, unit="days"
        ),
        stream_ack_seconds=_seconds_env("ZIDA_STREAM_ACK_SECONDS", defaults.stream_ack_seconds, positive=True),
        stream_ticket_seconds=_seconds_env("ZIDA_STREAM_TICKET_SECONDS", defaults.stream_ticket_seconds, positive=True),
        stream_ping_seconds=_seconds_env("ZIDA_STREAM_PING_SECONDS", defaults.stream_ping_seconds, positive=True),
        public_url=_public_url_env("ZIDA_PUBLIC_URL"),
        files_url=_files_url_env("ZIDA_FILES_URL"),
        files_s3_endpoint=_env("ZIDA_FILES_S3_ENDPOINT"),
        files_s3_region=_env("ZIDA_FILES_S3_REGION") or defaults.files_s3_region,
        files_s3_access_key=_env("ZIDA_FILES_S3_ACCESS_KEY"),
        files_s3_secret_key=_env("ZIDA_FILES_S3_SECRET_KEY"),
        files_max_bytes=_int_env("ZIDA_FILES_MAX_BYTES", defaults.files_max_bytes, minimum=1),
        files_quota_bytes=_int_env("ZIDA_FILES_QUOTA_BYTES", defaults.files_quota_bytes, minimum=0),
        files_allowed_types=tuple(
            t.strip().lower() for t in (_env("ZIDA_FILES_ALLOWED_TYPES") or "").split(",") if t.strip()
        ),
        files_unattached_hours=_seconds_env(
            "ZIDA_FILES_UNATTACHED_HOURS", defaults.files_unattached_hours, positive=True, unit="hours"
        ),
        files_on_record_delete=_choice_env(
            "ZIDA_FILES_ON_RECORD_DELETE", defaults.files_on_record_delete, ("KEEP", "REMOVE")
        ),
    )


def _files_url_env(name: str) -> str | None:
    url = _env(name)
    if url is not None and not url.startswith(("s3://", "file://")):
        raise ValueError(f"{name} must be an s3://bucket/prefix or file:///directory URL, not {url!r}")
    if url is not None and url.startswith("s3://") and not url[5:].split("/", 1)[0]:
        raise ValueError(f"{name} must name a bucket: s3://bucket/prefix, not {url!r}")
    return url


def _switch_env(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in ("on", "true", "1", "yes"):
        return True
    if raw.lower() in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"{name} must be on or off, not {raw!r}")


def _seconds_list_env(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = _env(name)
    if raw is None:
        return default
    out = []
    for part in raw.split(","):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{name} must be seconds separated by commas (such as 10,30), not {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must hold numbers of seconds greater than 0, not {raw!r}")
        out.append(value)
    return tuple(out)


def _public_url_env(name: str) -> str | None:
    url = _env(name)
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError(f"{name} must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/") if url else None


def file_umask() -> int:
    """``ZIDA_UMASK`` (octal, e.g. ``077``; default 077): the mask every file Zida creates is made with."""
    raw = _env("ZIDA_UMASK")
    if raw is None:
        return Settings.umask
    try:
        value = int(raw, 8)
    except ValueError:
        raise ValueError(f"ZIDA_UMASK must be an octal mask such as 077, not {raw!r}") from None
    if not 0 <= value <= 0o777:
        raise ValueError(f"ZIDA_UMASK must be between 000 and 777, not {raw!r}")
    return value
