"""Fixtures of the events-out tests: the corp_events bundle, a server with fast retry settings, receivers, and the
clients integrators use (the official SDK for approvals, the dingtalk-sdk package for the oapi callback API)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dingtalk.client import AppKeyClient

from tests.conformance.events.receiver import Receiver
from tests.conformance.sdk import Sdk
from tests.conftest import ServerProcess, fresh_database, load_fixture_bundle

CORP = "corpEvents"
EV_ALL = ("ev-all", "ev-secret-all-01")
EV_HTTP = ("ev-http", "ev-secret-http-01")
EV_STREAM = ("ev-stream", "ev-secret-stream-01")
EV_NODE = ("ev-node", "ev-secret-node-01")
EV_RECORDS = ("ev-records", "ev-secret-records-01")
EV_DOWN = ("ev-down", "ev-secret-down-01")
EV_NOSUB = ("ev-nosub", "ev-secret-nosub-01")
EV_ADMIN = ("ev-admin", "ev-secret-admin-01")
APP = {"app_type": "APP_EVENTS", "system_token": "ST-EVENTS-SECRET"}
# One approval (``Events.approve``) as its events arrive: (event type, ``type``, ``staffId``), in commit order.
APPROVAL_EVENTS = [
    ("bpms_instance_change", "start", "li"),
    ("bpms_task_change", "start", "wang"),
    ("bpms_task_change", "finish", "wang"),
    ("bpms_task_change", "start", "boss"),
    ("bpms_task_change", "finish", "boss"),
    ("bpms_instance_change", "finish", "li"),
]

# Fast schedules, so that retries and redeliveries happen within a test (defaults: README "Events").
FAST = {
    "ZIDA_EVENTS_POLL_SECONDS": "0.05",
    "ZIDA_CALLBACK_RETRY_SECONDS": "0.3,0.6",
    "ZIDA_EVENTS_MAX_BACKOFF_SECONDS": "0.5",
    "ZIDA_STREAM_ACK_SECONDS": "1.5",
    "ZIDA_STREAM_PING_SECONDS": "1",
}


class Events:
    """A live Zida with fast event settings, and the clients tests drive it with."""

    def __init__(self, server: ServerProcess, url: str) -> None:
        self.server = server
        self.url = url
        self.base = f"http://{server.endpoint}"
        self.sdk = Sdk(server.endpoint)

    def oapi(self, credential: tuple[str, str] = EV_ALL) -> AppKeyClient:
        """The dingtalk-sdk package's client (``/gettoken`` and the ``/call_back/*`` API) pointed at Zida."""
        client = AppKeyClient(CORP, credential[0], credential[1])
        client.API_BASE_URL = self.base + "/"
        return client

    def token(self, credential: tuple[str, str] = EV_ALL) -> str:
        return self.sdk.token(credential)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        token = self.token(EV_ADMIN)
        return httpx.request(
            method, self.base + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def approve(self, user: str = "li", reason: str = "事件") -> str:
        """Start a leave approval as ``user`` and let wang and boss agree; returns the instance id."""
        iid = self.start(user, reason)
        for approver in ("wang", "boss"):
            self.execute(iid, approver)
        return iid

    def start(self, user: str = "li", reason: str = "事件") -> str:
        body = self.sdk.call(
            "start_instance",
            token=self.token(),
            user_id=user,
            form_uuid="FORM-EV-LEAVE",
            form_data_json=json.dumps({"textField_reason": reason}),
            **APP,
        ).body
        result: str = body.result
        return result

    def execute(self, iid: str, user: str, result: str = "AGREE") -> None:
        tasks = self.sdk.call("get_running_tasks", token=self.token(), user_id=user, process_instance_id=iid, **APP)
        task = next(t for t in tasks.body.result if t.actual_actioner_id == user)
        self.sdk.call(
            "execute_task",
            token=self.token(),
            user_id=user,
            process_instance_id=iid,
            task_id=int(task.task_id),
            out_result=result,
            remark="ok",
            **APP,
        )


@pytest.fixture(scope="session")
def events_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own with corpEvents (and corp B, the other corp of the auth matrix). Every server on a
    database delivers its events: the session's server (the default retry schedule, +10 s) would claim some of
    these and retry them after the tests' deadlines."""
    with fresh_database(tmp_path_factory.mktemp("events")) as url:
        load_fixture_bundle(url, "corp_b.yaml")
        load_fixture_bundle(url, "corp_events.yaml")
        yield url


@pytest.fixture(scope="session")
def events_server(events_url: str) -> Iterator[ServerProcess]:
    proc = ServerProcess(events_url, **FAST)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def events(events_server: ServerProcess, events_url: str) -> Events:
    return Events(events_server, events_url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(CORP)
    yield r
    r.close()
