"""DingTalk's legacy host (oapi.dingtalk.com): ``?access_token=``, HTTP 200 with ``{errcode, errmsg}`` for every answer.

The wrapper :func:`oapi_endpoint` takes the token from the query (or a form or JSON body), checks the route's
permission point, reads a JSON or form-urlencoded body, and renders results as ``{"errcode": 0, "errmsg": "ok",
…}`` and errors through the table below (dingtalk-platform.md §2.1). Under ``/topapi/`` the gateway's own errors
(token, permission) are wrapped as ``errcode 88`` with ``sub_code``/``sub_msg``, and every answer carries a
``request_id``. Unknown paths answer 22 ("Invalid method"), wrong methods 43001/43002.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from zida.core.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    TooExpensive,
    Unauthenticated,
    Unavailable,
    Unsupported,
    ZidaError,
)
from zida.dialects.dingtalk.auth import app_principal
from zida.dialects.dingtalk.http import Call, require_permission
from zida.dialects.dingtalk.names import PARAMS
from zida.dialects.dingtalk.scopes import PERMISSIONS
from zida.dialects.http import (
    DialectMount,
    check_url,
    decode_json,
    new_request_id,
    query_params,
    read_json_object,
    read_limited,
    refuse_nul,
    zida_of,
)

__all__ = ["OAPI_ERRORS", "PREFIXES", "mount", "oapi_endpoint", "oapi_error"]

log = logging.getLogger("zida.dingtalk")

PREFIXES = ("/call_back/", "/topapi/", "/user/", "/department/", "/media/")

# (exception class, reason) -> (errcode, errmsg). Reason None: any other reason of the class.
OAPI_ERRORS: dict[tuple[type[ZidaError], str | None], tuple[int, str]] = {
    (Unauthenticated, "auth.token_expired"): (42001, "access_token超时"),
    (Unauthenticated, None): (40014, "不合法的access_token"),
    (PermissionDenied, "auth.scope_missing"): (60011, "没有调用该接口的权限"),
    (PermissionDenied, None): (43007, "需要授权"),
    (InvalidArgument, "request.method_get"): (43001, "需要GET请求"),
    (InvalidArgument, "request.method_post"): (43002, "需要POST请求"),
    (InvalidArgument, "event.bad_aes_key"): (900004, "不合法的aeskey"),
    # Contacts (DingTalk's global error table); 60130 is Zida's (DingTalk deletes a user who holds tasks).
    (InvalidArgument, "user.invalid_id"): (33012, "无效的USERID"),
    (InvalidArgument, "user.invalid_mobile"): (40104, "企业中无效的手机号"),
    (InvalidArgument, "page.bad_offset"): (40068, "不合法的偏移量"),
    (InvalidArgument, "page.bad_size"): (40069, "不合法的分页大小"),
    (InvalidArgument, "user.unknown"): (60121, "找不到该用户"),
    (InvalidArgument, "department.unknown"): (60003, "部门不存在"),
    (InvalidArgument, "department.cycle"): (60010, "部门存在循环关系"),
    (NotFound, "user.not_found"): (60121, "找不到该用户"),
    (NotFound, "department.not_found"): (60003, "部门不存在"),
    (Conflict, "user.exists"): (60102, "UserID在公司中已存在"),
    (Conflict, "user.username_taken"): (60102, "UserID在公司中已存在"),  # another user signs in with that name
    (Conflict, "user.contact_taken"): (60104, "手机号码在公司中已注册"),
    (Conflict, "department.not_empty"): (60005, "不允许删除有成员或子部门的部门"),
    (Conflict, "user.holds_tasks"): (60130, "用户有待处理的审批任务"),
    (InvalidArgument, "message.bad_agent"): (40056, "不合法的agentid"),
    (InvalidArgument, None): (40035, "不合法的参数"),
    (NotFound, "route.not_found"): (22, "Invalid method"),
    # Unconfirmed on DingTalk: the code for "no callback registered" (71007 sits between 71006 and 71009).
    (NotFound, "event.subscription_not_found"): (71007, "回调地址不存在"),
    (NotFound, None): (40035, "不合法的参数"),
    (Conflict, "event.subscription_exists"): (71006, "回调地址已经存在"),
    (Conflict, "event.check_url_failed"): (71009, "返回文本非success"),
    (Conflict, None): (-1, "系统繁忙"),
    (RateLimited, None): (90018, "当前请求频率过高，请稍后再试"),
    (TooExpensive, None): (40035, "不合法的参数"),
    (Unsupported, None): (40035, "不支持的操作"),
    # oapi answers HTTP 200 to everything; -1 "系统繁忙" is DingTalk's "try again later".
    (Unavailable, None): (-1, "系统繁忙"),
}
_GATEWAY = (Unauthenticated, PermissionDenied, RateLimited)  # under /topapi/: errcode 88 with sub_code


def oapi_error(exc: ZidaError) -> tuple[int, str]:
    """(errcode, errmsg) of a core error: the table's text, then what exactly was wrong."""
    for klass in type(exc).__mro__:
        if (klass, exc.reason) in OAPI_ERRORS:
            code, text = OAPI_ERRORS[(klass, exc.reason)]
            break
    else:
        for klass in type(exc).__mro__:
            if (klass, None) in OAPI_ERRORS:
                code, text = OAPI_ERRORS[(klass, None)]
                break
        else:
            code, text = -1, "系统繁忙"
    if isinstance(exc, _GATEWAY) or exc.reason == "route.not_found":
        return code, text
    return code, f"{text}: {exc.render(PARAMS)}"


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json;charset=utf-8")


def _error_response(exc: ZidaError, request_id: str, path: str) -> Response:
    code, text = oapi_error(exc)
    if path.startswith("/topapi/") and isinstance(exc, _GATEWAY):
        sub_code, sub_msg = (
            ("40000", "access_token is blank") if exc.reason == "auth.token_missing" else (str(code), text)
        )  # the gateway's words for a missing token, as probed on DingTalk
        # errcode 88 (鉴权异常 in the global table) with the errmsg DingTalk's gateway writes, naming the sub-code
        return _json({"errcode": 88, "errmsg": f"ding talk error[subcode={sub_code},submsg={sub_msg}]",
                      "sub_code": sub_code, "sub_msg": sub_msg, "request_id": request_id})  # fmt: skip
    body: dict[str, Any] = {"errcode": code, "errmsg": text}
    if path.startswith("/topapi/"):
        body["request_id"] = request_id
    return _json(body)


class _Errors:
    """oapi's answers to errors (``zida.dialects.http.ErrorFormat``): always HTTP 200."""

    def error(self, exc: ZidaError, request_id: str) -> Response:
        code, text = oapi_error(exc)
        path = str(exc.details.get("path", ""))
        if exc.reason == "route.not_found" and path.startswith("/topapi/"):
            # As DingTalk names an unknown topapi method: its ApiName, made from the path.
            name = "dingtalk.oapi." + ".".join(p for p in path[len("/topapi/") :].split("/") if p)
            sub_msg = f"不合法ApiName，ApiName = {name[:200]}"
            return _json({"errcode": code, "errmsg": f"{text}[submsg={sub_msg}]", "sub_msg": sub_msg,
                          "request_id": request_id})  # fmt: skip
        return _json({"errcode": code, "errmsg": text, "request_id": request_id})

    def unhandled(self, request_id: str) -> Response:
        return _json({"errcode": -1, "errmsg": "系统繁忙", "request_id": request_id})


ERRORS = _Errors()


_MAX_FORM_FIELDS = 1_000  # an oapi call's form body names a few parameters


async def _body(request: Request, limit: int) -> dict[str, Any]:
    """A JSON object, or form-urlencoded fields (oapi takes both)."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raw = await read_limited(request, limit)
        text = raw.decode("utf-8", "replace")
        try:  # bounded: millions of pairs took the loop seconds (and this runs before the token is checked)
            fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS))
        except ValueError:
            raise InvalidArgument(
                f"the form body has more than {_MAX_FORM_FIELDS} fields", reason="request.too_large"
            ) from None
        refuse_nul(text, fields, "request body")
        return fields
    return await read_json_object(request, limit)


Handler = Callable[[Call], Awaitable[Any]]


def oapi_endpoint(permission: str | None, method: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap an oapi handler (module docstring); it returns the fields of a successful answer."""
    if permission is not None and permission not in PERMISSIONS:
        raise ValueError(f"unknown DingTalk permission point {permission!r}")

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            request_id = new_request_id()
            zida = zida_of(request)
            path = request.scope["path"]  # not request.url, which rebuilds the whole URL
            try:
                check_url(request)
                if request.method != method:
                    raise InvalidArgument(
                        f"{path} takes {method}",
                        reason="request.method_get" if method == "GET" else "request.method_post",
                    )
                body = await _body(request, zida.settings.max_body_bytes) if method == "POST" else {}
                token = query_params(request).get("access_token") or body.get("access_token")
                principal = await app_principal(zida.tokens, token if isinstance(token, str) else None)
                if permission is not None:
                    require_permission(principal, permission)
                await zida.rate_limit(request, principal)
                call = Call(request=request, zida=zida, body=body, principal=principal, path=request.path_params)
                result = await handler(call)
            except ZidaError as exc:
                return _error_response(exc, request_id, path)
            except Exception:
                log.exception("unhandled error in %s %s (request %s)", request.method, path, request_id)
                return ERRORS.unhandled(request_id)
            answer = {"errcode": 0, "errmsg": "ok", **(result or {})}
            if path.startswith("/topapi/"):
                answer["request_id"] = request_id
            return _json(answer)

        route.__name__ = handler.__name__
        route.__doc__ = handler.__doc__
        return route

    return wrap


def json_field(call: Call, name: str) -> Any:
    """A parameter that may come as JSON text (a form field) or as a decoded value (a JSON body)."""
    value = call.body.get(name)
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        return decode_json(value, name, param=name)
    return value


def mount(routes: list[Any]) -> DialectMount:
    """oapi's mount: ``/call_back/…`` and ``/topapi/…`` (``/gettoken`` is served with api.dingtalk.com's routes)."""
    return DialectMount("dingtalk-oapi", PREFIXES, routes, ERRORS)
