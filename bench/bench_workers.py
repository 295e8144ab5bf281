"""Scale-out benchmark: getFormDataById and saveFormData with 1 worker against 2 workers (``zida serve --workers N``)
on PostgreSQL + Redis, each against the bare baseline (``bench/baseline_app.py``, the same SQL, same worker count)
measured in the same run (see BENCHMARKS.md).

    python bench/bench_workers.py                       # 100,000 records, 3 runs of 10 s per scenario
    python bench/bench_workers.py --records 20000 --duration 3 --runs 1 --no-settle   # a quick check

Needs ``wrk`` (apt-get install wrk), the local PostgreSQL and Redis. The form is built by ``bench_records.prepare``
(reused across runs). Zida runs as in production: Redis shared by the workers (``ZIDA_REDIS_URL``, under a prefix of
its own, removed at the end) and rate limiting on, with a budget far above what wrk sends (so each call is counted
in Redis, and none is refused). Reports requests/s and latency medians over ``--runs`` (runs interleaved, baseline
first), the 2-worker/1-worker ratio of each server, and Zida's ratio to the baseline at each worker count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_records import (
    APP,
    LUA,
    ROOT,
    SECRET,
    baseline_config,
    database_url,
    free_port,
    prepare,
    record,
    run_wrk,
    settle,
    start,
)

REDIS_URL = "redis://127.0.0.1:6379/12"


def wrk(url: str, lua: Path, env: dict[str, str], duration: int, connections: int, quiet: bool) -> dict[str, float]:
    """One wrk run (after the machine settled, unless ``quiet`` is False): requests/s, p50/p99 ms, non-2xx."""
    if quiet:
        settle()
    return run_wrk(url, lua, env, duration, connections)


def servers(workers: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], int, int]:
    """Zida and the baseline, each with ``workers`` processes: (zida, baseline, their ports)."""
    zport, bport = free_port(), free_port()
    py = sys.executable
    zida = start(
        [py, "-m", "zida.cli", "serve", "--port", str(zport), "--workers", str(workers), "--log-level", "warning"],
        env,
        zport,
    )
    base = start(
        [
            *(py, "-m", "uvicorn", "baseline_app:app", "--app-dir", str(ROOT / "bench"), "--port", str(bport)),
            *("--workers", str(workers), "--log-level", "warning", "--no-access-log"),
        ],
        env,
        bport,
    )
    return zida, base, zport, bport


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def drop_redis_keys(prefix: str) -> None:
    from redis import Redis

    client = Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + ":*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-settle", dest="settle", action="store_false", help="don't wait for an idle machine")
    args = parser.parse_args()
    url = database_url("postgresql", args.records)
    print(f"preparing {args.records:,} records on postgresql …", flush=True)
    form_pk, corp_pk, app_pk, ids, fields, contains = asyncio.run(prepare(url, args.records))
    work = Path(tempfile.mkdtemp(prefix="zida-bench-workers-"))
    cfg, _ = baseline_config(url, form_pk, corp_pk, app_pk, fields, work, contains)
    (work / "ids.txt").write_text("\n".join(ids) + "\n")
    (work / "zida-save.txt").write_text(
        "\n".join(
            orjson.dumps(
                {**APP, "formUuid": "FORM-BENCH", "formDataJson": json.dumps(record(i, random.Random(i)))}
            ).decode()
            for i in range(500)
        )
        + "\n"
    )
    (work / "base-save.txt").write_text(
        "\n".join(orjson.dumps({"formDataJson": json.dumps(record(i, random.Random(i)))}).decode() for i in range(500))
        + "\n"
    )
    lua = work / "bench.lua"
    lua.write_text(LUA)
    prefix = "zida-bench-" + secrets.token_hex(4)
    env = {
        "ZIDA_DATABASE_URL": url,
        "ZIDA_SECRET_KEY": SECRET,
        "ZIDA_BASELINE_CONFIG": str(cfg),
        "ZIDA_REDIS_URL": REDIS_URL,
        "ZIDA_REDIS_PREFIX": prefix,
        "ZIDA_RATE_LIMIT_QPS": "1000000",  # on (counted in Redis), never reached
    }
    query = f"?appType={APP['appType']}&systemToken={APP['systemToken']}&userId={APP['userId']}"
    results: dict[str, dict[int, dict[str, dict[str, float]]]] = {}
    try:
        for workers in (1, 2):
            zida, base, zport, bport = servers(workers, env)
            try:
                token = httpx.post(
                    f"http://127.0.0.1:{zport}/v1.0/oauth2/accessToken",
                    json={"appKey": "bench-key", "appSecret": "bench-secret-0001"},
                ).json()["accessToken"]
                scenarios: dict[str, tuple[dict[str, str], dict[str, str]]] = {
                    "getFormDataById": (
                        {
                            "METHOD": "GET",
                            "PREFIX": "/v1.0/yida/forms/instances/",
                            "SUFFIX": query,
                            "BODIES": str(work / "ids.txt"),
                            "TOKEN": token,
                        },
                        {"METHOD": "GET", "PREFIX": "/rec/", "BODIES": str(work / "ids.txt")},
                    ),
                    "saveFormData": (
                        {
                            "METHOD": "POST",
                            "PREFIX": "/v1.0/yida/forms/instances",
                            "BODIES": str(work / "zida-save.txt"),
                            "TOKEN": token,
                        },
                        {"METHOD": "POST", "PREFIX": "/rec", "BODIES": str(work / "base-save.txt")},
                    ),
                }
                for label, (zenv, benv) in scenarios.items():
                    runs: dict[str, list[dict[str, float]]] = {"zida": [], "baseline": []}
                    for _ in range(args.runs):  # interleaved, so machine noise hits both alike
                        runs["baseline"].append(
                            wrk(f"http://127.0.0.1:{bport}", lua, benv, args.duration, args.connections, args.settle)
                        )
                        runs["zida"].append(
                            wrk(f"http://127.0.0.1:{zport}", lua, zenv, args.duration, args.connections, args.settle)
                        )
                    med = {
                        k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50", "p99", "non2xx")}
                        for k, v in runs.items()
                    }
                    results.setdefault(label, {})[workers] = med
                    print(
                        f"{label:16s} {workers} worker{'s' if workers > 1 else ' '}  zida {med['zida']['rps']:8.0f}"
                        f" req/s p50 {med['zida']['p50']:6.1f} ms p99 {med['zida']['p99']:6.1f} ms"
                        f" (non-2xx {med['zida']['non2xx']:.0f})  baseline {med['baseline']['rps']:8.0f} req/s"
                        f"  ratio {med['zida']['rps'] / med['baseline']['rps']:.2f}",
                        flush=True,
                    )
            finally:
                stop(zida, base)
    finally:
        drop_redis_keys(prefix)
    print()
    for label, by_workers in results.items():
        one, two = by_workers[1], by_workers[2]
        print(
            f"{label:16s} 2 workers / 1 worker: zida {two['zida']['rps'] / one['zida']['rps']:.2f}×,"
            f" baseline {two['baseline']['rps'] / one['baseline']['rps']:.2f}×"
        )
    out: dict[str, Any] = {"records": args.records, "results": results}
    (work / "results.json").write_text(json.dumps(out, indent=2))
    print(f"\nresults: {work / 'results.json'}")


if __name__ == "__main__":
    main()
