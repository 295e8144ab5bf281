"""Files on DingTalk's hosts: the oapi media upload, Yida's temporary URLs, and Zida's download route.

* ``POST /media/upload?access_token=&type=image|voice|video|file`` (oapi, multipart, the file in part ``media``):
  ``{"errcode": 0, "errmsg": "ok", "type", "media_id", "created_at"}``; the ``media_id`` is the file id an
  AttachmentField/ImageField item names as ``fileUuid``. Permission point: ``Yida.Form.Write`` (DingTalk names none
  for media; Zida's choice: an upload exists to be put into a form). The multipart body is parsed as it streams
  (never held whole); an oversized file is refused by ``Content-Length`` before it is read, or when it passes the
  limit (oapi: HTTP 200, errcode 40035 with the reason; the other hosts answer 413).
* ``GET /v1.0/yida/apps/temporaryUrls/{appType}`` (yida_1_0 ``get_open_url``; ``Yida.Attachment.Read``):
  ``fileUrl`` (a URL formData carries, or a bare file id), ``timeout`` in ms (default 60 000, 1 … 86 400 000;
  otherwise ``invalidParameter``), ``systemToken`` and ``userId`` (who must be able to read the file:
  ``zida.core.files.access``) → ``{"result": "<absolute signed URL>"}``.
* ``GET /ossFileHandle?fileName=<id>&type=download|open`` (and ``/fileHandle``): the bytes, with a temporary URL's
  ``expires``/``sig`` or an app credential's token (``x-acs-dingtalk-access-token`` header, ``access_token``
  query, or ``authorization: Bearer`` as the admin API sends it). Range requests (one range;
  ``Accept-Ranges: bytes``), the sniffed ``Content-Type`` with ``X-Content-Type-Options: nosniff``,
  ``Content-Disposition`` (``attachment``; ``inline`` for images and PDF when ``type=open``) with an ASCII
  fallback and the RFC 5987 ``filename*``, ``ETag`` (the SHA-256) and ``If-None-Match`` → 304,
  ``Cache-Control: private``. Errors answer in api.dingtalk.com's format.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zida.app_state import Zida
from zida.clock import now_ms
from zida.core.errors import InvalidArgument, Unauthenticated, ZidaError
from zida.core.files import repository
from zida.core.files.access import (
    MAX_TEMPORARY_MS,
    check_actor_may_read,
    check_principal_may_read,
    file_not_found,
    sign,
    uploader_of,
    verify_signature,
)
from zida.core.files.actions import Upload, upload_file
from zida.core.files.attachments import file_id_of_url
from zida.core.files.models import FileLimits, is_file_id
from zida.core.files.storage import open_storage
from zida.core.records.values import brief
from zida.dialects.dingtalk.auth import app_principal
from zida.dialects.dingtalk.http import TOKEN_HEADER, Call, endpoint, render_error, require_permission
from zida.dialects.dingtalk.oapi import oapi_error
from zida.dialects.files_http import check_body_length, file_response, multipart_file
from zida.dialects.http import check_url, new_request_id, zida_of

__all__ = ["download_routes", "oapi_routes", "routes"]

MEDIA_TYPES = ("image", "voice", "video", "file")


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json;charset=utf-8")


async def media_upload(request: Request) -> Response:
    """oapi ``POST /media/upload``: store the ``media`` part, answer its ``media_id``."""
    request_id = new_request_id()
    zida = zida_of(request)
    try:
        check_url(request)
        if request.method != "POST":
            raise InvalidArgument("/media/upload takes POST", reason="request.method_post")
        principal = await app_principal(zida.tokens, request.query_params.get("access_token"))
        require_permission(principal, "Yida.Form.Write")
        await zida.rate_limit(request, principal)
        media_type = request.query_params.get("type", "")
        if media_type not in MEDIA_TYPES:
            raise InvalidArgument(
                f"type must be one of {', '.join(MEDIA_TYPES)}", reason="argument.invalid", param="type"
            )
        limits = FileLimits.of(zida.settings)
        check_body_length(request, limits)
        name, chunks = await multipart_file(request, ("media", "file"))
        stored = await upload_file(
            zida.db,
            open_storage(zida.settings),
            limits,
            corp_pk=principal.corp_pk,
            uploader=uploader_of(principal),
            upload=Upload(name=name, chunks=chunks),
        )
    except ZidaError as exc:
        code, text = oapi_error(exc)
        return _json({"errcode": code, "errmsg": text, "request_id": request_id})
    return _json(
        {"errcode": 0, "errmsg": "ok", "type": media_type, "media_id": stored.file_id, "created_at": stored.created_at}
    )


def _absolute(call_request: Request, zida: Zida, path: str) -> str:
    base = zida.settings.public_url or str(call_request.base_url).rstrip("/")
    return base + path


@endpoint("Yida.Attachment.Read")
async def get_open_url(call: Call) -> dict[str, Any]:
    """yida_1_0 ``get_open_url``: a signed URL that reads the file without a token until ``timeout`` ms pass."""
    assert call.principal is not None
    file_url = call.text("fileUrl", "query", required=True, max_chars=2048)
    assert file_url is not None
    timeout = _timeout(call)
    file_id = file_url if is_file_id(file_url) else file_id_of_url(file_url)
    if file_id is None:
        raise InvalidArgument(
            f"fileUrl {brief(file_url)} is not the URL of a file of this server",
            reason="argument.invalid",
            param="fileUrl",
        )
    actor = await call.actor(app_type=call.path.get("appType"), where="query")
    file = await check_actor_may_read(
        call.zida.db, actor, call.principal, await repository.find_file(call.zida.db, file_id), file_id
    )
    expires = now_ms() + timeout
    signature = sign(call.zida.settings.secret_key, file.file_id, expires)
    path = f"/ossFileHandle?fileName={file.file_id}&type=download&expires={expires}&sig={signature}"
    return {"result": _absolute(call.request, call.zida, path)}


def _timeout(call: Call) -> int:
    raw = call.raw("timeout", "query")
    if raw is None or raw == "":
        return 60_000
    text = str(raw).strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,19}", text) or not 0 < int(text) <= MAX_TEMPORARY_MS:
        raise InvalidArgument(
            f"timeout must be between 1 and {MAX_TEMPORARY_MS} milliseconds (24 hours), got {brief(text)}",
            reason="argument.invalid",
            param="timeout",
        )
    return int(text)


async def download(request: Request) -> Response:
    """``GET /ossFileHandle`` and ``/fileHandle``: a file by a temporary URL's signature or an app token."""
    request_id = new_request_id()
    zida = zida_of(request)
    try:
        check_url(request)
        query = request.query_params
        file_id = query.get("fileName", "")
        if not is_file_id(file_id):
            raise file_not_found(file_id)
        signature = query.get("sig")
        if signature is not None:
            verify_signature(zida.settings.secret_key, file_id, query.get("expires", ""), signature, now_ms())
            file = await repository.find_file(zida.db, file_id)
            if file is None or file.state != "stored":
                raise file_not_found(file_id)
            await zida.rate_limit(request, None)
        else:
            bearer = request.headers.get("authorization", "")
            token = (
                request.headers.get(TOKEN_HEADER)
                or query.get("access_token")
                or (bearer[7:].strip() if bearer[:7].lower() == "bearer " else None)
            )
            if not token:
                raise Unauthenticated(
                    "send the access token (x-acs-dingtalk-access-token) or use a temporary URL",
                    reason="auth.token_missing",
                )
            principal = await app_principal(zida.tokens, token)
            await zida.rate_limit(request, principal)
            file = check_principal_may_read(principal, await repository.find_file(zida.db, file_id), file_id)
        return file_response(request, zida, file, query.get("type", "download"))
    except ZidaError as exc:
        return render_error(exc, request_id)


def routes() -> list[Route]:
    """api.dingtalk.com's file routes (temporary URLs) and Zida's download URLs (served on the same host)."""
    return [
        Route("/v1.0/yida/apps/temporaryUrls/{appType}", get_open_url, methods=["GET"]),
        *download_routes(),
    ]


def download_routes() -> list[Route]:
    """``/ossFileHandle`` and ``/fileHandle``."""
    return [Route(path, download, methods=["GET", "HEAD"]) for path in ("/ossFileHandle", "/fileHandle")]


def oapi_routes() -> list[Route]:
    """oapi's media upload."""
    return [Route("/media/upload", media_upload, methods=["GET", "POST"])]
