"""Both storage backends through the one interface: streamed writes, ranged reads, deletes, listings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.core.files.s3 import MotoServer
from zida.core.files.storage import S3_PART_BYTES, FileStorage, LocalStorage, S3Storage, storage_for_url
from zida.settings import Settings

pytestmark = pytest.mark.anyio


async def _chunks(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read(storage: FileStorage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> FileStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    moto: MotoServer = request.getfixturevalue("moto_server")
    bucket = moto.new_bucket()
    settings = Settings(**{  # type: ignore[arg-type]
        "files_s3_endpoint": moto.endpoint, "files_s3_access_key": "testing", "files_s3_secret_key": "testing-secret"
    })  # fmt: skip
    return storage_for_url(f"s3://{bucket}/some/prefix", settings)


async def test_write_read_ranges_delete_and_list(storage: FileStorage) -> None:
    data = bytes(range(256)) * 4000  # 1 MB
    await storage.write("c1/FILE-A", _chunks(data))
    assert await _read(storage, "c1/FILE-A") == data
    assert await _read(storage, "c1/FILE-A", 1000, 1999) == data[1000:2000]
    assert await _read(storage, "c1/FILE-A", len(data) - 10) == data[-10:]
    assert [k async for k in storage.list_keys()] == ["c1/FILE-A"]
    await storage.delete("c1/FILE-A")
    await storage.delete("c1/FILE-A")  # already gone: no error
    assert [k async for k in storage.list_keys()] == []


async def test_a_failed_write_leaves_nothing(storage: FileStorage) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * S3_PART_BYTES  # past one S3 part: a multipart upload had begun
        yield b"y" * 10
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError):
        await storage.write("c1/FILE-B", failing())
    assert [k async for k in storage.list_keys()] == []


async def test_s3_multipart_upload_of_several_parts(moto_server: MotoServer) -> None:
    bucket = moto_server.new_bucket()
    settings = Settings(files_s3_endpoint=moto_server.endpoint, files_s3_access_key="testing", files_s3_secret_key="x")
    storage = storage_for_url(f"s3://{bucket}", settings)
    assert isinstance(storage, S3Storage)
    data = b"0123456789abcdef" * (S3_PART_BYTES // 16) * 2 + b"tail"
    await storage.write("c1/BIG", _chunks(data, 1 << 20))
    assert await _read(storage, "c1/BIG", len(data) - 8) == data[-8:]
    head = moto_server.client().head_object(Bucket=bucket, Key="c1/BIG")
    assert head["ContentLength"] == len(data)


def test_local_storage_refuses_keys_that_leave_its_directory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    for key in ("../x", "/etc/passwd", "a/../../x", "a\x00b"):
        with pytest.raises(ValueError):
            storage.local_path(key)
