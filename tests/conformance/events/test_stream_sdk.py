"""Stream mode with the official SDKs, unmodified: PyPI ``dingtalk-stream`` (``stream_client.py``) and npm
``dingtalk-stream`` (``js/stream_client.js``, installed from the npm registry by ``make test``), each in a child
process of its own, receiving the approvals driven through the official OpenAPI SDK as ``EVENT`` frames.

Every test gets its clients from the ``streams`` fixture, which stops them afterwards and deletes the stream
subscriptions they made (a credential's subscription outlives its connections by design), so that each test starts
from a credential without one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conformance.events.conftest import APPROVAL_EVENTS, CORP, EV_NODE, EV_NOSUB, EV_STREAM, FAST, Events
from tests.conformance.workflow.conftest import run
from tests.conftest import ServerProcess, free_port

HERE = Path(__file__).parent
JS = HERE / "js"
GATEWAY = "/v1.0/gateway/connections/open"
STREAM = "/v1.0/gateway/connections/stream"
# The official client of each language and the credential it connects with (one stream subscription each).
SDKS = {"python": EV_STREAM, "node": EV_NODE}
BOTH = pytest.mark.parametrize("sdk", ["python", "node"])


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30, detail: Callable[[], str] = str) -> Any:
    """Poll ``check`` until it answers something true (returned), for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s; {detail()}")
        time.sleep(0.1)


class StreamClient:
    """One official SDK client in a child process, appending the events it receives to a JSON-lines file."""

    def __init__(self, sdk: str, base: str, credential: tuple[str, str], out: Path, fail_first: int) -> None:
        self.sdk, self.base, self.credential, self.out, self.fail_first = sdk, base, credential, out, fail_first
        self.log = out.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start the client (again, after ``stop``: the same file, and a fresh count of events to refuse)."""
        assert self.proc is None
        if self.sdk == "python":
            command = [sys.executable, str(HERE / "stream_client.py")]
        else:
            assert shutil.which("node") and (JS / "node_modules" / "dingtalk-stream").is_dir(), (
                "run `make test` (it installs the npm dingtalk-stream client into tests/conformance/events/js)"
            )
            command = ["node", str(JS / "stream_client.js")]
        args = [self.base, *self.credential, str(self.out), str(self.fail_first)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*command, *args],
                cwd=JS if self.sdk == "node" else HERE,
                env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def lines(self) -> list[dict[str, Any]]:
        """Every event received so far (whole lines: the client may be writing the last one)."""
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_bytes().split(b"\n")[:-1] if line.strip()]

    def of(self, iid: str) -> list[dict[str, Any]]:
        """The events received about one approval, in arrival order."""
        return [line for line in self.lines() if line["data"].get("processInstanceId") == iid]

    def acked(self, iid: str) -> list[dict[str, Any]]:
        return [line for line in self.of(iid) if line["ack"] == "ok"]

    def wait_acked(self, iid: str, count: int = len(APPROVAL_EVENTS), timeout: float = 30) -> list[dict[str, Any]]:
        """At least ``count`` acknowledged events about ``iid``."""
        return list(wait_until(f"{count} events of {iid}", lambda: len(self.acked(iid)) >= count and self.acked(iid),
                               timeout, self.describe))  # fmt: skip

    def describe(self) -> str:
        running = "running" if self.proc is not None and self.proc.poll() is None else "not running"
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        return f"{self.sdk} client {running}; received {self.lines()}; its log:\n{log}"


class Streams:
    """Starts clients; afterwards stops them and deletes the stream subscriptions of their credentials."""

    def __init__(self, events: Events, tmp: Path) -> None:
        self.events = events
        self.tmp = tmp
        self.clients: list[StreamClient] = []

    def start(self, sdk: str, *, fail_first: int = 0, base: str | None = None) -> StreamClient:
        credential = SDKS[sdk]
        assert stream_subscription(self.events, credential[0]) is None, "left over by another test"
        client = StreamClient(sdk, base or self.events.base, credential, self.tmp / f"{sdk}-{len(self.clients)}.jsonl",
                              fail_first)  # fmt: skip
        self.clients.append(client)
        # The gateway makes the credential's subscription when the client connects: events from then on reach it.
        wait_until("the client's stream subscription", lambda: stream_subscription(self.events, credential[0]),
                   detail=client.describe)  # fmt: skip
        return client

    def close(self) -> None:
        for client in self.clients:
            client.stop()
        for client in self.clients:
            drop_stream_subscription(self.events, client.credential[0])


@pytest.fixture
def streams(events: Events, tmp_path: Path) -> Iterator[Streams]:
    s = Streams(events, tmp_path)
    try:
        yield s
    finally:
        s.close()


def stream_subscription(events: Events, app_key: str) -> dict[str, Any] | None:
    """The credential's stream subscription as the admin API shows it (with its delivery counts), or None."""
    answer = events.admin("GET", "/admin/v1/event-subscriptions")
    answer.raise_for_status()
    subs = answer.json()["subscriptions"]
    return next((s for s in subs if s["appKey"] == app_key and s["kind"] == "stream"), None)


def drop_stream_subscription(events: Events, app_key: str) -> None:
    """Delete the credential's stream subscription, if it has one (it outlives its connections by design)."""
    found = stream_subscription(events, app_key)
    if found is not None:
        events.admin("DELETE", f"/admin/v1/event-subscriptions/{found['id']}").raise_for_status()


def stream_rows(events: Events, app_key: str) -> list[dict[str, Any]]:
    """The credential's stored stream subscriptions (SQL, outside the server)."""
    return run(
        events.url,
        "SELECT s.id FROM event_subscription s JOIN credential c ON c.id = s.credential_pk"
        " WHERE c.app_key = :k AND s.kind = 'stream'",
        {"k": app_key},
    )


def check_approval(got: list[dict[str, Any]], iid: str, client_id: str) -> None:
    """The six events of one approval (li → wang → boss, agreed) as the SDK handed them over."""
    assert [(e["eventType"], e["data"]["type"], e["data"]["staffId"]) for e in got] == APPROVAL_EVENTS
    assert len({e["eventId"] for e in got}) == len(APPROVAL_EVENTS)
    for e in got:
        assert e["eventCorpId"] == CORP
        assert e["eventUnifiedAppId"] == client_id
        assert e["topic"] == e["eventType"]
        assert isinstance(e["eventId"], str) and e["eventId"]
        assert int(e["eventBornTime"]) > 1_600_000_000_000  # ms
        data = e["data"]
        assert data["processInstanceId"] == iid
        assert data["processCode"] == "TPROC--EV-LEAVE"
        assert "EventType" not in data and "corpId" not in data  # Stream data: business fields only
    born = [int(e["eventBornTime"]) for e in got]
    assert born == sorted(born)
    assert got[2]["data"]["result"] == "agree" and got[-1]["data"]["result"] == "agree"


@BOTH
def test_approvals_arrive_as_event_frames_in_order(events: Events, streams: Streams, sdk: str) -> None:
    client = streams.start(sdk)
    iid = events.approve()
    got = client.wait_acked(iid)
    check_approval(got, iid, SDKS[sdk][0])
    # Acknowledged is delivered: nothing is left waiting or failed.
    view = wait_until(
        "the deliveries settled",
        lambda: (v := stream_subscription(events, SDKS[sdk][0])) and v["deliveries"]["pending"] == 0 and v,
    )
    assert view["deliveries"]["delivered"] >= len(APPROVAL_EVENTS) and view["deliveries"]["failed"] == 0
    assert view["tags"] == ["*"] and view["url"] is None
    # A second approval follows on the same connection.
    iid2 = events.approve(reason="又一个")
    got2 = client.wait_acked(iid2)
    check_approval(got2, iid2, SDKS[sdk][0])
    assert not {e["eventId"] for e in got} & {e["eventId"] for e in got2}


@BOTH
def test_an_event_refused_is_sent_again_with_the_same_event_id(events: Events, streams: Streams, sdk: str) -> None:
    # Python answers a non-OK code, Node {status: LATER}: both are failed attempts, sent again after the backoff.
    client = streams.start(sdk, fail_first=2)
    iid = events.approve()
    got = client.wait_acked(iid)
    check_approval(got, iid, SDKS[sdk][0])
    refused = [e for e in client.of(iid) if e["ack"] != "ok"]
    assert [e["eventId"] for e in refused] == [got[0]["eventId"]] * 2  # one approval's events keep their order
    assert len({e["messageId"] for e in [*refused, got[0]]}) == 3  # each attempt is a message of its own
    assert all(e["data"] == got[0]["data"] and e["eventBornTime"] == got[0]["eventBornTime"] for e in refused)
    # Every event is acknowledged exactly once.
    assert len(client.acked(iid)) == len(APPROVAL_EVENTS)


@BOTH
def test_events_committed_while_disconnected_arrive_on_reconnect(events: Events, streams: Streams, sdk: str) -> None:
    client = streams.start(sdk)
    first = events.approve()
    client.wait_acked(first)
    client.stop()
    iid = events.approve()
    # They wait for the client: the subscription stays, its deliveries pending.
    wait_until(
        "six deliveries waiting",
        lambda: (v := stream_subscription(events, SDKS[sdk][0])) and v["deliveries"]["pending"] >= len(APPROVAL_EVENTS),
    )
    assert client.of(iid) == []
    client.start()
    check_approval(client.wait_acked(iid), iid, SDKS[sdk][0])
    assert len(client.acked(first)) == len(APPROVAL_EVENTS)  # the earlier approval is not sent again


@BOTH
def test_the_client_reconnects_when_its_server_restarts(
    events: Events, events_url: str, streams: Streams, sdk: str
) -> None:
    # The client's own server (same database, fixed port); approvals go through the session's server, and the
    # worker holding the client's connection delivers them.
    port = free_port()
    own: ServerProcess | None = ServerProcess(events_url, port=port, **FAST)
    try:
        client = streams.start(sdk, base=f"http://127.0.0.1:{port}")
        first = events.approve()
        client.wait_acked(first)
        assert own is not None
        own.stop()
        own = None
        during = events.approve()
        own = ServerProcess(events_url, port=port, **FAST)
        after = events.approve()
        # The Python SDK retries the gateway every 10 s, the Node SDK every second.
        check_approval(client.wait_acked(during, timeout=60), during, SDKS[sdk][0])
        check_approval(client.wait_acked(after), after, SDKS[sdk][0])
        assert len(client.acked(first)) == len(APPROVAL_EVENTS)
    finally:
        streams.close()
        if own is not None:
            own.stop()


def _reading(socket: Any, frames: list[dict[str, Any]], *, acked_events: bool = False) -> threading.Thread:
    """A thread appending the frames a raw Stream connection receives (``acked_events``: its EVENT frames only,
    each acked) until the connection closes."""

    def read() -> None:
        try:
            for text in socket:
                frame = json.loads(text)
                if not acked_events:
                    frames.append(frame)
                elif frame["type"] == "EVENT":
                    frames.append(frame)
                    ack = {"code": 200, "headers": {"messageId": frame["headers"]["messageId"]}, "data": ""}
                    socket.send(json.dumps({**ack, "message": "OK"}))
        except ConnectionClosed:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def test_a_connection_without_event_topics_gets_no_events(events: Events, streams: Streams) -> None:
    # The same app also holds a connection that subscribed to CALLBACK topics only (a robot, say): it never acks an
    # event, and gets none — every event goes to the SDK client that subscribed to events.
    opened = _open(events, EV_STREAM, subscriptions=[{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}])
    assert opened.status_code == 200
    frames: list[dict[str, Any]] = []
    with connect(f"{opened.json()['endpoint']}?ticket={opened.json()['ticket']}", open_timeout=10) as socket:
        reader = _reading(socket, frames)
        client = streams.start("python")
        iid = events.approve()
        check_approval(client.wait_acked(iid), iid, EV_STREAM[0])
        assert len(client.of(iid)) == len(APPROVAL_EVENTS)
        wait_until("a ping on the other connection (it is alive)", lambda: frames)
    reader.join(10)
    assert {f["type"] for f in frames} == {"SYSTEM"}


def test_a_frame_larger_than_a_client_ever_sends_closes_its_connection(events: Events) -> None:
    """Acks and answers are small JSON: a frame past 1 MiB is refused (1009) before it is read, where a 16 MiB one
    used to be parsed on the event loop (a second of every other request's time)."""
    opened = _open(events, EV_STREAM, subscriptions=[{"type": "EVENT", "topic": "*"}])
    assert opened.status_code == 200
    try:
        with (
            pytest.raises(ConnectionClosed) as closed,  # while sending, receiving or closing: the server's 1009
            connect(f"{opened.json()['endpoint']}?ticket={opened.json()['ticket']}", open_timeout=10) as socket,
        ):
            socket.send("[" + "0," * (1 << 20) + "0]")
            for _ in range(100):  # SYSTEM pings may come first
                socket.recv(timeout=10)
        # The close frame (1009) arrives, or is lost when the server drops the socket under the client's sending.
        assert closed.value.rcvd is None or closed.value.rcvd.code == 1009, closed.value
    finally:  # the connection made the app's Stream subscription: the other tests start without one
        drop_stream_subscription(events, EV_STREAM[0])


def test_a_narrower_connection_of_the_app_takes_nothing_from_a_wider_one(events: Events, streams: Streams) -> None:
    # The SDK client asked for every type (*); a second connection of the same app asks for task changes only. The
    # app's subscription keeps *, so no type is left undelivered; each event goes to a connection that asked for it
    # (task changes to either, instance changes to the SDK client only).
    client = streams.start("python")
    opened = _open(events, EV_STREAM, subscriptions=[{"type": "EVENT", "topic": "bpms_task_change"}])
    assert opened.status_code == 200
    frames: list[dict[str, Any]] = []
    with connect(f"{opened.json()['endpoint']}?ticket={opened.json()['ticket']}", open_timeout=10) as socket:
        reader = _reading(socket, frames, acked_events=True)
        wait_until("both connections' topics", lambda: (v := stream_subscription(events, EV_STREAM[0]))
                   and v["tags"] == ["*", "bpms_task_change"])  # fmt: skip

        def narrow_of(iid: str) -> list[dict[str, Any]]:
            return [f for f in frames if json.loads(f["data"]).get("processInstanceId") == iid]

        iid = events.approve()
        wait_until("every event of the approval, on one connection or the other",
                   lambda: len(narrow_of(iid)) + len(client.acked(iid)) >= len(APPROVAL_EVENTS),
                   detail=lambda: f"{narrow_of(iid)} {client.describe()}")  # fmt: skip
    reader.join(10)
    narrow = [(f["headers"]["eventType"], json.loads(f["data"])["type"]) for f in narrow_of(iid)]
    wide = [(e["eventType"], e["data"]["type"]) for e in client.acked(iid)]
    assert {kind for kind, _ in narrow} <= {"bpms_task_change"}
    assert sorted(narrow + wide) == sorted((kind, what) for kind, what, _ in APPROVAL_EVENTS)  # each once
    assert [e for e in wide if e[0] == "bpms_instance_change"] == [
        ("bpms_instance_change", "start"),
        ("bpms_instance_change", "finish"),
    ]


def test_connections_changing_the_topics_leave_no_audit_row_each(events: Events) -> None:
    """An app's clients of different topics reconnecting in turn change its subscription's topics each time: the
    change is made, not audited (an audit row per connection, kept for good); the creation is."""
    audit = "SELECT action FROM audit_log WHERE object_kind = 'subscription' AND object_id = :o AND created_at >= :t"
    since = int(time.time() * 1000)
    try:
        for n in range(6):
            topic = ("bpms_task_change", "bpms_instance_change")[n % 2]
            opened = _open(events, EV_STREAM, subscriptions=[{"type": "EVENT", "topic": topic}])
            assert opened.status_code == 200
            with connect(f"{opened.json()['endpoint']}?ticket={opened.json()['ticket']}", open_timeout=10):
                wait_until(f"the subscription's topics: {topic}", lambda t=topic: (  # type: ignore[misc]
                    (v := stream_subscription(events, EV_STREAM[0])) and v["tags"] == [t]))  # fmt: skip
            time.sleep(0.5)  # the server drops the closed connection from the app's (its close frame was answered)
        actions = [r["action"] for r in run(events.url, audit, {"o": f"{EV_STREAM[0]}/stream", "t": since})]
        assert actions in (["created"], []), actions  # created here, or by a test before this one
    finally:
        drop_stream_subscription(events, EV_STREAM[0])


def _open(events: Events, credential: tuple[str, str], **body: Any) -> httpx.Response:
    return httpx.post(
        events.base + GATEWAY,
        json={"clientId": credential[0], "clientSecret": credential[1], "ua": "zida-tests", **body},
        headers={"Accept": "application/json"},
        timeout=30,
    )


def _refused(url: str) -> int:
    """The HTTP status a WebSocket handshake to ``url`` is refused with."""
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=10):
        pass
    return refused.value.response.status_code


def test_gateway_and_socket_refuse_bad_credentials_and_tickets(events: Events) -> None:
    subscriptions = [{"type": "EVENT", "topic": "*"}]
    for credential in (EV_NOSUB, EV_STREAM):
        wrong = _open(events, (credential[0], "not-the-secret"), subscriptions=subscriptions)
        assert wrong.status_code == 400
        assert wrong.json()["code"] == "invalidClientIdOrSecret" and wrong.json()["message"]
    no_such = _open(events, ("no-such-app", "whatever"), subscriptions=subscriptions)
    assert no_such.status_code == 400 and no_such.json()["code"] == "invalidClientIdOrSecret"
    # An app without the Event.Subscription permission point.
    denied = _open(events, EV_NOSUB, subscriptions=subscriptions)
    assert denied.status_code == 403 and denied.json()["code"]
    malformed = _open(events, EV_STREAM, subscriptions="*")
    assert malformed.status_code == 400 and malformed.json()["code"]

    ws = f"ws://{events.server.endpoint}{STREAM}"
    assert _refused(ws + "?ticket=no-such-ticket") == 403
    assert _refused(ws + "?ticket=abc.%C3%A9") == 403  # not ASCII: was a 500
    assert _refused(ws) == 403
    # A good ticket (CALLBACK topics only: no events, so no subscription) works once.
    opened = _open(events, EV_STREAM, subscriptions=[{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}])
    assert opened.status_code == 200
    answer = opened.json()
    assert answer["endpoint"] == ws and answer["ticket"]
    forged = answer["ticket"][:-1] + ("A" if answer["ticket"][-1] != "A" else "B")
    assert _refused(f"{ws}?ticket={forged}") == 403
    with connect(f"{answer['endpoint']}?ticket={answer['ticket']}", open_timeout=10) as socket:
        socket.send(b"\x00\x01")  # a binary frame is no ack: ignored (it ended the connection with a traceback)
        frame = json.loads(socket.recv(timeout=10))  # the server's ping (every second here)
        assert frame["type"] == "SYSTEM" and frame["headers"]["topic"] == "ping"
    assert _refused(f"{answer['endpoint']}?ticket={answer['ticket']}") == 403

    # A ticket lasts only as long as the secret it was handed out for: rotated or revoked, it is refused.
    created = events.admin("POST", "/admin/v1/credentials", {"appKey": "ev-short-lived", "scopes": ["events"]})
    assert created.status_code == 201, created.text
    short_lived = (created.json()["appKey"], created.json()["appSecret"])
    try:
        for change in ("rotate", "revoke"):
            ticket = _open(events, short_lived, subscriptions=subscriptions).json()["ticket"]
            if change == "rotate":
                rotated = events.admin("POST", f"/admin/v1/credentials/{short_lived[0]}/rotate", {})
                assert rotated.status_code == 200, rotated.text
                short_lived = (short_lived[0], rotated.json()["appSecret"])
            else:
                assert events.admin("DELETE", f"/admin/v1/credentials/{short_lived[0]}").status_code in (200, 204)
            assert _refused(f"{ws}?ticket={ticket}") == 403, change
    finally:
        events.admin("DELETE", f"/admin/v1/credentials/{short_lived[0]}")

    # Nothing was stored for the refused calls, nor for a ticket without EVENT topics.
    assert stream_rows(events, EV_NOSUB[0]) == []
    assert stream_rows(events, EV_STREAM[0]) == []


def test_an_event_not_acked_in_time_is_a_failed_attempt_and_comes_again_first(events: Events) -> None:
    # A client whose handler stalls on the first event and never acks it: after ZIDA_STREAM_ACK_SECONDS (1.5 s here)
    # that is a failed attempt, and the same event comes again, before any later event of the approval.
    opened = _open(events, EV_STREAM, subscriptions=[{"type": "EVENT", "topic": "*"}])
    assert opened.status_code == 200
    got: list[tuple[float, dict[str, Any]]] = []
    try:
        with connect(f"{opened.json()['endpoint']}?ticket={opened.json()['ticket']}", open_timeout=10) as socket:
            wait_until("the stream subscription", lambda: stream_subscription(events, EV_STREAM[0]))
            iid = events.approve()
            acked = 0
            while acked < len(APPROVAL_EVENTS):
                frame = json.loads(socket.recv(timeout=30))
                if frame["type"] != "EVENT" or json.loads(frame["data"]).get("processInstanceId") != iid:
                    continue
                got.append((time.monotonic(), frame))
                if len(got) == 1:
                    continue  # never acked
                ack = {
                    "code": 200,
                    "headers": {"messageId": frame["headers"]["messageId"]},
                    "message": "OK",
                    "data": "",
                }
                socket.send(json.dumps(ack))
                acked += 1
            view = wait_until("the deliveries settled", lambda: (v := stream_subscription(events, EV_STREAM[0]))
                              and v["deliveries"]["pending"] == 0 and v)  # fmt: skip
    finally:
        drop_stream_subscription(events, EV_STREAM[0])
    (sent_at, first), (again_at, again) = got[0], got[1]
    assert again["headers"]["eventId"] == first["headers"]["eventId"]
    assert again["headers"]["messageId"] != first["headers"]["messageId"]
    assert again_at - sent_at >= 1.5
    kinds = [
        (f["headers"]["eventType"], json.loads(f["data"])["type"], json.loads(f["data"])["staffId"]) for _, f in got
    ]
    assert kinds[1:] == APPROVAL_EVENTS  # in order, each acked once
    assert view["deliveries"] == {"pending": 0, "delivered": len(APPROVAL_EVENTS), "failed": 0}
    assert view["lastError"] == "no ack within 1.5 s"
