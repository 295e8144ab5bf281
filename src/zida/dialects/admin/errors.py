"""The one table mapping core errors to the admin API's HTTP statuses; the code is the core reason itself."""

from __future__ import annotations

from typing import Any

from zida.core.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unsupported,
    ZidaError,
)

__all__ = ["STATUS", "error_body"]

STATUS: dict[type[ZidaError], int] = {
    InvalidArgument: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    Unsupported: 422,
}


def error_body(exc: ZidaError) -> tuple[int, dict[str, Any]]:
    """(HTTP status, ``{"error": {"code": <reason>, "message": …}}``) for a core error."""
    status = next((STATUS[k] for k in type(exc).__mro__ if k in STATUS), 500)
    return status, {"error": {"code": exc.reason, "message": exc.message}}
