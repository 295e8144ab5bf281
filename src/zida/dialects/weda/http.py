"""The WeDa dialect's endpoint wrappers and mounts (over ``zida.dialects.http``).

Three mounts, each answering in its own format (``zida.dialects.weda.errors``): ``/auth/`` (the sign-in service,
OAuth-style errors), ``/v1/model/`` (data models: HTTP 200 with ``{code, message, requestId}``) and ``/weda/`` +
``/v1/sql/`` (TencentCloud API 3.0's ``{"Response": {...}}``). A missing, invalid or expired access token is
answered by the gateway before any service sees the request: HTTP 401 with ``{"code": "INVALID_ACCESS_TOKEN" |
"MISSING_CREDENTIALS", "message", "requestId"}``.

``{envType}`` in a path is ``prod`` (WeDa's published environment), or ``pre``/``dev`` (its preview environment,
the same thing). Each is a corp's data: the corp whose bundle says ``weda: {envId}`` holds an environment's prod
data, the one that says ``weda: {envId, envType: pre}`` its preview data. A token of either (a client credential or
a signed-in user's) reaches both; a user acts in the preview data as the user with the same userId there. An
environment without preview data answers ``pre``/``dev`` with ``INVALID_ENV``, as any other envType.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from zida.app_state import Zida
from zida.core.apps.models import Form
from zida.core.errors import InvalidArgument, PermissionDenied, Unauthenticated, Unavailable, ZidaError
from zida.core.org.repository import environment_corp
from zida.core.principals import Principal, Scope
from zida.dialects.http import (
    DialectMount,
    ErrorFormat,
    check_url,
    new_request_id,
    query_params,
    read_json_object,
    retry_after,
    zida_of,
)
from zida.dialects.weda.errors import PARAMS, api_code, auth_error, model_code

__all__ = [
    "API_ERRORS",
    "AUTH_ERRORS",
    "MAX_PAGE_NO",
    "MODEL_ERRORS",
    "WedaCall",
    "api_endpoint",
    "bearer",
    "check_scope",
    "json_response",
    "model_endpoint",
    "mounts",
]

log = logging.getLogger("zida.weda")

ENV_TYPES = ("prod", "pre", "dev")
MAX_PAGE_NO = 1_000_000  # a page number past it is refused (pages are echoed back; offsets must fit 64 bits)


def json_response(body: Any, status: int = 200, request_id: str | None = None) -> Response:
    """A JSON response (with ``X-Request-Id`` when given)."""
    response = Response(orjson.dumps(body), status_code=status, media_type="application/json; charset=utf-8")
    if request_id:
        response.headers["x-request-id"] = request_id
    return response


def gateway_error(exc: ZidaError, request_id: str) -> Response:
    """The gateway's answer to a request without a valid access token."""
    code = "MISSING_CREDENTIALS" if exc.reason == "auth.token_missing" else "INVALID_ACCESS_TOKEN"
    message = {
        "auth.token_expired": "access token verify failed: jwt expired",
        "auth.token_invalid": "access token verify failed: invalid token",
    }.get(exc.reason, exc.render(PARAMS))
    return json_response({"code": code, "message": message, "requestId": request_id}, 401, request_id)


def _status(exc: ZidaError) -> int:
    """HTTP 200 for the services' answers, as WeDa sends them; 503 when the database is out of reach, so that any
    HTTP client or load balancer sees a retryable failure (the body still says which, in the service's format)."""
    return 503 if isinstance(exc, Unavailable) else 200


class _ModelErrors:
    def error(self, exc: ZidaError, request_id: str) -> Response:
        if isinstance(exc, Unauthenticated):
            return gateway_error(exc, request_id)
        body = {"code": model_code(exc), "message": exc.render(PARAMS), "requestId": request_id}
        return retry_after(json_response(body, _status(exc), request_id), exc)

    def unhandled(self, request_id: str) -> Response:
        body = {"code": "SYS_ERR", "message": "internal error", "requestId": request_id}
        return json_response(body, 500, request_id)


class _ApiErrors:
    def error(self, exc: ZidaError, request_id: str) -> Response:
        if isinstance(exc, Unauthenticated):
            return gateway_error(exc, request_id)
        error = {"Code": api_code(exc), "Message": exc.render(PARAMS)}
        response = json_response({"Response": {"RequestId": request_id, "Error": error}}, _status(exc), request_id)
        return retry_after(response, exc)

    def unhandled(self, request_id: str) -> Response:
        error = {"Code": "InternalError", "Message": "internal error"}
        return json_response({"Response": {"RequestId": request_id, "Error": error}}, 500, request_id)


class _AuthErrors:
    def error(self, exc: ZidaError, request_id: str) -> Response:
        status, name = auth_error(exc)
        response = json_response({"error": name, "error_description": exc.render(PARAMS)}, status, request_id)
        return retry_after(response, exc)

    def unhandled(self, request_id: str) -> Response:
        return json_response({"error": "internal", "error_description": "internal error"}, 500, request_id)


MODEL_ERRORS = _ModelErrors()
API_ERRORS = _ApiErrors()
AUTH_ERRORS = _AuthErrors()


# The core's words a data model's caller does not know → WeDa's (system fields: zida.dialects.weda.models.SYSTEM).
_MODEL_WORDS = {"form instance": "record", "created_at": "createdAt", "modified_at": "updatedAt"}


@dataclass
class WedaCall:
    """One authenticated WeDa request: who calls, the environment, path parameters and the JSON body."""

    zida: Zida
    request: Request
    principal: Principal
    path: dict[str, Any]
    body: dict[str, Any]
    request_id: str
    # Zida's field ids → the data model's field names, once the call knows its model (``named_like``).
    field_names: dict[str, str] = field(default_factory=dict)

    def named_like(self, form: Form) -> None:
        """Errors of this call name ``form``'s fields as its data model does (their aliases), not by field id, and
        the model, its records and their system fields in its words, not the form's."""
        for f in form.fields:
            for named in (f, *f.children):
                if named.alias:
                    self.field_names[named.field_id] = named.alias
        if form.model_name:
            self.field_names[form.form_uuid] = f"data model {form.model_name}"
        self.field_names.update(_MODEL_WORDS)

    def query(self, name: str) -> str | None:
        """A query-string parameter (None: absent)."""
        return query_params(self.request).get(name)


Handler = Callable[[WedaCall], Awaitable[Any]]


def in_model_terms(exc: ZidaError, names: Mapping[str, str]) -> ZidaError:
    """``exc`` with the field ids in its message (``textField_x (标题)``, ``textField_x``) written as the data model's
    field names, which are all a WeDa caller knows."""
    template = exc.template
    for field_id, name in names.items():
        if field_id in template:
            mention = re.compile(rf"{re.escape(field_id)}(?: \([^()]*\))?(?![A-Za-z0-9_])")
            template = mention.sub(name.replace("\\", "\\\\"), template)
    if template == exc.template:
        return exc
    return type(exc)(template, reason=exc.reason, **exc.details)


def bearer(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (None: no such header)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def environment_principal(zida: Zida, principal: Principal, env_type: str) -> Principal:
    """The caller inside the data the path's ``{envType}`` names: its environment's prod data, or (``pre``/``dev``)
    its preview data, held by the corp whose bundle says ``weda: {envId, envType: pre}``."""
    if env_type not in ENV_TYPES:
        raise InvalidArgument(f"unknown envType {env_type!r}: use prod, pre or dev", reason="env.invalid")
    wanted = "prod" if env_type == "prod" else "pre"
    corp = await environment_corp(zida.db, principal.corp_pk, wanted)
    if corp is None:
        raise InvalidArgument(
            f"this environment has no {wanted} data on this server (a corp whose bundle has"
            f" weda: {{envId: <the same id>, envType: {wanted}}})",
            reason="env.invalid",
        )
    return principal if corp.pk == principal.corp_pk else replace(principal, corp_pk=corp.pk, corp_id=corp.corp_id)


def _endpoint(
    errors: ErrorFormat, wrap_result: Callable[[Any, str], Response], scope: Scope | None, *, data: bool = False
) -> Callable[[Handler], Any]:
    """``data``: the body carries record values; integers wider than 64 bits are read exactly (``decode_json``)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            request_id = new_request_id()
            zida = zida_of(request)
            call: WedaCall | None = None
            try:
                principal = await zida.tokens.authenticate(bearer(request))
                if scope is not None:
                    check_scope(principal, scope)
                await zida.rate_limit(request, principal)
                check_url(request)
                env_type = request.path_params.get("env")
                if env_type is not None:
                    principal = await environment_principal(zida, principal, str(env_type))
                body = (
                    await read_json_object(request, zida.settings.max_body_bytes, exact_integers=data)
                    if request.method in ("POST", "PUT", "PATCH")
                    else {}
                )
                call = WedaCall(zida, request, principal, dict(request.path_params), body, request_id)
                result = await handler(call)
            except ZidaError as exc:
                return errors.error(in_model_terms(exc, call.field_names) if call is not None else exc, request_id)
            except Exception:
                log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id)
                return errors.unhandled(request_id)
            return result if isinstance(result, Response) else wrap_result(result, request_id)

        route.__name__ = handler.__name__
        route.__doc__ = handler.__doc__
        return route

    return wrap


def model_endpoint(scope: Scope) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A data-model route: Bearer token with ``scope``; the handler's result is sent as ``{data, requestId}``."""
    return _endpoint(
        MODEL_ERRORS, lambda data, rid: json_response({"data": data, "requestId": rid}, 200, rid), scope, data=True
    )


def api_endpoint(
    scope: Scope | None, *, data: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A workflow, query-template or permission route: Bearer token (with ``scope`` when given); the handler's
    result is sent as ``{"Response": {"RequestId", "Data"}}``. ``data``: the body may carry record values (the
    workflow's start and task forms), read as a data-model body is."""
    return _endpoint(
        API_ERRORS,
        lambda result, rid: json_response({"Response": {"RequestId": rid, "Data": result}}, 200, rid),
        scope,
        data=data,
    )


def check_scope(principal: Principal, scope: Scope) -> None:
    """Refuse a principal without ``scope`` (routes whose scope depends on the body check it themselves)."""
    if not principal.allows(scope):
        raise PermissionDenied(
            f"the credential {principal.client_id} lacks the scope {scope.value}", reason="auth.scope_missing"
        )


def mounts(auth_routes: list[Any], model_routes: list[Any], api_routes: list[Any]) -> list[DialectMount]:
    """The WeDa dialect's mounts, each with its error format."""
    return [
        DialectMount("weda-auth", ("/auth/",), auth_routes, AUTH_ERRORS),
        DialectMount("weda-model", ("/v1/model/",), model_routes, MODEL_ERRORS),
        DialectMount("weda-api", ("/weda/", "/v1/sql/"), api_routes, API_ERRORS),
    ]
