"""A server restarting with deliveries pending: nothing is lost, nothing reordered. Its own database, so that no
other server delivers meanwhile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.events.conftest import EV_HTTP, FAST, Events
from tests.conformance.events.receiver import Receiver
from tests.conformance.events.test_subscriptions_admin import state, subscribe
from tests.conftest import ServerProcess, free_port, fresh_database, load_fixture_bundle


@pytest.fixture
def own_url(tmp_path: Path) -> Iterator[str]:
    """A migrated database holding only the corp_events bundle."""
    with fresh_database(tmp_path) as url:
        load_fixture_bundle(url, "corp_events.yaml")
        yield url


def test_pending_deliveries_survive_a_restart(own_url: str) -> None:
    port = free_port()
    server = ServerProcess(own_url, port=port, **FAST)
    receiver = Receiver(EV_HTTP[0])
    try:
        events = Events(server, own_url)
        view = subscribe(events, EV_HTTP[0], receiver, ["bpms_instance_change", "bpms_task_change"])
        receiver.mode = "down"
        first = events.approve()
        second = events.approve()
        deadline = time.monotonic() + 15  # both approvals fanned out, their receiver failing
        while time.monotonic() < deadline:
            shown = state(events, view["id"])
            if shown["failingSince"] is not None and shown["deliveries"]["pending"] == 12:
                break
            time.sleep(0.05)
        assert (shown["deliveries"], shown["failingSince"] is not None) == (
            {"pending": 12, "delivered": 0, "failed": 0}, True,
        )  # fmt: skip
        server.stop()
        receiver.mode = "ok"
        server = ServerProcess(own_url, port=port, **FAST)
        got = receiver.wait_for(12, timeout=30)
        for iid in (first, second):
            assert [(e["EventType"], e["type"]) for e in got if e["BizId"] == iid] == [
                ("bpms_instance_change", "start"),
                ("bpms_task_change", "start"),
                ("bpms_task_change", "finish"),
                ("bpms_task_change", "start"),
                ("bpms_task_change", "finish"),
                ("bpms_instance_change", "finish"),
            ]
        assert len({e["eventId"] for e in got}) == 12
    finally:
        server.stop()
        receiver.close()
