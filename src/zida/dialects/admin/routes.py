"""The admin API's routes: health, the approval operations (``zida.dialects.admin.workflow``), the org directory and
the audit log (``…admin.org``), credentials (``…admin.credentials``), apps and forms (``…admin.apps``), event
subscriptions (``…admin.events``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zida.app_state import Zida
from zida.dialects.admin import apps, credentials, events, org, workflow

__all__ = ["routes"]


async def healthz(request: Request) -> Response:
    """200 when the database answers, 503 otherwise."""
    zida: Zida = request.app.state.zida
    try:
        ok = await zida.db.ping()
    except Exception:
        ok = False
    return JSONResponse({"status": "ok" if ok else "unavailable", "database": ok}, status_code=200 if ok else 503)


def routes() -> list[Route]:
    """Admin routes."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        *workflow.routes(),
        *org.routes(),
        *credentials.routes(),
        *apps.routes(),
        *events.routes(),
    ]
