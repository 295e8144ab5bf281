"""What metrics and JSON access logs cost in CPU per request, measured in-process (no sockets, no wrk): the ASGI app
is called directly for getFormDataById, with metrics and the access log on and off, with prometheus_client in
multi-process mode (``PROMETHEUS_MULTIPROC_DIR`` set, as ``zida serve --workers N`` does) and in single-process mode.

    python bench/bench_observability_cpu.py --database sqlite
    python bench/bench_observability_cpu.py --database postgresql --requests 3000 --rounds 5

Builds (once, then reuses) the records benchmark's form with ``--records`` records (``bench_records.prepare``). Each
configuration runs in a child process of its own (prometheus_client reads its mode at import), which loads the
settings, configures logging as ``zida serve`` does (the JSON lines go to a file, as a log shipper would read them),
starts the app's lifespan, takes a token and then times ``--rounds`` rounds of ``--requests`` sequential requests
with ``time.process_time``: CPU µs per request, the median over the rounds. The children run in turn, twice over
(the order rotated), and the report takes each configuration's lower median: CPU time is what observability adds;
the machine's other load only adds noise. The cost of a configuration is its µs per request over ``off``'s.

A whole request costs ~100 µs, so on a shared machine the difference is within the noise of one pass; the column
"observing alone" times, in the same child, what observability adds to such a request without the request (the
observer's metrics and access line, one statement observation, one token cache lookup) over many iterations: the
steady number to compare between versions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging.config
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_records import APP, SECRET, database_url, prepare  # noqa: E402

CONFIGS: dict[str, dict[str, str]] = {
    "off": {"ZIDA_METRICS": "off", "ZIDA_ACCESS_LOG": "off"},
    "single-process on": {"ZIDA_METRICS": "on", "ZIDA_ACCESS_LOG": "on"},
    "multi-process on": {"ZIDA_METRICS": "on", "ZIDA_ACCESS_LOG": "on", "MULTIPROC": "1"},
    "multi-process metrics only": {"ZIDA_METRICS": "on", "ZIDA_ACCESS_LOG": "off", "MULTIPROC": "1"},
    "access log only": {"ZIDA_METRICS": "off", "ZIDA_ACCESS_LOG": "on"},
}


class _Asgi:
    """Calls an ASGI app the way a server does, one request at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(self, method: str, path: str, query: bytes = b"", headers: Any = (), body: bytes = b"") -> Any:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return answer


async def _lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    return task, inbox


async def _child(args: argparse.Namespace, app: Any, ids: list[str]) -> None:
    task, inbox = await _lifespan(app)
    client = _Asgi(app)
    reply = await client.request(
        "POST",
        "/v1.0/oauth2/accessToken",
        headers=[(b"content-type", b"application/json")],
        body=json.dumps({"appKey": "bench-key", "appSecret": "bench-secret-0001"}).encode(),
    )
    token = json.loads(reply["body"])["accessToken"].encode()
    query = f"appType={APP['appType']}&systemToken={APP['systemToken']}&userId={APP['userId']}".encode()
    headers = [(b"x-acs-dingtalk-access-token", token)]
    rng = random.Random(1)
    paths = [f"/v1.0/yida/forms/instances/{rng.choice(ids)}" for _ in range(args.requests)]
    for path in paths[:200]:  # warm the caches
        assert (await client.request("GET", path, query, headers))["status"] == 200
    per_request = []
    for _ in range(args.rounds):
        started = time.process_time()
        for path in paths:
            await client.request("GET", path, query, headers)
        per_request.append((time.process_time() - started) / len(paths) * 1e6)
    observing = _observation_alone(app, args.requests * 5, args.rounds)
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    print(json.dumps({"us": statistics.median(per_request), "rounds": per_request, "observing": observing}))


def _observation_alone(app: Any, count: int, rounds: int) -> float:
    """CPU µs of what observability adds to one such request, without the request: the observer's ``_observe`` (its
    metrics and access line), one statement observation and one token cache lookup (median of ``rounds``)."""
    from zida.db import database
    from zida.observability.context import RequestContext
    from zida.observability.metrics import token_cache_lookup

    observer = app.router.observer
    route = next(r for m in app.router.mounts for r in getattr(m, "routes", ()) if "{id}" in getattr(r, "path", ""))
    scope = {"method": "GET", "route": route}
    context = RequestContext("0123456789ABCDEF0123456789ABCDEF")
    context.corp, context.credential = "corpBench", "bench-key"
    statement = database._statement_observer
    took = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(count):
            observer._observe("dingtalk", scope, 200, 0.0012, context)
            if statement is not None:
                statement(0.0003)
            token_cache_lookup(True)
        took.append((time.process_time() - started) / count * 1e6)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=2_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=2, help="times every configuration is run (order rotated)")
    parser.add_argument("--only", action="append", help="a configuration to run (repeatable; default: all)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from zida.observability.logs import logging_config
        from zida.server import create_app
        from zida.settings import load_settings

        settings = load_settings()
        sys.stderr = open(args.log, "a")  # noqa: SIM115  # the access lines, as zida serve writes them (stderr)
        logging.config.dictConfig(logging_config(settings))
        asyncio.run(_child(args, create_app(settings), json.loads(Path(args.ids).read_text())))
        return

    url = database_url(args.database, args.records)
    print(f"preparing {args.records:,} records on {args.database} …", flush=True)
    ids = asyncio.run(prepare(url, args.records))[3]
    work = Path(tempfile.mkdtemp(prefix="zida-bench-observability-cpu-"))
    (work / "ids.json").write_text(json.dumps(ids))
    names = args.only or list(CONFIGS)
    best: dict[str, list[float]] = {name: [] for name in names}
    alone: dict[str, list[float]] = {name: [] for name in names}
    for run in range(args.passes):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            env = {**os.environ, "ZIDA_DATABASE_URL": url, "ZIDA_SECRET_KEY": SECRET, "ZIDA_EVENTS": "off"}
            env |= {"ZIDA_RATE_LIMIT_QPS": "0", "ZIDA_LOG_FORMAT": "json", "ZIDA_LOG_LEVEL": "info"}
            env |= {k: v for k, v in CONFIGS[name].items() if k != "MULTIPROC"}
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            if "MULTIPROC" in CONFIGS[name]:
                env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=work)
            log = work / f"{name.replace(' ', '-')}.log"
            command = [sys.executable, __file__, "--child", "--ids", str(work / "ids.json"), "--log", str(log)]
            command += ["--requests", str(args.requests), "--rounds", str(args.rounds)]
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{name}: {out.stderr}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            best[name].append(result["us"])
            alone[name].append(result["observing"])
            rounds = " ".join(f"{r:.0f}" for r in result["rounds"])
            print(f"  pass {run + 1} {name:<28} {result['us']:7.1f} µs/request  (rounds: {rounds}); "
                  f"observing alone {result['observing']:.2f} µs", flush=True)  # fmt: skip
    print(f"\ngetFormDataById, {args.database}, CPU µs per request (lower median of {args.passes} passes):")
    print(f"  {'':<28} {'request':>8} {'observing alone':>16}")
    off = min(best["off"]) if "off" in best else None
    for name in names:
        us = min(best[name])
        extra = f"  +{us - off:6.1f} µs  ({off / us:.3f} of off's throughput)" if off and name != "off" else ""
        print(f"  {name:<28} {us:8.1f} {min(alone[name]):16.2f}{extra}")


if __name__ == "__main__":
    main()
