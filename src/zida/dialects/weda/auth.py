"""WeDa's sign-in service (``/auth/v1/…``): client-credential tokens, users' sign-in, renewal, who am I, sign-out.

* ``POST /auth/v1/token/clientCredential`` — ``Authorization: Basic base64(SecretId:SecretKey)``, body
  ``{"grant_type": "client_credentials"}`` (other keys ignored) → ``{token_type, access_token, expires_in}``
  (``ZIDA_WEDA_TOKEN_TTL_SECONDS``, 72 h as WeDa). Asking again within validity gives the same token back, renewed.
* ``POST /auth/v1/signin?client_id=<envId>`` — ``{"username", "password"}`` (the JS SDK sends it as
  ``text/plain``) → ``{token_type, access_token, refresh_token, expires_in, sub, scope, groups}``. ``sub`` is the
  user's userId: that is a user's WeDa id here. ``client_id`` names the environment (the corp with that
  ``weda.envId``); it may be left out when one corp only has a WeDa environment.
* ``POST /auth/v1/token`` — ``{"grant_type": "refresh_token", "refresh_token"}`` renews a session (the refresh
  token is spent, a new one comes back); ``grant_type: client_credentials`` with Basic auth is the same as
  ``clientCredential``.
* ``GET /auth/v1/user/me`` — the signed-in user (``sub``, ``name``, ``username``, ``email``, ``phone_number``).
* ``POST /auth/v1/user/signout`` — ends the session of the Bearer token.

Errors are OAuth-style ``{"error", "error_description"}`` (``invalid_client``, ``invalid_username_or_password``,
``invalid_grant``, ``unsupported_grant_type``…).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zida.app_state import Zida
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unsupported, ZidaError
from zida.core.org.repository import corp_of_environment, find_users
from zida.dialects.http import check_url, new_request_id, read_json_object, zida_of
from zida.dialects.weda.http import AUTH_ERRORS, bearer, json_response, log

__all__ = ["routes"]

AuthHandler = Callable[[Zida, Request, dict[str, Any]], Awaitable[Any]]


def _auth_route(handler: AuthHandler) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        request_id = new_request_id()
        zida = zida_of(request)
        try:
            await zida.rate_limit(request, None)
            check_url(request)
            body = await read_json_object(request, zida.settings.max_body_bytes) if request.method == "POST" else {}
            result = await handler(zida, request, body)
        except ZidaError as exc:
            return AUTH_ERRORS.error(exc, request_id)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id)
            return AUTH_ERRORS.unhandled(request_id)
        return json_response(result, 200, request_id)

    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route


def _basic(request: Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise Unauthenticated(
            "send Authorization: Basic base64(SecretId:SecretKey)", reason="auth.bad_credentials", param="client_id"
        )
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the Basic credentials are not valid base64", reason="auth.bad_credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        raise Unauthenticated("the Basic credentials must be SecretId:SecretKey", reason="auth.bad_credentials")
    return client_id, secret


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string", reason="argument.invalid", param=name)
    return value


async def _client_credentials(zida: Zida, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    grant = _text(body, "grant_type") or "client_credentials"
    if grant != "client_credentials":
        raise Unsupported(f"grant_type {grant!r} is not supported here: use client_credentials", reason="auth.grant")
    client_id, secret = _basic(request)
    issued = await zida.tokens.issue(client_id, secret, ttl_seconds=zida.settings.weda_token_ttl_seconds)
    return {"token_type": "Bearer", "access_token": issued.token, "expires_in": issued.expires_in}


async def client_credential(zida: Zida, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """POST /auth/v1/token/clientCredential."""
    return await _client_credentials(zida, request, body)


def _client_id(request: Request, body: dict[str, Any]) -> str:
    """The environment id a sign-in names (query, else body)."""
    return request.query_params.get("client_id") or _text(body, "client_id")


def _session_body(signed: Any) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "access_token": signed.access_token,
        "refresh_token": signed.refresh_token,
        "expires_in": signed.expires_in,
        "sub": signed.user_id,
        "scope": "user",
        "groups": [],
    }


async def sign_in(zida: Zida, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """POST /auth/v1/signin."""
    if body.get("verification_token"):
        raise Unsupported("sign-in by verification code is not supported: use username and password", reason="auth")
    client_id = _client_id(request, body)
    corp_pk = await corp_of_environment(zida.db, client_id)
    signed = await zida.sessions.sign_in(corp_pk, _text(body, "username"), _text(body, "password"), client_id)
    return _session_body(signed)


async def token(zida: Zida, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """POST /auth/v1/token: renew a session, or a client-credential token."""
    grant = _text(body, "grant_type")
    if grant == "client_credentials":
        return await _client_credentials(zida, request, body)
    if grant != "refresh_token":
        raise Unsupported(
            f"grant_type {grant!r} is not supported: use refresh_token or client_credentials", reason="auth.grant"
        )
    corp_pk = await corp_of_environment(zida.db, _client_id(request, body))
    return _session_body(await zida.sessions.renew(corp_pk, _text(body, "refresh_token")))


async def _session_user(zida: Zida, request: Request) -> tuple[int, str]:
    principal = await zida.tokens.authenticate(bearer(request))
    if principal.kind != "session" or principal.user_id is None:
        raise PermissionDenied("this is a client-credential token, not a signed-in user's", reason="auth.not_a_user")
    return principal.corp_pk, principal.user_id


async def me(zida: Zida, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """GET /auth/v1/user/me."""
    corp_pk, user_id = await _session_user(zida, request)
    users = await find_users(zida.db, corp_pk, {user_id})
    user = users.get(user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", reason="user.not_found")
    return {
        "sub": user_id,
        "name": user.name,
        "username": user.username or user_id,
        "email": user.email or "",
        "phone_number": user.mobile or "",
        "groups": [],
        "status": "ACTIVE",
    }


async def sign_out(zida: Zida, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """POST /auth/v1/user/signout."""
    await _session_user(zida, request)
    token = str(bearer(request))
    await zida.sessions.sign_out(token)  # no worker caches a session's token: it ends everywhere at once
    return {}


def routes() -> list[Route]:
    """The sign-in service's routes."""
    return [
        Route("/auth/v1/token/clientCredential", _auth_route(client_credential), methods=["POST"]),
        Route("/auth/v1/signin", _auth_route(sign_in), methods=["POST"]),
        Route("/auth/v1/token", _auth_route(token), methods=["POST"]),
        Route("/auth/v1/user/me", _auth_route(me), methods=["GET"]),
        Route("/auth/v1/user/signout", _auth_route(sign_out), methods=["POST"]),
    ]
