"""Contacts benchmarks over a generated org of 100,000 users in 5,000 departments (see BENCHMARKS.md).

    python bench/bench_contacts.py --database sqlite
    python bench/bench_contacts.py --database postgresql

Needs ``wrk`` (apt-get install wrk). Builds the org once with ``zida migrate`` + ``zida load`` of the bundle of
``bench/org_bundle.py`` (timed: the load must take under a minute on SQLite), then starts ``zida serve``
(``--workers`` processes) and drives it with wrk: ``getFormDataById`` on the same server (the reference the contact
reads are measured against), ``topapi/v2/user/get`` of random users, ``topapi/user/listsimple`` first pages (100
users) of random departments, and ``/v1.0/contact/users/search`` for pieces of random names (a page of 20 with its
total). Reports requests/s and latency percentiles per run, medians over ``--runs``, and user/get's throughput over
getFormDataById's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_records import LUA, free_port, start, wrk  # noqa: E402
from org_bundle import CORP, name, org_bundle  # noqa: E402

sys.path.insert(0, str(ROOT / "src"))
from zida.db import open_database  # noqa: E402

SECRET = "zida-bench-key"
USERS = 100_000
DEPARTMENTS = 5_000
PG_URL = "postgresql://postgres@127.0.0.1:5432/test?search_path=zida_contacts"
APP = {"appType": "APP_ORG", "systemToken": "ST-ORG-TOKEN-0001", "userId": "user000000"}


def database_url(kind: str) -> str:
    """The bench database: ``var/bench/contacts.db`` or the schema ``zida_contacts``."""
    return PG_URL if kind == "postgresql" else f"sqlite:///{ROOT / 'var' / 'bench' / 'contacts.db'}"


def bench_bundle() -> dict[str, Any]:
    """The generated org with one app and form (for the getFormDataById reference)."""
    bundle = org_bundle(USERS, DEPARTMENTS)
    bundle["apps"] = [
        {
            "appType": APP["appType"],
            "name": "通讯录基准",
            "systemToken": APP["systemToken"],
            "admins": [APP["userId"]],
            "forms": [
                {
                    "formUuid": "FORM-ORG",
                    "title": "记录",
                    "fields": [
                        {"fieldId": "textField_title", "component": "TextField", "label": "标题"},
                        {"fieldId": "employeeField_who", "component": "EmployeeField", "label": "人员"},
                    ],
                }
            ],
        }
    ]
    return bundle


def zida_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZIDA_SECRET_KEY": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "zida.cli", *args, "--database", url],
        env=env,
        text=True,
        capture_output=True,
        check=True,
    )


def prepare(url: str) -> float | None:
    """Migrate and load the org unless it is there; the load's seconds (None: it was already loaded)."""
    zida_cli("migrate", url=url)

    async def loaded() -> bool:
        db = await open_database(url)
        try:
            return await db.fetchval("SELECT count(*) FROM corp WHERE corp_id = :c", {"c": CORP}) == 1
        finally:
            await db.close()

    if asyncio.run(loaded()):
        return None
    bundle = ROOT / "var" / "bench" / "contacts-org.json"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(orjson.dumps(bench_bundle()))
    started = time.perf_counter()
    loaded = zida_cli("load", str(bundle), url=url)
    seconds = time.perf_counter() - started
    print(loaded.stdout.strip(), flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", action="append", help="run only the scenarios whose label contains this")
    args = parser.parse_args()
    url = database_url(args.database)
    if args.database == "sqlite":
        (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    print(f"preparing the org ({USERS:,} users, {DEPARTMENTS:,} departments) on {args.database} …", flush=True)
    load_seconds = prepare(url)
    if load_seconds is not None:
        print(f"zida load of the org: {load_seconds:.1f} s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="zida-bench-contacts-"))
    lua = work / "bench.lua"
    lua.write_text(LUA)
    port = free_port()
    env = {"ZIDA_DATABASE_URL": url, "ZIDA_SECRET_KEY": SECRET, "ZIDA_RATE_LIMIT_QPS": "0"}  # the work, not the limit
    cmd = [sys.executable, "-m", "zida.cli", "serve", "--port", str(port), "--workers", str(args.workers)]
    server = start([*cmd, "--log-level", "warning"], env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        token = httpx.post(
            f"{base}/v1.0/oauth2/accessToken", json={"appKey": "keyOrg", "appSecret": "secret-org-0001"}
        ).json()["accessToken"]
        rng = random.Random(11)
        headers = {"x-acs-dingtalk-access-token": token}
        ids = []
        for i in range(200):
            data = {"textField_title": f"记录{i}", "employeeField_who": [f"user{rng.randrange(USERS):06d}"]}
            r = httpx.post(
                f"{base}/v1.0/yida/forms/instances",
                headers=headers,
                json={**APP, "formUuid": "FORM-ORG", "formDataJson": json.dumps(data, ensure_ascii=False)},
            )
            r.raise_for_status()
            ids.append(r.json()["result"])
        lines = {
            "ids": ids,
            "users": [orjson.dumps({"userid": f"user{rng.randrange(USERS):06d}"}).decode() for _ in range(2000)],
            "depts": [
                orjson.dumps({"dept_id": rng.randint(2, DEPARTMENTS), "cursor": 0, "size": 100}).decode()
                for _ in range(2000)
            ],
            "search": [
                orjson.dumps(
                    {"queryWord": name(rng)[:2], "offset": 0, "size": 20}, option=orjson.OPT_NON_STR_KEYS
                ).decode()
                for _ in range(2000)
            ],
        }
        for key, values in lines.items():
            (work / f"{key}.txt").write_text("\n".join(values) + "\n")
        query = f"?appType={APP['appType']}&systemToken={APP['systemToken']}&userId={APP['userId']}"
        scenarios: dict[str, dict[str, str]] = {
            "getFormDataById (reference)": {
                "METHOD": "GET",
                "PREFIX": "/v1.0/yida/forms/instances/",
                "SUFFIX": query,
                "BODIES": str(work / "ids.txt"),
                "TOKEN": token,
            },
            "topapi/v2/user/get": {
                "METHOD": "POST",
                "PREFIX": f"/topapi/v2/user/get?access_token={token}",
                "BODIES": str(work / "users.txt"),
            },
            "topapi/user/listsimple (100 of a department)": {
                "METHOD": "POST",
                "PREFIX": f"/topapi/user/listsimple?access_token={token}",
                "BODIES": str(work / "depts.txt"),
            },
            "v1.0 users/search (20 + total)": {
                "METHOD": "POST",
                "PREFIX": "/v1.0/contact/users/search",
                "BODIES": str(work / "search.txt"),
                "TOKEN": token,
            },
        }
        for label, wenv in scenarios.items():  # every route answers before anything is timed
            sample = (work / Path(wenv["BODIES"]).name).read_text().splitlines()[0]
            if wenv["METHOD"] == "GET":
                r = httpx.get(base + wenv["PREFIX"] + sample + wenv.get("SUFFIX", ""), headers=headers)
            else:
                r = httpx.post(
                    base + wenv["PREFIX"], content=sample, headers={**headers, "content-type": "application/json"}
                )
            body = r.json()
            assert r.status_code == 200 and body.get("errcode", 0) == 0, (label, r.status_code, body)
        results: dict[str, list[dict[str, float]]] = {label: [] for label in scenarios}
        for run in range(args.runs):
            for label, wenv in scenarios.items():
                if args.only and not any(o in label for o in args.only):
                    continue
                result = wrk(base, lua, wenv, args.duration, args.connections)
                results[label].append(result)
                print(
                    f"run {run + 1} {label}: {result['rps']:.0f} req/s p50 {result['p50']:.1f} ms"
                    f" p99 {result['p99']:.1f} ms non-2xx {result['non2xx']:.0f}",
                    flush=True,
                )
        print(f"\n{args.database}, {args.workers} workers, {args.connections} connections, medians of {args.runs}:")
        print("| scenario | req/s | p50 ms | p99 ms |\n|---|---|---|---|")
        medians: dict[str, float] = {}
        for label, runs in results.items():
            if not runs:
                continue
            medians[label] = statistics.median(r["rps"] for r in runs)
            p50 = statistics.median(r["p50"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            print(f"| {label} | {medians[label]:,.0f} | {p50:.1f} | {p99:.1f} |")
        ref, get = medians.get("getFormDataById (reference)"), medians.get("topapi/v2/user/get")
        if ref and get:
            pairs = [
                g["rps"] / r["rps"]
                for g, r in zip(results["topapi/v2/user/get"], results["getFormDataById (reference)"], strict=False)
            ]
            print(
                f"\nuser/get over getFormDataById: median {get / ref:.2f};"
                f" per run {', '.join(f'{p:.2f}' for p in pairs)}"
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
