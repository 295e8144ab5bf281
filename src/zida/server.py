"""``create_app()``: one ASGI app mounting every dialect over one core."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from zida.app_state import Zida
from zida.core.access.tokens import TokenService, check_server_key
from zida.core.errors import InvalidArgument, NotFound
from zida.crypto import SecretBox
from zida.db import open_database
from zida.db.migrate import check_schema
from zida.dialects import admin
from zida.dialects.dingtalk import apps as dt_apps
from zida.dialects.dingtalk import batch as dt_batch
from zida.dialects.dingtalk import history as dt_history
from zida.dialects.dingtalk import oauth as dt_oauth
from zida.dialects.dingtalk import processes as dt_processes
from zida.dialects.dingtalk import queries as dt_queries
from zida.dialects.dingtalk import records as dt_records
from zida.dialects.dingtalk import tasks as dt_tasks
from zida.dialects.dingtalk import v2 as dt_v2
from zida.dialects.dingtalk.http import json_response, render_error
from zida.settings import Settings, load_settings, require_secret_key

__all__ = ["create_app"]

log = logging.getLogger("zida")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods answer in the DingTalk error format (the default dialect)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return render_error(
            InvalidArgument(
                f"{request.method} is not allowed on {request.url.path}", reason="request.method_not_allowed"
            )
        )
    if exc.status_code == 404:
        return render_error(NotFound(f"{request.url.path} does not exist", reason="route.not_found"))
    return json_response({"code": "invalidParameter", "message": str(exc.detail), "requestid": ""}, exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return json_response({"code": "unknownError", "message": "未知错误", "requestid": ""}, 500)


def create_app(settings: Settings | None = None) -> Starlette:
    """The Zida ASGI application (database opened in the lifespan)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        box = SecretBox(require_secret_key(settings))
        db = await open_database(settings.database_url, settings.db_pool_size)
        try:
            await check_schema(db)
            await check_server_key(db, box)
        except BaseException:
            await db.close()
            raise
        app.state.zida = Zida(
            settings=settings,
            db=db,
            box=box,
            tokens=TokenService(db, box, ttl_seconds=settings.token_ttl_seconds),
        )
        try:
            yield
        finally:
            await db.close()

    routes = [
        *admin.routes(),
        *dt_oauth.routes(),
        *dt_apps.routes(),
        *dt_records.routes("/v1.0"),
        *dt_records.routes("/v2.0"),
        *dt_batch.routes("/v1.0"),
        *dt_batch.routes("/v2.0"),
        *dt_queries.routes("/v1.0"),
        *dt_queries.routes("/v2.0"),
        *dt_history.routes(),
        *dt_v2.routes(),
        *dt_processes.routes(),
        *dt_tasks.routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    # api.dingtalk.com answers a trailing slash as an unknown route, not with a redirect (a 307 has no error
    # body the SDK could read).
    app.router = _Router(routes, lifespan=lifespan, redirect_slashes=False)
    return app


class _Router(Router):
    """Starlette's router, remembering which route without path parameters a (path, method) went to.

    Most API paths are fixed, and trying the ~150 routes in turn for each request cost several per cent of a
    worker's CPU. The remembered answer is the one Starlette's own search gave, so routing does not change.
    """

    def __init__(self, routes: Sequence[BaseRoute], **kwargs: Any) -> None:
        super().__init__(routes, **kwargs)
        self._fixed: dict[tuple[str, str, str], Route] = {}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
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
