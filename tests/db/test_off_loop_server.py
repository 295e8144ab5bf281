"""A live server keeps answering while a slow search runs (issue 9: "no single request can stop the server").

A search of 200 OR-ed ``like`` conditions over a few thousand records (the largest the request budget allows)
takes SQLite a good fraction of a second; it runs in the reader pool, off the event loop, so ``/healthz`` and a
get-by-id sent meanwhile are answered while it runs. On PostgreSQL the same holds through asyncpg. Nothing is timed
against a bound (the house rule): a probe sent and answered while a search was running proves the loop was free.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from Tea.exceptions import TeaException

from tests.conformance.sdk import Sdk
from tests.conftest import ServerProcess, load_fixture_bundle

SLOW = ("keySlow-all", "secret-slow-all-0001")
APP: dict[str, Any] = {"app_type": "APP_SLOW1", "system_token": "ST-SLOW1-SECRET-TOKEN", "user_id": "slowadmin"}
FORM = "FORM-SLOW1NOTES"
RECORDS = 12_000
# The searches run for seconds, longer on a slow shared machine: the SDK waits for them (its default is 10 s).
PATIENT_MS = 300_000


def _record(i: int) -> str:
    body = f"第{i}条笔记 " + "lorem ipsum dolor sit amet " * 8
    return json.dumps({"textField_title": f"note {i:05d}", "textareaField_body": body, "numberField_n": i})


def _slow_conditions() -> str:
    """200 ``like`` conditions none of which matches: every record is tested against all of them."""
    return json.dumps(
        [
            {
                "key": "textareaField_body" if i % 2 else "textField_title",
                "value": f"zq{i}xj",
                "type": "TEXT",
                "operator": "like",
                "componentName": "TextareaField" if i % 2 else "TextField",
            }
            for i in range(200)
        ]
    )


@pytest.fixture(scope="module")
def server(loaded_url: str) -> Iterator[ServerProcess]:
    """This module's own live server, with a statement budget far above what the slow searches take even on a
    slow, shared machine: these tests are about answers interleaving, the budget has its own test below."""
    proc = ServerProcess(loaded_url, ZIDA_STATEMENT_TIMEOUT_SECONDS="300")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def slow_form(server: ServerProcess, loaded_url: str) -> tuple[Sdk, str]:
    """The slow corp loaded and its form filled with RECORDS records (batchSave, 50 a call); one record's id."""
    load_fixture_bundle(loaded_url, "corp_slow.yaml")
    sdk = Sdk(server.endpoint, PATIENT_MS)
    token = sdk.token(SLOW)
    have = sdk.call("search_form_datas", token=token, **APP, form_uuid=FORM, page_size=1).body.total_count
    clients = [Sdk(server.endpoint) for _ in range(4)]
    for c in clients:
        c._tokens[SLOW] = token

    def save(start: int) -> None:
        client = clients[start // 50 % len(clients)]
        client.call(
            "batch_save_form_data",
            token=token,
            **APP,
            form_uuid=FORM,
            form_data_json_list=[_record(i) for i in range(start, min(start + 50, RECORDS))],
        )

    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(save, range(have, RECORDS, 50)))
    one = sdk.call("search_form_datas", token=token, **APP, form_uuid=FORM, page_size=1).body.data[0]
    return sdk, one.form_instance_id


def _slow_search(sdk: Sdk, token: str) -> Any:
    return sdk.call(
        "search_form_datas",
        token=token,
        **APP,
        form_uuid=FORM,
        search_field_json=_slow_conditions(),
        logic_operator="OR",
        page_size=10,
    )


class _Probe:
    """Sends ``/healthz`` and a get-by-id, one after the other, until stopped; keeps when each was sent and answered.

    No latency bound (timings are not asserted): while a server's loop is held by a search, no probe sent after
    the search can be answered before it; a server that keeps serving answers many.
    """

    def __init__(self, endpoint: str, token: str, instance_id: str) -> None:
        self.base = f"http://{endpoint}"
        self.get = (
            f"{self.base}/v1.0/yida/forms/instances/{instance_id}"
            f"?appType={APP['app_type']}&systemToken={APP['system_token']}&userId={APP['user_id']}"
        )
        self.headers = {"x-acs-dingtalk-access-token": token}
        self.answered: list[tuple[float, float]] = []  # (sent, answered) of each probe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                assert client.get(f"{self.base}/healthz").status_code == 200
                self.answered.append((sent, time.monotonic()))
                sent = time.monotonic()
                assert client.get(self.get, headers=self.headers).status_code == 200
                self.answered.append((sent, time.monotonic()))
                time.sleep(0.005)

    def within(self, searches: list[tuple[float, float]]) -> int:
        """How many probes were both sent and answered while one search was running."""
        return sum(any(s <= sent and answered <= e for s, e in searches) for sent, answered in self.answered)

    def __enter__(self) -> _Probe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


# Probes that must be answered inside a running search (a held loop answers none).
MIN_PROBES = 10


def _searching(client: Sdk, token: str, searches: list[tuple[float, float]], seconds: float = 3) -> None:
    """Slow searches one after the other for ``seconds``, each one's (sent, answered) kept in ``searches``."""
    client._tokens[SLOW] = token
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent = time.monotonic()
        body = _slow_search(client, token).body
        searches.append((sent, time.monotonic()))
        assert body.total_count == 0 and body.data == []


@pytest.fixture
def probe_token(slow_form: tuple[Sdk, str]) -> Iterator[str]:
    yield slow_form[0].token(SLOW)


def test_healthz_and_a_get_by_id_are_answered_while_a_slow_search_runs(
    server: ServerProcess, slow_form: tuple[Sdk, str], probe_token: str
) -> None:
    sdk, instance_id = slow_form
    searches: list[tuple[float, float]] = []
    with _Probe(server.endpoint, probe_token, instance_id) as probe:
        _searching(sdk, probe_token, searches)
    inside = probe.within(searches)
    assert inside >= MIN_PROBES, f"{inside} of {len(probe.answered)} probes answered in {len(searches)} searches"


def test_probes_are_answered_while_more_slow_searches_run_than_the_server_has_readers(
    server: ServerProcess, slow_form: tuple[Sdk, str], probe_token: str
) -> None:
    # More slow searches at once than the server has reader connections: they queue for the pool, the probes not.
    _, instance_id = slow_form
    clients = [Sdk(server.endpoint, PATIENT_MS) for _ in range(4)]
    searches: list[tuple[float, float]] = []
    with _Probe(server.endpoint, probe_token, instance_id) as probe, ThreadPoolExecutor(len(clients)) as pool:
        # A second of searches from each client: their first searches already run at once.
        list(pool.map(lambda client: _searching(client, probe_token, searches, seconds=1), clients))
    inside = probe.within(searches)
    assert inside >= MIN_PROBES, f"{inside} probes were answered while 4 clients searched"


def test_a_search_past_the_statement_budget_is_too_expensive_and_the_server_goes_on(
    slow_form: tuple[Sdk, str], loaded_url: str
) -> None:
    _, instance_id = slow_form
    budgeted = ServerProcess(loaded_url, ZIDA_STATEMENT_TIMEOUT_SECONDS="0.05")
    try:
        sdk = Sdk(budgeted.endpoint)
        token = sdk.token(SLOW)
        with pytest.raises(TeaException) as refused:
            _slow_search(sdk, token)
        assert refused.value.code == "invalidParameter.request.tooExpensive"
        assert refused.value.statusCode == 400
        assert "0.05 s" in refused.value.message
        got = sdk.call("get_form_data_by_id", instance_id, token=token, **APP).body
        assert got.form_inst_id == instance_id
    finally:
        budgeted.stop()
