"""The content type of an upload, from its first bytes (a client's ``Content-Type`` is never trusted), and the
extension of its name.

Text that is not one of the known binary formats is served as ``text/plain`` (HTML or SVG uploaded by one user is
never rendered as a page in another user's browser); anything unrecognised is ``application/octet-stream``. A ZIP
container named ``.docx``/``.xlsx``/``.pptx`` keeps the Office type its name says (they are ZIP files inside).
"""

from __future__ import annotations

__all__ = ["SNIFF_BYTES", "extension_of", "sniff_content_type"]

SNIFF_BYTES = 4096

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"PK\x05\x06", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"Rar!\x1a\x07", 0, "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage"),
    (b"ID3", 0, "audio/mpeg"),
    (b"OggS", 0, "audio/ogg"),
    (b"ftyp", 4, "video/mp4"),
)

_OFFICE = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_OLE = {"doc": "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint"}


def extension_of(name: str) -> str:
    """The lower-case extension of a file name (``""`` when it has none or a strange one)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext.isalnum() or len(ext) > 16:
        return ""
    return ext.lower()


def sniff_content_type(head: bytes, ext: str) -> str:
    """The content type of a file whose first bytes are ``head`` (at most ``SNIFF_BYTES``) and extension ``ext``."""
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, offset, content_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if content_type == "application/zip":
                return _OFFICE.get(ext, content_type)
            if content_type == "application/x-ole-storage":
                return _OLE.get(ext, "application/octet-stream")
            return content_type
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not merely a character cut at the end of the sniffed bytes
                return "application/octet-stream"
        return "text/plain"
    return "application/octet-stream"
