"""Request handling of the admin API: bearer token with the ``Zida.Admin`` scope, JSON in and out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from zida.app_state import Zida
from zida.core.access.tokens import require_scope
from zida.core.errors import InvalidArgument, Unauthenticated, ZidaError
from zida.core.principals import Grant
from zida.dialects.admin.errors import error_body
from zida.ids import is_decimal

__all__ = ["ADMIN_SCOPE", "MAX_INTEGER", "AdminCall", "admin_endpoint", "respond"]

ADMIN_SCOPE = "Zida.Admin"
MAX_INTEGER = 2**63 - 1

log = logging.getLogger("zida.admin")


def respond(body: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@dataclass
class AdminCall:
    """One authenticated admin request: the grant (its corp), path parameters and the JSON body."""

    zida: Zida
    grant: Grant
    path: dict[str, Any]
    body: dict[str, Any]
    request: Request

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A string from the body."""
        value = self.body.get(name)
        if value is None or value == "":
            if required:
                raise InvalidArgument(f"{name} is required", reason="argument.missing", param=name)
            return None
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a string", reason="argument.invalid", param=name)
        return value

    def flag(self, name: str) -> bool:
        """A boolean from the body (absent: false)."""
        value = self.body.get(name, False)
        if not isinstance(value, bool):
            raise InvalidArgument(f"{name} must be true or false", reason="argument.invalid", param=name)
        return value

    def number(self, name: str, value: Any, *, minimum: int = 0) -> int:
        """An integer (JSON number or numeric string) between ``minimum`` and 2^63-1 (ids are 64-bit)."""
        text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not is_decimal(text) or not minimum <= int(text) <= MAX_INTEGER:
            raise InvalidArgument(
                f"{name} must be a number between {minimum} and {MAX_INTEGER}, got {value!r}",
                reason="argument.invalid",
                param=name,
            )
        return int(text)


Handler = Callable[[AdminCall], Awaitable[Any]]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def admin_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate (``authorization: Bearer``, scope ``Zida.Admin``), parse JSON, render result or error."""

    async def route(request: Request) -> Response:
        zida: Zida = request.app.state.zida
        try:
            token = _bearer(request)
            if token is None:
                raise Unauthenticated("send authorization: Bearer <access token>", reason="auth.token_missing")
            grant = await zida.tokens.authenticate(token)
            require_scope(grant, ADMIN_SCOPE)
            body: dict[str, Any] = {}
            if request.method in ("POST", "PUT", "PATCH"):
                raw = await request.body()
                if raw.strip():
                    try:
                        parsed = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        raise InvalidArgument("the body is not valid JSON", reason="request.malformed_json") from None
                    if not isinstance(parsed, dict):
                        raise InvalidArgument("the body must be a JSON object", reason="request.malformed_json")
                    body = parsed
            result = await handler(AdminCall(zida, grant, dict(request.path_params), body, request))
        except ZidaError as exc:
            status, error = error_body(exc)
            return respond(error, status)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return respond({"error": {"code": "internal", "message": "internal error"}}, 500)
        return result if isinstance(result, Response) else respond(result)

    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route
