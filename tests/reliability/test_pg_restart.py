"""PostgreSQL stopped and started again under load (a private cluster; the shared one is never touched): while it is
down every dialect answers with its retryable "unavailable" error — DingTalk v1.0 HTTP 503 ``ServiceUnavailable``,
oapi ``errcode -1``, WeDa HTTP 503 with ``SERVICE_UNAVAILABLE`` / ``Response.Error.Code ServiceUnavailable``, the
admin API HTTP 503 ``db.unavailable`` — never a 500; once it is back the same server answers again by itself (the
asyncpg pool reconnects), and nothing acknowledged before, during or after is lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, load_fixture_bundle
from tests.reliability.conftest import PrivateCluster, workflow_problems
from tests.reliability.load import APP, Acknowledged, Load
from zida.db import in_list, open_database
from zida.db.migrate import upgrade

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]

FLOW_ADMIN = {"appKey": "flow-admin", "appSecret": "flow-secret-admin-01"}
WEDA_SECRET = ("AKIDwedatest0001", "weda-test-key-0001")


@dataclass(frozen=True)
class Probe:
    """One dialect's call: how to make it, what success looks like, what "unavailable" looks like."""

    name: str
    method: str
    path: str
    kwargs: dict[str, Any]
    ok: Callable[[httpx.Response], bool]
    unavailable: Callable[[httpx.Response], bool]


def _json(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None


def _retry_after(reply: httpx.Response) -> bool:
    return reply.headers.get("retry-after", "").isdigit()


def probes(base: str) -> list[Probe]:
    """A write and a read of every dialect, each with its own token."""
    with httpx.Client(base_url=base, timeout=10) as http:
        flow = http.post("/v1.0/oauth2/accessToken", json={"appKey": "flow-all", "appSecret": "flow-secret-all-01"})
        dingtalk = {"x-acs-dingtalk-access-token": flow.json()["accessToken"]}
        oapi = http.get("/gettoken", params={"appkey": "flow-all", "appsecret": "flow-secret-all-01"})
        oapi_token = oapi.json()["access_token"]
        admin = http.post("/v1.0/oauth2/accessToken", json=FLOW_ADMIN).json()["accessToken"]
        weda = http.post(
            "/auth/v1/token/clientCredential", auth=WEDA_SECRET, json={"grant_type": "client_credentials"}
        ).json()["access_token"]
        saved = http.post(
            "/v1.0/yida/forms/instances",
            json={**APP, "userId": "li", "formUuid": "FORM-FLOW-PLAIN", "formDataJson": '{"textField_title": "r"}'},
            headers=dingtalk,
        ).json()["result"]

    def dingtalk_down(r: httpx.Response) -> bool:
        body = _json(r) or {}
        return r.status_code == 503 and body.get("code") == "ServiceUnavailable" and bool(body.get("requestid"))

    def weda_model_down(r: httpx.Response) -> bool:
        return r.status_code == 503 and (_json(r) or {}).get("code") == "SERVICE_UNAVAILABLE" and _retry_after(r)

    def weda_api_down(r: httpx.Response) -> bool:
        error = ((_json(r) or {}).get("Response") or {}).get("Error") or {}
        return r.status_code == 503 and error.get("Code") == "ServiceUnavailable" and _retry_after(r)

    def weda_api_ok(r: httpx.Response) -> bool:
        return r.status_code == 200 and "Error" not in (_json(r) or {}).get("Response", {"Error": 1})

    bearer_weda = {"authorization": f"Bearer {weda}"}
    return [
        Probe(
            "dingtalk save",
            "POST",
            "/v1.0/yida/forms/instances",
            {
                "json": {
                    **APP,
                    "userId": "li",
                    "formUuid": "FORM-FLOW-PLAIN",
                    "formDataJson": '{"textField_title":"p"}',
                },
                "headers": dingtalk,
            },
            lambda r: r.status_code == 200 and str((_json(r) or {}).get("result", "")).startswith("FINST-"),
            lambda r: dingtalk_down(r) and _retry_after(r),
        ),
        Probe(
            "dingtalk read",
            "GET",
            f"/v1.0/yida/forms/instances/{saved}",
            {"params": {**APP, "userId": "li", "formUuid": "FORM-FLOW-PLAIN"}, "headers": dingtalk},
            lambda r: r.status_code == 200 and (_json(r) or {}).get("formInstId") == saved,
            dingtalk_down,
        ),
        Probe(
            "oapi user",
            "POST",
            "/topapi/v2/user/get",
            {"params": {"access_token": oapi_token}, "json": {"userid": "li"}},
            lambda r: r.status_code == 200 and (_json(r) or {}).get("errcode") == 0,
            lambda r: r.status_code == 200 and (_json(r) or {}).get("errcode") == -1,
        ),
        Probe(
            "weda model create",
            "POST",
            "/v1/model/prod/expense/create",
            {"json": {"data": {"title": "pg-restart", "amount": 1}}, "headers": bearer_weda},
            lambda r: r.status_code == 200 and "code" not in (_json(r) or {"code": 1}),
            weda_model_down,
        ),
        Probe(
            "weda api template",
            "POST",
            "/v1/sql/prod/expensesOfKind/run",
            {"json": {"parameter": [{"key": "kind", "type": "STRING", "value": "差旅"}]}, "headers": bearer_weda},
            weda_api_ok,
            weda_api_down,
        ),
        Probe(
            "admin users",
            "GET",
            "/admin/v1/users",
            {"headers": {"authorization": f"Bearer {admin}"}},
            lambda r: r.status_code == 200,
            lambda r: r.status_code == 503 and (_json(r) or {}).get("error", {}).get("code") == "db.unavailable",
        ),
    ]


@dataclass
class Answer:
    at: float
    probe: Probe
    status: int | None  # None: no HTTP answer
    ok: bool
    unavailable: bool
    text: str


async def _prober(base: str, probe: Probe, answers: list[Answer], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        while not stop.is_set():
            try:
                reply = await http.request(probe.method, probe.path, **probe.kwargs)
            except httpx.TransportError as exc:
                answers.append(Answer(time.monotonic(), probe, None, False, False, repr(exc)))
                continue
            answers.append(
                Answer(
                    time.monotonic(), probe, reply.status_code, probe.ok(reply), probe.unavailable(reply), reply.text
                )
            )
            await asyncio.sleep(0.05)


async def _scenario(cluster: PrivateCluster, server: ServerProcess) -> tuple[list[Answer], dict[str, float], Load]:
    base = f"http://{server.endpoint}"
    checks = probes(base)
    async with httpx.AsyncClient(timeout=10) as http:
        flow_token = (
            await http.post(
                f"{base}/v1.0/oauth2/accessToken", json={"appKey": "flow-all", "appSecret": "flow-secret-all-01"}
            )
        ).json()["accessToken"]
    acked = Acknowledged()
    load = Load(base, flow_token, acked, clients=8)
    answers: list[Answer] = []
    stop = asyncio.Event()
    marks: dict[str, float] = {}
    probers = [asyncio.create_task(_prober(base, p, answers, stop)) for p in checks]
    load.start()
    await asyncio.sleep(2)
    marks["stopping"] = time.monotonic()
    load.server_down = True  # the load's clients stop at their first failure; what they had acknowledged stays
    await asyncio.to_thread(cluster.stop, "fast")
    marks["stopped"] = time.monotonic()
    await load.stop()
    await asyncio.sleep(3)
    marks["starting"] = time.monotonic()
    await asyncio.to_thread(cluster.start)
    marks["started"] = time.monotonic()
    # The same server, never restarted: each probe must succeed again within 10 s, and stay successful.
    deadline = marks["started"] + 10
    while time.monotonic() < deadline:
        recent = [a for a in answers if a.at > time.monotonic() - 1]
        if recent and all(a.ok for a in recent) and {a.probe.name for a in recent} == {p.name for p in checks}:
            break
        await asyncio.sleep(0.2)
    marks["recovered"] = time.monotonic()
    await asyncio.sleep(2)
    marks["end"] = time.monotonic()
    stop.set()
    await asyncio.gather(*probers)
    return answers, marks, load


def test_postgres_restart_answers_503_then_recovers(private_cluster: PrivateCluster) -> None:
    url = private_cluster.url
    upgrade(url)
    for bundle in ("corp_flow.yaml", "corp_weda.yaml"):
        load_fixture_bundle(url, bundle)
    server = ServerProcess(url, ZIDA_DB_POOL_SIZE="4")
    try:
        answers, marks, load = asyncio.run(_scenario(private_cluster, server))
        assert server.proc.poll() is None, "the server exited"
    finally:
        server.stop()
    assert [a.text for a in answers if a.status is None] == [], "the server itself stayed up: no transport error"
    assert [
        (a.probe.name, a.text) for a in answers if a.status is not None and a.status >= 500 and not a.unavailable
    ] == []
    before = [a for a in answers if a.at < marks["stopping"]]
    down = [a for a in answers if marks["stopped"] + 0.5 < a.at < marks["starting"]]
    after = [a for a in answers if a.at > marks["recovered"]]
    assert before and all(a.ok for a in before), [(a.probe.name, a.text) for a in before if not a.ok][:5]
    assert down, "no request while PostgreSQL was down"
    assert [(a.probe.name, a.status, a.text[:200]) for a in down if not a.unavailable] == []
    assert {a.probe.name for a in down} == {a.probe.name for a in before}, "every dialect was asked while down"
    # In the transitions an answer is either a success or the retryable error, nothing else.
    assert [(a.probe.name, a.text[:200]) for a in answers if not (a.ok or a.unavailable)] == []
    assert after and all(a.ok for a in after), [(a.probe.name, a.text[:200]) for a in after if not a.ok][:5]
    assert marks["recovered"] - marks["started"] < 10, "not recovered within 10 s of PostgreSQL's start"
    # Nothing the load had acknowledged was lost; the load saw only in-flight failures before the stop.
    assert [f for f in load.failures if "HTTP 503" not in f] == []
    assert load.acked.records and load.acked.instances

    async def stored() -> set[str]:
        db = await open_database(url)
        try:
            ids = list(load.acked.records) + list(load.acked.instances)
            names, params = in_list("i", ids)
            rows = await db.fetch(f"SELECT instance_id FROM form_instance WHERE instance_id IN ({names})", params)
            return {r["instance_id"] for r in rows}
        finally:
            await db.close()

    assert asyncio.run(stored()) == set(load.acked.records) | set(load.acked.instances)
    assert workflow_problems(url) == []
    print(
        f"\nPostgreSQL restart: {len(answers)} probe answers, {len(down)} while down (all retryable), recovered "
        f"{marks['recovered'] - marks['started']:.1f} s after PostgreSQL was back; "
        f"{json.dumps({p: sum(1 for a in down if a.probe.name == p) for p in sorted({a.probe.name for a in down})})}"
    )
