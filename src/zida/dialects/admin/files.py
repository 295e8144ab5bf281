"""The admin API's files: upload and look up a file of the credential's corp.

* ``POST /admin/v1/files?name=<file name>``: the body is the file's bytes (any ``Content-Type``; a
  ``multipart/form-data`` body's part ``file`` is taken instead). A raw body needs its ``Content-Length``: zero,
  a body of another length, more than ``ZIDA_FILES_MAX_BYTES`` or past the corp's quota are refused (413 for the
  sizes). → 201 ``{"fileId", "name", "size", "contentType", "ext", "downloadUrl", "createdAt"}``.
* ``GET /admin/v1/files/{fileId}``: the same description (another corp's file: 404).

The bytes are downloaded from ``downloadUrl`` (Zida's download route) with the same bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from zida.core.errors import InvalidArgument, PermissionDenied, Unauthenticated, ZidaError
from zida.core.files import repository
from zida.core.files.access import file_not_found, uploader_of
from zida.core.files.actions import Upload, upload_file
from zida.core.files.attachments import download_url
from zida.core.files.models import FileLimits, StoredFile, is_file_id
from zida.core.files.storage import open_storage
from zida.core.principals import Principal, Scope
from zida.dialects.admin.http import ERRORS, respond
from zida.dialects.admin.scopes import ADMIN_PERMISSION
from zida.dialects.files_http import check_body_length, multipart_file
from zida.dialects.http import check_url, new_request_id, zida_of
from zida.ids import is_decimal

__all__ = ["routes"]


def describe(file: StoredFile) -> dict[str, Any]:
    """A file as the admin API shows it."""
    return {
        "fileId": file.file_id,
        "name": file.name,
        "size": file.size,
        "contentType": file.content_type,
        "ext": file.ext,
        "sha256": file.sha256,
        "attached": file.attached_at is not None,
        "downloadUrl": download_url(file.file_id),
        "createdAt": file.created_at,
    }


async def _admin(request: Request) -> Principal:
    zida = zida_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send authorization: Bearer <access token>", reason="auth.token_missing")
    principal = await zida.tokens.authenticate(token.strip())
    if not principal.allows(Scope.ADMIN):
        raise PermissionDenied(
            f"the app credential {principal.client_id} lacks the scope {ADMIN_PERMISSION}",
            reason="auth.scope_missing",
            required_scopes=[ADMIN_PERMISSION],
        )
    await zida.rate_limit(request, principal)
    check_url(request)
    return principal


async def _raw_body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise InvalidArgument("the upload was cut off before its end", reason="file.truncated") from None


async def _upload(request: Request, principal: Principal) -> Response:
    zida = zida_of(request)
    limits = FileLimits.of(zida.settings)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        check_body_length(request, limits)
        name, chunks = await multipart_file(request, ("file", "media"))
        upload = Upload(name=name, chunks=chunks)
    else:
        declared = request.headers.get("content-length")
        if declared is None or not is_decimal(declared):
            raise InvalidArgument("send the file's Content-Length", reason="file.length_required")
        upload = Upload(
            name=request.query_params.get("name", ""), chunks=_raw_body(request), declared_size=int(declared)
        )
    stored = await upload_file(
        zida.db, open_storage(zida.settings), limits, corp_pk=principal.corp_pk, uploader=uploader_of(principal),
        upload=upload,
    )  # fmt: skip
    return respond(describe(stored), 201)


async def _describe(request: Request, principal: Principal) -> Response:
    file_id = request.path_params["file_id"]
    if not is_file_id(file_id):
        raise file_not_found(file_id)
    file = await repository.find_file(zida_of(request).db, file_id)
    if file is None or file.corp_pk != principal.corp_pk:
        raise file_not_found(file_id)
    return respond(describe(file))


async def files(request: Request) -> Response:
    """``POST /admin/v1/files`` (upload) and ``GET /admin/v1/files/{fileId}``."""
    request_id = new_request_id()
    try:
        principal = await _admin(request)
        response = await (_upload if request.method == "POST" else _describe)(request, principal)
    except ZidaError as exc:
        return ERRORS.error(exc, request_id)
    response.headers["x-request-id"] = request_id
    return response


def routes() -> list[Route]:
    """The admin API's file routes."""
    return [
        Route("/admin/v1/files", files, methods=["POST"]),
        Route("/admin/v1/files/{file_id}", files, methods=["GET"]),
    ]
