"""Attachment and image values that name a Zida file, checked and completed when a record is written.

An AttachmentField/ImageField item names a Zida file by ``fileUuid`` (the id any upload route returns; the oapi
``media_id`` is the same id) or by ``downloadUrl``/``url``/``previewUrl`` being Zida's own download URL
(``/ossFileHandle?…&fileName=<id>…`` or ``/fileHandle?…``, relative or absolute). Such an item must name a stored
file of the record's corp (any of its files: the integration that uploaded it hands the id to whoever saves the
record); it is then stored in the platform's full shape — ``name`` (the item's, else the file's), ``fileUuid``,
``size``, ``ext``, ``downloadUrl``, ``previewUrl``, ``url`` — and the file counts as attached from then on (it no
longer expires). Items that name no Zida file are kept exactly as sent (links to files elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from zida.clock import now_ms
from zida.core.errors import InvalidArgument, ZidaError
from zida.core.files import repository
from zida.core.files.actions import check_name
from zida.core.files.models import StoredFile, is_file_id
from zida.db import Connection

__all__ = [
    "DOWNLOAD_PATHS",
    "FileMention",
    "attach_files",
    "complete_attachments",
    "download_url",
    "file_id_of_url",
    "zida_file_of",
]

DOWNLOAD_PATHS = ("/ossFileHandle", "/fileHandle")
STORAGE_DOWNLOAD_PATH = "/v1/storages/objects/download"  # WeDa storage's download URLs (``?file=`` temporary ones)

# (file id, the stored item to complete, the field naming it)
FileMention = tuple[str, dict[str, Any], str]


def download_url(file_id: str, kind: str = "download") -> str:
    """Zida's relative URL of a file, as a record's formData carries it (``kind``: ``download`` or ``open``)."""
    return f"/ossFileHandle?fileName={file_id}&instId=&type={kind}"


def file_id_of_url(url: object) -> str | None:
    """The file id in one of Zida's download URLs, WeDa storage's temporary ones included (None: not such a URL)."""
    if not isinstance(url, str) or len(url) > 2048:
        return None
    lowered = url.lower()
    if "filehandle" not in lowered and STORAGE_DOWNLOAD_PATH not in lowered:
        return None
    parts = urlsplit(url)
    if parts.path in DOWNLOAD_PATHS:
        names = parse_qs(parts.query).get("fileName", [])
    elif parts.path == STORAGE_DOWNLOAD_PATH:
        names = parse_qs(parts.query).get("file", [])
    else:
        return None
    return names[0] if names and is_file_id(names[0]) else None


def zida_file_of(item: dict[str, Any]) -> str | None:
    """The Zida file an attachment item names, if any."""
    file_uuid = item.get("fileUuid")
    if is_file_id(file_uuid):
        return str(file_uuid)
    for key in ("downloadUrl", "url", "previewUrl"):
        found = file_id_of_url(item.get(key))
        if found is not None:
            return found
    return None


def _complete(item: dict[str, Any], file: StoredFile) -> None:
    name = item.get("name")
    shown = check_name(name, "attachment name") if name not in (None, "") else file.name
    item.clear()
    item.update(
        {
            "name": shown,
            "fileUuid": file.file_id,
            "size": file.size,
            "ext": file.ext,
            "downloadUrl": download_url(file.file_id),
            "previewUrl": download_url(file.file_id, "open"),
            "url": download_url(file.file_id),
        }
    )


async def complete_attachments(
    conn: Connection, corp_pk: int, mentions_list: Sequence[Sequence[FileMention]]
) -> list[tuple[ZidaError | None, set[int]]]:
    """For each record's mentions: check each names a stored file of the corp and complete the item in place; the
    first problem of each record (None: all good) and the files it would attach (stored, not attached yet), which
    the write keeping the record marks with :func:`attach_files` in its own transaction. One query; writes nothing."""
    wanted = {file_id for mentions in mentions_list for file_id, _, _ in mentions}
    if not wanted:
        return [(None, set()) for _ in mentions_list]
    files = await repository.find_files(conn, corp_pk, wanted)
    out: list[tuple[ZidaError | None, set[int]]] = []
    for mentions in mentions_list:
        problem: ZidaError | None = None
        for file_id, item, field_id in mentions:
            file = files.get(file_id)
            if file is None or file.state != "stored":
                problem = InvalidArgument(
                    f"{field_id}: file {file_id} does not exist in this corp",
                    reason="form_data.unknown_file",
                    field=field_id,
                )
                break
            try:
                _complete(item, file)
            except ZidaError as exc:
                problem = InvalidArgument(
                    f"{field_id}: {exc.message}", reason="form_data.invalid_value", field=field_id
                )
                break
        attaching = (
            set() if problem is not None else {files[f].pk for f, _, _ in mentions if files[f].attached_at is None}
        )
        out.append((problem, attaching))
    return out


async def attach_files(conn: Connection, file_pks: Iterable[int]) -> None:
    """Mark files attached (they no longer expire), in the transaction writing the record that names them."""
    await repository.mark_attached(conn, file_pks, now_ms())
