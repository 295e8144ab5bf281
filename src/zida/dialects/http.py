"""The request layer every dialect shares, and the mount that gives each dialect its own error format.

Each dialect's endpoint wrapper (``zida.dialects.dingtalk.http.endpoint``, ``zida.dialects.admin.http``) does the
same few things the same way, here: a request id, refusing NUL characters in the URL, reading a JSON body within the
size limit (``ZIDA_MAX_BODY_BYTES``) and refusing NUL in it, the rate-limit hook, and turning a core error or an
unexpected exception into the dialect's error response.

Every JSON text a request carries, the body and each JSON text inside a string parameter (DingTalk's ``*Json``), is
decoded by ``decode_json``: nesting deeper than ``ZIDA_MAX_JSON_DEPTH`` is refused (``request.too_deep``) at parse
time, without recursion, the same for every parameter of every route; so is a number literal no double holds
(``1e-400`` would silently become 0, ``1e400`` infinity: ``request.number_out_of_range``, as the same number
written as text is refused). ``configure_limits`` hands the other limits of the request budget (README "Limits")
to the core once per process, before the first request is handled.

A ``DialectMount`` serves one dialect's path prefixes: its unknown routes, wrong methods and failures answer in that
dialect's format (``/admin/v1/nope`` in the admin API's, ``/v1.0/nope`` in DingTalk's).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette._utils import get_route_path, is_async_callable
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, Router, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from zida.app_state import RateLimitHook, Zida
from zida.core.errors import InvalidArgument, NotFound, ZidaError
from zida.core.records.filters.compiler import SearchLimits, configure_search_limits
from zida.core.records.values import NotANumber, ValueLimits, brief, configure_value_limits, number_value
from zida.ids import is_decimal
from zida.observability.context import current_request_id, make_request_id
from zida.settings import Settings

__all__ = [
    "DialectMount",
    "ErrorFormat",
    "RateLimitHook",
    "check_url",
    "configure_limits",
    "decode_json",
    "has_nul",
    "new_request_id",
    "query_params",
    "query_values",
    "read_json_object",
    "read_limited",
    "refuse_nul",
    "retry_after",
    "text_nests_deeper",
    "zida_of",
]

log = logging.getLogger("zida.http")


def retry_after(response: Response, exc: ZidaError) -> Response:
    """``response`` with ``Retry-After`` when the error says when to try again (a rate limit)."""
    seconds = exc.details.get("retry_after")
    if isinstance(seconds, int) and response.status_code in (403, 429, 503):
        response.headers["retry-after"] = str(seconds)
    return response


class ErrorFormat(Protocol):
    """How one dialect answers errors."""

    def error(self, exc: ZidaError, request_id: str) -> Response:
        """The response for a core error."""
        ...

    def unhandled(self, request_id: str) -> Response:
        """The response for a bug (an exception that is not a core error): a 500 in the dialect's words."""
        ...


def zida_of(request: Request) -> Zida:
    """The running server's shared objects (the request budget of its settings in force)."""
    zida: Zida = request.app.state.zida
    if zida.settings is not _configured:
        configure_limits(zida.settings)
    return zida


_max_json_depth = Settings.max_json_depth
_configured: Settings | None = None


def configure_limits(settings: Settings) -> None:
    """The request budget of ``settings`` (README "Limits") for every dialect and the core: JSON depth here,
    value sizes for ``zida.core.records.values``, the search budget for the filter compiler."""
    global _max_json_depth, _configured
    _max_json_depth = settings.max_json_depth
    configure_value_limits(
        ValueLimits(
            text_chars=settings.max_text_chars,
            textarea_chars=settings.max_textarea_chars,
            editor_chars=settings.max_editor_chars,
            record_bytes=settings.max_record_bytes,
        )
    )
    configure_search_limits(
        SearchLimits(
            conditions=settings.max_search_conditions,
            values=settings.max_search_values,
            bound_values=settings.max_bound_values,
            like_chars=settings.max_search_chars,
            value_chars=max(settings.max_text_chars, settings.max_textarea_chars, settings.max_editor_chars),
        )
    )
    _configured = settings


# A number literal with a negative exponent (the only kind that can underflow to 0); a string holding the same
# text is told apart by decoding again with Python's parser (only when this matches at all).
_TINY_NUMBER = re.compile(rb"[0-9][eE]-[0-9]")
_INFINITE = "infinity"
# 19 digits in a row: the shortest integer literal outside [-2**63, 2**64), which orjson reads as a double (digits in a
# string match too, and only cost a second, exact decoding).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_DEEPER_THAN_ORJSON = "depth limit exceeded"


def _tiny_number(text: str) -> float | int:
    """A float literal as a record stores it (``number_value``), refusing one that is not zero but reads as zero."""
    try:
        return number_value(text)
    except NotANumber:
        raise InvalidArgument(
            f"the number {brief(text)} is out of the range of numbers (no double holds it)",
            reason="request.number_out_of_range",
        ) from None


def decode_json(
    text: str | bytes,
    where: str,
    *,
    reason: str = "argument.bad_json",
    param: str | None = None,
    max_depth: int | None = None,
    exact_integers: bool = False,
) -> Any:
    """Decode one JSON text of a request: malformed (``reason``), deeper than ``max_depth`` (default
    ``ZIDA_MAX_JSON_DEPTH``: ``request.too_deep``), a number no double holds or a NUL character are refused.

    ``exact_integers`` (form data): an integer literal outside 64 bits is read as the exact integer it writes, where
    orjson reads it as the nearest double; a text field given ``123456789012345678901234567890`` keeps its digits,
    as the platform keeps them. Whoever asks for it turns such an integer into a double where it stores a number."""
    limit = _max_json_depth if max_depth is None else max_depth
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    details = {"param": param} if param else {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if _INFINITE in str(exc):
            raise InvalidArgument(
                f"the {where} holds a number out of the range of numbers",
                reason="request.number_out_of_range",
                **details,
            ) from None
        if _DEEPER_THAN_ORJSON in str(exc):  # past orjson's own 1,024 levels
            raise _too_deep(where, limit, details) from None
        raise InvalidArgument(f"the {where} is not valid JSON", reason=reason, **details) from None
    if _openers(raw) > limit and text_nests_deeper(raw, limit):
        raise _too_deep(where, limit, details)
    if _TINY_NUMBER.search(raw):
        _refuse_tiny_numbers(raw)
    if exact_integers and _LONG_DIGITS.search(raw):
        value = _with_exact_integers(raw, value)
    refuse_nul(raw, value, where)
    return value


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


def text_nests_deeper(raw: bytes, limit: int) -> bool:
    """Whether the valid JSON text ``raw`` nests more than ``limit`` arrays/objects (``{}`` is one level), as its
    decoded value does, found on the text at C speed: strings dropped, brackets kept (valid JSON nests them properly,
    so ``{}`` may count as ``[]``), then the innermost pairs removed once per level. Walking the decoded value instead
    took a worker's loop 4 s for a 16 MB body of millions of ``[]``."""
    # Without a backslash every '"' opens or closes a string: the text between strings is every other piece.
    outside = b"".join(raw.split(b'"')[::2]) if b"\\" not in raw else _JSON_STRING.sub(b"", raw)
    brackets = outside.translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")  # one level: a pair this uncovers waits for the next round
    return bool(brackets)


def _openers(raw: bytes) -> int:
    """An upper bound of the nesting (each level opens with ``[`` or ``{``), counted at C speed."""
    return raw.count(b"[") + raw.count(b"{")


def _too_deep(where: str, limit: int, details: dict[str, Any]) -> InvalidArgument:
    return InvalidArgument(f"the {where} nests JSON deeper than {limit} levels", reason="request.too_deep", **details)


def _with_exact_integers(raw: bytes, value: Any) -> Any:
    """``raw`` decoded again by Python's parser, whose integers are exact (orjson has checked everything else);
    ``value`` as orjson read it if ``ZIDA_MAX_JSON_DEPTH`` lets it nest deeper than Python's recursion allows."""
    try:
        return json.loads(raw)
    except RecursionError:
        return value


def _refuse_tiny_numbers(raw: bytes) -> None:
    """Decode again with Python's parser (its tokens are exact; the depth is already bounded) to find a number
    literal that underflows to 0."""
    with contextlib.suppress(json.JSONDecodeError, RecursionError):  # orjson read it: nothing else to find
        json.loads(raw, parse_float=_tiny_number)


def _plain_pairs(raw: bytes) -> list[tuple[str, str]] | None:
    """The pairs of a query with nothing to decode (no ``%``, no ``+``), split as ``parse_qsl`` splits it: pieces
    between ``&``, empty ones skipped, the name up to the first ``=`` and a piece without one a blank value.
    None: the query needs decoding."""
    if b"%" in raw or b"+" in raw:
        return None
    pairs = []
    for piece in raw.decode("latin-1").split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((name, value))
    return pairs


def query_params(request: Request) -> QueryParams:
    """The request's query parameters, as ``request.query_params`` gives them (and kept where it looks).

    Starlette parses every query with ``urllib.parse.parse_qsl``, about 10 µs for the three parameters of a Yida
    read; a query with nothing to decode is split here instead, to the same pairs."""
    known: QueryParams | None = getattr(request, "_query_params", None)
    if known is not None:
        return known
    raw: bytes = request.scope.get("query_string", b"")
    pairs = _plain_pairs(raw)
    params = QueryParams(raw) if pairs is None else QueryParams(pairs)
    request._query_params = params  # Starlette's own cache: request.query_params reads it
    return params


def query_values(request: Request) -> dict[str, str]:
    """The query parameters as a dictionary, a repeated name with its last value (``request.query_params[name]``)."""
    pairs = _plain_pairs(request.scope.get("query_string", b""))
    return dict(query_params(request)) if pairs is None else dict(pairs)


def new_request_id() -> str:
    """The id of the request being served (32 hex characters; ``zida.observability``: the same in the dialect's
    answer, in ``x-request-id`` and in the request's log line), or a fresh one outside a request."""
    return current_request_id() or make_request_id()


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
    if "\x00" in request.scope["path"] or any("\x00" in str(v) for v in request.path_params.values()):
        raise _nul_error("path")
    query = request.scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        raise _nul_error("query string")


async def read_limited(request: Request, limit: int, what: str = "the request body") -> bytes:
    """The body, refused as soon as it grows past ``limit`` bytes (a declared length is checked first); ``what``
    names it in the message. A client gone before the end is ``request.truncated`` (it was logged as a server error).

    It reads the ASGI messages itself, not through ``Request.stream()``: that async generator cost a small JSON
    POST a tenth of a bare server's time per request (BENCHMARKS.md, contacts). The body is kept as Starlette's
    ``Request.body()`` keeps it, so a later ``request.body()`` returns it."""
    declared = request.headers.get("content-length", "")
    if is_decimal(declared) and int(declared) > limit:
        raise InvalidArgument(f"{what} is larger than {limit} bytes", reason="request.too_large")
    chunks: list[bytes] = [request._body] if hasattr(request, "_body") else []  # already read
    size = len(chunks[0]) if chunks else 0
    more = not chunks
    while more:
        message = await request.receive()
        if message["type"] != "http.request":  # http.disconnect: a client error, not one of the server's
            raise InvalidArgument(
                f"the client closed the connection before the end of {what}", reason="request.truncated"
            )
        more = message.get("more_body", False)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            break
        chunks.append(chunk)
    if size > limit:
        raise InvalidArgument(f"{what} is larger than {limit} bytes", reason="request.too_large")
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = raw  # Starlette's own cache of the body (Request.body(), Request.stream())
    return raw


async def read_json_object(request: Request, limit: int, *, exact_integers: bool = False) -> dict[str, Any]:
    """The JSON object in the body (``{}`` for an empty body); malformed JSON, another JSON type, more than
    ``limit`` bytes, nesting past ``ZIDA_MAX_JSON_DEPTH``, a number no double holds or a NUL character are refused
    and nothing is done (``decode_json``, whose ``exact_integers`` a body carrying form data asks for)."""
    raw = await read_limited(request, limit)
    if not raw.strip():
        return {}
    if b"\x00" in raw:
        raise _nul_error("request body")
    body = decode_json(raw, "request body", reason="request.malformed_json", exact_integers=exact_integers)
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object", reason="request.malformed_json")
    return body


_BUCKET_DEPTH = 5  # a route's bucket: the first segments of its path, "", "v1.0", "yida", "forms", "instances"


def _bucket(path: str) -> tuple[str, ...] | None:
    """The first ``_BUCKET_DEPTH`` segments of a request path (None: the path is shorter)."""
    parts = path.split("/", _BUCKET_DEPTH)
    return tuple(parts[:_BUCKET_DEPTH]) if len(parts) > _BUCKET_DEPTH else None


def _fixed_path(route: BaseRoute) -> str | None:
    """The path a route without path parameters matches (None: it has parameters, or is not a plain route)."""
    return route.path if isinstance(route, Route) and not route.param_convertors else None


Endpoint = Callable[[Request], Awaitable[Response]]


def _direct_endpoint(route: BaseRoute) -> Endpoint | None:
    """The endpoint a matched route may be served by directly (None: serve it with ``route.handle``).

    Starlette serves a function endpoint through ``request_response``: a ``Request``, then the endpoint inside a
    wrapper that hands exceptions to the app's exception handlers. Zida registers none (every dialect's endpoint
    wrapper answers its own errors, and ``DialectMount`` whatever escapes), so for an async function endpoint
    with no route middleware that wrapper only costs time: a few per cent of a small request. Any other route
    (a sync endpoint, an ASGI app, route middleware) keeps Starlette's path.
    """
    if not isinstance(route, Route) or not is_async_callable(route.endpoint):
        return None
    if getattr(route.app, "__qualname__", "") != request_response.__qualname__ + ".<locals>.app":
        return None  # wrapped in route middleware, or Starlette built it another way
    return route.endpoint


class _FixedRouter(Router):
    """Starlette's router, trying for each request only the routes its path can match.

    Most API paths are fixed, and trying the ~150 routes in turn for each request cost several per cent of a
    worker's CPU; so a (path, method) that went to a route without path parameters is remembered. The others
    (``/v1.0/yida/forms/instances/{id}``…) try, in Starlette's order, only the routes whose fixed start (the first
    segments, up to the first parameter) is the path's, and those too short to have one. Starlette's own
    matching decides among them, so routing does not change.
    """

    def __init__(self, routes: Sequence[BaseRoute], default: ASGIApp) -> None:
        super().__init__(routes, redirect_slashes=False, default=default)
        self._fixed: dict[tuple[str, str, str], Route] = {}
        self._direct = {id(route): _direct_endpoint(route) for route in self.routes}
        general: list[tuple[int, BaseRoute]] = []
        bucketed: dict[tuple[str, ...], list[tuple[int, BaseRoute]]] = {}
        for n, route in enumerate(self.routes):
            start = route.path.split("{", 1)[0] if isinstance(route, Route) else ""
            key = _bucket(start) if start.count("/") >= _BUCKET_DEPTH else None
            (general if key is None else bucketed.setdefault(key, [])).append((n, route))
        # With each route, the one path it can match when it has no parameters (a string comparison, not a regex).
        self._general = [(r, _fixed_path(r)) for _, r in general]
        self._buckets = {
            key: [(r, _fixed_path(r)) for _, r in sorted(items + general, key=lambda item: item[0])]
            for key, items in bucketed.items()
        }
        # (id of a candidate list above, method) → those of its routes that take the method (methods are few).
        self._by_method: dict[tuple[int, str], list[tuple[BaseRoute, str | None]]] = {}

    def _taking(
        self, candidates: list[tuple[BaseRoute, str | None]], method: str
    ) -> list[tuple[BaseRoute, str | None]]:
        """Those of ``candidates`` that may take ``method`` (any that is not a plain route), in the same order."""
        known = self._by_method.get((id(candidates), method))
        if known is None:
            known = [
                (r, fixed)
                for r, fixed in candidates
                if not isinstance(r, Route) or r.methods is None or method in r.methods
            ]
            if len(self._by_method) < 1_024:  # bounded, whatever methods clients make up
                self._by_method[(id(candidates), method)] = known
        return known

    async def _serve(self, route: BaseRoute, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request its route matched fully (the method included): directly when it may be."""
        endpoint = self._direct.get(id(route))
        if endpoint is None:
            await route.handle(scope, receive, send)
            return
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    async def _serve_first(
        self,
        candidates: list[tuple[BaseRoute, str | None]],
        path: str,
        key: tuple[str, str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> bool:
        """Serve the request with the first of ``candidates`` that matches it fully (False: none does)."""
        for candidate, fixed in candidates:
            if fixed is not None and fixed != path:
                continue
            match, child_scope = candidate.matches(scope)
            if match is Match.FULL:
                scope["route"] = candidate
                scope.update(child_scope)
                if isinstance(candidate, Route) and not candidate.param_convertors and len(self._fixed) < 10_000:
                    self._fixed[key] = candidate
                await self._serve(candidate, scope, receive, send)
                return True
        return False

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (scope.get("root_path", ""), scope["path"], scope["method"])
        route = self._fixed.get(key)
        if route is not None:
            scope.setdefault("router", self)
            scope["route"] = route
            scope["endpoint"] = route.endpoint
            scope["path_params"] = dict(scope.get("path_params", {}))
            await self._serve(route, scope, receive, send)
            return
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        path = get_route_path(scope)
        bucket = _bucket(path)
        candidates = self._general if bucket is None else self._buckets.get(bucket, self._general)
        method = scope["method"]
        # First only the routes that take this method (the others cannot match FULL, and Starlette takes the first
        # FULL match in order); when none does, all of them, for the 405 of a known path.
        if await self._serve_first(self._taking(candidates, method), path, key, scope, receive, send):
            return
        partial: BaseRoute | None = None
        partial_scope: MutableMapping[str, Any] = {}
        for candidate, fixed in candidates:
            if fixed is not None and fixed != path:
                continue
            match, child_scope = candidate.matches(scope)
            if match is Match.PARTIAL:
                partial, partial_scope = candidate, child_scope
                break
        if partial is not None:  # the path is known, not with this method: 405
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)


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
        error = NotFound(f"{scope['path']} does not exist", reason="route.not_found", path=scope["path"])
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
            # Starlette lists a route's methods from a set: sorted, the same answer every time.
            allow = ", ".join(sorted(m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()))
            if exc.status_code == 405:
                # The path may be one route's with a parameter (``/v1.0/contact/users/{unionId}`` for
                # ``POST /v1.0/contact/users/sort``, a platform API Zida does not serve): say what it does serve.
                error = InvalidArgument(
                    f"{scope['method']} is not allowed on {scope['path']}"
                    + (f": Zida serves only {allow} there" if allow else ""),
                    reason="request.method_not_allowed",
                )
            else:
                error = NotFound(f"{scope['path']} does not exist", reason="route.not_found", path=scope["path"])
            response = self.errors.error(error, new_request_id())
            if allow and exc.status_code == 405:
                response.headers["allow"] = allow  # as HTTP asks of a 405
            await response(scope, receive, send)
        except Exception:
            if started:
                raise
            request_id = new_request_id()
            log.exception("unhandled error in %s %s (request %s)", scope.get("method"), scope.get("path"), request_id)
            await self.errors.unhandled(request_id)(scope, receive, send)
