"""A local S3-compatible server for the files tests: moto in server mode, in a child process on a free port."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import free_port

KEYS = {"ZIDA_FILES_S3_ACCESS_KEY": "testing", "ZIDA_FILES_S3_SECRET_KEY": "testing-secret"}


class MotoServer:
    """``moto.server`` on 127.0.0.1 (a bucket per test module: :meth:`new_bucket`)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto.server exited with {self.proc.returncode}")
            try:
                httpx.get(self.endpoint, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto.server did not answer in 20 s")

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEYS["ZIDA_FILES_S3_ACCESS_KEY"],
            aws_secret_access_key=KEYS["ZIDA_FILES_S3_SECRET_KEY"],
        )

    def new_bucket(self) -> str:
        name = f"zida-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str, prefix: str = "files") -> dict[str, str]:
        """The settings that point Zida at ``bucket``."""
        return {"ZIDA_FILES_URL": f"s3://{bucket}/{prefix}", "ZIDA_FILES_S3_ENDPOINT": self.endpoint, **KEYS}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """The S3-compatible server, or a skip saying why it could not start."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"S3 tests need moto[server] and boto3 (pip install -e '.[dev]'): {exc}")
    if shutil.which(sys.executable) is None:
        pytest.skip("no Python interpreter to run moto.server")
    try:
        server = MotoServer()
    except RuntimeError as exc:
        pytest.skip(f"the local S3-compatible server (moto.server) could not start: {exc}")
    yield server
    server.stop()
