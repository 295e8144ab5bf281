"""The request layer every dialect shares, and the mount that gives each dialect its own error format.

Each dialect's endpoint wrapper (``zida.dialects.dingtalk.http.endpoint``, ``zida.dialects.admin.http``) does the
same few things the same way, here: a request id, refusing NUL characters in the URL, reading a JSON body within the
size limit (``ZIDA_MAX_BODY_BYTES``) and refusing NUL in it, the rate-limit hook, and turning a core error or an
unexpected exception into the dialect's error response. A ``DialectMount`` serves one dialect's path prefixes: its
unknown routes, wrong methods and failures answer in that dialect's format (``/admin/v1/nope`` in the admin API's,
``/v1.0/nope`` in DingTalk's).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from zida.app_state import RateLimitHook, Zida
from zida.core.errors import InvalidArgument, NotFound, ZidaError

__all__ = [
    "DialectMount",
    "ErrorFormat",
    "RateLimitHook",
    "check_url",
    "has_nul",
    "new_request_id",
    "read_json_object",
    "refuse_nul",
    "zida_of",
]

log = logging.getLogger("zida.http")


class ErrorFormat(Protocol):
    """How one dialect answers errors."""

    def error(self, exc: ZidaError, request_id: str) -> Response:
        """The response for a core error."""
        ...

    def unhandled(self, request_id: str) -> Response:
        """The response for a bug (an exception that is not a core error): a 500 in the dialect's words."""
        ...


def zida_of(request: Request) -> Zida:
    """The running server's shared objects."""
    zida: Zida = request.app.state.zida
    return zida


def new_request_id() -> str:
    """A request id (32 hex characters), sent back with every answer."""
    return os.urandom(16).hex().upper()


def _nul_error(where: str) -> InvalidArgument:
    return InvalidArgument(f"the {where} contains a NUL character (\\u0000)", reason="request.nul_character")


def has_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL character in any string (key or value); iterative, so a deeply
    nested value cannot exhaust the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def refuse_nul(text: str | bytes, decoded: Any, where: str) -> None:
    """Neither database stores NUL in text: refuse it (only decoded values are checked, so the six characters
    ``\\u0000`` written as text stay ordinary text)."""
    escape = b"u0000" if isinstance(text, bytes) else "u0000"
    if escape in text and has_nul(decoded):  # type: ignore[operator]
        raise _nul_error(where)


def check_url(request: Request) -> None:
    """Refuse NUL characters in the path or the query string (raw or percent-encoded)."""
    if "\x00" in request.url.path or any("\x00" in str(v) for v in request.path_params.values()):
        raise _nul_error("path")
    query = request.scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        raise _nul_error("query string")


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it grows past ``limit`` bytes (a declared length is checked first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise InvalidArgument(f"the request body is larger than {limit} bytes", reason="request.too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidArgument(f"the request body is larger than {limit} bytes", reason="request.too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object in the body (``{}`` for an empty body); malformed JSON, another JSON type, more than
    ``limit`` bytes or a NUL character are refused and nothing is done."""
    raw = await _read_limited(request, limit)
    if not raw.strip():
        return {}
    if b"\x00" in raw:
        raise _nul_error("request body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidArgument("the request body is not valid JSON", reason="request.malformed_json") from None
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object", reason="request.malformed_json")
    refuse_nul(raw, body, "request body")
    return body


class _FixedRouter(Router):
    """Starlette's router, remembering which route without path parameters a (path, method) went to.

    Most API paths are fixed, and trying the ~150 routes in turn for each request cost several per cent of a
    worker's CPU. The remembered answer is the one Starlette's own search gave, so routing does not change.
    """

    def __init__(self, routes: Sequence[BaseRoute], default: ASGIApp) -> None:
        super().__init__(routes, redirect_slashes=False, default=default)
        self._fixed: dict[tuple[str, str, str], Route] = {}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (scope.get("root_path", ""), scope["path"], scope["method"])
        route = self._fixed.get(key)
        if route is None:
            await super().app(scope, receive, send)
            found = scope.get("route")
            if (
                isinstance(found, Route)
                and not found.param_convertors
                and scope["method"] in (found.methods or ())
                and len(self._fixed) < 10_000
            ):
                self._fixed[key] = found
            return
        scope.setdefault("router", self)
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = dict(scope.get("path_params", {}))
        await route.handle(scope, receive, send)


@dataclass
class DialectMount:
    """One dialect's routes under its path prefixes, answering unknown routes, wrong methods and failures in the
    dialect's own error format."""

    name: str
    prefixes: tuple[str, ...]
    routes: Sequence[BaseRoute]
    errors: ErrorFormat

    def __post_init__(self) -> None:
        self.router = _FixedRouter(self.routes, default=self._not_found)

    def serves(self, path: str) -> bool:
        """Whether ``path`` belongs to this dialect."""
        return path.startswith(self.prefixes)

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = NotFound(f"{scope['path']} does not exist", reason="route.not_found")
        await self.errors.error(error, new_request_id())(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.router(scope, receive, tracked)
        except HTTPException as exc:
            if started:
                raise
            error: ZidaError
            if exc.status_code == 405:
                error = InvalidArgument(
                    f"{scope['method']} is not allowed on {scope['path']}", reason="request.method_not_allowed"
                )
            else:
                error = NotFound(f"{scope['path']} does not exist", reason="route.not_found")
            await self.errors.error(error, new_request_id())(scope, receive, send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            await self.errors.unhandled(new_request_id())(scope, receive, send)
