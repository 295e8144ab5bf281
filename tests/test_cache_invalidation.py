"""Caches across processes: a change made by one process (here ``zida load`` changing an app's secret) is seen by
running servers that share Redis within the sync interval, however long their cache TTL; a server without a shared
store sees it only when its entries expire."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import FIXTURES, ServerProcess
from tests.stores import TEST_REDIS_URL, connect_redis, drop_keys, random_prefix
from zida.crypto import digest
from zida.db import open_database

PREFIX = random_prefix()
REDIS = {"ZIDA_REDIS_URL": TEST_REDIS_URL, "ZIDA_REDIS_PREFIX": PREFIX}


def zida_load(url: str, bundle: Path, **env: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zida.cli", "load", str(bundle), "--database", url],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def forms(base: str, token: str, secret: str) -> int:
    """getFormListInApp as cAdmin with ``secret`` as the app's systemToken: the HTTP status."""
    response = httpx.get(
        base + "/v1.0/yida/forms",
        params={"appType": "APP_CACHE1", "systemToken": secret, "userId": "cAdmin"},
        headers={"x-acs-dingtalk-access-token": token},
        timeout=10,
    )
    return response.status_code


def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def corp(loaded_url: str) -> Iterator[str]:
    """The corpCache bundle loaded; skipped (with the reason) only where Redis refuses connections."""

    async def probe() -> None:
        store = await connect_redis(PREFIX)
        await store.close()

    asyncio.run(probe())
    zida_load(loaded_url, FIXTURES / "corp_cache.yaml")
    yield loaded_url
    asyncio.run(drop_keys(PREFIX))


@pytest.fixture(scope="module")
def servers(corp: str) -> Iterator[tuple[str, str]]:
    """Two live servers with a cache TTL of 10 minutes: one sharing Redis, one on its own."""
    shared = ServerProcess(corp, ZIDA_CACHE_SECONDS="600", **REDIS)
    alone = ServerProcess(corp, ZIDA_CACHE_SECONDS="600")
    yield f"http://{shared.endpoint}", f"http://{alone.endpoint}"
    shared.stop()
    alone.stop()


def test_a_changed_app_secret_reaches_every_server_sharing_redis(
    corp: str, servers: tuple[str, str], tmp_path: Path
) -> None:
    shared, alone = servers
    token = httpx.post(
        shared + "/v1.0/oauth2/accessToken",
        json={"appKey": "keyCache-all", "appSecret": "secret-cache-all-01"},
        timeout=10,
    ).json()["accessToken"]
    # Both servers check the first secret once, and cache that it is right.
    assert forms(shared, token, "ST-CACHE-FIRST") == 200
    assert forms(alone, token, "ST-CACHE-FIRST") == 200
    bundle = yaml.safe_load((FIXTURES / "corp_cache.yaml").read_text())
    bundle["apps"][0]["systemToken"] = "ST-CACHE-SECOND"
    changed = tmp_path / "corp_cache.yaml"
    changed.write_text(yaml.safe_dump(bundle, allow_unicode=True))
    try:
        zida_load(corp, changed, **REDIS)
        # The server sharing Redis drops its cache: the old secret is refused, the new one accepted.
        assert eventually(lambda: forms(shared, token, "ST-CACHE-FIRST") == 400)
        assert forms(shared, token, "ST-CACHE-SECOND") == 200
        # The server on its own keeps what it cached until its entries expire (10 minutes here).
        assert forms(alone, token, "ST-CACHE-FIRST") == 200
    finally:
        zida_load(corp, FIXTURES / "corp_cache.yaml", **REDIS)


def test_without_redis_a_token_revoked_by_another_program_ends_within_the_cache_lifetime(corp: str) -> None:
    """App tokens are checked against the database again after ``ZIDA_CACHE_SECONDS``, as every other cache: they
    were re-checked after a fixed 30 s, whatever the setting (a rotation or re-scoping on another worker without
    Redis, or by another program, took that long)."""
    alone = ServerProcess(corp, ZIDA_CACHE_SECONDS="0.5")
    try:
        base = f"http://{alone.endpoint}"
        token = httpx.post(
            base + "/v1.0/oauth2/accessToken",
            json={"appKey": "keyCache-all", "appSecret": "secret-cache-all-01"},
            timeout=10,
        ).json()["accessToken"]
        assert forms(base, token, "ST-CACHE-FIRST") == 200  # cached now

        async def revoke() -> None:
            db = await open_database(corp)
            try:
                async with db.transaction() as tx:
                    await tx.execute("DELETE FROM access_token WHERE token_digest = :d", {"d": digest(token)})
            finally:
                await db.close()

        asyncio.run(revoke())
        revoked = time.monotonic()

        def refused() -> bool:
            answer = httpx.get(
                base + "/v1.0/yida/forms",
                params={"appType": "APP_CACHE1", "systemToken": "ST-CACHE-FIRST", "userId": "cAdmin"},
                headers={"x-acs-dingtalk-access-token": token},
                timeout=10,
            )
            return answer.status_code == 400 and answer.json()["code"] == "InvalidAuthentication"

        assert eventually(refused, 10.0)
        assert time.monotonic() - revoked < 5.0
    finally:
        alone.stop()
