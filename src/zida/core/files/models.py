"""A stored file and the limits uploads are held to (from ``zida.settings.Settings``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zida.core.apps.models import Field
from zida.settings import Settings

__all__ = ["FileLimits", "StoredFile", "files_named", "is_file_id"]

FILE_ID_PREFIX = "FILE-"
# ``FILE-`` + 10 base36 characters of time + 22 random ones (about 113 bits: unguessable).
_FILE_ID_LENGTH = len(FILE_ID_PREFIX) + 32


def is_file_id(value: object) -> bool:
    """Whether ``value`` has the shape of a Zida file id (``FILE-`` and 32 base36 characters)."""
    return (
        isinstance(value, str)
        and len(value) == _FILE_ID_LENGTH
        and value.startswith(FILE_ID_PREFIX)
        and value[len(FILE_ID_PREFIX) :].isalnum()
        and value[len(FILE_ID_PREFIX) :].isascii()
    )


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One uploaded file of a corp (``name`` is what people see; the bytes live at ``storage_key``)."""

    pk: int
    corp_pk: int
    file_id: str
    name: str
    ext: str
    content_type: str
    size: int
    sha256: str
    backend: str
    storage_key: str
    uploader: str
    object_path: str | None
    state: str
    created_at: int
    attached_at: int | None

    @property
    def etag(self) -> str:
        """The HTTP entity tag of its bytes (their SHA-256, quoted)."""
        return f'"{self.sha256}"'


@dataclass(frozen=True, slots=True)
class FileLimits:
    """What one upload and one corp may store (README "Files")."""

    max_bytes: int = 100 * 1024 * 1024
    quota_bytes: int = 10 * 1024 * 1024 * 1024  # per corp; 0: no quota
    allowed_types: tuple[str, ...] = ()  # content types (``image/png``, ``image/*``) or extensions; empty: any
    unattached_ms: int = 24 * 3600 * 1000

    @classmethod
    def of(cls, settings: Settings) -> FileLimits:
        """The limits a server's settings set."""
        return cls(
            max_bytes=settings.files_max_bytes,
            quota_bytes=settings.files_quota_bytes,
            allowed_types=settings.files_allowed_types,
            unattached_ms=int(settings.files_unattached_hours * 3600 * 1000),
        )


_ITEMS = ("AttachmentField", "ImageField")


def files_named(data: dict[str, Any], fields: Sequence[Field]) -> set[str]:
    """The file ids a record's stored values name as files: attachment and image items' ``fileUuid`` and signatures
    that are a file id, in sub-table rows too (an id merely written in a text names nothing)."""
    found: set[str] = set()
    for f in fields:
        value = data.get(f.field_id)
        if f.component in _ITEMS and isinstance(value, list):
            found.update(i["fileUuid"] for i in value if isinstance(i, dict) and is_file_id(i.get("fileUuid")))
        elif f.component == "DigitalSignatureField" and is_file_id(value):
            found.add(str(value))
        elif f.children and isinstance(value, list):
            for row in value:
                if isinstance(row, dict):
                    found |= files_named(row, f.children)
    return found
