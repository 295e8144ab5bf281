"""What metrics, JSON access logs and rate limiting cost: getFormDataById throughput with each on and off, in the same
run (see BENCHMARKS.md; issue 15: each may cost at most 5% of throughput).

    python bench/bench_observability.py --database sqlite
    python bench/bench_observability.py --database postgresql --workers 2

Needs ``wrk`` (apt-get install wrk). Builds (once, then reuses) the records benchmark's form with ``--records``
records (``bench_records.prepare``), then starts four ``zida serve`` processes (``--workers`` each) over it:

* ``bare``: ``ZIDA_METRICS=off``, ``ZIDA_ACCESS_LOG=off``, no rate limit (the reference);
* ``metrics+logs``: ``/metrics`` on and one JSON access line per request (written to a file, as a log shipper
  would read it);
* ``rate limit``: ``ZIDA_RATE_LIMIT_QPS`` so high that nothing is refused, but every call is counted in the store
  (memory; with ``--redis`` the shared Redis store, one round trip per call);
* ``all on``: the three together (the default configuration of a production server).

Each run drives every server in turn with ``wrk`` (get-by-id of random records, the official SDK's request); the
order rotates between runs. Reports requests/s and latency percentiles per run, the medians over ``--runs`` and each
configuration's throughput over ``bare``'s. Afterwards it checks that the servers really did the work: the metrics
server counted the requests, the log file holds a line per request, the limiter refused nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_records import APP, LUA, SECRET, database_url, free_port, prepare, run_wrk, settle  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/12"
CONFIGS: dict[str, dict[str, str]] = {
    "bare": {"ZIDA_METRICS": "off", "ZIDA_ACCESS_LOG": "off", "ZIDA_RATE_LIMIT_QPS": "0"},
    "metrics+logs": {"ZIDA_METRICS": "on", "ZIDA_ACCESS_LOG": "on", "ZIDA_RATE_LIMIT_QPS": "0"},
    "rate limit": {"ZIDA_METRICS": "off", "ZIDA_ACCESS_LOG": "off", "ZIDA_RATE_LIMIT_QPS": "1000000"},
    "all on": {"ZIDA_METRICS": "on", "ZIDA_ACCESS_LOG": "on", "ZIDA_RATE_LIMIT_QPS": "1000000"},
}


def start(env: dict[str, str], workers: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``zida serve`` on a free port, its output (the access log among it) appended to ``log``."""
    port = free_port()
    command = [sys.executable, "-m", "zida.cli", "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("ab") as sink:
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"zida serve ({env}) did not start: see {log}")


def wrk(url: str, lua: Path, env: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    """One wrk run (after the machine settled, at most ``--settle`` seconds): requests/s, p50/p99 ms, non-2xx."""
    settle(args.settle)
    return run_wrk(url, lua, env, args.duration, args.connections)


def counted(port: int) -> float:
    """getFormDataById answers with 200 the metrics server counted."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    pattern = (
        r'^zida_http_requests_total\{[^}]*route="/v1\.0/yida/forms/instances/\{id\}"[^}]*status="200"[^}]*\} (\S+)$'
    )
    return sum(float(m) for m in re.findall(pattern, text, re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=120.0, help="longest wait for an idle machine before a run")
    parser.add_argument("--redis", action="store_true", help=f"rate limits counted in Redis ({REDIS_URL})")
    args = parser.parse_args()

    url = database_url(args.database, args.records)
    print(f"preparing {args.records:,} records on {args.database} …", flush=True)
    _, _, _, ids, _, _ = asyncio.run(prepare(url, args.records))
    work = Path(tempfile.mkdtemp(prefix="zida-bench-observability-"))
    (work / "ids.txt").write_text("\n".join(ids) + "\n")
    lua = work / "bench.lua"
    lua.write_text(LUA)
    common = {
        "ZIDA_DATABASE_URL": url,
        "ZIDA_SECRET_KEY": SECRET,
        "ZIDA_EVENTS": "off",
        "ZIDA_LOG_FORMAT": "json",
        "ZIDA_LOG_LEVEL": "info",
        **({"ZIDA_REDIS_URL": REDIS_URL} if args.redis else {}),
    }
    servers: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name, env in CONFIGS.items():
            log = work / f"{name.replace(' ', '-').replace('+', '-')}.log"
            proc, port = start({**common, **env}, args.workers, log)
            servers[name] = (proc, port, log)
        first = servers["bare"][1]
        token = httpx.post(
            f"http://127.0.0.1:{first}/v1.0/oauth2/accessToken",
            json={"appKey": "bench-key", "appSecret": "bench-secret-0001"},
        ).json()["accessToken"]
        query = f"?appType={APP['appType']}&systemToken={APP['systemToken']}&userId={APP['userId']}"
        scenario = {"METHOD": "GET", "PREFIX": "/v1.0/yida/forms/instances/", "SUFFIX": query, "TOKEN": token,
                    "BODIES": str(work / "ids.txt")}  # fmt: skip
        for _proc, port, _log in servers.values():  # one call each before timing: it must succeed
            reply = httpx.get(f"http://127.0.0.1:{port}/v1.0/yida/forms/instances/{ids[0]}{query}",
                              headers={"x-acs-dingtalk-access-token": token})  # fmt: skip
            reply.raise_for_status()
        before = counted(servers["metrics+logs"][1])
        print(f"getFormDataById: {args.runs} run(s) of {args.duration} s, {args.connections} connections, "
              f"{args.workers} worker(s) per server, {args.database}{' + Redis' if args.redis else ''}")  # fmt: skip
        results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        names = list(servers)
        for run in range(args.runs):
            order = names[run % len(names) :] + names[: run % len(names)]
            for name in order:
                result = wrk(f"http://127.0.0.1:{servers[name][1]}", lua, scenario, args)
                results[name].append(result)
                print(f"  run {run + 1} {name:>13}: {result['rps']:8.0f} req/s  p50 {result['p50']:6.2f} ms"
                      f"  p99 {result['p99']:6.2f} ms  non-2xx {result['non2xx']:.0f}", flush=True)  # fmt: skip
        medians = {name: statistics.median(r["rps"] for r in runs) for name, runs in results.items()}
        print("medians (throughput over bare's):")
        for name, runs in results.items():
            p99 = statistics.median(r["p99"] for r in runs)
            ratio = medians[name] / medians["bare"] if medians["bare"] else float("nan")
            print(f"  {name:>13}: {medians[name]:8.0f} req/s  p99 {p99:6.2f} ms  ratio {ratio:.3f}")
        # The work was done: counted, logged, nothing refused.
        total = sum(r["rps"] * args.duration for r in results["metrics+logs"])
        got = counted(servers["metrics+logs"][1]) - before
        print(f"check: the metrics server counted {got:,.0f} get-by-id answers (wrk: about {total:,.0f})")
        lines = servers["all on"][2].read_text(errors="replace").count('"logger":"zida.access"')
        print(f"check: the all-on server wrote {lines:,} access lines")
        refused = sum(r["non2xx"] for runs in results.values() for r in runs)
        print(f"check: non-2xx answers in all runs: {refused:.0f} (the rate limit must refuse nothing)")
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
        for proc, _, _ in servers.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
