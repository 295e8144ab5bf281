"""Attachment and image values that name a Zida file, checked and completed when a record is written.

An AttachmentField/ImageField item names a Zida file by ``fileUuid`` (the id any upload route returns; the oapi
``media_id`` is the same id) or by ``downloadUrl``/``url``/``previewUrl`` being Zida's own download URL
(``/ossFileHandle?…&fileName=<id>…`` or ``/fileHandle?…``, relative or absolute, and WeDa storage's download URLs).
An object uploaded through WeDa storage is also named by what that upload returned: its ``cloudObjectId``
(``cloud://<envId>.zida/<objectId>``, in ``fileUuid`` or one of the URLs) or the ``downloadUrl`` of
``get-objects-upload-info``; a ``cloud://`` id of another environment is a link elsewhere. Such an item must name a
stored file of the record's corp (any of its files: the integration that uploaded it hands the id to whoever saves the
record); it is then stored in the platform's full shape — ``name`` (the item's, else the file's), ``fileUuid``,
``size``, ``ext``, ``downloadUrl``, ``previewUrl``, ``url`` — and the file counts as attached from then on (it no
longer expires). Items that name no Zida file are kept exactly as sent (links to files elsewhere).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from zida.clock import now_ms
from zida.core.errors import InvalidArgument, ZidaError
from zida.core.files import repository
from zida.core.files.actions import check_name
from zida.core.files.models import StoredFile, is_file_id
from zida.db import Connection

__all__ = [
    "DOWNLOAD_PATHS",
    "FileMention",
    "StoredObject",
    "attach_files",
    "complete_attachments",
    "download_url",
    "file_id_of_url",
    "upload_slot",
    "upload_slot_payload",
    "zida_file_of",
]

DOWNLOAD_PATHS = ("/ossFileHandle", "/fileHandle")
STORAGE_DOWNLOAD_PATH = "/v1/storages/objects/download"  # WeDa storage's download URLs (``?file=`` temporary ones)

BUCKET = "zida"  # the bucket of every ``cloud://`` id Zida hands out
_CLOUD_ID = re.compile(r"cloud://([^/]+)\." + BUCKET + r"/(.+)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A file named by its WeDa object path; ``env_id`` None: the record's own environment (an upload URL)."""

    path: str
    env_id: str | None = None


# (file id or object, the stored item to complete, the field naming it)
FileMention = tuple[str | StoredObject, dict[str, Any], str]


def upload_slot_payload(corp_pk: int, object_id: str, expires: int, nonce: str, uploader: str | None = None) -> str:
    """The ``slot=`` of a WeDa upload's URLs (its corp, object path, expiry and nonce, and the uploader when it is a
    signed-in user; the storage signs it), which :func:`upload_slot` reads back."""
    slot: dict[str, Any] = {"c": corp_pk, "o": object_id, "e": expires, "n": nonce}
    if uploader is not None:
        slot["u"] = uploader
    fields = orjson.dumps(slot)
    return base64.urlsafe_b64encode(fields).decode().rstrip("=")


def upload_slot(payload: str) -> dict[str, Any] | None:
    """The fields of a WeDa upload slot (``slot=`` of its upload and download URLs), unverified; None: not one."""
    try:
        slot = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    return slot if isinstance(slot, dict) else None


def download_url(file_id: str, kind: str = "download") -> str:
    """Zida's relative URL of a file, as a record's formData carries it (``kind``: ``download`` or ``open``)."""
    return f"/ossFileHandle?fileName={file_id}&instId=&type={kind}"


def file_id_of_url(url: object) -> str | None:
    """The file id in one of Zida's download URLs, WeDa storage's temporary ones included (None: not such a URL)."""
    found = _named_by_url(url)
    return found if isinstance(found, str) else None


def _named_by_url(url: object) -> str | StoredObject | None:
    if not isinstance(url, str) or len(url) > 2048:
        return None
    if url.startswith("cloud://"):
        cloud = _CLOUD_ID.fullmatch(url)
        return None if cloud is None else StoredObject(cloud[2], cloud[1])
    lowered = url.lower()
    if "filehandle" not in lowered and STORAGE_DOWNLOAD_PATH not in lowered:
        return None
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.path in DOWNLOAD_PATHS:
        names = query.get("fileName", [])
    elif parts.path == STORAGE_DOWNLOAD_PATH:
        names = query.get("file", [])
        if not names and query.get("slot"):  # get-objects-upload-info's downloadUrl: the object of the slot
            slot = upload_slot(query["slot"][0])
            path = None if slot is None else slot.get("o")
            return StoredObject(path) if isinstance(path, str) and path else None
    else:
        return None
    return names[0] if names and is_file_id(names[0]) else None


def zida_file_of(item: dict[str, Any]) -> str | StoredObject | None:
    """The Zida file an attachment item names, if any: its id, or the WeDa object it was uploaded as."""
    file_uuid = item.get("fileUuid")
    if is_file_id(file_uuid):
        return str(file_uuid)
    for key in ("fileUuid", "downloadUrl", "url", "previewUrl"):
        found = _named_by_url(item.get(key))
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
    the write keeping the record marks with :func:`attach_files` in its own transaction. One query per kind of
    name (file ids, WeDa objects); writes nothing."""
    mentioned = [m for mentions in mentions_list for m, _, _ in mentions]
    files = await repository.find_files(conn, corp_pk, (m for m in mentioned if isinstance(m, str)))
    objects = {m for m in mentioned if isinstance(m, StoredObject)}
    env_id = None
    if any(o.env_id is not None for o in objects):
        env_id = await repository.environment_id(conn, corp_pk)
    elsewhere = {o for o in objects if o.env_id is not None and o.env_id != env_id}  # links to other storage
    by_path = await repository.find_by_object_paths(conn, corp_pk, {o.path for o in objects - elsewhere})
    out: list[tuple[ZidaError | None, set[int]]] = []
    for mentions in mentions_list:
        problem: ZidaError | None = None
        attaching: set[int] = set()
        for name, item, field_id in mentions:
            if isinstance(name, StoredObject):
                if name in elsewhere:
                    continue
                file = by_path.get(name.path)
                missing = f"{field_id}: no object of this corp's storage has that cloudObjectId or upload URL"
            else:
                file = files.get(name)
                missing = f"{field_id}: file {name} does not exist in this corp"
            if file is None or file.state != "stored":
                problem = InvalidArgument(missing, reason="form_data.unknown_file", field=field_id)
                break
            try:
                _complete(item, file)
            except ZidaError as exc:
                problem = InvalidArgument(
                    f"{field_id}: {exc.message}", reason="form_data.invalid_value", field=field_id
                )
                break
            if file.attached_at is None:
                attaching.add(file.pk)
        out.append((problem, set() if problem is not None else attaching))
    return out


async def attach_files(conn: Connection, file_pks: Iterable[int]) -> None:
    """Mark files attached (they no longer expire), in the transaction writing the record that names them; a file
    removed since the values were checked (by ``zida files gc``) fails the write, which keeps no record naming it."""
    missing = await repository.mark_attached(conn, file_pks, now_ms())
    if missing:
        raise InvalidArgument(
            f"{len(missing)} of the files the values name were removed while the record was written",
            reason="form_data.unknown_file",
        )
