"""``kill -9`` of the server while 32 clients save records, start approvals and execute tasks, round after round, on
SQLite and on PostgreSQL: every write answered with HTTP 200 is there afterwards, every approval keeps the workflow's
rules, and the clients saw no error but the connections the kill cut (never an error answer from a live server)."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.reliability.conftest import SIZE, fresh_url, kinds, workflow_problems
from tests.reliability.load import APP, Acknowledged, Load, run_until, token
from zida.db import in_list, open_database
from zida.db.database import chunks

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(60 + 45 * SIZE.kill_rounds)]

# What each round must have acknowledged before its kill (on a busy machine it runs longer, up to ROUND_LIMIT s).
ROUND_RECORDS, ROUND_INSTANCES, ROUND_EXECUTED = 21, 11, 6
ROUND_LIMIT = 30.0


async def _round(server: ServerProcess, acked: Acknowledged, seconds: float) -> tuple[list[str], int]:
    """Load on ``server`` for at least ``seconds`` and until the round's writes of every kind were acknowledged, then
    kill -9 it under that load: (failures, requests cut)."""
    base = f"http://{server.endpoint}"
    async with httpx.AsyncClient(timeout=10) as client:
        access_token = await token(client, base)
    load = Load(base, access_token, acked, clients=SIZE.kill_clients)
    before = len(acked.records), len(acked.instances), len(acked.executed)

    def enough() -> bool:
        return (
            len(acked.records) - before[0] >= ROUND_RECORDS
            and len(acked.instances) - before[1] >= ROUND_INSTANCES
            and len(acked.executed) - before[2] >= ROUND_EXECUTED
        )

    await run_until(load, seconds, enough, ROUND_LIMIT)
    load.server_down = True
    server.proc.kill()  # SIGKILL: no shutdown, no flush, whatever was in flight is cut
    await load.stop()
    server.proc.wait(10)
    return load.failures, load.in_flight_errors


async def _stored(url: str, acked: Acknowledged) -> dict[str, Any]:
    """What the database holds of the acknowledged writes."""
    db = await open_database(url)
    try:
        titles: dict[str, str] = {}
        for part in chunks(list(acked.records) + list(acked.instances), 500):
            names, params = in_list("i", part)
            for row in await db.fetch(
                f"SELECT instance_id, data FROM form_instance WHERE instance_id IN ({names})", params
            ):
                data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
                titles[row["instance_id"]] = data.get("textField_title")
        still_running: list[str] = []
        for part in chunks(sorted(acked.executed), 500):
            names, params = in_list("i", part)
            rows = await db.fetch(
                "SELECT pi.instance_id FROM task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
                f" WHERE pi.instance_id IN ({names}) AND t.assignee_user_id = 'wang' AND t.status = 'RUNNING'",
                params,
            )
            still_running += [r["instance_id"] for r in rows]
        return {"titles": titles, "still_running": still_running}
    finally:
        await db.close()


@pytest.mark.parametrize("kind", kinds())
def test_kill_9_under_load_loses_no_acknowledged_write(kind: str, tmp_path: Path) -> None:
    rng = random.Random(15)
    acked = Acknowledged()
    cut = 0
    with fresh_url(kind, tmp_path, "corp_flow.yaml") as url:
        for number in range(SIZE.kill_rounds):
            server = ServerProcess(url)
            failures, in_flight = asyncio.run(_round(server, acked, rng.uniform(1.5, 3.0)))
            assert not failures, f"round {number}: {len(failures)} failures, first: {failures[:5]}"
            cut += in_flight
        stored = asyncio.run(_stored(url, acked))
        expected = {**acked.records, **acked.instances}
        missing = sorted(set(expected) - set(stored["titles"]))
        assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:10]}"
        wrong = [i for i, title in expected.items() if stored["titles"][i] != title]
        assert not wrong, wrong[:10]
        assert not stored["still_running"], f"executed tasks still running: {stored['still_running'][:10]}"
        assert workflow_problems(url) == []
        # The server starts on what the kills left and serves what was acknowledged.
        server = ServerProcess(url)
        try:
            sample = rng.sample(sorted(acked.records), min(20, len(acked.records)))
            with httpx.Client(base_url=f"http://{server.endpoint}", timeout=10) as client:
                access_token = client.post("/v1.0/oauth2/accessToken", json={"appKey": "flow-all",
                                           "appSecret": "flow-secret-all-01"}).json()["accessToken"]  # fmt: skip
                for record_id in sample:
                    reply = client.get(
                        f"/v1.0/yida/forms/instances/{record_id}",
                        params={**APP, "userId": "li", "formUuid": "FORM-FLOW-PLAIN"},
                        headers={"x-acs-dingtalk-access-token": access_token},
                    )
                    assert reply.status_code == 200, reply.text
                    assert reply.json()["formData"]["textField_title"] == acked.records[record_id]
        finally:
            server.stop()
    # The proof is only as good as its load: writes of every kind were acknowledged and connections were cut.
    rounds = SIZE.kill_rounds
    assert len(acked.records) > 20 * rounds and len(acked.instances) > 10 * rounds and len(acked.executed) > 5 * rounds
    assert cut > 0
    print(
        f"\nkill -9 on {kind}: {rounds} rounds, {acked.calls} answered calls, {len(acked.records)} records, "
        f"{len(acked.instances)} approvals started, {len(acked.executed)} tasks executed acknowledged; "
        f"{cut} requests cut by the kills"
    )
