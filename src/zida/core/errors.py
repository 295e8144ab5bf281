"""Domain exceptions with stable reason codes; each dialect maps them to its wire format in one table."""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "InvalidArgument",
    "Misconfigured",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "Unauthenticated",
    "Unsupported",
    "ZidaError",
]


class ZidaError(Exception):
    """Base of every error the core raises on purpose; anything else reaching a dialect is a bug."""

    default_reason = "error"

    def __init__(self, message: str, *, reason: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.details = details

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


class Unsupported(ZidaError):
    """A documented call or option Zida does not implement; says so instead of pretending."""

    default_reason = "unsupported"


class Misconfigured(ZidaError):
    """The server's configuration contradicts its database (another server key, a schema not migrated)."""

    default_reason = "server.misconfigured"
