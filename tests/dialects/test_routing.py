"""A dialect mount's routing: the endpoints it serves directly and those it leaves to Starlette answer alike."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from zida.dialects.admin.http import ERRORS
from zida.dialects.http import DialectMount, _direct_endpoint


async def _item(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q")})


async def _echo(request: Request) -> Response:
    return JSONResponse({"body": (await request.json())["x"]})


async def _broken(request: Request) -> Response:
    raise RuntimeError("a bug")


def _sync(request: Request) -> Response:
    return JSONResponse({"thread": threading.current_thread() is not threading.main_thread()})


class _Tagged:
    """Route middleware that adds a header (so the route must be served through Starlette's app)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-tagged", b"1")]
            await send(message)

        await self.app(scope, receive, tagged)


ROUTES = [
    Route("/admin/v1/items/{id}", _item, methods=["GET"]),
    Route("/admin/v1/echo", _echo, methods=["POST"]),
    Route("/admin/v1/broken", _broken, methods=["GET"]),
    Route("/admin/v1/sync", _sync, methods=["GET"]),
    Route("/admin/v1/tagged/{id}", _item, methods=["GET"], middleware=[Middleware(_Tagged)]),
]


def _app() -> ASGIApp:
    mount = DialectMount("admin", ("/admin/",), ROUTES, ERRORS)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as the application does: a wrong method is then raised, not answered in plain text
        await mount(scope, receive, send)

    return app


def _requests(*calls: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://zida.test") as client:
            # Each call twice: the second finds its route remembered (fixed paths) or by bucket.
            out = []
            for method, path, kwargs in calls:
                for _ in range(2):
                    out.append(await client.request(method, path, **kwargs))
            return out

    return asyncio.run(run())


def test_which_routes_are_served_directly() -> None:
    direct = {route.path: _direct_endpoint(route) for route in ROUTES}
    assert direct["/admin/v1/items/{id}"] is _item
    assert direct["/admin/v1/echo"] is _echo
    assert direct["/admin/v1/sync"] is None  # a sync endpoint runs in Starlette's thread pool
    assert direct["/admin/v1/tagged/{id}"] is None  # route middleware must run


def test_direct_and_starlette_served_routes_answer_alike() -> None:
    replies = _requests(
        ("GET", "/admin/v1/items/42?q=x", {}),
        ("POST", "/admin/v1/echo", {"json": {"x": [1, "二"]}}),
        ("GET", "/admin/v1/sync", {}),
        ("GET", "/admin/v1/tagged/7", {}),
    )
    assert [r.status_code for r in replies] == [200] * 8
    assert replies[0].json() == replies[1].json() == {"id": "42", "q": "x"}
    assert replies[2].json() == replies[3].json() == {"body": [1, "二"]}
    assert replies[4].json() == {"thread": True}
    assert replies[6].json() == {"id": "7", "q": None}
    assert replies[6].headers["x-tagged"] == replies[7].headers["x-tagged"] == "1"
    assert "x-tagged" not in replies[0].headers


def test_a_bug_in_a_directly_served_endpoint_answers_in_the_dialects_format() -> None:
    for reply in _requests(("GET", "/admin/v1/broken", {})):
        assert reply.status_code == 500
        assert reply.json() == {"error": {"code": "internal", "message": "internal error"}}


def test_wrong_methods_and_unknown_paths_answer_in_the_dialects_format() -> None:
    replies = _requests(
        ("POST", "/admin/v1/items/42", {}),
        ("DELETE", "/admin/v1/echo", {}),
        ("GET", "/admin/v1/nope", {}),
    )
    assert [r.status_code for r in replies] == [405, 405, 405, 405, 404, 404]
    assert all(r.json()["error"]["code"] for r in replies)
