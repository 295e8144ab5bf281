"""The files core on a real database and a real directory: uploads, their limits, their row, audit and event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from zida.core.errors import InvalidArgument
from zida.core.files import repository
from zida.core.files.actions import Upload, check_name, upload_file
from zida.core.files.models import FileLimits, is_file_id
from zida.core.files.sniff import extension_of, sniff_content_type
from zida.core.files.storage import LocalStorage
from zida.db import Database

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _corp_pk(db: Database, corp_id: str = "corpA") -> int:
    return int(await db.fetchval("SELECT id FROM corp WHERE corp_id = :c", {"c": corp_id}))


def _stored(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def _upload(db: Database, root: Path, *parts: bytes, name: str = "a.txt", limits: FileLimits | None = None,
                  declared: int | None = None):  # type: ignore[no-untyped-def]  # fmt: skip
    return await upload_file(
        db,
        LocalStorage(root),
        limits or FileLimits(),
        corp_pk=await _corp_pk(db),
        uploader="credential:test",
        upload=Upload(name=name, chunks=_chunks(*parts), declared_size=declared),
    )


async def test_upload_stores_bytes_row_audit_and_event(db: Database, tmp_path: Path) -> None:
    body = "报销单 2024\n".encode() * 1000
    stored = await _upload(db, tmp_path, body[:5000], body[5000:], name="报销单.txt", declared=len(body))
    assert is_file_id(stored.file_id)
    assert (stored.size, stored.content_type, stored.ext, stored.name) == (len(body), "text/plain", "txt", "报销单.txt")
    path = tmp_path / stored.storage_key
    assert path.read_bytes() == body
    assert "报销单" not in stored.storage_key  # the client's name never becomes a path
    row = await repository.find_file(db, stored.file_id)
    assert row is not None and row.sha256 == stored.sha256 and row.attached_at is None
    audit = await db.fetch(
        "SELECT action FROM audit_log WHERE object_kind = 'file' AND object_id = :f", {"f": stored.file_id}
    )
    assert [r["action"] for r in audit] == ["created"]
    events = await db.fetch("SELECT payload FROM outbox_event WHERE event_type = 'file.created'")
    assert any(stored.file_id in str(r["payload"]) for r in events)


async def test_content_type_is_sniffed_not_taken_from_the_name(db: Database, tmp_path: Path) -> None:
    stored = await _upload(db, tmp_path, PNG, name="looks-like.pdf")
    assert stored.content_type == "image/png"
    html = await _upload(db, tmp_path, b"<html><script>alert(1)</script></html>", name="page.html")
    assert html.content_type == "text/plain"  # never served as a page


@pytest.mark.parametrize(
    ("parts", "declared", "limits", "reason"),
    [
        ((b"",), None, FileLimits(), "file.empty"),
        ((), 0, FileLimits(), "file.empty"),
        ((b"x" * 600, b"y" * 600), None, FileLimits(max_bytes=1000), "request.too_large"),
        ((b"x" * 10,), 5000, FileLimits(max_bytes=1000), "request.too_large"),
        ((b"x" * 10,), 11, FileLimits(), "file.length_mismatch"),
        ((b"x" * 10,), 9, FileLimits(), "file.length_mismatch"),
        ((PNG,), None, FileLimits(allowed_types=("application/pdf",)), "file.type_not_allowed"),
    ],
)
async def test_bad_uploads_are_refused_and_nothing_is_kept(
    db: Database, tmp_path: Path, parts: tuple[bytes, ...], declared: int | None, limits: FileLimits, reason: str
) -> None:
    before = await db.fetchval("SELECT COUNT(*) FROM stored_file")
    with pytest.raises(InvalidArgument) as err:
        await _upload(db, tmp_path, *parts, limits=limits, declared=declared)
    assert err.value.reason == reason
    assert await db.fetchval("SELECT COUNT(*) FROM stored_file") == before
    assert _stored(tmp_path) == []


async def test_allowed_types_accept_a_family_or_an_extension(db: Database, tmp_path: Path) -> None:
    assert (await _upload(db, tmp_path, PNG, name="a.png", limits=FileLimits(allowed_types=("image/*",)))).size
    assert (await _upload(db, tmp_path, b"a,b\n", name="a.csv", limits=FileLimits(allowed_types=("csv",)))).size


async def test_the_corp_quota_is_kept(db: Database, tmp_path: Path) -> None:
    used = int(
        await db.fetchval(
            "SELECT COALESCE(SUM(size), 0) FROM stored_file WHERE corp_pk = :c", {"c": await _corp_pk(db)}
        )
    )
    limits = FileLimits(quota_bytes=used + 150)
    await _upload(db, tmp_path, b"x" * 100, limits=limits)
    with pytest.raises(InvalidArgument) as err:
        await _upload(db, tmp_path, b"x" * 100, limits=limits)
    assert err.value.reason == "request.too_large" and "quota" in err.value.message
    with pytest.raises(InvalidArgument):
        await _upload(db, tmp_path, b"x" * 100, limits=limits, declared=100)
    assert len(_stored(tmp_path)) == 1


async def test_uploads_at_once_never_pass_the_quota_together(db: Database, tmp_path: Path) -> None:
    """On PostgreSQL each upload's check and insert ran beside the others': eight at once each found room for one."""
    corp_pk = await _corp_pk(db)
    used = int(await db.fetchval("SELECT COALESCE(SUM(size), 0) FROM stored_file WHERE corp_pk = :c", {"c": corp_pk}))
    limits = FileLimits(quota_bytes=used + 450)  # room for four of 100 bytes
    storage = LocalStorage(tmp_path)

    async def one(n: int) -> bool:
        try:
            await upload_file(
                db, storage, limits, corp_pk=corp_pk, uploader="credential:test",
                upload=Upload(name=f"q{n}.txt", chunks=_chunks(b"x" * 100)),
            )  # fmt: skip
        except InvalidArgument as exc:
            assert exc.reason == "request.too_large"
            return False
        return True

    stored = await asyncio.gather(*(one(n) for n in range(8)))
    assert sum(stored) == 4
    assert await repository.used_bytes(db, corp_pk) == used + 400
    assert len(_stored(tmp_path)) == 4


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "../etc/passwd",
        "a/b.txt",
        "C:\\x\\a.txt",
        "..",
        "a\x00.txt",
        "a\nb.txt",
        "x" * 256,
        "invoice\u202egpj.exe",  # shows as "invoiceexe.jpg"
        "a\u2067b.txt",
    ],
)
def test_names_that_could_act_as_paths_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_name(name)
    assert err.value.reason == "file.bad_name"


def test_names_people_use_are_kept() -> None:
    assert check_name("2024 报销单 (final).pdf") == "2024 报销单 (final).pdf"
    assert check_name("x" * 255) == "x" * 255


@pytest.mark.parametrize(
    ("head", "ext", "expected"),
    [
        (b"%PDF-1.7\n", "pdf", "application/pdf"),
        (b"\xff\xd8\xff\xe0", "jpg", "image/jpeg"),
        (b"GIF89a", "gif", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp", "image/webp"),
        (b"PK\x03\x04rest", "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (b"PK\x03\x04rest", "exe", "application/zip"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "pdf", "application/octet-stream"),
        ("中文".encode()[:-1], "txt", "text/plain"),  # a character cut at the end of the sniffed bytes
    ],
)
def test_sniffing(head: bytes, ext: str, expected: str) -> None:
    assert sniff_content_type(head, ext) == expected


def test_extensions() -> None:
    assert extension_of("a.PDF") == "pdf"
    assert extension_of(".bashrc") == ""
    assert extension_of("noext") == ""
