"""Soak: mixed load (writes: records, approvals, tasks; reads: a record by id, a search page) against
``zida serve --workers 2`` for a while, sampling every few seconds each worker's resident memory
(``/proc/<pid>/status`` VmRSS), its open file descriptors (``/proc/<pid>/fd``) and the server's PostgreSQL
connections (``pg_stat_activity`` by the URL's ``application_name``).

``python -m tests.reliability.soak <postgresql-url with corp_flow loaded> <seconds>`` prints the samples as JSON;
``tests/reliability/test_soak.py`` runs it on a fresh schema and checks what it found.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from tests.conftest import SECRET_KEY, free_port
from tests.reliability.conftest import wait_healthy
from tests.reliability.load import APP, Acknowledged, Load, token
from zida.db import open_database

__all__ = ["Sample", "Soak", "soak"]


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss_kib: dict[int, int]  # worker pid -> VmRSS
    fds: dict[int, int]  # worker pid -> open file descriptors
    connections: int  # the server's PostgreSQL connections


@dataclass
class Soak:
    seconds: float
    workers: list[int]
    samples: list[Sample] = field(default_factory=list)
    calls: int = 0
    reads: int = 0
    failures: list[str] = field(default_factory=list)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and "resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _connections(db_url: str, name: str) -> int:
    db = await open_database(db_url.split("?", 1)[0])
    try:
        value = await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n", {"n": name})
        return int(value)
    finally:
        await db.close()


async def _reader(base: str, headers: dict[str, str], acked: Acknowledged, stop: asyncio.Event, soak: Soak) -> None:
    rng = random.Random()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        while not stop.is_set():
            if acked.records and rng.random() < 0.6:
                record = rng.choice(list(acked.records))
                reply = await http.get(
                    f"/v1.0/yida/forms/instances/{record}",
                    params={**APP, "userId": "li", "formUuid": "FORM-FLOW-PLAIN"},
                )
            else:
                body = {**APP, "userId": "li", "formUuid": "FORM-FLOW-PLAIN", "pageSize": 20, "currentPage": 1}
                reply = await http.post("/v1.0/yida/forms/instances/search", json=body)
            soak.reads += 1
            if reply.status_code != 200:
                soak.failures.append(f"read: HTTP {reply.status_code} {reply.text[:200]}")


async def _drive(base: str, db_url: str, app_name: str, soak: Soak, interval: float) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        access_token = await token(http, base)
    acked = Acknowledged()
    load = Load(base, access_token, acked, clients=12)
    stop = asyncio.Event()
    readers = [asyncio.create_task(_reader(base, load.headers, acked, stop, soak)) for _ in range(8)]
    load.start()
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < soak.seconds:
        soak.samples.append(
            Sample(
                at=round(elapsed, 1),
                rss_kib={pid: _rss_kib(pid) for pid in soak.workers},
                fds={pid: len(os.listdir(f"/proc/{pid}/fd")) for pid in soak.workers},
                connections=await _connections(db_url, app_name),
            )
        )
        if load.failures:
            break
        await asyncio.sleep(interval)
    stop.set()
    await load.stop()
    await asyncio.gather(*readers)
    soak.calls = acked.calls
    soak.failures += load.failures


def soak(db_url: str, seconds: float, interval: float = 5.0, workers: int = 2) -> Soak:
    """Serve ``db_url`` (PostgreSQL, corp_flow loaded) with ``workers`` workers under mixed load for ``seconds``."""
    app_name = f"zida-soak-{os.getpid()}"
    url = db_url + ("&" if "?" in db_url else "?") + f"application_name={app_name}"
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zida.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "ZIDA_DATABASE_URL": url, "ZIDA_SECRET_KEY": SECRET_KEY, "ZIDA_RATE_LIMIT_QPS": "0"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        deadline = time.monotonic() + 30
        while len(pids := _children(server.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        result = Soak(seconds=seconds, workers=pids)
        asyncio.run(_drive(base, url, app_name, result, interval))
        return result
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":  # pragma: no cover - a by-hand run
    found = soak(sys.argv[1], float(sys.argv[2]))
    print(json.dumps(asdict(found), indent=1))
