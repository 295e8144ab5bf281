"""The bare baseline: Starlette + asyncpg (or sqlite3) running the very SQL statements Zida runs, no auth,
no validation, no shaping. Configured by ``ZIDA_BASELINE_CONFIG`` (a JSON file written by bench_records.py)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CONFIG: dict[str, Any] = json.loads(open(os.environ["ZIDA_BASELINE_CONFIG"]).read())  # noqa: SIM115
IS_PG = CONFIG["url"].startswith("postgresql")
state: dict[str, Any] = {}


def numbered(sql: str, names: list[str]) -> str:
    for i, name in enumerate(names, 1):
        sql = sql.replace(f":{name}", f"${i}")
    return sql


async def fetch(sql: str, names: list[str], args: dict[str, Any]) -> list[Any]:
    if IS_PG:
        return list(await state["pool"].fetch(numbered(sql, names), *[args[n] for n in names]))
    return list(state["conn"].execute(sql, args).fetchall())


async def get_record(request: Request) -> Response:
    q = CONFIG["get"]
    rows = await fetch(q["sql"], q["names"], {"instance_id": request.path_params["id"]})
    if not rows:
        return Response(b'{"code":"notFound"}', status_code=404, media_type="application/json")
    row = rows[0]
    body = b'{"formInstId":"' + row[0].encode() + b'","formData":' + row[1].encode() + b"}"
    return Response(body, media_type="application/json")


async def save_record(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    q = CONFIG["save"]
    args = {
        **q["defaults"],
        "instance_id": "FINST-BASE" + os.urandom(15).hex().upper(),
        "data": payload["formDataJson"],
    }
    if IS_PG:
        await state["pool"].execute(numbered(q["sql"], q["names"]), *[args[n] for n in q["names"]])
    else:
        with state["conn"]:
            state["conn"].execute(q["sql"], args)
    return Response(orjson.dumps({"result": args["instance_id"]}), media_type="application/json")


async def search(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    q = CONFIG["search"][payload["q"]]
    args = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in payload["args"].items()}
    if IS_PG:
        from decimal import Decimal

        args = {k: Decimal(str(v)) if isinstance(v, int | float) and k.startswith("f") else v for k, v in args.items()}
    rows = await fetch(q["page"], q["page_names"], args)
    total = (await fetch(q["count"], q["count_names"], args))[0][0]
    body = b'{"totalCount":' + str(total).encode() + b',"data":[' + b",".join(r[0].encode() for r in rows) + b"]}"
    return Response(body, media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    if IS_PG:
        import asyncpg

        url, _, schema = CONFIG["url"].partition("?search_path=")
        state["pool"] = await asyncpg.create_pool(url, min_size=1, max_size=8, server_settings={"search_path": schema})
    else:
        conn = sqlite3.connect(CONFIG["url"].split("///", 1)[1], isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.isolation_level = "DEFERRED"
        state["conn"] = conn
    yield


app = Starlette(
    routes=[
        Route("/rec/{id}", get_record, methods=["GET"]),
        Route("/rec", save_record, methods=["POST"]),
        Route("/search", search, methods=["POST"]),
    ],
    lifespan=lifespan,
)
