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
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson

from zida.settings import Settings

__all__ = ["ACCESS_LOG", "JsonFormatter", "TextFormatter", "logging_config", "redact"]

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
