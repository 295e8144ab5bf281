"""A request whose client has left is stopped (``zida.observability.http._ClientWatch``): a change waiting for
another's lock, its client gone, is never made, and is counted with status 499."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import orjson

from tests.conftest import ServerProcess
from zida.db import open_database

APP = {"appType": "APP_A1", "systemToken": "ST-A1-SECRET-TOKEN", "userId": "admin1"}


def _hold_record(url: str, instance_id: str, seconds: float, held: threading.Event) -> None:
    """Another change holding the record (PostgreSQL: its row; SQLite: the database's write lock) for a while."""

    async def hold() -> None:
        db = await open_database(url)
        try:
            async with db.transaction() as tx:
                await tx.execute(
                    f"SELECT id FROM form_instance WHERE instance_id = :i{tx.sql.for_update}", {"i": instance_id}
                )
                await tx.execute("UPDATE form_instance SET modified_at = modified_at WHERE instance_id = :i",
                                 {"i": instance_id})  # fmt: skip
                held.set()
                await asyncio.sleep(seconds)
        finally:
            await db.close()

    asyncio.run(hold())


def test_a_change_whose_client_left_while_it_waited_is_not_made(server: ServerProcess, loaded_url: str) -> None:
    base = f"http://{server.endpoint}"
    token = httpx.post(
        base + "/v1.0/oauth2/accessToken", json={"appKey": "keyA-all", "appSecret": "secret-a-all-0001"}, timeout=10
    ).json()["accessToken"]
    headers = {"x-acs-dingtalk-access-token": token}
    saved = httpx.post(
        base + "/v1.0/yida/forms/instances",
        json={**APP, "formUuid": "FORM-A1ALL", "formDataJson": json.dumps({"textField_t1": "before"})},
        headers=headers,
        timeout=10,
    )
    instance_id = saved.json()["result"]
    held = threading.Event()
    holder = threading.Thread(target=_hold_record, args=(loaded_url, instance_id, 3.0, held))
    holder.start()
    try:
        assert held.wait(10)
        body = orjson.dumps(
            {**APP, "formInstanceId": instance_id, "updateFormDataJson": json.dumps({"textField_t1": "after"})}
        )
        head = (
            f"PUT /v1.0/yida/forms/instances HTTP/1.1\r\nHost: {server.endpoint}\r\n"
            f"x-acs-dingtalk-access-token: {token}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        host, port = server.endpoint.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall(head + body)
            time.sleep(1.2)  # the update waits for the held record; its client gives up and goes
    finally:
        holder.join(15)
    time.sleep(0.5)  # the held change has committed: a change still waiting would have been made by now
    got = httpx.get(f"{base}/v1.0/yida/forms/instances/{instance_id}", params=APP, headers=headers, timeout=10).json()
    assert got["formData"]["textField_t1"] == "before", got
    metrics = httpx.get(base + "/metrics", timeout=10).text
    assert 'route="/v1.0/yida/forms/instances",status="499"' in metrics.replace('method="PUT",', ""), [
        line for line in metrics.splitlines() if "499" in line
    ]
