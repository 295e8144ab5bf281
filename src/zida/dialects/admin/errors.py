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
from zida.dialects.admin.names import PARAMS

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


# Reasons whose status is not their class's.
REASON_STATUS: dict[str, int] = {
    "request.method_not_allowed": 405,
    "request.too_large": 413,
    "db.busy": 503,
}


def error_body(exc: ZidaError) -> tuple[int, dict[str, Any]]:
    """(HTTP status, ``{"error": {"code": <reason>, "message": …}}``) for a core error."""
    status = REASON_STATUS.get(exc.reason) or next((STATUS[k] for k in type(exc).__mro__ if k in STATUS), 500)
    return status, {"error": {"code": exc.reason, "message": exc.render(PARAMS)}}
