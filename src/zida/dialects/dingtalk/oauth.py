"""Token endpoints: ``POST /v1.0/oauth2/accessToken``, ``GET /gettoken``, ``POST /v1.0/oauth2/{corpId}/token``."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zida.app_state import Zida
from zida.core.errors import InvalidArgument, RateLimited, Unauthenticated, ZidaError
from zida.dialects.dingtalk.http import Call, endpoint, json_response
from zida.dialects.http import new_request_id

__all__ = ["routes"]

log = logging.getLogger("zida.dingtalk")


@endpoint(None, authenticate=False)
async def get_access_token(call: Call) -> dict[str, Any]:
    """Internal-app token: ``{appKey, appSecret}`` → ``{accessToken, expireIn}``."""
    issued = await call.zida.tokens.issue(call.text("appKey") or "", call.text("appSecret") or "")
    return {"accessToken": issued.token, "expireIn": issued.expires_in}


async def gettoken(request: Request) -> Response:
    """Legacy oapi token: always HTTP 200, errors as ``{errcode, errmsg}`` (a wrong method is 43001)."""
    if request.method != "GET":
        return json_response({"errcode": 43001, "errmsg": "需要GET请求"})
    zida: Zida = request.app.state.zida
    if "\x00" in request.url.query or "%00" in request.url.query:
        return json_response({"errcode": 40035, "errmsg": "参数中不能含有NUL字符"})
    appkey = request.query_params.get("appkey") or request.query_params.get("corpid")
    appsecret = request.query_params.get("appsecret") or request.query_params.get("corpsecret")
    if not appkey or not appsecret:
        return json_response({"errcode": 40035, "errmsg": "缺少参数 corpid or appkey"})
    try:
        issued = await zida.tokens.issue(appkey, appsecret)
    except Unauthenticated:
        return json_response({"errcode": 40096, "errmsg": "不合法的appKey或appSecret"})
    except RateLimited:
        return json_response({"errcode": 90018, "errmsg": "当前请求频率过高，请稍后再试"})
    except ZidaError as exc:
        return json_response({"errcode": 40035, "errmsg": exc.message})
    except Exception:
        request_id = new_request_id()
        log.exception("gettoken failed (request %s)", request_id)
        return json_response({"errcode": -1, "errmsg": "系统繁忙", "request_id": request_id})
    return json_response({"errcode": 0, "access_token": issued.token, "errmsg": "ok", "expires_in": issued.expires_in})


@endpoint(None, authenticate=False)
async def corp_token(call: Call) -> dict[str, Any]:
    """Client-credentials token of a corp: snake_case request and reply."""
    if call.text("grant_type") != "client_credentials":
        raise InvalidArgument("grant_type must be client_credentials", reason="auth.unsupported_grant_type")
    client_id, client_secret = call.text("client_id"), call.text("client_secret")
    if not client_id or not client_secret:
        raise InvalidArgument("client_id and client_secret are required", reason="auth.credentials_missing")
    try:
        issued = await call.zida.tokens.issue(client_id, client_secret, corp_id=call.path["corpId"])
    except Unauthenticated as exc:
        raise Unauthenticated(exc.message, reason="auth.invalid_client") from None
    return {"access_token": issued.token, "expires_in": issued.expires_in}


def routes() -> list[Route]:
    """The token routes."""
    return [
        Route("/v1.0/oauth2/accessToken", get_access_token, methods=["POST"]),
        Route("/gettoken", gettoken, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        Route("/v1.0/oauth2/{corpId}/token", corp_token, methods=["POST"]),
    ]
