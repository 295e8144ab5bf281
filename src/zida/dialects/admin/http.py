"""The admin API's endpoint wrapper (over ``zida.dialects.http``): a bearer token with the ``admin`` scope (granted
as ``Zida.Admin`` or ``admin``), JSON in and out, errors as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from zida.app_state import Zida
from zida.core.errors import InvalidArgument, PermissionDenied, Unauthenticated, ZidaError
from zida.core.principals import Principal, Scope
from zida.core.records.values import brief
from zida.dialects.admin.errors import error_body
from zida.dialects.admin.scopes import ADMIN_PERMISSION
from zida.dialects.http import DialectMount, check_url, new_request_id, read_json_object, retry_after, zida_of
from zida.ids import is_decimal

__all__ = ["ERRORS", "MAX_INTEGER", "AdminCall", "admin_endpoint", "mount", "respond"]

MAX_INTEGER = 2**63 - 1

log = logging.getLogger("zida.admin")


def respond(body: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class _Errors:
    """The admin API's answers to errors (``zida.dialects.http.ErrorFormat``)."""

    def error(self, exc: ZidaError, request_id: str) -> Response:
        status, body = error_body(exc)
        response = respond(body, status)
        response.headers["x-request-id"] = request_id
        return retry_after(response, exc)

    def unhandled(self, request_id: str) -> Response:
        response = respond({"error": {"code": "internal", "message": "internal error"}}, 500)
        response.headers["x-request-id"] = request_id
        return response


ERRORS = _Errors()


@dataclass
class AdminCall:
    """One authenticated admin request: the principal (its corp), path parameters and the JSON body."""

    zida: Zida
    principal: Principal
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
                f"{name} must be a number between {minimum} and {MAX_INTEGER}, got {brief(value)}",
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
    """Authenticate (``authorization: Bearer``, scope ``admin``), parse JSON, render result or error."""

    async def route(request: Request) -> Response:
        request_id = new_request_id()
        zida = zida_of(request)
        try:
            token = _bearer(request)
            if token is None:
                raise Unauthenticated("send authorization: Bearer <access token>", reason="auth.token_missing")
            principal = await zida.tokens.authenticate(token)
            if not principal.allows(Scope.ADMIN):
                raise PermissionDenied(
                    f"the app credential {principal.client_id} lacks the scope {ADMIN_PERMISSION}",
                    reason="auth.scope_missing",
                    required_scopes=[ADMIN_PERMISSION],
                )
            await zida.rate_limit(request, principal)
            check_url(request)
            body: dict[str, Any] = {}
            if request.method in ("POST", "PUT", "PATCH"):
                body = await read_json_object(request, zida.settings.max_body_bytes)
            result = await handler(AdminCall(zida, principal, dict(request.path_params), body, request))
        except ZidaError as exc:
            return ERRORS.error(exc, request_id)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id)
            return ERRORS.unhandled(request_id)
        response = result if isinstance(result, Response) else respond(result)
        response.headers["x-request-id"] = request_id
        return response

    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route


def mount(routes: list[Any]) -> DialectMount:
    """The admin API's mount: ``/admin/``, ``/healthz`` and the API's description (``/openapi.json``, ``/docs``)."""
    return DialectMount("admin", ("/admin/", "/healthz", "/openapi.json", "/docs"), routes, ERRORS)
