"""``create_app()``: one ASGI app, one mount per dialect over one core, each answering in its own format."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from zida import __version__
from zida.app_state import Zida
from zida.cache import configure_caches, start_cache_sync
from zida.console.routes import console_mount
from zida.core.access.limits import RateLimiter
from zida.core.access.sessions import SessionService
from zida.core.access.tokens import TokenService, check_server_key
from zida.core.events.delivery import RetryPolicy
from zida.core.events.worker import DeliveryWorker
from zida.core.records.filters.indexes import refresh_sqlite_statistics
from zida.core.records.store import PAGE_CURSORS
from zida.crypto import SecretBox
from zida.db import Database, open_database
from zida.db.migrate import check_schema
from zida.dialects.admin import files as admin_files
from zida.dialects.admin import http as admin_http
from zida.dialects.admin import routes as admin
from zida.dialects.dingtalk import apps as dt_apps
from zida.dialects.dingtalk import batch as dt_batch
from zida.dialects.dingtalk import callbacks as dt_callbacks
from zida.dialects.dingtalk import contacts as dt_contacts
from zida.dialects.dingtalk import contacts_v1 as dt_contacts_v1
from zida.dialects.dingtalk import files as dt_files
from zida.dialects.dingtalk import history as dt_history
from zida.dialects.dingtalk import http as dingtalk_http
from zida.dialects.dingtalk import messages as dt_messages
from zida.dialects.dingtalk import oa_workflow as dt_oa_workflow
from zida.dialects.dingtalk import oapi as dingtalk_oapi
from zida.dialects.dingtalk import oauth as dt_oauth
from zida.dialects.dingtalk import processes as dt_processes
from zida.dialects.dingtalk import queries as dt_queries
from zida.dialects.dingtalk import records as dt_records
from zida.dialects.dingtalk import stream as dt_stream
from zida.dialects.dingtalk import tasks as dt_tasks
from zida.dialects.dingtalk import todos as dt_todos
from zida.dialects.dingtalk import v2 as dt_v2
from zida.dialects.dingtalk.events import render_for
from zida.dialects.http import DialectMount, configure_limits
from zida.dialects.weda import auth as weda_auth
from zida.dialects.weda import http as weda_http
from zida.dialects.weda import models as weda_models
from zida.dialects.weda import permissions as weda_permissions
from zida.dialects.weda import storage as weda_storage
from zida.dialects.weda import templates as weda_templates
from zida.dialects.weda import workflow as weda_workflow
from zida.observability.http import METRICS_PATH, RequestObserver
from zida.observability.metrics import observing
from zida.openapi import openapi_document
from zida.outbound import OutboundClient
from zida.settings import Settings, load_settings, require_secret_key
from zida.stores import open_store

__all__ = ["create_app"]

log = logging.getLogger("zida")


def dialect_mounts() -> tuple[list[DialectMount], DialectMount]:
    """Every dialect's mount, and the one that answers paths no dialect claims (DingTalk's: the API host's)."""
    dingtalk = dingtalk_http.mount(
        [
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
            *dt_oa_workflow.routes(),
            *dt_callbacks.v1_routes(),
            *dt_contacts_v1.routes(),
            *dt_stream.routes(),
            *dt_todos.routes(),
            *dt_files.routes(),
        ]
    )
    oapi = dingtalk_oapi.mount(
        [*dt_callbacks.routes(), *dt_contacts.routes(), *dt_files.oapi_routes(), *dt_messages.routes()]
    )
    weda = weda_http.mounts(
        weda_auth.routes(),
        weda_models.routes(),
        [*weda_workflow.routes(), *weda_templates.routes(), *weda_permissions.routes()],
    )
    mounts = [admin_http.mount([*admin.routes(), *admin_files.routes()]), *weda, weda_storage.mount(), oapi, dingtalk]
    return mounts, dingtalk


class _Dialects(Router):
    """Sends each request to the dialect whose path prefixes it falls under (lifespan: Starlette's own)."""

    def __init__(
        self, mounts: Sequence[DialectMount], fallback: DialectMount, observer: RequestObserver, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.mounts = list(mounts)
        self.fallback = fallback
        self.observer = observer  # each request's id, metrics and log line; /metrics, outside every dialect
        self.websockets = Router(dt_stream.websocket_routes())
        # Which mount serves a path depends only on its first ``_reach`` characters (the longest prefix): the
        # answer for the starts seen so far, so that a request does not ask every dialect in turn.
        self._reach = max(len(prefix) for m in self.mounts for prefix in m.prefixes)
        self._served_by: dict[str, DialectMount] = {}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.websockets(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == METRICS_PATH:
            await self.observer.serve_metrics(scope, receive, send)
            return
        start = path[: self._reach]
        mount = self._served_by.get(start)
        if mount is None:
            mount = next((m for m in self.mounts if m.serves(start)), self.fallback)
            if len(self._served_by) < 4_096:  # bounded, whatever paths clients make up
                self._served_by[start] = mount
        await self.observer(mount, scope, receive, send)


class _ZidaApp(Starlette):
    """Starlette's application, sending HTTP requests straight to the dialects.

    Starlette wraps its router in two middlewares: one turns an exception that escapes into a plain-text 500, the
    other hands exceptions to registered handlers (Zida registers none). Every dialect mount answers its own
    errors (unknown routes, wrong methods, failures) before a response starts, so for HTTP they only cost time on
    every request; lifespan and WebSocket scopes (and an app given middleware) keep Starlette's path.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.user_middleware and isinstance(self.router, _Dialects):
            scope["app"] = self
            await self.router.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class _Events:
    """What delivers events in this process (``client``, ``worker``, ``hub``: None when ZIDA_EVENTS is off)."""

    def __init__(self, settings: Settings, db: Database, box: SecretBox) -> None:
        self.client: OutboundClient | None = None
        self.worker: DeliveryWorker | None = None
        self.hub: dt_stream.StreamHub | None = None
        if not settings.events_enabled:
            return
        # Outbound pushes: only to the registered URL, redirects never followed, no proxy from the environment.
        self.client = OutboundClient()
        self.hub = dt_stream.StreamHub(settings.stream_ack_seconds, settings.stream_ping_seconds)
        self.worker = DeliveryWorker(
            db,
            box,
            partial(render_for, public_url=settings.public_url),
            [dt_callbacks.HttpCallbackChannel(self.client, settings.callback_timeout_seconds), self.hub],
            policy=RetryPolicy(
                dingtalk_retries=settings.callback_retry_seconds,
                max_backoff_seconds=settings.events_max_backoff_seconds,
                retry_window_seconds=settings.events_retry_window_seconds,
            ),
            poll_seconds=settings.events_poll_seconds,
            retention_days=settings.events_retention_days,
        )
        self.hub.wake = self.worker.wake


@asynccontextmanager
async def _events(settings: Settings, db: Database, box: SecretBox) -> AsyncIterator[_Events]:
    events = _Events(settings, db, box)
    try:
        yield events
    finally:
        if events.worker is not None:
            await events.worker.stop()
        if events.client is not None:
            await events.client.aclose()


# How often each process checks SQLite's statistics of the records table (``refresh_sqlite_statistics``).
_STATISTICS_EVERY_SECONDS = 600.0


@asynccontextmanager
async def _statistics_upkeep(db: Database) -> AsyncIterator[None]:
    """SQLite: keep the planner's statistics of the records table true to its size, at startup and every ten minutes
    (a background task; a failed check is logged and tried again next time)."""
    if db.sql.name != "sqlite":
        yield
        return

    async def run() -> None:
        while True:
            try:
                if await refresh_sqlite_statistics(db):
                    log.info("statistics of form_instance refreshed (the table's size had changed)")
            except Exception:
                log.exception("refreshing SQLite's statistics failed")
            await asyncio.sleep(_STATISTICS_EVERY_SECONDS)

    task = asyncio.create_task(run(), name="zida-sqlite-statistics")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


_frozen = False


def freeze_startup_objects() -> None:
    """Leave what a started process holds (modules, classes, functions, the app: about 100,000 objects, 45,000 of
    them SQLAlchemy's and Alembic's from the schema check) out of the garbage collector's full collections, once per
    process.

    A full collection walked all of them: about 50 ms on a 2-vCPU VM (66–81 ms under load, about once per worker
    every 25–30 s), and every request the worker held waited (BENCHMARKS.md, 12-04, fourth session); after the freeze
    it walks only what was made since. Frozen objects are still freed by reference counting; a reference cycle
    among them is never collected, which only objects alive at startup can form."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def create_app(settings: Settings | None = None) -> Starlette:
    """The Zida ASGI application (database opened in the lifespan)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        box = SecretBox(require_secret_key(settings))
        configure_caches(settings)
        configure_limits(settings)
        PAGE_CURSORS.ttl = settings.page_cursor_seconds
        db = await open_database(
            settings.database_url,
            settings.db_pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
            sqlite_readers=settings.sqlite_readers,
            statement_timeout=settings.statement_timeout_seconds,
        )
        store = open_store(settings)
        try:
            await check_schema(db)
            await check_server_key(db, box)
            async with (
                start_cache_sync(store, settings),
                observing(settings, db),
                _events(settings, db, box) as events,
                _statistics_upkeep(db),
            ):
                app.state.zida = Zida(
                    settings=settings,
                    db=db,
                    box=box,
                    tokens=TokenService(
                        db,
                        box,
                        ttl_seconds=settings.token_ttl_seconds,
                        revalidate_seconds=settings.cache_seconds,
                        failures=store.namespace("auth"),
                        max_failures_per_minute=settings.token_failures_per_minute,
                    ),
                    store=store,
                    sessions=SessionService(
                        db,
                        ttl_seconds=settings.session_ttl_seconds,
                        refresh_ttl_seconds=settings.refresh_ttl_seconds,
                        failures=store.namespace("auth"),
                        max_failures_per_minute=settings.token_failures_per_minute,
                    ),
                    rate_limit=RateLimiter(store, settings.rate_limit_qps, settings.rate_limit_corp_qps).hook,
                    http_client=events.client,
                    events=events.worker,
                    stream_hub=events.hub,
                )
                if events.worker is not None:
                    await events.worker.start()
                freeze_startup_objects()
                try:
                    yield
                finally:
                    if events.hub is not None:
                        await events.hub.close_all()
        finally:
            await store.close()
            await db.close()

    mounts, fallback = dialect_mounts()
    app = _ZidaApp(lifespan=lifespan)
    app.state.openapi = openapi_document(mounts, __version__)
    if settings.console_enabled:  # the web console (``/``, ``/console/…``): no API path starts with these
        mounts = [console_mount(), *mounts]
    app.router = _Dialects(mounts, fallback, RequestObserver(settings), lifespan=lifespan)
    return app
