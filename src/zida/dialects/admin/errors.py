"""The one table mapping core errors to the admin API's HTTP statuses; the code is the core reason itself."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from zida.core.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    TooExpensive,
    Unauthenticated,
    Unavailable,
    Unsupported,
    ZidaError,
)
from zida.dialects.admin.names import PARAMS

__all__ = ["STATUS", "error_body", "parse_body"]

M = TypeVar("M", bound=BaseModel)

STATUS: dict[type[ZidaError], int] = {
    InvalidArgument: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    TooExpensive: 422,
    Unsupported: 422,
    Unavailable: 503,
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


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "I18nText", "OptionIn") or "[" in str(part) or "function-" in str(part):
            continue  # pydantic's markers of union branches and validators
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_body(model: type[M], body: dict[str, Any]) -> M:
    """A request body validated by ``model``; the first problem as ``InvalidArgument`` naming where it is."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = _location(tuple(problem["loc"]))
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        raise InvalidArgument(
            f"{where}: {message}" if where else message, reason="argument.invalid", param=where.split(".")[0] or None
        ) from None
