"""The admin API's routes: health, the approval operations (``zida.dialects.admin.workflow``), the org directory and
the audit log (``…admin.org``), credentials (``…admin.credentials``), apps and forms (``…admin.apps``), event
subscriptions (``…admin.events``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from zida.app_state import Zida
from zida.core.errors import NotFound
from zida.dialects.admin import apps, credentials, events, org, workflow
from zida.dialects.admin.http import ERRORS
from zida.dialects.http import new_request_id
from zida.openapi import docs_page

__all__ = ["routes"]


async def healthz(request: Request) -> Response:
    """200 when the database answers, 503 otherwise."""
    zida: Zida = request.app.state.zida
    try:
        ok = await zida.db.ping()
    except Exception:
        ok = False
    return JSONResponse({"status": "ok" if ok else "unavailable", "database": ok}, status_code=200 if ok else 503)


async def openapi_json(request: Request) -> Response:
    """The OpenAPI document of every route of every dialect (``zida.openapi``)."""
    return JSONResponse(request.app.state.openapi)


async def docs(request: Request) -> Response:
    """A page listing the API's routes (``ZIDA_API_DOCS``; off: 404 like any unknown path)."""
    zida: Zida = request.app.state.zida
    if not zida.settings.api_docs:
        return ERRORS.error(NotFound("/docs is off (ZIDA_API_DOCS)", reason="route.not_found"), new_request_id())
    return HTMLResponse(docs_page(request.app.state.openapi))


def routes() -> list[Route]:
    """Admin routes."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        *workflow.routes(),
        *org.routes(),
        *credentials.routes(),
        *apps.routes(),
        *events.routes(),
    ]
