"""One OpenAPI 3.1 document of every HTTP route of every dialect, generated from the mounted routes (so it cannot
drift from them), served at ``/openapi.json``; ``/docs`` is a page listing it, off unless ``ZIDA_API_DOCS`` is on.

Each operation has its path and method, an ``operationId`` (``<method> <path>``), the handler's docstring as
summary and description, its path parameters, the dialect as its tag, the dialect's way of sending the token
(``security``) and the dialect's error body. Request and response bodies are described by the dialects' docstrings
and the README, not (yet) as schemas: a body is "a JSON object" here.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from starlette.routing import Route

from zida.dialects.http import DialectMount

__all__ = ["docs_page", "openapi_document"]

_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")

# How each mount takes its token, and what its errors look like.
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "dingtalk": [{"dingtalkToken": []}],
    "dingtalk-oapi": [{"oapiToken": []}],
    "weda-model": [{"bearer": []}],
    "weda-api": [{"bearer": []}],
    "weda-storage": [{"bearer": []}],
    "admin": [{"bearer": []}],
}
_ERRORS: dict[str, str] = {
    "dingtalk": "DingTalkError",
    "dingtalk-oapi": "OapiAnswer",
    "weda-auth": "OAuthError",
    "weda-model": "WedaModelError",
    "weda-api": "WedaApiError",
    "weda-storage": "WedaModelError",
    "admin": "AdminError",
}
_JSON_OBJECT = {"type": "object", "additionalProperties": True}
_COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "dingtalkToken": {"type": "apiKey", "in": "header", "name": "x-acs-dingtalk-access-token"},
        "oapiToken": {"type": "apiKey", "in": "query", "name": "access_token"},
        "bearer": {"type": "http", "scheme": "bearer"},
    },
    "schemas": {
        "DingTalkError": {
            "type": "object",
            "required": ["code", "message", "requestid"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "requestid": {"type": "string"}},
        },
        "OapiAnswer": {
            "type": "object",
            "description": "HTTP 200 for every answer: errcode 0 is a success",
            "required": ["errcode", "errmsg"],
            "properties": {
                "errcode": {"type": "integer"},
                "errmsg": {"type": "string"},
                "sub_code": {"type": "string"},
                "sub_msg": {"type": "string"},
                "request_id": {"type": "string"},
            },
        },
        "OAuthError": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        },
        "WedaModelError": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "requestId": {"type": "string"}},
        },
        "WedaApiError": {
            "type": "object",
            "properties": {
                "Response": {
                    "type": "object",
                    "properties": {"RequestId": {"type": "string"}, "Error": _JSON_OBJECT, "Data": {}},
                }
            },
        },
        "AdminError": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
    },
}


def _operation(mount: DialectMount, route: Route, method: str) -> dict[str, Any]:
    doc = (route.endpoint.__doc__ or "").strip()
    summary = doc.splitlines()[0] if doc else route.name
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()} {route.path}",  # unique: one handler may serve several paths
        "summary": summary,
        "tags": [mount.name],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(route.path)
        ],
        "responses": {
            "200": {"description": "the answer", "content": {"application/json": {"schema": _JSON_OBJECT}}},
        },
    }
    if doc and doc != summary:
        operation["description"] = doc
    if mount.name in _SECURITY:
        operation["security"] = _SECURITY[mount.name]
    error = _ERRORS.get(mount.name)
    if error is not None:
        ref = {"$ref": f"#/components/schemas/{error}"}
        operation["responses"]["default"] = {
            "description": "an error in the dialect's format",
            "content": {"application/json": {"schema": ref}},
        }
    if method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": _JSON_OBJECT}}}
    return operation


def openapi_document(mounts: Sequence[DialectMount], version: str) -> dict[str, Any]:
    """The document of every HTTP route of ``mounts`` (HEAD, which Starlette adds to GET routes, left out)."""
    paths: dict[str, dict[str, Any]] = {}
    for mount in mounts:
        for route in mount.routes:
            if not isinstance(route, Route):
                continue
            for method in sorted(route.methods or ()):
                if method == "HEAD" and "GET" in (route.methods or ()):
                    continue
                paths.setdefault(route.path, {})[method.lower()] = _operation(mount, route, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Zida",
            "version": version,
            "description": "DingTalk / Yida, WeDa and Zida's admin API over one core (README).",
        },
        "paths": dict(sorted(paths.items())),
        "components": _COMPONENTS,
        "tags": [{"name": m.name, "description": f"paths under {', '.join(m.prefixes)}"} for m in mounts],
    }


def docs_page(document: dict[str, Any]) -> str:
    """A page listing the document's operations by dialect (no script, no asset from elsewhere)."""
    rows: dict[str, list[str]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            rows.setdefault(op["tags"][0], []).append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td></tr>"
            )
    sections = "".join(f"<h2>{html.escape(tag)}</h2><table>{''.join(lines)}</table>" for tag, lines in rows.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Zida API</title><style>"
        "body{font-family:sans-serif;margin:2em}td{padding:2px 8px;vertical-align:top}</style></head><body>"
        f"<h1>Zida API {html.escape(document['info']['version'])}</h1>"
        "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a>.</p>"
        f"{sections}</body></html>"
    )
