"""Logging of a Zida server: one line per request (logger ``zida.access``) and everything else, as JSON or text.

``ZIDA_LOG_FORMAT`` (``json``, the default: one JSON object per line, for a log pipeline; ``text``: for a person at
a terminal) and ``ZIDA_LOG_LEVEL`` (``info``; ``zida serve --log-level`` overrides it) configure the ``zida``,
``uvicorn`` and root loggers of every worker (``logging_config``, handed to uvicorn). The access line is logged at
INFO (so a level of ``warning`` drops it; ``ZIDA_ACCESS_LOG=off`` too) with the fields ``request_id`` (the one the
client got), ``dialect``, ``corp``, ``credential`` (client id / app key), ``method``, ``route`` (the path template:
no ids, no query string), ``status`` and ``duration_ms``.

No secret reaches a line: the access line is built from those fields only (never the query string, a header or a
body), uvicorn's own access log (which prints query strings, where oapi sends ``access_token``) stays off, and every
other message and traceback is passed through ``redact``, which masks the value after any secret-like name
(``access_token=``, ``"appSecret": "…"``, ``Bearer …``) as a last line of defence.

``log_access`` writes the access line. When the record would reach exactly one handler, a plain ``StreamHandler``
with the ``JsonFormatter`` (what ``logging_config`` sets up for ``json``) and no filters, it writes the line that
formatter would have made straight to that handler's stream (one ``orjson.dumps`` and one write, under the
handler's lock): a ``LogRecord`` and its trip through the logging machinery cost more than the line itself. Levels
(of the loggers, the handler, ``logging.disable``) are honoured as logging would; any other set-up (text lines,
another handler, a filter, a test's capture) gets the record through ``logging`` as before.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson

from zida.settings import Settings

__all__ = ["ACCESS_LOG", "JsonFormatter", "TextFormatter", "log_access", "logging_config", "redact"]

ACCESS_LOG = logging.getLogger("zida.access")

# A secret-like name, then ``=``/``:`` (optionally quoted), then the value up to a delimiter.
_SECRET_NAMES = "|".join(
    (
        r"access_?token|refresh_?token|app_?secret|client_?secret|corp_?secret|secret_?key|system_?token",
        r"task_?api_?code|password|passwd|authorization|x-acs-dingtalk-access-token|secret|token",
    )
)
_SECRET_VALUE = re.compile(
    rf"((?:{_SECRET_NAMES})[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+)?[^\s\"'&,;}}\])]+", re.IGNORECASE
)
_BEARER = re.compile(r"(\bbearer\s+)[^\s\"'&,;]+", re.IGNORECASE)
_MASK = "***"


def redact(text: str) -> str:
    """``text`` with the value after each secret-like name, and any bearer token, masked."""
    if not text:
        return text
    return _BEARER.sub(rf"\g<1>{_MASK}", _SECRET_VALUE.sub(rf"\g<1>{_MASK}", text))


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def _now() -> str:
    """The time now as ``_timestamp`` writes a record's (the text of the second is made once a second)."""
    created = time.time()
    second = int(created)
    if second != _second[0]:
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))]
    return f"{_second[1]}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``msg`` and, for a request, its fields; a
    traceback under ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        access = getattr(record, "access", None)
        line: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname.lower(), "logger": record.name}
        if access is not None:
            line["msg"] = "request"
            line.update(access)
        else:
            line["msg"] = redact(record.getMessage())
            if record.exc_info:
                line["exc"] = redact(self.formatException(record.exc_info))
            elif record.exc_text:
                line["exc"] = redact(record.exc_text)
        return orjson.dumps(line, default=str).decode()


def _json_stream_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler a record of ``logger`` reaches, if it is a plain stream handler with the JSON formatter and
    no filters (None otherwise: the record must go through ``logging``)."""
    if logger.filters:
        return None
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        current = current.parent if current.propagate else None
    if (
        type(found) is logging.StreamHandler
        and type(found.formatter) is JsonFormatter
        and not found.filters
        and found.stream is not None
    ):
        return found
    return None


def log_access(fields: dict[str, Any]) -> None:
    """Log the access line of one request (``fields``: the module docstring's) at INFO on ``zida.access``."""
    if not ACCESS_LOG.isEnabledFor(logging.INFO):
        return
    handler = _json_stream_handler(ACCESS_LOG)
    if handler is None:
        ACCESS_LOG.info("request", extra={"access": fields})
        return
    if handler.level > logging.INFO:
        return
    line = {"time": _now(), "level": "info", "logger": ACCESS_LOG.name, "msg": "request", **fields}
    text = orjson.dumps(line, default=str).decode() + handler.terminator
    try:
        with handler.lock:  # type: ignore[union-attr]  # made by every Handler's __init__
            handler.stream.write(text)
            handler.stream.flush()
    except Exception:
        ACCESS_LOG.info("request", extra={"access": fields})  # the handler reports what went wrong, as it would


class TextFormatter(logging.Formatter):
    """``time level logger message`` on one line (a request's fields as ``name=value``), tracebacks below."""

    def format(self, record: logging.LogRecord) -> str:
        access = getattr(record, "access", None)
        head = f"{_timestamp(record)} {record.levelname:<7} {record.name}"
        if access is not None:
            return head + " request " + " ".join(f"{k}={'-' if v is None else v}" for k, v in access.items())
        text = f"{head} {redact(record.getMessage())}"
        if record.exc_info:
            text += "\n" + redact(self.formatException(record.exc_info))
        return text


def logging_config(settings: Settings, level: str | None = None) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a server process (``level``: overrides ``ZIDA_LOG_LEVEL``)."""
    level_name = (level or settings.log_level).upper()
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    handler = {"class": "logging.StreamHandler", "formatter": "zida", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"zida": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "zida": {"handlers": ["stderr"], "level": level_name, "propagate": False},
            "zida.access": {"level": level_name if settings.access_log else "CRITICAL"},
            "uvicorn": {"handlers": ["stderr"], "level": level_name, "propagate": False},
            # Its lines carry the query string (oapi's access_token): never on.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
