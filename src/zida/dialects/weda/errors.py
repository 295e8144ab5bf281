"""The one table per WeDa error format: core errors as WeDa's codes.

WeDa answers in four formats (README, "WeDa"): the gateway's ``{"code", "message", "requestId"}`` for a missing,
invalid or expired access token; the sign-in service's OAuth-style ``{"error", "error_description"}``; data models'
``{"code", "message", "requestId"}`` with HTTP 200; and the TencentCloud API 3.0 envelope
``{"Response": {"RequestId", "Error": {"Code", "Message"}}}`` (HTTP 200) of the workflow, query-template and
permission APIs. Codes come from WeDa's published tables; where none fits, the nearest one is used.
"""

from __future__ import annotations

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

__all__ = ["API_CODES", "AUTH_ERRORS", "MODEL_CODES", "PARAMS", "api_code", "auth_error", "model_code"]

# Semantic parameter names of core errors → WeDa's names.
PARAMS: dict[str, str] = {
    "user": "UserId",
    "form": "modelName",
    "model": "modelName",
    "client_id": "SecretId",
    "client_secret": "SecretKey",
    "record": "_id",
    "process_instance": "InstanceId",
    "task": "TaskId",
}

# Data models (``/v1/model``): codes of CloudBase's data-model API.
MODEL_CODES: dict[type[ZidaError], str] = {
    InvalidArgument: "INVALID_PARAMETER",
    NotFound: "RESOURCE_NOT_FOUND",
    PermissionDenied: "PERMISSION_DENIED",
    Unauthenticated: "INVALID_ACCESS_TOKEN",
    Conflict: "FAILED_OPERATION",
    RateLimited: "REQUEST_LIMIT_EXCEEDED",
    TooExpensive: "LIMIT_EXCEEDED",
    Unsupported: "UNSUPPORTED_OPERATION",
    Unavailable: "SERVICE_UNAVAILABLE",  # Zida's: CloudBase publishes no code for a backend out of reach
}
_MODEL_REASONS: dict[str, str] = {
    "argument.missing": "MISSING_PARAMETER",
    "model.not_found": "DATASOURCE_NOT_EXIST",
    "env.invalid": "INVALID_ENV",
    "route.not_found": "INVALID_ACTION",
    "request.method_not_allowed": "INVALID_REQUEST",
    "request.too_large": "EXCEED_REQUEST_SIZE_LIMIT",
    "request.malformed_json": "BAD_REQUEST",
    "db.busy": "SERVER_TIMEOUT",
}

# Workflow actions, query templates and the permission API: TencentCloud API 3.0 codes.
API_CODES: dict[type[ZidaError], str] = {
    InvalidArgument: "InvalidParameter",
    NotFound: "ResourceNotFound",
    PermissionDenied: "UnauthorizedOperation",
    Unauthenticated: "AuthFailure",
    Conflict: "FailedOperation",
    RateLimited: "RequestLimitExceeded",
    TooExpensive: "LimitExceeded",
    Unsupported: "UnsupportedOperation",
    Unavailable: "ServiceUnavailable",  # API 3.0's common error "the service is temporarily unavailable"
}
_API_REASONS: dict[str, str] = {
    "argument.missing": "MissingParameter",
    "env.invalid": "InvalidParameterValue.Env",
    "route.not_found": "InvalidAction",
    "action.not_found": "InvalidAction",
    "request.method_not_allowed": "UnsupportedProtocol",
    "request.too_large": "RequestSizeLimitExceeded",
    "db.busy": "InternalError.Timeout",
}

# The sign-in service: OAuth-style error names and HTTP statuses.
AUTH_ERRORS: dict[type[ZidaError], tuple[int, str]] = {
    InvalidArgument: (400, "invalid_argument"),
    NotFound: (404, "not_found"),
    PermissionDenied: (403, "permission_denied"),
    Unauthenticated: (401, "unauthenticated"),
    Conflict: (409, "already_exists"),
    RateLimited: (429, "resource_exhausted"),
    TooExpensive: (400, "invalid_argument"),
    Unsupported: (400, "unsupported_grant_type"),
    Unavailable: (503, "unavailable"),
}
_AUTH_REASONS: dict[str, tuple[int, str]] = {
    "auth.bad_password": (400, "invalid_username_or_password"),
    "auth.bad_credentials": (401, "invalid_client"),
    "auth.bad_refresh_token": (400, "invalid_grant"),
    "auth.credentials_missing": (400, "invalid_request"),
    "auth.token_missing": (401, "unauthenticated"),
    "auth.token_invalid": (401, "unauthenticated"),
    "auth.token_expired": (401, "unauthenticated"),
    "env.invalid": (400, "invalid_argument"),
    "env.required": (400, "invalid_request"),
    "request.malformed_json": (400, "invalid_request"),
    "db.busy": (503, "unavailable"),
}


def _by_class(exc: ZidaError, table: dict[type[ZidaError], str], fallback: str) -> str:
    return next((table[k] for k in type(exc).__mro__ if k in table), fallback)


def model_code(exc: ZidaError) -> str:
    """The data-model API's code for a core error."""
    return _MODEL_REASONS.get(exc.reason) or _by_class(exc, MODEL_CODES, "SYS_ERR")


def api_code(exc: ZidaError) -> str:
    """The TencentCloud API 3.0 code for a core error."""
    return _API_REASONS.get(exc.reason) or _by_class(exc, API_CODES, "InternalError")


def auth_error(exc: ZidaError) -> tuple[int, str]:
    """(HTTP status, OAuth error name) of the sign-in service for a core error."""
    found = _AUTH_REASONS.get(exc.reason)
    if found is not None:
        return found
    return next((AUTH_ERRORS[k] for k in type(exc).__mro__ if k in AUTH_ERRORS), (500, "internal"))
