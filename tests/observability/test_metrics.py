"""``GET /metrics`` of a live server: counters move for real requests, labelled by route template (no ids), the
database, token cache, rate limits and event deliveries are counted, scrapes are protected (loopback or a bearer
token), and with ``zida serve --workers 2`` every scrape sums both workers, also after one was killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database, load_fixture_bundle
from tests.observability.servers import LoggedServer, Samples, label_values, value
from zida.observability.http import RequestObserver
from zida.observability.metrics import FLUSH_SECONDS
from zida.settings import Settings

A_ALL = ("keyA-all", "secret-a-all-0001")
APP = {"appType": "APP_A1", "systemToken": "ST-A1-SECRET-TOKEN", "userId": "admin1"}
FORM = "FORM-A1ALL"
INSTANCES = "/v1.0/yida/forms/instances"
BY_ID = f"{INSTANCES}/{{id}}"
REQUESTS = "zida_http_requests_total"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("metrics")) as url:
        for bundle in ("corp_a.yaml", "corp_events.yaml"):
            load_fixture_bundle(url, bundle)
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    # Events off: the events test's own server must be the one delivering (and counting) them.
    log = tmp_path_factory.mktemp("metrics") / "server.log"
    proc = LoggedServer(database, log, ZIDA_RATE_LIMIT_QPS="0", ZIDA_EVENTS="off")
    yield proc
    proc.stop()


class Client:
    """A DingTalk integration of corp A over plain HTTP (new connections when ``spread``: every worker gets some)."""

    def __init__(self, base: str, *, spread: bool = False) -> None:
        limits = httpx.Limits(max_keepalive_connections=0) if spread else httpx.Limits()
        self.http = httpx.Client(base_url=base, timeout=30, limits=limits)
        token = self.http.post("/v1.0/oauth2/accessToken", json={"appKey": A_ALL[0], "appSecret": A_ALL[1]})
        self.headers = {"x-acs-dingtalk-access-token": token.json()["accessToken"]}

    def save(self, title: str) -> str:
        body = {**APP, "formUuid": FORM, "formDataJson": json.dumps({"textField_t1": title})}
        reply = self.http.post(INSTANCES, json=body, headers=self.headers)
        assert reply.status_code == 200, reply.text
        record: str = reply.json()["result"]
        return record

    def get(self, record: str) -> httpx.Response:
        return self.http.get(f"{INSTANCES}/{record}", params={**APP, "formUuid": FORM}, headers=self.headers)


def test_requests_are_counted_by_route_template(server: LoggedServer) -> None:
    client = Client(server.base)
    record = client.save("计数")
    before = server.scrape()
    for _ in range(7):
        assert client.get(record).status_code == 200
    refused = client.http.get(f"{INSTANCES}/{record}", params=APP).status_code  # no token
    assert refused in (400, 401)
    assert client.http.get(f"/v1.0/no/such/{record}").status_code == 404
    after = server.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"dialect": "dingtalk", "route": BY_ID, "method": "GET"}
    assert moved(REQUESTS, **ok, status="200") == 7
    assert moved(REQUESTS, **ok, status=str(refused)) == 1
    assert moved(REQUESTS, dialect="dingtalk", route="unmatched", status="404") == 1
    assert moved("zida_http_request_duration_seconds_count", dialect="dingtalk", route=BY_ID) == 8
    assert moved("zida_http_request_duration_seconds_sum", dialect="dingtalk", route=BY_ID) > 0
    # No label holds an id, a path of a request or a query string: only route templates.
    routes = label_values(after, REQUESTS, "route")
    assert BY_ID in routes and "/v1.0/oauth2/accessToken" in routes and f"{INSTANCES}" in routes
    assert not any(record in text for (_, labels) in after for _, text in labels)
    assert all(r == "unmatched" or r.startswith("/") for r in routes)
    # The database: statements timed, the pool's size known; the token cache answered the repeated reads.
    assert moved("zida_db_statement_duration_seconds_count") > 0
    assert value(after, "zida_db_pool_size") >= 1
    assert moved("zida_token_cache_lookups_total", result="hit") >= 7
    assert value(after, "zida_token_cache_lookups_total", result="miss") >= 1
    assert value(after, "zida_worker_resident_memory_bytes") > 10_000_000
    # /metrics itself is not a dialect's request: not counted.
    assert "/metrics" not in routes


def test_rate_limited_calls_are_counted(database: str, tmp_path: Path) -> None:
    limited = LoggedServer(database, tmp_path / "limited.log", ZIDA_RATE_LIMIT_QPS="2")
    try:
        client = Client(limited.base)
        record = client.save("限流")
        statuses = [client.get(record).status_code for _ in range(12)]
        samples = limited.scrape()
    finally:
        limited.stop()
    refused = statuses.count(403)
    assert refused >= 1
    assert value(samples, "zida_rate_limited_total", limit="api") >= refused
    assert value(samples, REQUESTS, route=BY_ID, status="403") == refused


def test_event_deliveries_and_failures_are_counted(database: str, tmp_path: Path) -> None:
    from tests.conformance.events.conftest import CORP, EV_DOWN, FAST, Events
    from tests.conformance.events.receiver import AES_KEY, TOKEN, Receiver

    events_server = LoggedServer(database, tmp_path / "events.log", ZIDA_RATE_LIMIT_QPS="0", **FAST)
    receiver = Receiver(CORP)
    try:
        events = Events(events_server, database)  # type: ignore[arg-type]  # has .endpoint like ServerProcess
        client = events.oapi(EV_DOWN)
        assert (
            client.callback.register_call_back(["bpms_instance_change"], TOKEN, AES_KEY, receiver.url)["errcode"] == 0
        )
        events.approve()
        receiver.wait_for(2)
        deadline = time.monotonic() + 15
        while value(samples := events_server.scrape(), "zida_events_delivered_total") < 2:
            assert time.monotonic() < deadline, "deliveries not counted"
            time.sleep(0.2)
        assert value(samples, "zida_events_delivery_lag_seconds_count") >= 2
        assert value(samples, "zida_events_delivery_failures_total") == 0
        receiver.mode = "down"  # the receiver refuses: each attempt is a failure (retried on the fast schedule)
        events.approve()
        while value(samples := events_server.scrape(), "zida_events_delivery_failures_total") < 2:
            assert time.monotonic() < deadline + 15, "failures not counted"
            time.sleep(0.2)
        assert label_values(samples, "zida_events_delivery_failures_total", "kind") == {"callback"}
        receiver.mode = "ok"
        client.callback.delete_call_back()
    finally:
        receiver.close()
        events_server.stop()


def test_scrapes_need_loopback_or_the_token(database: str, tmp_path: Path) -> None:
    address = _outside_address()
    open_server = LoggedServer(database, tmp_path / "open.log", host="0.0.0.0")
    guarded = LoggedServer(database, tmp_path / "guarded.log", ZIDA_METRICS_TOKEN="scrape-me-0001")
    off = LoggedServer(database, tmp_path / "off.log", ZIDA_METRICS="off")
    try:
        assert httpx.get(f"{open_server.base}/metrics").status_code == 200  # loopback
        if address is not None:  # the same server, reached over a non-loopback address
            refused = httpx.get(f"http://{address}:{open_server.port}/metrics", timeout=10)
            assert refused.status_code == 403 and "ZIDA_METRICS_TOKEN" in refused.text
        assert httpx.post(f"{open_server.base}/metrics").status_code == 405
        assert httpx.get(f"{guarded.base}/metrics").status_code == 401
        wrong = httpx.get(f"{guarded.base}/metrics", headers={"authorization": "Bearer scrape-me-0002"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        samples = guarded.scrape(authorization="Bearer scrape-me-0001")
        assert value(samples, REQUESTS, route="/healthz") >= 1
        assert httpx.get(f"{off.base}/metrics").status_code == 404
        assert httpx.get(f"{off.base}/healthz").headers["x-request-id"]  # ids and logs do not need metrics
    finally:
        for proc in (open_server, guarded, off):
            proc.stop()
    assert "scrape-me-0001" not in guarded.log_text()


def _outside_address() -> str | None:
    """An address of this machine other than loopback (None: it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: the route's source address is chosen
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_loopback_rule_reads_the_client_address() -> None:
    observer = RequestObserver(Settings())
    for client, allowed in [(("127.0.0.1", 1), True), (("::1", 1), True), (("10.1.2.3", 1), False), (None, True)]:
        assert (observer._refusal({"client": client, "headers": []}) is None) == allowed, client
    guarded = RequestObserver(Settings(metrics_token="t0k"))
    assert guarded._refusal({"client": ("127.0.0.1", 1), "headers": []}) is not None
    assert guarded._refusal({"client": ("10.1.2.3", 1), "headers": [(b"authorization", b"Bearer t0k")]}) is None


def _pids(samples: Samples) -> set[str]:
    return label_values(samples, "zida_worker_resident_memory_bytes", "pid")


def test_two_workers_are_summed_and_a_killed_one_is_marked_dead(database: str, tmp_path: Path) -> None:
    workers = LoggedServer(database, tmp_path / "workers.log", workers=2, ZIDA_RATE_LIMIT_QPS="0")
    try:
        client = Client(workers.base, spread=True)
        record = client.save("两个进程")
        deadline = time.monotonic() + 20
        while len(_pids(workers.scrape())) < 2:  # each worker samples its gauges every second
            assert time.monotonic() < deadline, "two workers never reported"
            time.sleep(0.3)
        before = value(workers.scrape(), REQUESTS, route=BY_ID, status="200")
        for _ in range(30):
            assert client.get(record).status_code == 200
        # Each worker adds its tallies to the shared files every second (metrics.FLUSH_SECONDS): within that bound,
        # whichever worker answers a scrape, it reports both workers' counts.
        deadline = time.monotonic() + 2 * FLUSH_SECONDS + 3
        while value(workers.scrape(), REQUESTS, route=BY_ID, status="200") - before < 30:
            assert time.monotonic() < deadline, "the other worker's counts were not flushed within the bound"
            time.sleep(0.1)
        for _ in range(6):
            samples = httpx.get(f"{workers.base}/metrics", headers={"connection": "close"}).text
            from tests.observability.servers import parse

            parsed = parse(samples)
            assert value(parsed, REQUESTS, route=BY_ID, status="200") - before == 30
            assert len(_pids(parsed)) == 2
        # A worker killed outright: uvicorn starts another; its gauges are marked dead, its counts stay.
        victim = sorted(_pids(parsed))[0]
        os.kill(int(victim), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                samples_after = workers.scrape()
            except httpx.HTTPError:
                samples_after = {}
            pids = _pids(samples_after)
            if victim not in pids and len(pids) == 2:
                break
            assert time.monotonic() < deadline, f"the killed worker's gauges stayed: {pids}"
            time.sleep(0.3)
        assert value(samples_after, REQUESTS, route=BY_ID, status="200") - before == 30
        assert value(samples_after, "zida_db_pool_size") > 0
    finally:
        workers.stop()
