"""Actions on files: each upload is streamed to storage, then one transaction writes the file's row, its audit row
and its event (``file.created``); when anything fails the stored bytes are removed, so nothing is kept.

Bad input, each refused before a row exists: an empty name, a name with a path separator, ``..``, a NUL or another
control character, a bidirectional embedding, override or isolate (which would show another extension), or longer
than ``MAX_NAME_CHARS``; zero bytes; more than ``ZIDA_FILES_MAX_BYTES`` (reason
``request.too_large``: HTTP 413 where the dialect has statuses); a corp past ``ZIDA_FILES_QUOTA_BYTES`` (the same);
a body shorter or longer than the ``Content-Length`` the client declared (``file.length_mismatch``); a content type
(sniffed from the bytes) that ``ZIDA_FILES_ALLOWED_TYPES`` does not list (``file.type_not_allowed``).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass

from zida.clock import now_ms
from zida.core.audit import created_fields, record_change, removed_fields
from zida.core.errors import Conflict, InvalidArgument
from zida.core.files import repository
from zida.core.files.models import FILE_ID_PREFIX, FileLimits, StoredFile
from zida.core.files.sniff import SNIFF_BYTES, extension_of, sniff_content_type
from zida.core.files.storage import FileStorage
from zida.db import Connection, Database
from zida.ids import new_id

__all__ = ["MAX_NAME_CHARS", "Upload", "check_name", "delete_file", "upload_file"]

MAX_NAME_CHARS = 255
# Embeddings, overrides and isolates (U+202A…U+202E, U+2066…U+2069): they reorder how a name shows, not what it is.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class Upload:
    """What a client sends: a name, the bytes as a stream, and the length it declared (None: not declared)."""

    name: str
    chunks: AsyncIterator[bytes]
    declared_size: int | None = None
    object_path: str | None = None  # WeDa's objectId


def check_name(name: object, what: str = "file name") -> str:
    """A file name people will see, refused when it could act as a path or break a header."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"the {what} is required", reason="file.bad_name", param="file_name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(
            f"the {what} has {len(name)} characters; at most {MAX_NAME_CHARS} are allowed",
            reason="file.bad_name",
            param="file_name",
        )
    if "\x00" in name or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidArgument(f"the {what} contains a control character", reason="file.bad_name", param="file_name")
    if any(c in _BIDI_CONTROLS for c in name):  # "invoice\u202egpj.exe" shows as "invoiceexe.jpg"
        raise InvalidArgument(
            f"the {what} contains a bidirectional override (it would show another name than it has)",
            reason="file.bad_name",
            param="file_name",
        )
    if "/" in name or "\\" in name or name.strip() in (".", ".."):
        raise InvalidArgument(
            f"the {what} {name[:40]!r} is a path; send the name alone", reason="file.bad_name", param="file_name"
        )
    return name.strip()


def _too_large(size: int, limit: int) -> InvalidArgument:
    return InvalidArgument(
        f"the file is larger than {limit} bytes (ZIDA_FILES_MAX_BYTES)" + (f": {size} bytes" if size > limit else ""),
        reason="request.too_large",
    )


def _allowed(limits: FileLimits, content_type: str, ext: str) -> bool:
    if not limits.allowed_types:
        return True
    family = content_type.split("/", 1)[0] + "/*"
    return any(t in (content_type, family, ext, "." + ext) for t in limits.allowed_types)


class _Received:
    """The upload's stream as it passes to storage: counted against the limit, hashed."""

    def __init__(self, head: bytes, rest: AsyncIterator[bytes], limit: int) -> None:
        self.head = head
        self.rest = rest
        self.limit = limit
        self.size = len(head)
        self.digest = hashlib.sha256(head)

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.head:
            yield self.head
        async for chunk in self.rest:
            self.size += len(chunk)
            if self.size > self.limit:
                raise _too_large(self.size, self.limit)
            self.digest.update(chunk)
            yield chunk


async def _head(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The first ``SNIFF_BYTES`` (or fewer, for a small file) of a stream."""
    head = bytearray()
    async for chunk in chunks:
        head += chunk
        if len(head) > limit:
            raise _too_large(len(head), limit)
        if len(head) >= SNIFF_BYTES:
            break
    return bytes(head)


_QUOTA_LOCK = 0x5A1DF11E << 32  # + a corp's pk: pg_advisory_xact_lock key of its uploads' quota check and insert


async def _check_quota(conn: Connection, corp_pk: int, size: int, limits: FileLimits, *, final: bool = False) -> None:
    """Refuse an upload past the corp's quota. ``final``: in the transaction inserting the row, which on PostgreSQL
    first takes the corp's quota lock (held until it commits), so two uploads at once do not both find room for
    one (SQLite's write transactions are one at a time)."""
    if not limits.quota_bytes:
        return
    if final and conn.sql.name == "postgresql":
        await conn.fetchval("SELECT pg_advisory_xact_lock(:k)", {"k": _QUOTA_LOCK + int(corp_pk)})
    used = await repository.used_bytes(conn, corp_pk)
    if used + size > limits.quota_bytes:
        raise InvalidArgument(
            f"the corp's files would take {used + size} bytes; its quota is {limits.quota_bytes}"
            " (ZIDA_FILES_QUOTA_BYTES)",
            reason="request.too_large",
            quota="files",
        )


async def upload_file(
    db: Database, storage: FileStorage, limits: FileLimits, *, corp_pk: int, uploader: str, upload: Upload
) -> StoredFile:
    """Store an upload of the corp's (``uploader``: ``credential:<client id>``…) and write its row, audit and event."""
    name = check_name(upload.name)
    declared = upload.declared_size
    if declared is not None:
        if declared == 0:
            raise InvalidArgument("the file is empty (0 bytes)", reason="file.empty")
        if declared > limits.max_bytes:
            raise _too_large(declared, limits.max_bytes)
        await _check_quota(db, corp_pk, declared, limits)
    ext = extension_of(name)
    head = await _head(upload.chunks, limits.max_bytes)
    if not head:
        raise InvalidArgument("the file is empty (0 bytes)", reason="file.empty")
    content_type = sniff_content_type(head, ext)
    if not _allowed(limits, content_type, ext):
        raise InvalidArgument(
            f"files of type {content_type} (.{ext or '?'}) are not accepted here (ZIDA_FILES_ALLOWED_TYPES)",
            reason="file.type_not_allowed",
        )
    file_id = new_id(FILE_ID_PREFIX, 32)
    key = f"c{corp_pk}/{file_id}"
    received = _Received(head, upload.chunks, limits.max_bytes)
    await storage.write(key, received.chunks())
    try:
        if declared is not None and received.size != declared:
            raise InvalidArgument(
                f"the body holds {received.size} bytes but its length was declared as {declared}",
                reason="file.length_mismatch",
            )
        now = now_ms()
        values = {
            "corp_pk": corp_pk,
            "file_id": file_id,
            "name": name,
            "ext": ext,
            "content_type": content_type,
            "size": received.size,
            "sha256": received.digest.hexdigest(),
            "backend": storage.backend,
            "storage_key": key,
            "uploader": uploader,
            "object_path": upload.object_path,
            "state": "stored",
            "created_at": now,
        }
        async with db.transaction() as tx:
            await _check_quota(tx, corp_pk, received.size, limits, final=True)
            if upload.object_path is not None and await repository.find_by_object_path(tx, corp_pk, upload.object_path):
                raise Conflict(f"an object {upload.object_path[:80]} already exists", reason="file.object_exists")
            pk = await repository.insert_file(tx, values)
            await record_change(
                tx,
                corp_pk=corp_pk,
                kind="file",
                object_id=file_id,
                action="created",
                changes=created_fields({"name": name, "size": received.size, "content_type": content_type}),
                actor=uploader,
                at=now,
            )
    except BaseException:
        await storage.delete(key)
        raise
    return StoredFile(pk=pk, attached_at=None, **values)  # type: ignore[arg-type]


async def delete_file(
    db: Database, storage: FileStorage, file: StoredFile, *, actor: str, unless_attached: bool = False
) -> bool:
    """Delete a file: its row, audit row and event (``file.deleted``) in one transaction, then its bytes. Records
    that referenced it keep their item; its download URL answers "not found" from then on. ``unless_attached``
    (gc removing an expired upload): a file a record attached meanwhile is kept. Whether it was deleted."""
    now = now_ms()
    async with db.transaction() as tx:
        if unless_attached:
            if not await repository.delete_unattached_row(tx, file.pk):
                return False
        else:
            await repository.delete_file_row(tx, file.pk)
        await record_change(
            tx,
            corp_pk=file.corp_pk,
            kind="file",
            object_id=file.file_id,
            action="deleted",
            changes=removed_fields({"name": file.name, "size": file.size, "content_type": file.content_type}),
            actor=actor,
            at=now,
        )
    await storage.delete(file.storage_key)
    return True
