"""Files benchmarks (see BENCHMARKS.md): downloads against a bare Starlette ``FileResponse`` in the same run, and the
peak memory of a 100 MB upload.

    python bench/bench_files.py                  # 3 runs of 10 s each
    python bench/bench_files.py --runs 1 --duration 3 --upload-mb 20    # a smoke

Needs ``wrk``. Builds a fresh SQLite database under ``var/bench/files`` (``zida migrate`` + ``zida load
bench/bundle.yaml``), starts ``zida serve`` with local files there, uploads one 10 MB file and 1,000 files of 4 KB
through the admin API, then drives with wrk (``--connections``, default 32):

* Zida: ``GET /ossFileHandle?fileName=…`` with the access token (auth, one row read, ``FileResponse``);
* the baseline: a bare Starlette app that answers ``FileResponse(<path>)`` for the same files, no auth, no database;

for the 10 MB file and for the 1,000 small files in turn, and reports requests/s, MB/s, p50/p99 and Zida's share of
the baseline's throughput (the goal: at least 0.70). Last, a fresh ``zida serve`` receives a ``--upload-mb`` upload
(default 100) streamed from the client, and its peak RSS (``VmHWM``) before and after is reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_records import free_port, start, wrk  # noqa: E402

WORK = ROOT / "var" / "bench" / "files"
SECRET = "zida-bench-key"
CREDENTIAL = ("bench-key", "bench-secret-0001")
SMALL = 1_000
LUA = r"""
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local token = os.getenv("TOKEN")
local counter = 0
init = function(args)
  counter = math.random(#paths)
  if token and token ~= "" then wrk.headers["x-acs-dingtalk-access-token"] = token end
end
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
"""


def baseline_app():  # type: ignore[no-untyped-def]
    """The bare baseline: ``GET /f/{key}`` → ``FileResponse`` of ``$FILES_ROOT/<key>`` (``/healthz`` for start)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, Response
    from starlette.routing import Route

    root = Path(os.environ["FILES_ROOT"])

    async def serve(request: Request) -> Response:
        return FileResponse(root / request.path_params["key"])

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/f/{key:path}", serve), Route("/healthz", healthz)])


def zida(*args: str, url: str, **env: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "zida.cli", *args, "--database", url],
        env={**os.environ, "ZIDA_SECRET_KEY": SECRET, **env},
        check=True,
        capture_output=True,
    )


def token(port: int) -> str:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/v1.0/oauth2/accessToken", json={"appKey": CREDENTIAL[0], "appSecret": CREDENTIAL[1]}
    )
    answer.raise_for_status()
    return str(answer.json()["accessToken"])


def upload(port: int, bearer: str, name: str, data: bytes) -> dict[str, str]:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/admin/v1/files",
        params={"name": name},
        content=data,
        headers={"authorization": f"Bearer {bearer}"},
        timeout=120,
    )
    answer.raise_for_status()
    return dict(answer.json())


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def server_pid(proc: subprocess.Popen[bytes]) -> int:
    """The process serving requests (``zida serve`` with one worker serves in its own process)."""
    return proc.pid


def drive(
    label: str, base: str, paths: list[str], bearer: str | None, args: argparse.Namespace, size: int
) -> dict[str, float]:
    lua = WORK / "paths.lua"
    lua.write_text(LUA)
    listing = WORK / f"{label}.paths"
    listing.write_text("\n".join(paths) + "\n")
    runs = [
        wrk(base + paths[0], lua, {"PATHS": str(listing), "TOKEN": bearer or ""}, args.duration, args.connections)
        for _ in range(args.runs)
    ]
    result = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    result["MBps"] = result["rps"] * size / 1e6
    print(
        f"  {label:<24} {result['rps']:>9.1f} req/s {result['MBps']:>9.1f} MB/s"
        f"  p50 {result['p50']:.1f} ms  p99 {result['p99']:.1f} ms  non-2xx {int(result['non2xx'])}"
    )
    return result


def upload_stream(mb: int) -> Iterator[bytes]:
    chunk = (b"%PDF-1.7\n" + bytes(range(256)) * 4096)[: 1 << 20]
    for _ in range(mb):
        yield chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--upload-mb", type=int, default=100)
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    url = f"sqlite:///{WORK / 'files.db'}"
    files_dir = WORK / "store"
    env = {
        "ZIDA_SECRET_KEY": SECRET,
        "ZIDA_DATABASE_URL": url,
        "ZIDA_FILES_URL": f"file://{files_dir}",
        "ZIDA_FILES_MAX_BYTES": str((args.upload_mb + 1) << 20),
        "ZIDA_EVENTS": "off",
        "ZIDA_RATE_LIMIT_QPS": "0",  # the bench measures serving, not the per-credential limit
    }
    zida("migrate", url=url)
    zida("load", str(ROOT / "bench" / "bundle.yaml"), url=url)

    port = free_port()
    proc = start([sys.executable, "-m", "zida.cli", "serve", "--port", str(port), "--log-level", "warning"], env, port)
    base_port = free_port()
    baseline = start(
        [sys.executable, "-m", "uvicorn", "bench_files:baseline_app", "--factory", "--app-dir", str(ROOT / "bench"),
         "--port", str(base_port), "--log-level", "warning"],
        {"FILES_ROOT": str(files_dir)},
        base_port,
    )  # fmt: skip
    try:
        bearer = token(port)
        big = upload(port, bearer, "big.pdf", b"%PDF-1.7\n" + os.urandom(10 * 1000 * 1000 - 9))
        small = [upload(port, bearer, f"s{i}.txt", (f"{i:08d}" * 512).encode()) for i in range(SMALL)]
        corp = next(d for d in files_dir.iterdir() if d.name.startswith("c")).name  # c<corp pk>: Zida's keys
        key = {f["fileId"]: f"{corp}/{f['fileId']}" for f in [big, *small]}
        print(f"files: {args.runs} run(s) of {args.duration} s, {args.connections} connections")
        ratios = []
        for label, chosen, size in (("10 MB file", [big], 10_000_000), ("1,000 small files", small, 4096)):
            z = drive(f"zida {label}", f"http://127.0.0.1:{port}",
                      [f"/ossFileHandle?fileName={f['fileId']}" for f in chosen], bearer, args, size)  # fmt: skip
            b = drive(f"baseline {label}", f"http://127.0.0.1:{base_port}",
                      [f"/f/{key[f['fileId']]}" for f in chosen], None, args, size)  # fmt: skip
            ratios.append((label, z["rps"] / b["rps"] if b["rps"] else float("nan")))
        for label, ratio in ratios:
            print(f"  {label}: Zida / bare FileResponse = {ratio:.2f} (goal ≥ 0.70)")
    finally:
        proc.terminate()
        baseline.terminate()
        proc.wait(10)
        baseline.wait(10)

    port = free_port()
    proc = start([sys.executable, "-m", "zida.cli", "serve", "--port", str(port), "--log-level", "warning"], env, port)
    try:
        bearer = token(port)
        before = peak_rss_kb(server_pid(proc))
        started = time.perf_counter()
        answer = httpx.post(
            f"http://127.0.0.1:{port}/admin/v1/files",
            params={"name": "huge.pdf"},
            content=upload_stream(args.upload_mb),
            headers={"authorization": f"Bearer {bearer}", "content-length": str(args.upload_mb << 20)},
            timeout=600,
        )
        took = time.perf_counter() - started
        answer.raise_for_status()
        after = peak_rss_kb(server_pid(proc))
        print(
            f"upload of {args.upload_mb} MB: {took:.1f} s ({args.upload_mb / took:.0f} MB/s); server peak RSS"
            f" {before / 1024:.0f} MB before, {after / 1024:.0f} MB after (+{(after - before) / 1024:.0f} MB)"
        )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
