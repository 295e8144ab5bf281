"""Events out: delivery rate and lag of approval events over HTTP callbacks and Stream mode (see BENCHMARKS.md,
Events out).

    python bench/bench_events.py --database sqlite
    python bench/bench_events.py --database postgresql

**Load:** the approvals benchmark's integrator flow (``bench_approvals.py``: start, then two approvers each
getRunningTasks + executeTask AGREE), same closed loop of keep-alive connections, same bundle. One instance
writes 10 approval events (process start and finish, 4 task starts, 2 finishes, 2 cancels of the or-sign's other
approver): that is what the receivers subscribe to (``bpms_instance_change`` and ``bpms_task_change``).

**Three servers** (``zida serve --workers 2``), each on its own database with the same bundle, driven in turn
(``--runs`` rounds, the order rotating each round, so machine noise hits all alike):

* ``off``: no subscription — the approvals benchmark as it is;
* ``http``: a callback registered through ``POST /call_back/register_call_back`` (legacy DingTalk payloads,
  DingTalk's retry schedule) to an HTTP receiver in its own process: a bare asyncio + httptools server that
  decrypts every push with the ``dingtalk-sdk`` package's ``DingTalkCrypto`` and answers the encrypted
  ``success`` (no framework);
* ``stream``: a Stream-mode client in its own process (``websockets``, as the official SDK: gateway open with an
  ``EVENT`` subscription, then the WebSocket; every ``EVENT`` frame acked with code 200 as the SDK acks it).

**Measured:**

* approvals instances/s of each server (medians of the runs) and the ratios ``http/off``, ``stream/off``: what
  delivery costs the API (target: ≥ 0.90). The receivers share the machine, so their CPU is printed too.
* **lag** of every approval event committed in a measured window: receipt time at the receiver minus the event's
  time (its outbox row's ``created_at``: looked up by (topic, object) for the legacy payloads, whose own
  ``createTime`` of a cancelled task is the task's creation; Stream's ``eventBornTime`` is that time). Events
  not received when the backlog is drained (the bench waits for it after every run) count as infinitely late.
  Target: p99 ≤ 1 s at the approvals benchmark's rate.
* delivered events/s during the load, and the **drain rate**: ``--backlog`` seconds of load on the server with
  ``ZIDA_EVENTS=0`` (the outbox fills, nothing is sent), then the server restarted with delivery on: events/s
  from the first to the last receipt with no API load, and the CPU (server workers, PostgreSQL backends) per
  event. HTTP pushes start with the server (fan-out runs alongside); the Stream client connects once the
  fan-out is done, so its figure is the sending alone.

Databases are recreated for every invocation (SQLite files var/bench/events-<arm>.db, PostgreSQL schemas
``zida_bench_events_<arm>`` in db ``test``; ``--drop`` drops the schemas afterwards). After the runs every
delivery must be delivered (none pending or failed) and the stored instances pass the workflow check.
Results: var/bench/events-<database>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import httpx
import orjson

from bench_approvals import (
    CREDENTIAL,
    PG,
    ROOT,
    SECRET,
    _children,
    _cpu_of,
    _postgres_pids,
    analyze,
    check_consistency,
    drive,
    free_port,
    line,
    load_arguments,
    recreate,
    start_server,
    stop_server,
    summarize,
    zida_target,
)
from zida.db import open_database

ARMS = ("off", "http", "stream")
TAGS = ["bpms_instance_change", "bpms_task_change"]
TOPICS = ("process.started", "process.finished", "task.created", "task.finished", "task.cancelled")
CALLBACK_TOKEN = "zida-bench-callback-token"
CALLBACK_AES_KEY = "BenchEventsAesKey0123456789abcdefghijKLMNOP"  # 43 letters and digits
CORP_ID = "benchflow"  # the legacy callback's ownerKey
_TASK_TYPES = {"start": "task.created", "finish": "task.finished", "cancel": "task.cancelled"}
_PROCESS_TYPES = {"start": "process.started", "finish": "process.finished", "terminate": "process.terminated"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def database_url(kind: str, arm: str) -> str:
    if kind == "postgresql":
        name = f"zida_bench_events_{arm}"
        return f"{PG}?search_path={name}&application_name={name}"
    return f"sqlite:///{ROOT / 'var' / 'bench' / f'events-{arm}.db'}"


# ------------------------------------------------------------------------------------ receiver processes


class _Receipts:
    """What a receiver got; the bench takes (and empties) it over the control pipe."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []

    def take(self) -> list[tuple[Any, ...]]:
        items, self.items = self.items, []  # appends after the swap go to the new list: nothing is lost
        return items


def _control(ctrl: Pipe, receipts: _Receipts, loop: asyncio.AbstractEventLoop, command: Callable[[str], Any]) -> None:
    """The receiver's control thread: ``take`` answers the receipts so far, anything else goes to ``command``."""
    while True:
        try:
            cmd = ctrl.recv()
        except (EOFError, OSError):
            os._exit(0)
        if cmd == "take":
            ctrl.send(receipts.take())
        elif cmd == "stop":
            ctrl.send("ok")
            os._exit(0)
        else:
            done = asyncio.run_coroutine_threadsafe(_call(command, cmd), loop)
            ctrl.send(done.result())


async def _call(command: Callable[[str], Any], cmd: str) -> Any:
    return command(cmd)


def http_receiver(ctrl: Pipe, port: int, token: str, aes_key: str, owner: str) -> None:
    """A callback receiver: HTTP/1.1 keep-alive (httptools), every push decrypted and checked with dingtalk-sdk's
    DingTalkCrypto, answered with the encrypted ``success``. Records (receipt ms, topic, object) per event."""
    import httptools
    import uvloop
    from dingtalk.crypto import DingTalkCrypto

    crypto = DingTalkCrypto(token, aes_key, owner)
    receipts = _Receipts()

    def handle(url: bytes, body: bytes, at: int) -> bytes:
        query = dict(parse_qsl(url.split(b"?", 1)[1].decode()))
        text = crypto.decrypt_encrypt_str(
            query["msg_signature"], query["timestamp"], query["nonce"], orjson.loads(body)["encrypt"]
        )
        message = orjson.loads(text)
        kind = message.get("EventType")
        if kind == "bpms_task_change":
            receipts.items.append((at, _TASK_TYPES[message["type"]], str(message["taskId"])))
        elif kind == "bpms_instance_change":
            receipts.items.append((at, _PROCESS_TYPES[message["type"]], message["processInstanceId"]))
        elif kind != "check_url":
            receipts.items.append((at, str(kind), ""))
        return orjson.dumps(crypto.encrypt_message("success"))

    class Protocol(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""
            self.body = bytearray()
            self.transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            at = now_ms()
            try:
                status, reply = b"200 OK", handle(self.url, bytes(self.body), at)
            except Exception as exc:
                status, reply = b"400 Bad Request", repr(exc).encode()
            self.url, self.body = b"", bytearray()
            head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(reply))
            self.transport.write(head + reply)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Protocol, "127.0.0.1", port, backlog=1024)
        threading.Thread(target=_control, args=(ctrl, receipts, loop, lambda cmd: cmd), daemon=True).start()
        ctrl.send("ready")
        async with server:
            await server.serve_forever()

    uvloop.run(main())


def stream_client(ctrl: Pipe, base_url: str, client_id: str, secret: str, topics: list[str]) -> None:
    """A Stream-mode client: gateway open, WebSocket, every EVENT frame acked as dingtalk-stream acks it (code 200,
    the frame's data echoed), SYSTEM pings answered. ``connect`` / ``disconnect`` over the control pipe; while it
    should be connected it reconnects (every 0.1 s) whenever the connection drops. Records (receipt ms,
    eventBornTime, eventId) per event."""
    import uvloop
    import websockets

    receipts = _Receipts()
    wanted = asyncio.Event()
    state: dict[str, Any] = {"ws": None}

    def command(cmd: str) -> Any:
        if cmd == "connect":
            wanted.set()
        elif cmd == "disconnect":
            wanted.clear()
            if state["ws"] is not None:
                asyncio.get_running_loop().create_task(state["ws"].close())
        elif cmd == "status":
            return state["ws"] is not None
        return "ok"

    async def session(http: httpx.AsyncClient) -> None:
        body = {
            "clientId": client_id,
            "clientSecret": secret,
            "subscriptions": [{"type": "EVENT", "topic": t} for t in topics],
            "ua": "zida-bench-events",
        }
        reply = await http.post(f"{base_url}/v1.0/gateway/connections/open", json=body)
        reply.raise_for_status()
        info = reply.json()
        uri = f"{info['endpoint']}?ticket={quote_plus(info['ticket'])}"
        async with websockets.connect(uri, max_size=None) as ws:
            state["ws"] = ws
            try:
                async for raw in ws:
                    at = now_ms()
                    frame = orjson.loads(raw)
                    headers = frame.get("headers") or {}
                    if frame.get("type") == "EVENT":
                        receipts.items.append((at, int(headers["eventBornTime"]), headers.get("eventId")))
                    ack = {
                        "code": 200,
                        "headers": {"contentType": "application/json", "messageId": headers.get("messageId")},
                        "message": "OK",
                        "data": frame.get("data", "{}"),
                    }
                    await ws.send(orjson.dumps(ack).decode())
            finally:
                state["ws"] = None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=_control, args=(ctrl, receipts, loop, command), daemon=True).start()
        ctrl.send("ready")
        async with httpx.AsyncClient(trust_env=False) as http:
            while True:
                await wanted.wait()
                try:
                    await session(http)
                except Exception:
                    await asyncio.sleep(0.1)

    uvloop.run(main())


class Peer:
    """A receiver process and its control pipe."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.ctrl, child = context.Pipe()
        self.process = context.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        if not self.ctrl.poll(30) or self.ctrl.recv() != "ready":
            raise RuntimeError(f"{target.__name__} did not start")

    def ask(self, cmd: str) -> Any:
        self.ctrl.send(cmd)
        return self.ctrl.recv()

    def cpu(self) -> float:
        return _cpu_of([self.process.pid or 0])

    def stop(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            self.ask("stop")
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


# ---------------------------------------------------------------------------------------------- measuring

_BACKLOG = (
    "SELECT (SELECT COUNT(*) FROM event_delivery WHERE status = 'pending') AS pending,"
    " (SELECT COUNT(*) FROM outbox_event WHERE delivered_at IS NULL) AS undispatched"
)


async def _outbox_times(url: str, begin: int, end: int) -> dict[tuple[str, str], int]:
    """(topic, object) → created_at of the approval events written in [begin, end] ms."""
    db = await open_database(url)
    try:
        names = ", ".join(f"'{t}'" for t in TOPICS)
        rows = await db.fetch(
            "SELECT event_type, payload, created_at FROM outbox_event WHERE created_at >= :b AND created_at <= :e"
            f" AND event_type IN ({names})",
            {"b": begin, "e": end},
        )
        return {(r["event_type"], str(orjson.loads(r["payload"])["object"])): int(r["created_at"]) for r in rows}
    finally:
        await db.close()


async def _backlog(url: str) -> dict[str, int]:
    db = await open_database(url)
    try:
        row = await db.fetchrow(_BACKLOG)
        assert row is not None
        return {"pending": int(row["pending"]), "undispatched": int(row["undispatched"])}
    finally:
        await db.close()


async def wait_drained(url: str, cap: float, *, dispatched_only: bool = False) -> float:
    """Seconds until no event waits for fan-out (or delivery, unless ``dispatched_only``); inf after ``cap``."""
    begin = time.monotonic()
    db = await open_database(url)
    try:
        while time.monotonic() - begin < cap:
            row = await db.fetchrow(_BACKLOG)
            assert row is not None
            if not int(row["undispatched"]) and (dispatched_only or not int(row["pending"])):
                return time.monotonic() - begin
            await asyncio.sleep(0.05)
        return float("inf")
    finally:
        await db.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * q))]


def lag_stats(arm: str, url: str, receipts: list[tuple[Any, ...]], begin: int, end: int) -> dict[str, Any]:
    """Lag (ms) of every approval event written in [begin, end]: its receipt minus its outbox time."""
    written = asyncio.run(_outbox_times(url, begin, end))
    lags: list[float] = []
    if arm == "http":
        first: dict[tuple[str, str], int] = {}
        for at, topic, obj in receipts:
            first.setdefault((topic, obj), at)
        for key, created in written.items():
            got = first.get(key)
            lags.append(float("inf") if got is None else got - created)
    else:
        seen: set[str] = set()
        for at, born, event_id in receipts:
            if begin <= born <= end and event_id not in seen:
                seen.add(event_id)
                lags.append(at - born)
        lags.extend([float("inf")] * max(0, len(written) - len(seen)))
    lags.sort()
    in_window = sum(1 for r in receipts if begin <= r[0] <= end)
    seconds = (end - begin) / 1000
    return {
        "events": len(written),
        "missing": sum(1 for v in lags if v == float("inf")),
        "duplicates": len(receipts) - len({(r[1], r[2]) for r in receipts}),
        "lag_p50_ms": _percentile(lags, 0.5),
        "lag_p99_ms": _percentile(lags, 0.99),
        "lag_max_ms": lags[-1] if lags else float("nan"),
        "delivered_per_s": in_window / seconds if seconds > 0 else float("nan"),
        "written_per_s": len(written) / seconds if seconds > 0 else float("nan"),
    }


# ----------------------------------------------------------------------------------------------- servers


class Servers:
    """One server per arm, each on its own database."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.urls = {arm: database_url(args.database, arm) for arm in ARMS}
        self.ports = {arm: free_port() for arm in ARMS}
        self.procs: dict[str, Any] = {}
        self.tokens: dict[str, str] = {}

    def start(self, arm: str, *, events: bool = True) -> None:
        env = {
            "ZIDA_RATE_LIMIT_QPS": "0",
            "ZIDA_SECRET_KEY": SECRET,
            "ZIDA_DATABASE_URL": self.urls[arm],
            "ZIDA_EVENTS": "1" if events else "0",
        }
        if self.args.poll is not None:
            env["ZIDA_EVENTS_POLL_SECONDS"] = str(self.args.poll)
        port = self.ports[arm]
        cmd = [sys.executable, "-m", "zida.cli", "serve", "--port", str(port), "--workers", str(self.args.workers)]
        proc = self.procs[arm] = start_server([*cmd, "--log-level", "warning"], env, port)
        # start_server leaves stderr to a pipe nobody reads: a server logging much would block on it
        log = ROOT / "var" / "bench" / f"events-{self.args.database}-{arm}.log"
        threading.Thread(target=_copy, args=(proc.stderr, log), daemon=True).start()
        reply = httpx.post(f"http://127.0.0.1:{port}/v1.0/oauth2/accessToken", json=CREDENTIAL).json()
        self.tokens[arm] = reply["accessToken"]

    def stop(self, arm: str) -> None:
        proc = self.procs.pop(arm, None)
        if proc is not None:
            stop_server(proc)

    def base(self, arm: str) -> str:
        return f"http://127.0.0.1:{self.ports[arm]}"

    def pg(self, arm: str) -> str | None:
        return self.urls[arm] if self.args.database == "postgresql" else None

    def drive(self, arm: str, warmup: float, duration: float) -> dict[str, Any]:
        target = zida_target(self.ports[arm], self.tokens[arm])
        a = self.args
        return drive(target, self.procs[arm].pid, a.connections, a.workers, warmup, duration, self.pg(arm))


def _copy(stream: Any, path: Any) -> None:
    with open(path, "ab") as out:
        for chunk in iter(lambda: stream.read1(65536), b""):
            out.write(chunk)
            out.flush()


def server_errors(database: str, arm: str) -> dict[str, int]:
    """What the arm's server logged: delivery rounds that failed, statement timeouts, tracebacks."""
    path = ROOT / "var" / "bench" / f"events-{database}-{arm}.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return {
        "failed_rounds": text.count("event delivery round failed"),
        "statement_timeouts": text.count("statement timeout"),
        "tracebacks": text.count("Traceback"),
    }


def register_callback(base: str, receiver_url: str) -> None:
    """The HTTP arm's subscription, as an integrator registers it (check_url answered by the receiver)."""
    token = httpx.get(
        f"{base}/gettoken", params={"appkey": CREDENTIAL["appKey"], "appsecret": CREDENTIAL["appSecret"]}
    ).json()["access_token"]
    body = {"call_back_tag": TAGS, "token": CALLBACK_TOKEN, "aes_key": CALLBACK_AES_KEY, "url": receiver_url}
    reply = httpx.post(f"{base}/call_back/register_call_back", params={"access_token": token}, json=body).json()
    if reply.get("errcode") != 0:
        raise RuntimeError(f"register_call_back: {reply}")


def wait_connected(peer: Peer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not peer.ask("status"):
        if time.monotonic() > deadline:
            raise RuntimeError("the Stream client did not connect")
        time.sleep(0.05)
    time.sleep(0.3)  # the worker's hub has it and the subscription exists


async def delivery_check(url: str) -> dict[str, int]:
    db = await open_database(url)
    try:
        rows = await db.fetch("SELECT status, COUNT(*) AS n FROM event_delivery GROUP BY status")
        out = {str(r["status"]): int(r["n"]) for r in rows}
        out["retried"] = int(await db.fetchval("SELECT COUNT(*) FROM event_delivery WHERE attempts > 1") or 0)
        return out
    finally:
        await db.close()


async def drop_schemas() -> None:
    import asyncpg

    conn = await asyncpg.connect(PG)
    try:
        for arm in ARMS:
            await conn.execute(f'DROP SCHEMA IF EXISTS "zida_bench_events_{arm}" CASCADE')
    finally:
        await conn.close()


def lag_line(stats: dict[str, Any]) -> str:
    return (
        f"lag p50 {stats['lag_p50_ms']:.0f} p99 {stats['lag_p99_ms']:.0f} max {stats['lag_max_ms']:.0f} ms"
        f" | {stats['events']} events written ({stats['written_per_s']:.0f}/s), delivered"
        f" {stats['delivered_per_s']:.0f}/s during the window, missing {stats['missing']},"
        f" duplicates {stats['duplicates']} | drained {stats['drained_s']:.1f} s after the load"
        f" | receiver {stats['receiver_core_share']:.2f} core"
    )


def median_stats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("lag_p50_ms", "lag_p99_ms", "lag_max_ms", "delivered_per_s", "written_per_s", "drained_s")
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["receiver_core_share"] = statistics.median(r["receiver_core_share"] for r in runs)
    out.update(events=sum(r["events"] for r in runs), missing=sum(r["missing"] for r in runs))
    out["duplicates"] = sum(r["duplicates"] for r in runs)
    out["lag_p99_worst_ms"] = max(r["lag_p99_ms"] for r in runs)
    return out


def drain_rate(servers: Servers, arm: str, peer: Peer, seconds: float) -> dict[str, Any]:
    """``seconds`` of load with delivery off, then delivery on (module docstring)."""
    url = servers.urls[arm]
    if arm == "stream":
        peer.ask("disconnect")
    servers.stop(arm)
    servers.start(arm, events=False)
    servers.drive(arm, 0, seconds)
    servers.stop(arm)
    backlog = asyncio.run(_backlog(url))
    peer.ask("take")
    started = now_ms()
    servers.start(arm)
    if arm == "stream":
        asyncio.run(wait_drained(url, servers.args.drain_cap, dispatched_only=True))
    workers = _children(servers.procs[arm].pid)
    backends = asyncio.run(_postgres_pids(servers.pg(arm)))[0]
    up, cpu0 = now_ms(), _cpu_of(workers) + _cpu_of(backends)
    if arm == "stream":
        peer.ask("connect")
    drained = asyncio.run(wait_drained(url, servers.args.drain_cap))
    backends = sorted(set(backends) | set(asyncio.run(_postgres_pids(servers.pg(arm)))[0]))
    cpu = _cpu_of(workers) + _cpu_of(backends) - cpu0
    times = sorted(r[0] for r in peer.ask("take"))
    span = (times[-1] - times[0]) / 1000 if len(times) > 1 else float("nan")
    after_up = sum(1 for t in times if t >= up)
    return {
        "outbox_events": backlog["undispatched"],
        "received": len(times),
        "events_per_s": (len(times) - 1) / span if span and span > 0 else float("nan"),
        "first_receipt_after_start_s": (times[0] - started) / 1000 if times else float("nan"),
        "span_s": span,
        "drained_s_after_server_up": drained,
        "cpu_ms_per_event": cpu * 1000 / after_up if after_up else float("nan"),
        "events_measured_for_cpu": after_up,
    }


def main() -> None:
    parser = load_arguments(__doc__)
    parser.add_argument("--backlog", type=float, default=5, help="seconds of load for the drain test (0: skip it)")
    parser.add_argument("--arms", default="off,http,stream", help="which of off,http,stream to run")
    parser.add_argument("--poll", type=float, default=None, help="ZIDA_EVENTS_POLL_SECONDS of the servers")
    parser.add_argument("--drain-cap", type=float, default=300, help="give up waiting for a backlog after this")
    parser.add_argument("--drop", action="store_true", help="PostgreSQL: drop the bench schemas afterwards")
    args = parser.parse_args()
    arms = [a for a in args.arms.split(",") if a]
    assert set(arms) <= set(ARMS), arms

    servers = Servers(args)
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    print(f"recreating the {args.database} databases …", flush=True)
    for arm in arms:
        asyncio.run(recreate(servers.urls[arm]))
        (ROOT / "var" / "bench" / f"events-{args.database}-{arm}.log").unlink(missing_ok=True)
    since = now_ms()
    peers: dict[str, Peer] = {}
    results: dict[str, Any] = {arm: [] for arm in arms}
    lags: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms if arm != "off"}
    drains: dict[str, Any] = {}
    try:
        for arm in arms:
            servers.start(arm)
        if "http" in arms:
            port = free_port()
            peers["http"] = Peer(http_receiver, port, CALLBACK_TOKEN, CALLBACK_AES_KEY, CORP_ID)
            register_callback(servers.base("http"), f"http://127.0.0.1:{port}/callback")
        if "stream" in arms:
            base = servers.base("stream")
            peers["stream"] = Peer(stream_client, base, CREDENTIAL["appKey"], CREDENTIAL["appSecret"], TAGS)
            peers["stream"].ask("connect")
            wait_connected(peers["stream"])
        if args.history > 0:
            print(f"  {args.history:.0f} s of history on each, then ANALYZE …", flush=True)
            for arm in arms:
                servers.drive(arm, 0, args.history)
                if arm in peers:
                    asyncio.run(wait_drained(servers.urls[arm], args.drain_cap))
                    peers[arm].ask("take")
            asyncio.run(analyze(*(servers.urls[arm] for arm in arms)))
        for run in range(args.runs):
            for arm in arms[run % len(arms) :] + arms[: run % len(arms)]:  # rotating order
                peer = peers.get(arm)
                cpu0, t0 = (peer.cpu() if peer else 0.0), time.monotonic()
                begin = now_ms()
                out = servers.drive(arm, args.warmup, args.duration)
                end = now_ms()
                results[arm].append(out)
                print(f"  run {run + 1} " + line(arm, summarize([out])), flush=True)
                if peer is None:
                    continue
                share = (peer.cpu() - cpu0) / (time.monotonic() - t0)
                drained = asyncio.run(wait_drained(servers.urls[arm], args.drain_cap))
                stats = lag_stats(arm, servers.urls[arm], peer.ask("take"), begin + int(args.warmup * 1000), end)
                stats.update(drained_s=drained, receiver_core_share=share)
                lags[arm].append(stats)
                print(f"  run {run + 1} {arm:9s} " + lag_line(stats), flush=True)
        if args.backlog > 0:
            for arm in arms:
                if arm in peers:
                    drains[arm] = d = drain_rate(servers, arm, peers[arm], args.backlog)
                    print(
                        f"  drain {arm}: {d['received']} events ({d['outbox_events']} in the outbox) at"
                        f" {d['events_per_s']:.0f} events/s (first receipt {d['first_receipt_after_start_s']:.1f} s"
                        f" after the start, drained {d['drained_s_after_server_up']:.1f} s after the server was up)"
                        f" | CPU {d['cpu_ms_per_event']:.2f} ms per event (server + PostgreSQL backends,"
                        f" {d['events_measured_for_cpu']} events)",
                        flush=True,
                    )
    finally:
        for arm in list(servers.procs):
            servers.stop(arm)
        for peer in peers.values():
            peer.stop()

    med: dict[str, Any] = {arm: summarize(results[arm]) for arm in arms if results[arm]}
    checks: dict[str, Any] = {}
    for arm in arms:
        total, problems, statuses = asyncio.run(check_consistency(servers.urls[arm], since))
        checks[arm] = {"instances": total, "statuses": statuses, "problems": problems[:20]}
        checks[arm]["server_log"] = server_errors(args.database, arm)
        if arm in peers:
            checks[arm]["deliveries"] = asyncio.run(delivery_check(servers.urls[arm]))
    for arm in arms:
        if arm not in med:
            continue
        print(line(arm, med[arm]))
        if arm in lags:
            med[arm]["events"] = median_stats(lags[arm])
            print(f"{arm:9s} " + lag_line(med[arm]["events"]))
            if "off" in med:
                ratio = med[arm]["instances_per_s"] / med["off"]["instances_per_s"]
                med[arm]["ratio_to_off"] = ratio
                p99, worst = med[arm]["events"]["lag_p99_ms"], med[arm]["events"]["lag_p99_worst_ms"]
                print(
                    f"{arm:9s} ratio {arm}/off {ratio:.2f} (target ≥ 0.90: {'met' if ratio >= 0.9 else 'NOT met'})"
                    f" | lag p99 median {p99:.0f} ms, worst run {worst:.0f} ms"
                    f" (target ≤ 1000: {'met' if p99 <= 1000 else 'NOT met'})"
                )
    for arm, check in checks.items():
        deliveries = f", deliveries {check['deliveries']}" if "deliveries" in check else ""
        problems = len(check["problems"])
        print(f"{arm}: {check['instances']} instances {check['statuses']}, {problems} problems{deliveries}")
        print(f"{arm}: server log {check['server_log']}")
    out_path = ROOT / "var" / "bench" / f"events-{args.database}.json"
    out_path.write_text(
        json.dumps(
            {"args": vars(args), "median": med, "runs": results, "lags": lags, "drain": drains, "checks": checks},
            indent=2,
            ensure_ascii=False,
            default=str,
        )
    )
    print(f"results: {out_path}")
    if args.drop and args.database == "postgresql":
        asyncio.run(drop_schemas())
        print("dropped the zida_bench_events_* schemas")
    bad = [a for a, c in checks.items() if c["problems"] or c.get("deliveries", {}).get("failed")]
    if bad:
        raise SystemExit(f"problems in {bad}")


if __name__ == "__main__":
    main()
