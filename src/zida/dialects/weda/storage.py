"""WeDa (CloudBase) cloud storage: ``/v1/storages/…`` — the documented two-step upload, download URLs, deletes.

All three operations are ``POST`` with a JSON **array** body (at most ``MAX_ITEMS`` items), a Bearer token, and
answer HTTP 200 with an array holding one item per input, per-item errors inline (``{"code", "message"}``);
a problem with the request itself (token, body, scope) answers ``{"code", "message", "requestId"}`` (the
gateway's format, with the ``X-Request-Id`` header).

* ``get-objects-upload-info`` ``[{"objectId": "dir/name.jpg"}]`` (scope ``records.write``) →
  ``{objectId, uploadUrl, authorization, token, cloudObjectMeta, downloadUrl, downloadUrlEncoded, cloudObjectId}``.
  ``cloudObjectId`` is ``cloud://<envId>.zida/<objectId>``. Nothing is stored yet: the upload slot is signed with
  the server key and valid for ``SLOT_SECONDS``.
* ``PUT <uploadUrl>`` with the headers ``Authorization: <authorization>``, ``X-Cos-Security-Token: <token>``,
  ``X-Cos-Meta-Fileid: <cloudObjectMeta>`` and the raw bytes (``Content-Length`` required) stores the object as a
  Zida file (limits, quota, sniffing: ``zida.core.files.actions``). A forged or expired slot, wrong headers:
  403 ``SIGN_PARAM_INVALID``; too large: 413 ``EXCEED_REQUEST_SIZE_LIMIT``; an object that already exists: 409
  ``OBJECT_ALREADY_EXIST`` (Zida's choice: objects are not overwritten, delete first); other bad input: 400
  ``INVALID_PARAM``.
* ``get-objects-download-info`` ``[{"cloudObjectId", "maxAge"?}]`` (scope ``files.read`` or ``records.read``) →
  ``{cloudObjectId, downloadUrl, downloadUrlEncoded}``: a temporary URL (``zida.core.files.access``) valid for
  ``maxAge`` seconds (default 3 600, 1 … 86 400; otherwise ``INVALID_PARAM`` for that item), or
  ``OBJECT_NOT_EXIST``. Both kinds of ``downloadUrl`` are served under ``/v1/storages/objects/download`` and answer
  in this API's format: a deleted object 404 ``OBJECT_NOT_EXIST``, an expired or forged URL 403
  ``SIGN_PARAM_INVALID``.
* ``delete-objects`` ``[{"cloudObjectId"}]`` (scope ``records.write``) → ``{cloudObjectId}`` or ``{cloudObjectId,
  code: "OBJECT_NOT_EXIST", message}``.

An objectId is a relative path of at most 1 024 characters without ``..`` segments, a leading ``/``, ``\\``,
NUL or other control characters; its last segment is the file's name (at most 255 characters: a longer one gets
``INVALID_PARAM`` and no upload slot). The same object is also available to Yida
fields by its file id (``fileUuid``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from zida.app_state import Zida
from zida.clock import now_ms
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
from zida.core.files import repository
from zida.core.files.access import MAX_TEMPORARY_MS, check_user_may_read, sign, uploader_of, verify_signature
from zida.core.files.actions import Upload, check_name, delete_file, upload_file
from zida.core.files.attachments import BUCKET, STORAGE_DOWNLOAD_PATH, upload_slot, upload_slot_payload
from zida.core.files.models import FileLimits, StoredFile
from zida.core.files.storage import open_storage, storage_for_backend
from zida.core.principals import Principal, Scope
from zida.dialects.files_http import file_response
from zida.dialects.http import (
    DialectMount,
    check_url,
    decode_json,
    new_request_id,
    read_limited,
    retry_after,
    zida_of,
)
from zida.dialects.weda.http import bearer, gateway_error, json_response
from zida.ids import is_decimal

__all__ = ["MAX_ITEMS", "MAX_USER_ITEMS", "SLOT_SECONDS", "mount", "routes"]

MAX_ITEMS = 100
MAX_USER_ITEMS = 10  # download-info items of a signed-in user's call (each may cost a scan of the corp's records)
SLOT_SECONDS = 900
_MAX_OBJECT_ID = 1024
_MAX_BODY = 256 * 1024

# (reason) -> (HTTP status, code) for request-level errors; the class decides otherwise.
_REASONS = {
    "auth.scope_missing": (403, "ACTION_FORBIDDEN"),
    "storage.bad_signature": (403, "SIGN_PARAM_INVALID"),
    "file.bad_signature": (403, "SIGN_PARAM_INVALID"),
    "file.url_expired": (403, "SIGN_PARAM_INVALID"),
    "request.too_large": (413, "EXCEED_REQUEST_SIZE_LIMIT"),
    "file.object_exists": (409, "OBJECT_ALREADY_EXIST"),
    "storage.batch_too_large": (400, "OBJECT_BATCH_TOO_LARGE"),
    "storage.not_found": (404, "OBJECT_NOT_EXIST"),
    "route.not_found": (404, "INVALID_ACTION"),
    "request.method_not_allowed": (405, "INVALID_REQUEST"),
}
_CLASSES: dict[type[ZidaError], tuple[int, str]] = {
    NotFound: (404, "RESOURCE_NOT_FOUND"),
    PermissionDenied: (403, "PERMISSION_DENIED"),
    Conflict: (409, "OBJECT_ALREADY_EXIST"),
    # Retryable, with Retry-After: CloudBase's code for a rate limit; Zida's for a database out of reach (as the
    # data models answer it), with a status any HTTP client retries.
    RateLimited: (429, "EXCEED_RATELIMIT"),
    Unavailable: (503, "SERVICE_UNAVAILABLE"),
    TooExpensive: (400, "LIMIT_EXCEEDED"),
    Unsupported: (400, "UNSUPPORTED_OPERATION"),
}


def _error(exc: ZidaError, request_id: str) -> Response:
    if isinstance(exc, Unauthenticated) and exc.reason not in _REASONS:  # the token: as the rest of WeDa answers
        return gateway_error(exc, request_id)
    status, code = _REASONS.get(exc.reason) or next(
        (_CLASSES[k] for k in type(exc).__mro__ if k in _CLASSES), (400, "INVALID_PARAM")
    )
    body = {"code": code, "message": exc.message, "requestId": request_id}
    return retry_after(json_response(body, status, request_id), exc)


class _Errors:
    def error(self, exc: ZidaError, request_id: str) -> Response:
        return _error(exc, request_id)

    def unhandled(self, request_id: str) -> Response:
        return json_response({"code": "SYS_ERR", "message": "internal error", "requestId": request_id}, 500, request_id)


def _item_error(code: str, message: str, **known: str) -> dict[str, str]:
    return {**known, "code": code, "message": message}


def _check_object_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_OBJECT_ID:
        raise InvalidArgument(f"objectId must be a path of 1 to {_MAX_OBJECT_ID} characters")
    if value.startswith("/") or "\\" in value or any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidArgument("objectId must be a relative path without control characters or backslashes")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise InvalidArgument("objectId may not hold empty, '.' or '..' segments")
    # Its last segment becomes the file's name: refused here, not after a slot was handed out for it.
    check_name(value.rsplit("/", 1)[-1], "objectId's last segment")
    return value


def _slot_key(secret: str) -> bytes:
    return hashlib.sha256(("zida-weda-upload\x00" + secret).encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _slot(
    secret: str, corp_pk: int, object_id: str, expires: int, nonce: str, uploader: str | None = None
) -> tuple[str, str]:
    payload = upload_slot_payload(corp_pk, object_id, expires, nonce, uploader)
    return payload, hmac.new(_slot_key(secret), payload.encode(), hashlib.sha256).hexdigest()


def _open_slot(secret: str, payload: str, signature: str) -> dict[str, Any]:
    expected = hmac.new(_slot_key(secret), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise PermissionDenied("the upload URL's signature is not valid", reason="storage.bad_signature")
    slot = upload_slot(payload)
    if slot is None:
        raise PermissionDenied("the upload URL is not valid", reason="storage.bad_signature")
    if slot["e"] <= now_ms():
        raise PermissionDenied("the upload URL has expired: ask for a new one", reason="storage.bad_signature")
    return slot


def _base(request: Request, zida: Zida) -> str:
    return zida.settings.public_url or str(request.base_url).rstrip("/")


async def _cloud_prefix(zida: Zida, corp_pk: int) -> str:
    return f"cloud://{await repository.environment_id(zida.db, corp_pk)}.{BUCKET}/"


def _check(principal: Principal, *scopes: Scope) -> None:
    if not any(principal.allows(s) for s in scopes):
        raise PermissionDenied(
            f"the credential {principal.client_id} lacks the scope {' or '.join(scopes)}", reason="auth.scope_missing"
        )


StorageHandler = Callable[[Zida, Request, Principal, list[Any]], Awaitable[list[dict[str, Any]]]]


def _batch(*scopes: Scope) -> Callable[[StorageHandler], Callable[[Request], Awaitable[Response]]]:
    def wrap(handler: StorageHandler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            request_id = new_request_id()
            zida = zida_of(request)
            try:
                token = bearer(request)
                if token is None:
                    raise Unauthenticated("send Authorization: Bearer <access token>", reason="auth.token_missing")
                principal = await zida.tokens.authenticate(token)
                _check(principal, *scopes)
                await zida.rate_limit(request, principal)
                check_url(request)
                raw = await read_limited(request, _MAX_BODY, "the body")
                items = decode_json(raw or b"null", "request body", reason="request.malformed_json")
                if not isinstance(items, list) or not items:
                    raise InvalidArgument("the body must be a non-empty JSON array", reason="request.malformed_json")
                if len(items) > MAX_ITEMS:
                    raise InvalidArgument(f"at most {MAX_ITEMS} objects per call", reason="storage.batch_too_large")
                result = await handler(zida, request, principal, items)
            except ZidaError as exc:
                return _error(exc, request_id)
            return json_response(result, 200, request_id)

        route.__name__ = handler.__name__
        route.__doc__ = handler.__doc__
        return route

    return wrap


@_batch(Scope.RECORDS_WRITE)
async def upload_info(zida: Zida, request: Request, principal: Principal, items: list[Any]) -> list[dict[str, Any]]:
    """``get-objects-upload-info``: a signed upload slot per objectId."""
    prefix = await _cloud_prefix(zida, principal.corp_pk)
    base = _base(request, zida)
    out: list[dict[str, Any]] = []
    for item in items:
        try:
            object_id = _check_object_id(item.get("objectId") if isinstance(item, dict) else None)
        except InvalidArgument as exc:
            out.append(_item_error("INVALID_PARAM", exc.message))
            continue
        if await repository.find_by_object_path(zida.db, principal.corp_pk, object_id) is not None:
            out.append(_item_error("OBJECT_ALREADY_EXIST", "Storage object already exists.", objectId=object_id))
            continue
        nonce = _b64(hashlib.sha256(f"{object_id}{now_ms()}{id(item)}".encode()).digest()[:12])
        # A signed-in user's upload is his (he reads and deletes it); an integration's belongs to the environment.
        uploader = uploader_of(principal) if principal.kind == "session" else None
        payload, signature = _slot(
            zida.settings.secret_key, principal.corp_pk, object_id, now_ms() + SLOT_SECONDS * 1000, nonce, uploader
        )
        upload_url = f"{base}/v1/storages/objects/upload?slot={payload}"
        download_url = f"{base}{STORAGE_DOWNLOAD_PATH}?slot={payload}&sig={signature}"
        out.append(
            {
                "objectId": object_id,
                "uploadUrl": upload_url,
                "authorization": signature,
                "token": nonce,
                "cloudObjectMeta": _b64(object_id.encode()),
                "downloadUrl": download_url,
                "downloadUrlEncoded": quote(download_url, safe=":/?&="),
                "cloudObjectId": prefix + object_id,
            }
        )
    return out


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise InvalidArgument("the upload was cut off before its end", reason="file.truncated") from None


async def put_object(request: Request) -> Response:
    """``PUT <uploadUrl>``: the object's bytes, with the headers ``get-objects-upload-info`` returned."""
    request_id = new_request_id()
    zida = zida_of(request)
    try:
        check_url(request)
        payload = request.query_params.get("slot", "")
        try:
            slot = _open_slot(zida.settings.secret_key, payload, request.headers.get("authorization", ""))
        except (ValueError, KeyError, orjson.JSONDecodeError):
            raise PermissionDenied("the upload URL is not valid", reason="storage.bad_signature") from None
        nonce = request.headers.get("x-cos-security-token", "").encode()
        meta = request.headers.get("x-cos-meta-fileid", "").encode()
        if not hmac.compare_digest(nonce, str(slot["n"]).encode()) or not hmac.compare_digest(
            meta, _b64(str(slot["o"]).encode()).encode()
        ):
            raise PermissionDenied(
                "X-Cos-Security-Token or X-Cos-Meta-Fileid does not match", reason="storage.bad_signature"
            )
        await zida.rate_limit(request, None)
        declared = request.headers.get("content-length")
        if declared is None or not is_decimal(declared):
            raise InvalidArgument("send the object's Content-Length", reason="file.length_required")
        object_id = str(slot["o"])
        await upload_file(
            zida.db,
            open_storage(zida.settings),
            FileLimits.of(zida.settings),
            corp_pk=int(slot["c"]),
            uploader=str(slot["u"]) if "u" in slot else f"weda-upload:{object_id[:200]}",
            upload=Upload(
                name=object_id.rsplit("/", 1)[-1],
                chunks=_body(request),
                declared_size=int(declared),
                object_path=object_id,
            ),
        )
    except ZidaError as exc:
        return _error(exc, request_id)
    return Response(status_code=200, headers={"x-request-id": request_id})


async def get_object(request: Request) -> Response:
    """The object behind a ``downloadUrl``: of ``get-objects-upload-info`` (``slot``, while the slot's signature is
    valid) or of ``get-objects-download-info`` (``file``, a temporary URL until its ``expires``). Errors, a deleted
    object's included, in the storage API's format."""
    request_id = new_request_id()
    zida = zida_of(request)
    query = request.query_params
    try:
        check_url(request)
        file: StoredFile | None
        if "file" in query:
            file_id = query.get("file", "")
            verify_signature(
                zida.settings.secret_key, file_id, query.get("expires", ""), query.get("sig", ""), now_ms()
            )
            file = await repository.find_file(zida.db, file_id)
            if file is not None and file.state != "stored":
                file = None
        else:
            try:
                slot = _open_slot(zida.settings.secret_key, query.get("slot", ""), query.get("sig", ""))
            except (ValueError, KeyError, orjson.JSONDecodeError):
                raise PermissionDenied("the download URL is not valid", reason="storage.bad_signature") from None
            file = await repository.find_by_object_path(zida.db, int(slot["c"]), str(slot["o"]))
        if file is None:
            raise NotFound("Storage object not exists.", reason="storage.not_found")
        await zida.rate_limit(request, None)
        return file_response(request, zida, file, "download")
    except ZidaError as exc:
        return _error(exc, request_id)


def _object_id(cloud_id: object, prefix: str) -> str:
    if not isinstance(cloud_id, str) or not cloud_id.startswith(prefix):
        raise InvalidArgument(f"cloudObjectId must start with {prefix}")
    return _check_object_id(cloud_id[len(prefix) :])


def _max_age(item: object) -> int:
    value = item.get("maxAge", 3600) if isinstance(item, dict) else 3600
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value * 1000 <= MAX_TEMPORARY_MS:
        raise InvalidArgument(f"maxAge must be a whole number of seconds from 1 to {MAX_TEMPORARY_MS // 1000}")
    return value


@_batch(Scope.FILES_READ, Scope.RECORDS_READ)
async def download_info(zida: Zida, request: Request, principal: Principal, items: list[Any]) -> list[dict[str, Any]]:
    """``get-objects-download-info``: a temporary URL per cloudObjectId. A signed-in user names at most
    ``MAX_USER_ITEMS`` objects a call: each that is not his upload is checked against the records referencing it, a
    scan of the corp's records (as ``get_open_url``'s check)."""
    if principal.kind == "session" and len(items) > MAX_USER_ITEMS:
        raise InvalidArgument(
            f"a signed-in user asks for at most {MAX_USER_ITEMS} objects per call", reason="storage.batch_too_large"
        )
    prefix = await _cloud_prefix(zida, principal.corp_pk)
    base = _base(request, zida)
    out: list[dict[str, Any]] = []
    for item in items:
        cloud_id = item.get("cloudObjectId") if isinstance(item, dict) else None
        known = {"cloudObjectId": cloud_id} if isinstance(cloud_id, str) else {}
        try:
            object_id = _object_id(cloud_id, prefix)
            max_age = _max_age(item)
        except InvalidArgument as exc:
            out.append(_item_error("INVALID_PARAM", exc.message, **known))
            continue
        file = await repository.find_by_object_path(zida.db, principal.corp_pk, object_id)
        if file is None:
            out.append(_item_error("OBJECT_NOT_EXIST", "Storage object not exists.", **known))
            continue
        try:  # an integration reads the environment's objects; a signed-in user his own and his records' files
            if principal.kind == "session":
                await check_user_may_read(zida.db, principal, file, file.file_id)
        except PermissionDenied as exc:
            out.append(_item_error("STORAGE_EXCEED_AUTHORITY", exc.message, **known))
            continue
        expires = now_ms() + max_age * 1000
        signature = sign(zida.settings.secret_key, file.file_id, expires)
        url = f"{base}{STORAGE_DOWNLOAD_PATH}?file={file.file_id}&expires={expires}&sig={signature}"
        out.append({"cloudObjectId": cloud_id, "downloadUrl": url, "downloadUrlEncoded": quote(url, safe=":/?&=")})
    return out


@_batch(Scope.RECORDS_WRITE)
async def delete_objects(zida: Zida, request: Request, principal: Principal, items: list[Any]) -> list[dict[str, Any]]:
    """``delete-objects``: each object's row and bytes (per-item ``OBJECT_NOT_EXIST``)."""
    prefix = await _cloud_prefix(zida, principal.corp_pk)
    out: list[dict[str, Any]] = []
    for item in items:
        cloud_id = item.get("cloudObjectId") if isinstance(item, dict) else None
        known = {"cloudObjectId": cloud_id} if isinstance(cloud_id, str) else {}
        try:
            object_id = _object_id(cloud_id, prefix)
        except InvalidArgument as exc:
            out.append(_item_error("INVALID_PARAM", exc.message, **known))
            continue
        file = await repository.find_by_object_path(zida.db, principal.corp_pk, object_id)
        if file is None:
            out.append(_item_error("OBJECT_NOT_EXIST", "Storage object not exists.", **known))
            continue
        if principal.kind == "session" and file.uploader != uploader_of(principal):
            out.append(
                _item_error(
                    "STORAGE_EXCEED_AUTHORITY", "a signed-in user deletes only the objects he uploaded", **known
                )
            )
            continue
        await delete_file(zida.db, storage_for_backend(zida.settings, file.backend), file, actor=uploader_of(principal))
        out.append({"cloudObjectId": cloud_id})
    return out


def routes() -> list[Route]:
    """The storage routes."""
    return [
        Route("/v1/storages/get-objects-upload-info", upload_info, methods=["POST"]),
        Route("/v1/storages/get-objects-download-info", download_info, methods=["POST"]),
        Route("/v1/storages/delete-objects", delete_objects, methods=["POST"]),
        Route("/v1/storages/objects/upload", put_object, methods=["PUT"]),
        Route(STORAGE_DOWNLOAD_PATH, get_object, methods=["GET", "HEAD"]),
    ]


def mount() -> DialectMount:
    """The storage mount (``/v1/storages/``), answering in CloudBase's ``{code, message, requestId}``."""
    return DialectMount("weda-storage", ("/v1/storages/",), routes(), _Errors())
