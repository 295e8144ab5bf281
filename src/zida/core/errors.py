"""Domain exceptions with stable reason codes; each dialect maps them to its wire format in one table.

A message names a request parameter by its semantic name through ``{param}`` (``"{param} is required"`` with
``param="record"``); each dialect renders it with its own wire name through
``ZidaError.render``, and ``message`` is the neutral text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "Conflict",
    "InvalidArgument",
    "Misconfigured",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "TooExpensive",
    "Unauthenticated",
    "Unavailable",
    "Unsupported",
    "ZidaError",
]


MAX_MESSAGE_CHARS = 1000  # the longest error message any dialect sends


class ZidaError(Exception):
    """Base of every error the core raises on purpose; anything else reaching a dialect is a bug."""

    default_reason = "error"

    def __init__(self, message: str, *, reason: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.template = message
        self.reason = reason or self.default_reason
        self.details = details

    @property
    def param(self) -> str | None:
        """The semantic name of the request parameter the error is about, if any."""
        value = self.details.get("param")
        return value if isinstance(value, str) else None

    def render(self, names: Mapping[str, str]) -> str:
        """The message with ``{param}`` written as ``names`` calls the parameter (its own name if unmapped); past
        ``MAX_MESSAGE_CHARS`` it is cut (a client's value quoted whole somewhere must not come back megabytes long)."""
        param = self.param
        text = self.template
        if param is not None and "{param}" in text:
            text = text.replace("{param}", names.get(param, param))
        if len(text) > MAX_MESSAGE_CHARS:
            text = f"{text[:MAX_MESSAGE_CHARS]}… ({len(text)} characters)"
        return text

    @property
    def message(self) -> str:
        """The neutral message (parameters by their semantic names)."""
        return self.render({})

    def within(self, label: str) -> ZidaError:
        """The same error, its message prefixed with the item it concerns (``[3]: …`` in a batch)."""
        return type(self)(f"{label}: {self.template}", reason=self.reason, **self.details)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, {self.message!r})"


class NotFound(ZidaError):
    """The thing does not exist, or exists where the caller may not see it (other corp, other app)."""

    default_reason = "not_found"


class PermissionDenied(ZidaError):
    """The caller is known but may not do this."""

    default_reason = "permission.denied"


class Unauthenticated(ZidaError):
    """Credentials or tokens are missing, wrong or expired."""

    default_reason = "auth.invalid"


class InvalidArgument(ZidaError):
    """The request is malformed or a value does not fit the schema; nothing was changed."""

    default_reason = "argument.invalid"


class Conflict(ZidaError):
    """The request contradicts the current state (duplicate, concurrent change, wrong status)."""

    default_reason = "conflict"


class RateLimited(ZidaError):
    """Too many calls in a window."""

    default_reason = "rate_limited"


class TooExpensive(ZidaError):
    """The request would cost more than one request may (a statement past its time budget, too many bound values):
    nothing was changed; a narrower request may succeed."""

    default_reason = "request.too_expensive"


class Unsupported(ZidaError):
    """A documented call or option Zida does not implement; says so instead of pretending."""

    default_reason = "unsupported"


class Unavailable(ZidaError):
    """A service the request needs (the database) cannot be reached right now; the same request may succeed soon.

    A write whose connection was lost while it committed may or may not have been made: a client retries
    idempotent calls, and reads a write back before repeating it.
    """

    default_reason = "service.unavailable"


class Misconfigured(ZidaError):
    """The server's configuration contradicts its database (another server key, a schema not migrated)."""

    default_reason = "server.misconfigured"
