"""Where file bytes live: one ``FileStorage`` interface, a local directory and an S3-compatible service.

Keys are Zida's own (``c<corp pk>/<file id>``): a client's file name never becomes a path. Bytes are streamed in
chunks both ways; nothing holds a whole file in memory (S3 uploads go in parts of ``S3_PART_BYTES``).

* ``LocalStorage``: a directory (default ``files/`` beside the SQLite database, or ``var/files``). A file is written
  under ``.partial/`` and renamed into place when complete, so a failed or truncated upload never appears (one
  left by a server killed mid-upload is listed once idle for ``PARTIAL_IDLE_SECONDS``, so gc removes it).
* ``S3Storage``: ``s3://bucket/prefix`` through boto3 (its blocking calls run in threads), at
  ``ZIDA_FILES_S3_ENDPOINT`` (any S3-compatible service) with ``ZIDA_FILES_S3_ACCESS_KEY``/``…_SECRET_KEY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from zida.settings import Settings, sqlite_path

__all__ = ["CHUNK_BYTES", "FileStorage", "LocalStorage", "S3Storage", "open_storage", "storage_for_url"]

CHUNK_BYTES = 256 * 1024
S3_PART_BYTES = 8 * 1024 * 1024  # S3's smallest part is 5 MiB
PARTIAL_IDLE_SECONDS = 3600  # a local upload's partial file untouched this long is from an upload that died


class FileStorage(Protocol):
    """Bytes by key: written from a stream, read as a stream (a byte range), deleted, listed."""

    backend: str

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        """Store the stream under ``key``; on any error nothing is left behind."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start``..``end`` (inclusive; None: to the end) of ``key``."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file's path when the backend is a local directory (served with ``sendfile``), else None."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is already gone)."""
        ...

    def list_keys(self) -> AsyncIterator[str]:
        """Every stored key."""
        ...


class LocalStorage:
    """A directory of files."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/") or "\x00" in key:
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        target = self._path(key)
        partial = self.root / ".partial" / f"{secrets.token_hex(8)}"
        partial.parent.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                async for chunk in chunks:
                    out.write(chunk)  # a chunk into the page cache: microseconds, cheaper than a thread hop
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        with open(self._path(key), "rb") as src:  # noqa: ASYNC230 (opening is a metadata call; reads run in threads)
            src.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = await asyncio.to_thread(src.read, CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    async def list_keys(self) -> AsyncIterator[str]:
        """Every stored key, and the ``.partial/`` files of uploads that died (no byte written for
        ``PARTIAL_IDLE_SECONDS``: the server was killed mid-upload), which no row names: gc removes them."""
        if not self.root.exists():
            return
        idle_since = time.time() - PARTIAL_IDLE_SECONDS
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root).as_posix()
            if not path.is_file():
                continue
            if relative.startswith(".partial/"):
                with contextlib.suppress(FileNotFoundError):  # an upload in flight may finish meanwhile
                    if path.stat().st_mtime < idle_since:
                        yield relative
                continue
            yield relative


class S3Storage:
    """A bucket (and key prefix) of an S3-compatible service."""

    backend = "s3"

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client

    @classmethod
    def from_settings(cls, url: str, settings: Settings) -> S3Storage:
        """The storage an ``s3://bucket/prefix`` URL and the S3 settings name."""
        import boto3  # type: ignore[import-untyped]  # imported only by installations that use S3
        from botocore.config import Config  # type: ignore[import-untyped]

        bucket, _, prefix = url[len("s3://") :].partition("/")
        client = boto3.client(
            "s3",
            endpoint_url=settings.files_s3_endpoint,
            region_name=settings.files_s3_region,
            aws_access_key_id=settings.files_s3_access_key,
            aws_secret_access_key=settings.files_s3_secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )
        return cls(bucket, prefix, client)

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        call = self._call
        try:
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= S3_PART_BYTES:
                    if upload_id is None:
                        started = await call("create_multipart_upload", Bucket=self.bucket, Key=self._key(key))
                        upload_id = started["UploadId"]
                    part = await call(
                        "upload_part",
                        Bucket=self.bucket,
                        Key=self._key(key),
                        UploadId=upload_id,
                        PartNumber=len(parts) + 1,
                        Body=bytes(buffer),
                    )
                    parts.append({"ETag": part["ETag"], "PartNumber": len(parts) + 1})
                    buffer = bytearray()
            if upload_id is None:
                await call("put_object", Bucket=self.bucket, Key=self._key(key), Body=bytes(buffer))
                return
            if buffer:
                part = await call(
                    "upload_part",
                    Bucket=self.bucket,
                    Key=self._key(key),
                    UploadId=upload_id,
                    PartNumber=len(parts) + 1,
                    Body=bytes(buffer),
                )
                parts.append({"ETag": part["ETag"], "PartNumber": len(parts) + 1})
            await call(
                "complete_multipart_upload",
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await call("abort_multipart_upload", Bucket=self.bucket, Key=self._key(key), UploadId=upload_id)
            raise

    async def _call(self, name: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(functools.partial(getattr(self.client, name), **kwargs))

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        wanted = f"bytes={start}-" + ("" if end is None else str(end))
        answer = await self._call("get_object", Bucket=self.bucket, Key=self._key(key), Range=wanted)
        body = answer["Body"]
        try:
            while True:
                chunk = await asyncio.to_thread(body.read, CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def local_path(self, key: str) -> Path | None:
        return None

    async def delete(self, key: str) -> None:
        await self._call("delete_object", Bucket=self.bucket, Key=self._key(key))

    async def list_keys(self) -> AsyncIterator[str]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = await self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")


def default_files_dir(settings: Settings) -> Path:
    """The local files directory: ``files/`` beside an SQLite database file, else ``var/files``."""
    if settings.database_url.startswith("sqlite"):
        path = sqlite_path(settings.database_url)
        if path != ":memory:":
            return Path(path).parent / "files"
    return Path("var") / "files"


def storage_for_url(url: str | None, settings: Settings) -> FileStorage:
    """The storage ``url`` names (``s3://…``, ``file:///dir``; None: the default local directory)."""
    if url is None:
        return LocalStorage(default_files_dir(settings))
    if url.startswith("file://"):
        return LocalStorage(Path(url[len("file://") :]))
    return S3Storage.from_settings(url, settings)


_OPEN: dict[tuple[Any, ...], FileStorage] = {}


def open_storage(settings: Settings) -> FileStorage:
    """The storage a server's settings configure (one per configuration and process; boto3 clients are reused)."""
    key = (
        settings.files_url,
        settings.database_url,
        settings.files_s3_endpoint,
        settings.files_s3_region,
        settings.files_s3_access_key,
        settings.files_s3_secret_key,
    )
    storage = _OPEN.get(key)
    if storage is None:
        storage = _OPEN[key] = storage_for_url(settings.files_url, settings)
    return storage


def storage_for_backend(settings: Settings, backend: str) -> FileStorage:
    """The storage holding files whose row says ``backend``: the configured one, or during a move to S3 the local
    directory the older files still live in."""
    configured = open_storage(settings)
    if configured.backend == backend:
        return configured
    if backend == "local":
        return LocalStorage(default_files_dir(settings))
    raise ValueError(f"files stored in {backend} but ZIDA_FILES_URL names {configured.backend} storage")
