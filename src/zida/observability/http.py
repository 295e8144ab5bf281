"""Every request's id, metrics and log line (``RequestObserver``), and ``GET /metrics``.

The observer wraps each dialect's mount (``zida.server``): it opens the request's context (its id: what the
dialect's ``new_request_id`` answers with), adds ``x-request-id`` to the answer when the dialect did not, then
counts the request by dialect, route template, method and status, and writes its access line
(``zida.observability.logs``). Its cost per request: a context variable set and reset, a wrapped ``send``, a clock
read at each end, one dictionary lookup of the request's tallies (made once per dialect, route, method and status)
and a few additions to them (``zida.observability.metrics``: flushed into the metrics every second and before this
process answers a scrape) and, when the access log is on, one JSON line written (``log_access``). It also stops a
request whose client has left once it has read its body (``_ClientWatch``: a timer per request that reads one, a
task only for those still running after half a second).

``/metrics`` is answered before any dialect (it needs no credential of theirs) and is protected in one of two ways,
chosen by ``ZIDA_METRICS_TOKEN``: set, a scrape must send ``Authorization: Bearer <that token>`` (compared in
constant time; 401 otherwise) from anywhere; unset (the default), only loopback clients are answered (403 for
others), which suits a Prometheus or agent on the same host. Behind a reverse proxy on the same host every client
looks local: set the token, or do not route ``/metrics``. ``ZIDA_METRICS=off``: 404 and nothing is counted. It is not
listed in ``/openapi.json``: it is a scrape target in Prometheus's text format, not an operation of any dialect's API
(a client or a fuzzer of the API has nothing to do there).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zida.observability import metrics
from zida.observability.context import RequestContext, begin_request, end_request
from zida.observability.logs import log_access
from zida.settings import Settings

__all__ = ["METRICS_PATH", "RequestObserver"]

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"  # the route label of a path no route has
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = b"x-request-id"
_LOOPBACK = ("127.", "::1", "::ffff:127.")


class _Mount(Protocol):
    """A dialect's mount as the observer sees it (``zida.dialects.http.DialectMount``)."""

    name: str

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


CLIENT_LEFT = 499  # the status a request stopped because its client left is counted and logged with (nginx's)
WATCH_AFTER_SECONDS = 0.5  # a request still running this long after its body was read is stopped if its client leaves


class _ClientWatch:
    """Stops a request whose client has gone (a search or a change it no longer waits for), so that it gives back
    its database connection and its share of the worker.

    Once the request has read its whole body (the client cannot send more) and has run ``WATCH_AFTER_SECONDS``
    (quick requests pay only a timer), a task waits for the server's next message of the connection: the client
    leaving (``http.disconnect``) cancels the request's task, whose transactions roll back (nothing of it is
    written), unless its answer has gone out already. The observer counts such a request with status 499.
    A request that never reads its body (a GET) is not watched: its client's leaving is seen when it answers."""

    __slots__ = ("_receive", "_task", "_timer", "_watcher", "answered", "body_read", "due", "left")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task = asyncio.current_task()
        self._timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.answered = self.body_read = self.due = self.left = False

    async def receive(self) -> Message:
        """The connection's next message, for the request (its body)."""
        message = await self._receive()
        if message["type"] != "http.request" or message.get("more_body", False):
            return message
        self.body_read = True
        if self.due:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_SECONDS, self._fire)
        return message

    def _fire(self) -> None:
        self.due = True
        if self.body_read:
            self._start()

    def _start(self) -> None:
        if self._watcher is None and not self.answered and self._task is not None:
            self._watcher = asyncio.get_running_loop().create_task(self._wait_for_leaving())

    async def _wait_for_leaving(self) -> None:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self.answered and self._task is not None:
            self.left = True
            self._task.cancel()

    def stop(self) -> None:
        """The request is over: nothing more to watch."""
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


class RequestObserver:
    """Gives each request its id, counts it and logs it (module docstring); serves ``/metrics``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = settings.metrics
        self.access_log = settings.access_log
        self._tallies: dict[tuple[str, str, str, int], tuple[metrics.CounterTally, metrics.HistogramTally]] = {}
        self._token = settings.metrics_token.encode() if settings.metrics_token else None

    async def __call__(self, mount: _Mount, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request with ``mount``, observed (and stopped if its client leaves: ``_ClientWatch``)."""
        context, token = begin_request()
        request_id = context.request_id.encode()
        status = 500  # what the server answers when the app ends without an answer
        watch = _ClientWatch(receive)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                for name, _ in headers:
                    if name == _REQUEST_ID:
                        break
                else:
                    message["headers"] = [*headers, (_REQUEST_ID, request_id)]
            elif not message.get("more_body", False):
                watch.answered = True  # before the answer's end goes out: the client's leaving then stops nothing
            await send(message)

        started = time.perf_counter()
        try:
            await mount(scope, watch.receive, send_with_id)
        except asyncio.CancelledError:
            if not watch.left:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            status = CLIENT_LEFT
        finally:
            watch.stop()
            elapsed = time.perf_counter() - started
            end_request(token)
            self._observe(mount.name, scope, status, elapsed, context)

    def _observe(self, dialect: str, scope: Scope, status: int, elapsed: float, context: RequestContext) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        if self.metrics:
            key = (dialect, template, method, status)
            tallies = self._tallies.get(key)
            if tallies is None:
                tallies = self._tallies[key] = (
                    metrics.counter_tally(metrics.HTTP_REQUESTS.labels(dialect, template, method, str(status))),
                    metrics.histogram_tally(metrics.HTTP_LATENCY.labels(dialect, template)),
                )
            tallies[0].count += 1
            tallies[1].observe(elapsed)
        if self.access_log:
            log_access(
                {
                    "request_id": context.request_id,
                    "dialect": dialect,
                    "corp": context.corp,
                    "credential": context.credential,
                    "method": method,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                }
            )

    def _refusal(self, scope: Scope) -> Response | None:
        """Why this scrape is refused (None: it may read the metrics)."""
        if self._token is not None:
            supplied = b""
            for name, value in scope.get("headers") or ():
                if name == b"authorization":
                    scheme, _, supplied = value.partition(b" ")
                    supplied = supplied.strip() if scheme.lower() == b"bearer" else b""
                    break
            if hmac.compare_digest(supplied, self._token):
                return None
            return PlainTextResponse(
                "send Authorization: Bearer <ZIDA_METRICS_TOKEN>\n", 401, headers={"www-authenticate": "Bearer"}
            )
        client = scope.get("client")
        if client is None or str(client[0]).startswith(_LOOPBACK):
            return None
        return PlainTextResponse("metrics are served to loopback clients only (or set ZIDA_METRICS_TOKEN)\n", 403)

    async def serve_metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /metrics`` (module docstring)."""
        response: ASGIApp
        if not self.metrics:
            response = PlainTextResponse("metrics are off (ZIDA_METRICS)\n", 404)
        elif scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("use GET\n", 405, headers={"allow": "GET, HEAD"})
        else:
            refusal = self._refusal(scope)
            if refusal is not None:
                response = refusal
            else:
                zida = getattr(scope.get("app"), "state", None)
                db = getattr(getattr(zida, "zida", None), "db", None)
                metrics.flush()  # this worker's counts as of now (on the loop: the tallies are not locked)
                body = await asyncio.to_thread(metrics.exposition, self.settings, db)
                response = Response(body, media_type=CONTENT_TYPE_LATEST)
        await response(scope, receive, send)
