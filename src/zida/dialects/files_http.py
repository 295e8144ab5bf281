"""Files over HTTP, whatever the dialect: a multipart upload read as it streams, and the download response
(one byte range, the sniffed type with ``nosniff``, ``Content-Disposition`` with an ASCII fallback and the RFC 5987
name, the SHA-256 as ``ETag`` with ``If-None-Match`` → 304, ``Cache-Control: private``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response, StreamingResponse

from zida.app_state import Zida
from zida.core.errors import InvalidArgument
from zida.core.files.models import FileLimits, StoredFile
from zida.core.files.storage import storage_for_backend
from zida.ids import is_decimal

__all__ = ["MULTIPART_OVERHEAD", "check_body_length", "content_disposition", "file_response", "multipart_file"]

# Bytes a multipart body may carry beyond the file itself (boundaries, part headers, small fields).
MULTIPART_OVERHEAD = 64 * 1024
_MAX_PARTS_BEFORE_FILE = 100  # parts before the file's (with its own): empty ones carry no bytes to count
_INLINE = ("image/", "application/pdf")


def _filename(disposition: str) -> str | None:
    """The file name of a part's Content-Disposition (``filename*=UTF-8''…`` preferred, as RFC 7578 allows)."""
    extended = re.search(r"filename\*\s*=\s*([\w-]+)'[^']*'([^;\s]+)", disposition, re.I)
    try:
        if extended:
            return unquote(extended.group(2), encoding=extended.group(1), errors="strict")
        _, options = parse_options_header(disposition)
        raw = options.get(b"filename")
        return None if raw is None else raw.decode("utf-8")  # the header's bytes (read as latin-1) are UTF-8 text
    except (UnicodeDecodeError, LookupError):
        raise InvalidArgument("the file name is not UTF-8 text", reason="file.bad_name", param="file_name") from None


async def multipart_file(request: Request, field_names: tuple[str, ...]) -> tuple[str, AsyncIterator[bytes]]:
    """The name and the streamed bytes of the first file part named one of ``field_names`` of a multipart body."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidArgument("send the file as multipart/form-data", reason="file.not_multipart")
    events: list[tuple[str, Any]] = []
    header: dict[str, Any] = {"field": b"", "value": b"", "headers": {}}

    # What the parts before the file cost: their headers' bytes and their number (an empty part has no data).
    before_file = {"bytes": 0, "parts": 0}

    def on_part_begin() -> None:
        before_file["parts"] += 1

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]
        before_file["bytes"] += end - start

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]
        before_file["bytes"] += end - start

    def on_header_end() -> None:
        header["headers"][header["field"].decode("latin-1").lower()] = header["value"].decode("latin-1")
        header["field"], header["value"] = b"", b""

    def on_headers_finished() -> None:
        events.append(("headers", header["headers"]))
        header["headers"] = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", data[start:end]))

    def on_part_end() -> None:
        events.append(("end", None))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )

    async def parsed() -> AsyncIterator[tuple[str, Any]]:
        try:
            async for chunk in request.stream():
                if chunk:
                    parser.write(chunk)
                while events:
                    yield events.pop(0)
        except ClientDisconnect:
            raise InvalidArgument("the upload was cut off before its end", reason="file.truncated") from None
        except ValueError as exc:  # python-multipart's malformed-body errors
            raise InvalidArgument(f"the multipart body is malformed: {exc}", reason="file.not_multipart") from None

    stream = parsed()
    name: str | None = None
    skipped = 0  # data of the parts before the file: a chunked body declares no length to check first
    async for kind, value in stream:
        if kind == "data":
            skipped += len(value)
        if skipped + before_file["bytes"] > MULTIPART_OVERHEAD or before_file["parts"] > _MAX_PARTS_BEFORE_FILE:
            raise InvalidArgument(
                f"the parts before the file take more than {MULTIPART_OVERHEAD} bytes or"
                f" {_MAX_PARTS_BEFORE_FILE} parts",
                reason="request.too_large",
            )
        if kind != "headers":
            continue
        disposition = value.get("content-disposition", "")
        _, opts = parse_options_header(disposition)
        if opts.get(b"name", b"").decode("utf-8", "replace") in field_names and "filename" in disposition:
            name = _filename(disposition)
            break
    if name is None:
        raise InvalidArgument(
            f"the body has no file part named {' or '.join(field_names)}", reason="argument.missing", param="media"
        )

    async def data() -> AsyncIterator[bytes]:
        async for kind, value in stream:
            if kind == "data":
                yield value
            elif kind == "end":
                return
        raise InvalidArgument("the upload was cut off before its end", reason="file.truncated")

    return name, data()


def check_body_length(request: Request, limits: FileLimits) -> None:
    """Refuse a multipart body whose declared length already exceeds the file limit (before reading it)."""
    declared = request.headers.get("content-length")
    if declared is not None and is_decimal(declared) and int(declared) > limits.max_bytes + MULTIPART_OVERHEAD:
        raise InvalidArgument(
            f"the file is larger than {limits.max_bytes} bytes (ZIDA_FILES_MAX_BYTES)", reason="request.too_large"
        )


def content_disposition(file: StoredFile, inline: bool) -> str:
    """``attachment``/``inline`` with an ASCII fallback name and the exact name per RFC 5987."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in file.name) or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(file.name, safe='')}"


_RANGE_SPEC = re.compile(r"\s*([0-9]*)-([0-9]*)\s*")


def _valid_range(header: str) -> bool:
    """Whether a ``Range`` header is a well-formed byte-range set (RFC 9110 §14.1.1). Any other (another unit,
    ``bytes=5-2``, ``bytes=1-2-3``) is ignored, as the RFC lets a server do: the whole file is the answer."""
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes":
        return False
    for spec in ranges.split(","):
        matched = _RANGE_SPEC.fullmatch(spec)
        if matched is None or not (matched[1] or matched[2]):
            return False
        if matched[1] and matched[2] and int(matched[1]) > int(matched[2]):
            return False
    return True


def _single_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a valid ``Range`` header asks for (None: the whole file); several ranges: the whole file."""
    if not header or "," in header or not _valid_range(header):
        return None
    first, _, last = header.partition("=")[2].strip().partition("-")
    if is_decimal(first):
        start, end = int(first), (int(last) if is_decimal(last) else size - 1)
    elif is_decimal(last) and int(last) > 0:
        start, end = max(0, size - int(last)), size - 1
    else:
        return size, size  # bytes=-0: nothing of the file, as FileResponse answers for a local file
    if start >= size:
        return size, size  # not satisfiable: 416, as FileResponse answers for a local file
    return start, min(end, size - 1)


class _WholeFile(FileResponse):
    """A local file served whole whatever ``Range`` the request sent (an invalid one is ignored)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)


def file_response(request: Request, zida: Zida, file: StoredFile, kind: str) -> Response:
    """The file's bytes as an HTTP response (module docstring: ranges, types, disposition, ETag)."""
    inline = kind in ("open", "preview") and file.content_type.startswith(_INLINE)
    headers = {
        "etag": file.etag,
        "content-disposition": content_disposition(file, inline),
        "x-content-type-options": "nosniff",
        "cache-control": "private, max-age=0",
    }
    matches = request.headers.get("if-none-match")
    if matches and (matches.strip() == "*" or file.etag in [m.strip().removeprefix("W/") for m in matches.split(",")]):
        return Response(status_code=304, headers={"etag": file.etag, "cache-control": headers["cache-control"]})
    storage = storage_for_backend(zida.settings, file.backend)
    path = storage.local_path(file.storage_key)
    if path is not None:
        asked = request.headers.get("range")
        whole = asked is not None and not _valid_range(asked)
        return (_WholeFile if whole else FileResponse)(path, media_type=file.content_type, headers=headers)
    wanted = _single_range(request.headers.get("range"), file.size)
    headers["accept-ranges"] = "bytes"
    if wanted is None:
        headers["content-length"] = str(file.size)
        return StreamingResponse(storage.read(file.storage_key), media_type=file.content_type, headers=headers)
    start, end = wanted
    if start >= file.size:
        return Response(status_code=416, headers={"content-range": f"bytes */{file.size}"})
    headers["content-range"] = f"bytes {start}-{end}/{file.size}"
    headers["content-length"] = str(end - start + 1)
    return StreamingResponse(
        storage.read(file.storage_key, start, end), status_code=206, media_type=file.content_type, headers=headers
    )
