"""DingTalk's endpoint wrapper (over the shared request layer ``zida.dialects.http``) and error rendering."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from zida.app_state import Zida
from zida.core.errors import InvalidArgument, PermissionDenied, TooExpensive, ZidaError
from zida.core.principals import AppActor, Principal
from zida.core.records.values import brief
from zida.dialects.dingtalk.auth import app_principal, resolve_app_actor
from zida.dialects.dingtalk.errors import error_body
from zida.dialects.dingtalk.scopes import PERMISSIONS
from zida.dialects.http import (
    DialectMount,
    check_url,
    decode_json,
    new_request_id,
    query_values,
    read_json_object,
    retry_after,
    zida_of,
)

__all__ = ["ERRORS", "Call", "endpoint", "json_response", "mount", "render_error", "require_permission"]

log = logging.getLogger("zida.dingtalk")

TOKEN_HEADER = "x-acs-dingtalk-access-token"  # noqa: S105 (a header name)


class _JsonReply(Response):
    """A JSON response whose headers are written directly (Starlette's generic header setup is a tenth of a
    getFormDataById's own work): length, type and, when given, the request id."""

    media_type = "application/json;charset=utf-8"

    def __init__(self, content: bytes, status: int, request_id: str | None) -> None:
        self.status_code = status
        self.background = None
        self.body = content
        self.raw_headers = [(b"content-length", str(len(content)).encode()), (b"content-type", _JSON_TYPE)]
        if request_id is not None:
            self.raw_headers.append((b"x-acs-request-id", request_id.encode("latin-1")))


_JSON_TYPE = _JsonReply.media_type.encode()


def json_response(body: Any, status: int = 200, request_id: str | None = None) -> Response:
    """A compact UTF-8 JSON response as api.dingtalk.com sends it (with its ``x-acs-request-id`` when given)."""
    return _JsonReply(orjson.dumps(body), status, request_id)


def render_error(exc: ZidaError, request_id: str | None = None) -> Response:
    """DingTalk's error body ``{code, message, requestid}`` with the mapped status."""
    status, body = error_body(exc, request_id or new_request_id())
    return retry_after(json_response(body, status), exc)


class _Errors:
    """DingTalk's answers to errors (``zida.dialects.http.ErrorFormat``)."""

    def error(self, exc: ZidaError, request_id: str) -> Response:
        return render_error(exc, request_id)

    def unhandled(self, request_id: str) -> Response:
        return json_response({"code": "unknownError", "message": "未知错误", "requestid": request_id}, 500)


ERRORS = _Errors()


# Page numbers, sizes and versions beyond this are nonsense (and would overflow 64-bit SQL integers).
_MAX_INTEGER = 2**31 - 1
# An integer written as text: ASCII digits only (int() also reads "１２" and "١٢", and "1_0" as 10).
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,19}")

_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


@dataclass
class Call:
    """One request as the handlers see it: parameters from path, query and JSON body, and the caller."""

    request: Request
    zida: Zida
    body: dict[str, Any]
    principal: Principal | None = None
    path: Mapping[str, str] = field(default_factory=dict)

    _query: dict[str, str] | None = None

    @property
    def query(self) -> Mapping[str, str]:
        """The query string parameters (parsed once; a repeated name: its last value)."""
        if self._query is None:
            self._query = query_values(self.request)
        return self._query

    def raw(self, name: str, where: str = "any") -> Any:
        """A parameter from the path, the query or the body (``where``: path/query/body/any)."""
        if where == "body":  # the most frequent question first: each is asked on every request
            return self.body.get(name)
        if where == "query":
            return self.query.get(name)
        if where == "any":
            if name in self.path:
                return self.path[name]
            query = self.query
            return query[name] if name in query else self.body.get(name)
        if where == "path":
            return self.path.get(name)
        return None

    def text(
        self, name: str, where: str = "any", *, required: bool = False, max_chars: int | None = None
    ) -> str | None:
        """A string parameter; ``required`` turns absence into DingTalk's parameterIsEmpty error; longer than
        ``max_chars`` is ``argument.too_long``."""
        value = self.raw(name, where)
        if value is None or value == "":
            if required:
                raise InvalidArgument(f"{name}不能为空", reason="argument.missing", param=name)
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a string", reason="argument.invalid", param=name)
        if max_chars is not None and len(value) > max_chars:
            raise InvalidArgument(
                f"{name} may have at most {max_chars} characters, got {len(value)}",
                reason="argument.too_long",
                param=name,
            )
        return value

    def integer(
        self, name: str, default: int, where: str = "any", *, minimum: int = 1, maximum: int | None = None
    ) -> int:
        """An integer parameter within bounds: a JSON integer (``2.0`` too, not ``1.5``) or ASCII digits in a string."""
        value = self.raw(name, where)
        if value is None or value == "":
            return default
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip(" \t"))
        ):
            number = int(value)
        if number is None:
            raise InvalidArgument(
                f"{name} must be an integer, got {brief(value)}", reason="argument.invalid", param=name
            )
        upper = _MAX_INTEGER if maximum is None else maximum
        if number < minimum or number > upper:
            raise InvalidArgument(
                f"{name} must be between {minimum} and {upper}, got {number}",
                reason="argument.invalid_page",
                param=name,
            )
        return number

    def flag(self, name: str, default: bool = False, where: str = "any") -> bool:
        """A boolean (JSON boolean, or ``true``/``True``/``y``… in a query string)."""
        value = self.raw(name, where)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidArgument(f"{name} must be a boolean, got {brief(value)}", reason="argument.invalid", param=name)

    def json(self, name: str, where: str = "any", *, required: bool = False, exact_integers: bool = False) -> Any:
        """A ``*Json`` parameter: JSON text inside a string (an already-decoded value is accepted too);
        ``exact_integers`` as for ``decode_json``."""
        value = self.raw(name, where)
        if value is None or value == "":
            if required:
                raise InvalidArgument(f"{name}不能为空", reason="argument.missing", param=name)
            return None
        if not isinstance(value, str):
            return value  # decoded with the body, within its depth
        return decode_json(value, name, param=name, exact_integers=exact_integers)

    def names(self, name: str, where: str = "any") -> list[str]:
        """A list of ids or names: comma-separated text, a JSON array of strings or its text; blanks dropped, an
        absent parameter is empty."""
        value = self.raw(name, where)
        if isinstance(value, str) and value.strip().startswith("["):
            value = decode_json(value.strip(), name, param=name)
        if value is None or value == "":
            return []
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise InvalidArgument(f"{name} must be a JSON array of strings", reason="argument.invalid", param=name)
            return [v.strip() for v in value if v.strip()]
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a comma-separated string", reason="argument.invalid", param=name)
        return [part.strip() for part in value.split(",") if part.strip()]

    def form_data(self, name: str, where: str = "any", *, required: bool = False) -> Any:
        """A form data parameter (``formDataJson``…): ``json``, with integers beyond 64 bits read exactly."""
        return self.json(name, where, required=required, exact_integers=True)

    def page_size(self, name: str, default: int, where: str, *, maximum: int) -> int:
        """A page size between 1 and ``maximum`` that also keeps the page within its budget: pageSize ×
        ``ZIDA_MAX_RECORD_BYTES`` at most ``ZIDA_MAX_PAGE_BYTES`` (``TooExpensive`` naming the largest allowed)."""
        size = self.integer(name, default, where, maximum=maximum)
        settings = self.zida.settings
        largest = max(1, settings.max_page_bytes // settings.max_record_bytes)
        if size > largest:
            raise TooExpensive(
                f"{name} {size} × {settings.max_record_bytes} bytes per record is more than one page may hold"
                f" ({settings.max_page_bytes} bytes): ask for at most {largest}",
                reason="request.page_too_large",
                param=name,
            )
        return size

    async def actor(self, *, app_type: str | None = None, app_pk: int | None = None, where: str = "any") -> AppActor:
        """Authenticate ``systemToken`` + ``userId`` against the app named by ``appType`` (or ``app_pk``)."""
        assert self.principal is not None
        return await resolve_app_actor(
            self.zida.db,
            self.zida.box,
            self.principal,
            app_type=app_type if app_type is not None else self.text("appType", where),
            app_pk=app_pk,
            system_token=self.text("systemToken", where),
            user_id=self.text("userId", where),
        )


Handler = Callable[[Call], Awaitable[Any]]


def require_permission(principal: Principal, permission: str) -> None:
    """Raise DingTalk's missing-permission error unless the principal holds the permission point's scope."""
    if not principal.allows(PERMISSIONS[permission]):
        raise PermissionDenied(
            f"the app credential {principal.client_id} lacks the scope {permission}",
            reason="auth.scope_missing",
            required_scopes=[permission],
        )


def endpoint(
    permission: str | None, *, authenticate: bool = True
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: check the access token and its ``permission`` point (``Yida.Form.Read``…), parse the body,
    render results and errors. A handler returns a JSON-able object (sent with 200) or a ``Response``."""
    if permission is not None and permission not in PERMISSIONS:
        raise ValueError(f"unknown DingTalk permission point {permission!r}")

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            request_id = new_request_id()
            zida = zida_of(request)
            try:
                # The gateway checks the token before it looks at the request, as api.dingtalk.com does.
                token = request.headers.get(TOKEN_HEADER)
                principal = await app_principal(zida.tokens, token) if authenticate else None
                if principal is not None and permission is not None:
                    require_permission(principal, permission)
                await zida.rate_limit(request, principal)
                check_url(request)
                body = (
                    await read_json_object(request, zida.settings.max_body_bytes)
                    if request.method in ("POST", "PUT", "PATCH")
                    else {}
                )
                call = Call(request=request, zida=zida, body=body, principal=principal, path=request.path_params)
                result = await handler(call)
            except ZidaError as exc:
                return render_error(exc, request_id)
            except Exception:
                log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id)
                return ERRORS.unhandled(request_id)
            if isinstance(result, Response):
                return result
            return json_response(result, request_id=request_id)

        route.__name__ = handler.__name__
        route.__doc__ = handler.__doc__
        return route

    return wrap


def mount(routes: list[Any]) -> DialectMount:
    """The DingTalk dialect's mount: api.dingtalk.com's paths (and oapi's ``/gettoken``)."""
    return DialectMount("dingtalk", ("/v1.0/", "/v2.0/", "/gettoken"), routes, ERRORS)
