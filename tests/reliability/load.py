"""Concurrent clients of the corp_flow bundle over the DingTalk wire (httpx, async): each saves records, starts
two-level approvals and executes their first task, and remembers what the server acknowledged with HTTP 200.

Every other outcome is classified: a transport error (no HTTP answer) is allowed only once the server is known to be
going away (``Load.server_down``); any HTTP answer other than 200 is a failure of a live server, kept in
``failures`` with its body.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["APP", "CREDENTIAL", "Acknowledged", "Load", "run_until", "token"]

CREDENTIAL = {"appKey": "flow-all", "appSecret": "flow-secret-all-01"}
APP = {"appType": "APP_FLOW1", "systemToken": "ST-FLOW1-SECRET"}
PLAIN_FORM = "FORM-FLOW-PLAIN"
PROCESS_FORM = "FORM-FLOW-TWO"


@dataclass
class Acknowledged:
    """What the server answered with HTTP 200, across every round."""

    records: dict[str, str] = field(default_factory=dict)  # formInstanceId -> the title saved
    instances: dict[str, str] = field(default_factory=dict)  # processInstanceId -> the title
    executed: set[str] = field(default_factory=set)  # instances whose first task wang agreed to
    calls: int = 0


async def token(client: httpx.AsyncClient, base_url: str) -> str:
    """An access token of the flow-all credential."""
    reply = await client.post(f"{base_url}/v1.0/oauth2/accessToken", json=CREDENTIAL)
    assert reply.status_code == 200, reply.text
    value: str = reply.json()["accessToken"]
    return value


class Load:
    """``clients`` concurrent clients against ``base_url`` until ``stop()``; results in ``acked``/``failures``."""

    def __init__(self, base_url: str, access_token: str, acked: Acknowledged, clients: int = 32) -> None:
        self.base = base_url
        self.headers = {"x-acs-dingtalk-access-token": access_token}
        self.acked = acked
        self.clients = clients
        self.failures: list[str] = []
        self.in_flight_errors = 0
        self.server_down = False  # set by the test just before it kills the server or its database
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the clients (in the running event loop)."""
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]

    async def stop(self) -> None:
        """Stop the clients after their current call."""
        self._stopping = True
        await asyncio.gather(*self._tasks)

    async def _call(self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any | None:
        """One call: its JSON on HTTP 200; None (and classified) otherwise."""
        try:
            reply = await client.request(method, self.base + path, headers=self.headers, **kwargs)
        except httpx.TransportError as exc:
            if self.server_down:
                self.in_flight_errors += 1
            else:
                self.failures.append(f"{method} {path}: {type(exc).__name__} {exc} while the server was up")
            return None
        self.acked.calls += 1
        if reply.status_code != 200:
            self.failures.append(f"{method} {path}: HTTP {reply.status_code} {reply.text[:300]}")
            return None
        return reply.json()

    async def _client(self, number: int) -> None:
        rng = random.Random(number)
        pending: list[str] = []  # this client's acknowledged instances whose first task is still to be executed
        async with httpx.AsyncClient(timeout=30) as client:
            while not self._stopping and not self.server_down:
                choice = rng.random()
                if pending and choice < 0.3:
                    await self._execute(client, pending.pop(0))
                elif choice < 0.65:
                    await self._save(client)
                else:
                    started = await self._start(client)
                    if started:
                        pending.append(started)

    async def _save(self, client: httpx.AsyncClient) -> None:
        title = "rec-" + secrets.token_hex(6)
        body = {**APP, "userId": "li", "formUuid": PLAIN_FORM, "formDataJson": json.dumps({"textField_title": title})}
        answer = await self._call(client, "POST", "/v1.0/yida/forms/instances", json=body)
        if answer is not None:
            self.acked.records[answer["result"]] = title

    async def _start(self, client: httpx.AsyncClient) -> str | None:
        title = "flow-" + secrets.token_hex(6)
        data = json.dumps({"textField_title": title, "numberField_amount": 10})
        body = {**APP, "userId": "li", "formUuid": PROCESS_FORM, "formDataJson": data}
        answer = await self._call(client, "POST", "/v1.0/yida/processes/instances/start", json=body)
        if answer is None:
            return None
        instance_id: str = answer["result"]
        self.acked.instances[instance_id] = title
        return instance_id

    async def _execute(self, client: httpx.AsyncClient, instance_id: str) -> None:
        query = {**APP, "userId": "wang", "processInstanceId": instance_id}
        answer = await self._call(client, "GET", "/v1.0/yida/processes/tasks/getRunningTasks", params=query)
        if answer is None:
            return
        mine = [t for t in answer["result"] if t["actualActionerId"] == "wang"]
        if len(mine) != 1:
            self.failures.append(f"{instance_id}: wang's running tasks {answer['result']}")
            return
        body = {**query, "taskId": mine[0]["taskId"], "outResult": "AGREE", "remark": "ok"}
        if await self._call(client, "POST", "/v1.0/yida/tasks/execute", json=body) is not None:
            self.acked.executed.add(instance_id)


async def run_until(load: Load, seconds: float, enough: Callable[[], bool], limit: float) -> None:
    """Start ``load``; let it run ``seconds``, then on until ``enough()`` holds or ``limit`` seconds have passed.

    A slow or busy machine acknowledges fewer writes per second: the proofs size their load by what was acknowledged,
    not by the clock, so they prove as much there as anywhere."""
    load.start()
    started = time.monotonic()
    while not load.failures:
        elapsed = time.monotonic() - started
        if elapsed >= limit or (elapsed >= seconds and enough()):
            return
        await asyncio.sleep(0.05)
