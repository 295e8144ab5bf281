"""Approval benchmark: instances/s of the integrator flow on Zida against bare SQL (see BENCHMARKS.md, Approvals).

    python bench/bench_approvals.py --database sqlite
    python bench/bench_approvals.py --database postgresql

One **instance** is what an integrator does through the official SDK (yida_1_0, exact wire format):

    POST /v1.0/yida/processes/instances/start           startInstance as the originator
    GET  /v1.0/yida/processes/tasks/getRunningTasks     as lead1: learn the taskId of lead1's task
    POST /v1.0/yida/tasks/execute                        lead1 AGREEs (or-sign: lead2's task is cancelled)
    GET  /v1.0/yida/processes/tasks/getRunningTasks     as fin1: learn the taskId of fin1's task
    POST /v1.0/yida/tasks/execute                        fin1 AGREEs → the instance is COMPLETED / agree

With ``--weda`` the same server also runs the round trip through WeDa's workflow actions (StartProcessWithParams,
DescribeInstanceApproverList for "which task is mine", CompleteTask agree; a client-credentials token with
ExtraUserInfo naming who acts), interleaved with the Yida runs; the ratio weda/yida is printed.

getRunningTasks is the call that answers "which task is mine" for a known instance (a task id is not derivable
from the instance id); the org-level inbox (getTodoTasks) answers the different question "what do I have to do".
The process is bench/bundle_flow.yaml: two sequential approver nodes, or-sign over two fixed users each.

The load generator is a closed loop of ``--connections`` keep-alive HTTP/1.1 connections in this process
(uvloop, prebuilt request bytes, no HTTP library): each connection runs instances back to back. Its own CPU
time is measured and printed (about 0.1–0.2 of a core). uvicorn's workers accept from one shared socket, so a
burst of new connections can land on one worker; connections are therefore opened one by one and kept only
while each worker has its share (``connections per worker`` in the output). Each run warms up, then counts
``--duration`` seconds; runs alternate baseline / Zida so machine noise hits both alike.

Before the runs, ``--history`` seconds of unmeasured load give the tables some rows, then ANALYZE (VACUUM
ANALYZE on PostgreSQL, whose test server runs with autovacuum off): plans are those of a server in use, not of
an empty schema. CPU is accounted per process from /proc: the server's workers, our PostgreSQL backends (by
``application_name``) and PostgreSQL's background processes, this client, and ``others`` — whatever else ran on
the machine meanwhile (other test suites share it); a run with much ``others`` is noise.

The **baseline** is ``bench/baseline_app.py`` (bare Starlette + asyncpg / sqlite3, same worker count, its own
database with the same schema and bundle) serving the same five calls with the same SQL statements Zida runs
for them, hard-wired for this two-node process: no auth, no validation, no engine, no shaping. The ratio says
how far Zida's approval path is from the SQL it needs. ``POST /rec`` of the records baseline (one INSERT) is
measured too, as the cost of a bare durable write on this machine.

Databases are recreated for every invocation (SQLite files under var/bench/, PostgreSQL schemas
``zida_bench_flow`` and ``zida_bench_flow_base`` in db ``test``). After the runs the stored instances are checked
against the workflow rules (zida.core.workflow.consistency). Results: var/bench/approvals-<database>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from zida.bundle.loader import load_bundle, parse_bundle, read_bundle  # noqa: E402
from zida.core.workflow.consistency import find_problems  # noqa: E402
from zida.crypto import SecretBox  # noqa: E402
from zida.db import open_database  # noqa: E402
from zida.db.migrate import upgrade  # noqa: E402

SECRET = "zida-bench-key"
APP = {"appType": "APP_BENCHFLOW", "systemToken": "ST-BENCHFLOW-TOKEN-01"}
FORM = "FORM-BENCH-FLOW"
CREDENTIAL = {"appKey": "benchflow-key", "appSecret": "benchflow-secret-0001"}
ORIGINATORS = [f"emp{i:03d}" for i in range(50)]
APPROVERS = ("lead1", "fin1")
PG = "postgresql://postgres@127.0.0.1:5432/test"
KINDS = ["差旅", "餐饮", "办公", "交通", "其他"]
WEDA_ALIASES = {
    "textField_title": "title",
    "numberField_amount": "amount",
    "selectField_kind": "kind",
    "textareaField_note": "note",
}
WEDA_SECRET = ("AKIDbenchflow001", "benchflow-weda-key-0001")
STEPS = ("start", "getRunningTasks", "executeTask")


def database_urls(kind: str) -> tuple[str, str]:
    """(Zida's database, the baseline's database)."""
    if kind == "postgresql":
        # application_name tells our backends from other sessions' when CPU is counted
        return (
            f"{PG}?search_path=zida_bench_flow&application_name=zida_bench_flow",
            f"{PG}?search_path=zida_bench_flow_base&application_name=zida_bench_flow_base",
        )
    base = ROOT / "var" / "bench"
    return f"sqlite:///{base / 'flow.db'}", f"sqlite:///{base / 'flow-baseline.db'}"


def _app_name(url: str) -> str:
    """The schema, which is also the application_name, of a bench PostgreSQL URL."""
    return url.split("search_path=", 1)[1].split("&", 1)[0]


def _remove_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


async def recreate(url: str) -> dict[str, int]:
    """An empty, migrated database with the bench bundle; the pks the baseline needs."""
    if url.startswith("sqlite"):
        _remove_sqlite(Path(url.split("///", 1)[1]))
    else:
        import asyncpg

        schema = _app_name(url)
        conn = await asyncpg.connect(PG)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
        finally:
            await conn.close()
    upgrade(url)
    db = await open_database(url)
    try:
        await load_bundle(db, SecretBox(SECRET), parse_bundle(read_bundle(ROOT / "bench" / "bundle_flow.yaml")))
        row = await db.fetchrow(
            "SELECT f.id AS form_pk, f.app_pk, a.corp_pk FROM form f JOIN app a ON a.id = f.app_pk"
            " WHERE f.form_uuid = :f",
            {"f": FORM},
        )
        assert row is not None
        return {k: int(row[k]) for k in ("form_pk", "app_pk", "corp_pk")}
    finally:
        await db.close()


def form_data(i: int) -> str:
    return json.dumps(
        {
            "textField_title": f"报销 {i}",
            "numberField_amount": 100 + i % 9_000,
            "selectField_kind": KINDS[i % 5],
            "textareaField_note": "benchmark instance " + "x" * 40,
        },
        ensure_ascii=False,
    )


# ------------------------------------------------------------------------------------------ the client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    """How to phrase the five calls for one server (Zida's wire format or the baseline's)."""

    port: int
    start: Callable[[int], bytes]
    running: Callable[[str, str], bytes]
    execute: Callable[[str, str, str], bytes]
    # Reading the answers (Yida's shapes unless a target says otherwise).
    instance_of: Callable[[Any], str] = lambda reply: str(reply["result"])
    tasks_of: Callable[[Any, str], list[str]] = lambda reply, user: [
        t["taskId"] for t in reply.get("result") or [] if t.get("actualActionerId") == user
    ]
    executed: Callable[[Any], bool] = lambda reply: reply.get("result") is True


def _post(port: int, path: str, token: str, body: dict[str, Any], *, bearer: bool = False) -> bytes:
    data = orjson.dumps(body)
    auth = f"Authorization: Bearer {token}" if bearer else f"x-acs-dingtalk-access-token: {token}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
        f"Content-Type: application/json; charset=utf-8\r\n{auth}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _get(port: int, path: str, token: str, query: dict[str, Any]) -> bytes:
    return (
        f"GET {path}?{urlencode(query)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
        f"x-acs-dingtalk-access-token: {token}\r\n\r\n"
    ).encode()


def zida_target(port: int, token: str) -> Target:
    """The official SDK's requests (body and query keys as alibabacloud_dingtalk.yida_1_0 sends them)."""

    def start(i: int) -> bytes:
        body = {
            "appType": APP["appType"],
            "formDataJson": form_data(i),
            "formUuid": FORM,
            "language": "zh_CN",
            "systemToken": APP["systemToken"],
            "userId": ORIGINATORS[i % len(ORIGINATORS)],
        }
        return _post(port, "/v1.0/yida/processes/instances/start", token, body)

    def running(instance_id: str, user: str) -> bytes:
        query = {
            "appType": APP["appType"],
            "language": "zh_CN",
            "processInstanceId": instance_id,
            "systemToken": APP["systemToken"],
            "userId": user,
        }
        return _get(port, "/v1.0/yida/processes/tasks/getRunningTasks", token, query)

    def execute(instance_id: str, task_id: str, user: str) -> bytes:
        body = {
            "appType": APP["appType"],
            "language": "zh_CN",
            "outResult": "AGREE",
            "processInstanceId": instance_id,
            "remark": "同意",
            "systemToken": APP["systemToken"],
            "taskId": int(task_id),
            "userId": user,
        }
        return _post(port, "/v1.0/yida/tasks/execute", token, body)

    return Target(port, start, running, execute)


def weda_target(port: int, token: str) -> Target:
    """The same round trip through WeDa's workflow actions (client-credentials token; ExtraUserInfo names who
    acts): StartProcessWithParams, DescribeInstanceApproverList for "which task is mine", CompleteTask agree."""
    base = "/weda/workflow/v1/prod/"

    def who(user: str) -> dict[str, Any]:
        return {"ExtraUserInfo": {"UserId": user, "Source": 4}}

    def start(i: int) -> bytes:
        values = {WEDA_ALIASES[k]: v for k, v in json.loads(form_data(i)).items()}
        body = {
            "ProcessKey": "bench_flow",
            "TriggerType": 6,
            "StartParams": [{"paramCode": "benchflow", "fieldType": "object", "fieldValueMap": values}],
            **who(ORIGINATORS[i % len(ORIGINATORS)]),
        }
        return _post(port, base + "StartProcessWithParams", token, body, bearer=True)

    def running(instance_id: str, user: str) -> bytes:
        return _post(port, base + "DescribeInstanceApproverList", token, {"InstanceId": instance_id}, bearer=True)

    def execute(instance_id: str, task_id: str, user: str) -> bytes:
        body = {
            "ButtonAction": 2,
            "InstanceId": instance_id,
            "TaskId": task_id,
            "OperationComment": "同意",
            **who(user),
        }
        return _post(port, base + "CompleteTask", token, body, bearer=True)

    def instance_of(reply: Any) -> str:
        return str(reply["Response"]["Data"]["InstanceId"])

    def tasks_of(reply: Any, user: str) -> list[str]:
        approvers = reply.get("Response", {}).get("Data", {}).get("ApproverList", [])
        return [a["TaskId"] for a in approvers if a["UserId"] == user and a["TaskStatus"] == 1]

    def executed(reply: Any) -> bool:
        return reply.get("Response", {}).get("Data", {}).get("Status") is True

    return Target(port, start, running, execute, instance_of, tasks_of, executed)


def baseline_target(port: int) -> Target:
    """The same calls against bench/baseline_app.py's /flow routes."""

    def start(i: int) -> bytes:
        body = {"userId": ORIGINATORS[i % len(ORIGINATORS)], "formDataJson": form_data(i)}
        return _post(port, "/flow/start", "-", body)

    def running(instance_id: str, user: str) -> bytes:
        return _get(port, "/flow/tasks", "-", {"processInstanceId": instance_id, "userId": user})

    def execute(instance_id: str, task_id: str, user: str) -> bytes:
        body = {"processInstanceId": instance_id, "taskId": int(task_id), "userId": user, "remark": "同意"}
        return _post(port, "/flow/execute", "-", body)

    return Target(port, start, running, execute)


@dataclass
class Tally:
    """What one measured window saw."""

    window: tuple[float, float]
    latencies: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    instances: int = 0
    errors: int = 0
    first_error: str = ""

    def counts(self, at: float) -> bool:
        return self.window[0] <= at < self.window[1]


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes, float, float]:
    sent = time.perf_counter()
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    body = await reader.readexactly(length) if length else b""
    return status, body, sent, time.perf_counter()


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _owner(server_port: int, client_port: int) -> str:
    """The pid of the server process that accepted the client's connection."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{server_port} and dport = :{client_port} )"],
        capture_output=True,
        text=True,
    ).stdout
    return out.split("pid=", 1)[1].split(",", 1)[0] if "pid=" in out else "?"


async def balanced_connections(port: int, count: int, workers: int) -> list[Stream]:
    """``count`` keep-alive connections spread evenly over the server's workers.

    uvicorn's workers accept from one shared socket, so whichever is awake takes a burst of new connections
    (15 of 16 was seen); a few long-lived connections then load one worker only. A real deployment behind a
    proxy spreads its many connections statistically; here each connection is kept only if its worker has
    fewer than its share (the owner is read from ``ss``), and surplus ones are closed.
    """
    share = -(-count // workers)
    kept: list[Stream] = []
    spare: list[Stream] = []
    per: dict[str, int] = {}
    for _ in range(count * 20):
        if len(kept) == count:
            break
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        owner = _owner(port, writer.get_extra_info("sockname")[1])
        if per.get(owner, 0) < share:
            per[owner] = per.get(owner, 0) + 1
            kept.append((reader, writer))
        else:
            spare.append((reader, writer))
    for _, writer in spare:
        writer.close()
    while len(kept) < count:  # could not balance: take what comes
        kept.append(await asyncio.open_connection("127.0.0.1", port))
    return kept


async def _connection(target: Target, tally: Tally, counter: list[int], stop: float, stream: Stream) -> None:
    reader, writer = stream
    try:
        while time.perf_counter() < stop:
            counter[0] += 1
            i = counter[0]
            status, body, sent, done = await _request(reader, writer, target.start(i))
            if status != 200:
                tally.errors += 1
                tally.first_error = tally.first_error or f"start {status} {body[:300]!r}"
                continue
            if tally.counts(done):
                tally.latencies["start"].append(done - sent)
            try:
                instance_id = target.instance_of(orjson.loads(body))
            except (KeyError, TypeError):
                tally.errors += 1
                tally.first_error = tally.first_error or f"start {status} {body[:300]!r}"
                continue
            ok = True
            for user in APPROVERS:
                status, body, sent, done = await _request(reader, writer, target.running(instance_id, user))
                mine = target.tasks_of(orjson.loads(body), user) if status == 200 else []
                if len(mine) != 1:
                    tally.errors += 1
                    tally.first_error = tally.first_error or f"getRunningTasks {status} {body[:300]!r}"
                    ok = False
                    break
                if tally.counts(done):
                    tally.latencies["getRunningTasks"].append(done - sent)
                status, body, sent, done = await _request(reader, writer, target.execute(instance_id, mine[0], user))
                if status != 200 or not target.executed(orjson.loads(body)):
                    tally.errors += 1
                    tally.first_error = tally.first_error or f"executeTask {status} {body[:300]!r}"
                    ok = False
                    break
                if tally.counts(done):
                    tally.latencies["executeTask"].append(done - sent)
            if ok and tally.counts(done):
                tally.instances += 1
    finally:
        writer.close()


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of processes (and their waited-for children are not counted)."""
    total = 0
    for pid in pids:
        try:
            fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields_[11]) + int(fields_[12])
    return total / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return float(sum(parts) - idle), float(sum(parts))


def _connections_per_process(port: int) -> list[int]:
    """How many of the client's connections each server process holds (uvicorn's workers share one socket)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    per: dict[str, int] = {}
    for row in out.splitlines():
        if "pid=" in row:
            pid = row.split("pid=", 1)[1].split(",", 1)[0]
            per[pid] = per.get(pid, 0) + 1
    return sorted(per.values(), reverse=True)


def _children(pid: int) -> list[int]:
    """A process and its descendants (uvicorn's workers), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            kids = []
        todo.extend(int(k) for k in kids)
    return out


async def _postgres_pids(url: str | None) -> tuple[list[int], list[int]]:
    """The backends serving ``url``'s application, and PostgreSQL's own background processes (WAL writer,
    checkpointer…, shared with whatever else uses the server); not other sessions' backends."""
    if url is None:
        return [], []
    import asyncpg

    conn = await asyncpg.connect(PG)
    try:
        ours = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1", _app_name(url))
        background = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'")
    finally:
        await conn.close()
    return [int(r["pid"]) for r in ours], [int(r["pid"]) for r in background]


def drive(
    target: Target,
    server_pid: int,
    connections: int,
    workers: int,
    warmup: float,
    duration: float,
    pg_url: str | None = None,
) -> dict[str, Any]:
    """One closed-loop run: instances/s, per-call latency percentiles, who used the CPU."""
    import uvloop

    async def go() -> dict[str, Any]:
        streams = await balanced_connections(target.port, connections, workers)
        begin = time.perf_counter()
        tally = Tally((begin + warmup, begin + warmup + duration))
        counter = [int(time.time() * 1000) % 1_000_000 * 1000]
        marks: dict[str, Any] = {}
        pids: dict[str, list[int]] = {}

        async def mark(at: float, key: str) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            if not pids:  # after the warm-up every worker and database backend exists
                backends, background = await _postgres_pids(pg_url)
                pids.update(server=_children(server_pid), pg=backends, pg_background=background)
                marks["spread"] = _connections_per_process(target.port)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            marks[key] = (
                usage.ru_utime + usage.ru_stime,
                _cpu_of(pids["server"]),
                _cpu_of(pids["pg"]),
                _cpu_of(pids["pg_background"]),
                _machine_busy(),
            )

        stop = tally.window[1]
        await asyncio.gather(
            mark(tally.window[0], "from"),
            mark(tally.window[1], "to"),
            *(_connection(target, tally, counter, stop, stream) for stream in streams),
        )
        (c0, s0, p0, g0, (b0, t0)), (c1, s1, p1, g1, (b1, t1)) = marks["from"], marks["to"]
        cores = os.cpu_count() or 1
        busy = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        accounted = (c1 - c0 + s1 - s0 + p1 - p0 + g1 - g0) / duration
        out: dict[str, Any] = {
            "instances_per_s": tally.instances / duration,
            "connections_per_worker": marks["spread"],
            "errors": tally.errors,
            "first_error": tally.first_error,
            "cpu": {
                "client_core_share": (c1 - c0) / duration,
                "server_core_share": (s1 - s0) / duration,
                "postgres_core_share": (p1 - p0) / duration,
                "postgres_background_core_share": (g1 - g0) / duration,
                "machine_busy": busy,
                # whatever else ran meanwhile (other test suites on a shared machine): noise in the numbers
                "others_core_share": max(0.0, busy * cores - accounted),
                "cores": cores,
            },
        }
        for step, values in tally.latencies.items():
            values.sort()
            n = len(values)
            out[step] = {
                "per_s": n / duration,
                "p50_ms": values[n // 2] * 1000 if n else float("nan"),
                "p99_ms": values[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
            }
        return out

    return uvloop.run(go())


def drive_saves(port: int, connections: int, duration: float) -> float:
    """Requests/s of the records baseline's POST /rec (one INSERT per request), closed loop."""
    import uvloop

    async def go() -> float:
        done = [0]
        stop = time.perf_counter() + duration
        raw = _post(port, "/rec", "-", {"formDataJson": form_data(1)})

        async def one() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                while time.perf_counter() < stop:
                    status, body, _, _ = await _request(reader, writer, raw)
                    if status != 200:
                        raise RuntimeError(f"POST /rec answered {status}: {body[:200]!r}")
                    done[0] += 1
            finally:
                writer.close()

        await asyncio.gather(*(one() for _ in range(connections)))
        return done[0] / duration

    return uvloop.run(go())


# --------------------------------------------------------------------------------------------- servers


def start_server(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)  # any answer: it is listening
            time.sleep(2)  # one worker answers first; let the others finish starting
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd} did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def baseline_config(url: str, pks: dict[str, int], work: Path) -> Path:
    cfg = {
        "url": url,
        "flow": {**pks, "approvers": {"node_lead": ["lead1", "lead2"], "node_fin": ["fin1", "fin2"]}},
        # The records benchmark's save path: one INSERT of a record.
        "save": {
            "sql": "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title,"
            " originator_user_id, modifier_user_id, created_at, modified_at, data, data_version) VALUES"
            " (:instance_id, :corp_pk, :app_pk, :form_pk, 1, 'baseline', 'emp000', 'emp000', :created_at,"
            f" :created_at, {'CAST(:data AS jsonb)' if url.startswith('postgresql') else ':data'}, 1)",
            "names": ["instance_id", "corp_pk", "app_pk", "form_pk", "created_at", "data"],
            "defaults": {**pks, "created_at": int(time.time() * 1000)},
        },
    }
    path = work / "baseline-flow.json"
    path.write_text(json.dumps(cfg, ensure_ascii=False))
    return path


async def analyze(*urls: str) -> None:
    """Fresh statistics (and, on PostgreSQL, whose test server runs with autovacuum off, a vacuum)."""
    for url in urls:
        db = await open_database(url)
        try:
            await db.execute("VACUUM ANALYZE" if url.startswith("postgresql") else "ANALYZE")
        finally:
            await db.close()


async def check_consistency(url: str, since: int) -> tuple[int, list[str], dict[str, int]]:
    db = await open_database(url)
    try:
        problems = await find_problems(db, since=since)
        rows = await db.fetch("SELECT status, result, count(*) AS n FROM process_instance GROUP BY status, result")
        statuses = {f"{r['status']}/{r['result']}": int(r["n"]) for r in rows}
        return sum(statuses.values()), problems, statuses
    finally:
        await db.close()


_WRITTEN = (
    "form_instance",
    "form_operation_log",
    "task",
    "operation_record",
    "outbox_event",
    "message",
    "message_inbox",
    "process_notification",
)


async def rows_per_instance(url: str) -> dict[str, float]:
    """Rows of each table an approval writes, per stored process instance (to show the baseline writes what Zida
    writes)."""
    db = await open_database(url)
    try:
        instances = int(await db.fetchval("SELECT count(*) FROM process_instance")) or 1
        per = {}
        for table in _WRITTEN:  # the records of approvals (the baseline's database also holds POST /rec's)
            where = " WHERE process_instance_id IS NOT NULL" if table == "form_instance" else ""
            per[table] = int(await db.fetchval(f"SELECT count(*) FROM {table}{where}")) / instances
        return per
    finally:
        await db.close()


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    med: dict[str, Any] = {
        "instances_per_s": statistics.median(r["instances_per_s"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "connections_per_worker": runs[-1]["connections_per_worker"],
        "cpu": {k: statistics.median(r["cpu"][k] for r in runs) for k in runs[0]["cpu"]},
    }
    for step in STEPS:
        med[step] = {k: statistics.median(r[step][k] for r in runs) for k in ("per_s", "p50_ms", "p99_ms")}
    return med


def line(label: str, med: dict[str, Any]) -> str:
    parts = [f"{label:9s} {med['instances_per_s']:7.1f} instances/s"]
    for step in STEPS:
        s = med[step]
        parts.append(f"{step} p50 {s['p50_ms']:5.1f} p99 {s['p99_ms']:6.1f} ms")
    cpu = med["cpu"]
    rate = max(med["instances_per_s"], 1e-9)
    parts.append(
        f"cpu: server {cpu['server_core_share']:.2f} pg {cpu['postgres_core_share']:.2f}"
        f" (+{cpu['postgres_background_core_share']:.2f} bg) client {cpu['client_core_share']:.2f}"
        f" others {cpu['others_core_share']:.2f} cores, machine {cpu['machine_busy']:.0%} busy"
        f" | cpu ms/instance: server {cpu['server_core_share'] * 1000 / rate:.2f}"
        f" pg {cpu['postgres_core_share'] * 1000 / rate:.2f}"
    )
    parts.append(f"connections per worker {med['connections_per_worker']}")
    if med["errors"]:
        parts.append(f"ERRORS {med['errors']}")
    return " | ".join(parts)


def load_arguments(description: str | None) -> argparse.ArgumentParser:
    """The options of the approvals load (database, duration, warm-up, connections, workers, runs, history), shared
    by the benchmarks that drive it."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--history", type=float, default=10, help="seconds of unmeasured load first, then ANALYZE (realistic plans)"
    )
    return parser


def main() -> None:
    parser = load_arguments(__doc__)
    parser.add_argument("--no-baseline", action="store_true", help="measure Zida only")
    parser.add_argument(
        "--weda", action="store_true", help="also run the round trip through WeDa's workflow actions on the same server"
    )
    args = parser.parse_args()

    zida_url, base_url = database_urls(args.database)

    def pg(url: str) -> str | None:
        return url if args.database == "postgresql" else None

    print(f"recreating the {args.database} databases …", flush=True)
    asyncio.run(recreate(zida_url))
    pks = asyncio.run(recreate(base_url))
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    zport, bport = free_port(), free_port()
    # No rate limit: the benchmark measures the work of each call, not the 20 calls a second a credential may make.
    env = {
        "ZIDA_RATE_LIMIT_QPS": "0",
        "ZIDA_SECRET_KEY": SECRET,
        "ZIDA_BASELINE_CONFIG": str(baseline_config(base_url, pks, work)),
    }
    since = int(time.time() * 1000)
    zida = start_server(
        [py, "-m", "zida.cli", "serve", "--port", str(zport), "--workers", str(args.workers), "--log-level", "warning"],
        {**env, "ZIDA_DATABASE_URL": zida_url},
        zport,
    )
    base = None
    if not args.no_baseline:
        base = start_server(
            [
                *(py, "-m", "uvicorn", "baseline_app:app", "--app-dir", str(ROOT / "bench")),
                *("--port", str(bport), "--workers", str(args.workers), "--log-level", "warning", "--no-access-log"),
            ],
            env,
            bport,
        )
    results: dict[str, Any] = {"zida": [], "baseline": [], "weda": [], "records_save_baseline_rps": []}
    try:
        token = httpx.post(f"http://127.0.0.1:{zport}/v1.0/oauth2/accessToken", json=CREDENTIAL).json()["accessToken"]
        zt = zida_target(zport, token)
        bt = baseline_target(bport)
        wt = None
        if args.weda:
            weda_token = httpx.post(
                f"http://127.0.0.1:{zport}/auth/v1/token/clientCredential",
                auth=WEDA_SECRET,
                json={"grant_type": "client_credentials"},
            ).json()["access_token"]
            wt = weda_target(zport, weda_token)
        if args.history > 0:
            # Tables with some history and fresh statistics: the plans a server in use has, not an empty schema's.
            print(f"  {args.history:.0f} s of history on each, then ANALYZE …", flush=True)
            drive(zt, zida.pid, args.connections, args.workers, 0, args.history)
            if wt is not None:
                drive(wt, zida.pid, args.connections, args.workers, 0, args.history)
            if base is not None:
                drive(bt, base.pid, args.connections, args.workers, 0, args.history)
            asyncio.run(analyze(zida_url, base_url))
        for run in range(args.runs):  # interleaved, so machine noise hits both alike
            if base is not None:
                results["baseline"].append(
                    drive(bt, base.pid, args.connections, args.workers, args.warmup, args.duration, pg(base_url))
                )
                print(f"  run {run + 1} " + line("baseline", summarize(results["baseline"][-1:])), flush=True)
            results["zida"].append(
                drive(zt, zida.pid, args.connections, args.workers, args.warmup, args.duration, pg(zida_url))
            )
            print(f"  run {run + 1} " + line("zida", summarize(results["zida"][-1:])), flush=True)
            if results["zida"][-1]["first_error"]:
                print("  first error:", results["zida"][-1]["first_error"], flush=True)
            if wt is not None:
                results["weda"].append(
                    drive(wt, zida.pid, args.connections, args.workers, args.warmup, args.duration, pg(zida_url))
                )
                print(f"  run {run + 1} " + line("weda", summarize(results["weda"][-1:])), flush=True)
                if results["weda"][-1]["first_error"]:
                    print("  first error:", results["weda"][-1]["first_error"], flush=True)
        if base is not None:
            results["records_save_baseline_rps"] = [
                drive_saves(bport, args.connections, min(args.duration, 5)) for _ in range(args.runs)
            ]
    finally:
        stop_server(zida)
        if base is not None:
            stop_server(base)
    total, problems, statuses = asyncio.run(check_consistency(zida_url, since))
    med = {"zida": summarize(results["zida"])}
    print(line("zida", med["zida"]))
    if base is not None:
        med["baseline"] = summarize(results["baseline"])
        med["records_save_baseline_rps"] = statistics.median(results["records_save_baseline_rps"])
        print(line("baseline", med["baseline"]))
        ratio = med["zida"]["instances_per_s"] / med["baseline"]["instances_per_s"]
        med["ratio"] = ratio
        print(
            f"ratio zida/baseline {ratio:.2f} | records baseline POST /rec {med['records_save_baseline_rps']:.0f} req/s"
        )
    if results["weda"]:
        med["weda"] = summarize(results["weda"])
        print(line("weda", med["weda"]))
        med["weda_ratio"] = med["weda"]["instances_per_s"] / med["zida"]["instances_per_s"]
        print(f"ratio weda/yida (same server, same process) {med['weda_ratio']:.2f}")
    print(f"stored instances: {total} {statuses} | consistency problems: {len(problems)}")
    for problem in problems[:5]:
        print("  ", problem)
    written = {"zida": asyncio.run(rows_per_instance(zida_url))}
    if base is not None:
        written["baseline"] = asyncio.run(rows_per_instance(base_url))
    for who, per in written.items():
        print(f"rows per instance, {who:8s} " + ", ".join(f"{t} {n:.2f}" for t, n in per.items()))
    out = work / f"approvals-{args.database}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "median": med,
                "runs": results,
                "stored_instances": statuses,
                "rows_per_instance": written,
                "problems": problems[:20],
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"results: {out}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
