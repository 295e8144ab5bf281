"""Fixtures of the approval conformance tests: the corp_flow bundle, SDK helpers, and a consistency check of the
stored workflow after every test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conformance.sdk import Sdk
from tests.conftest import ServerProcess, load_fixture_bundle
from zida.clock import now_ms
from zida.core.events.models import DomainEvent
from zida.core.workflow.consistency import find_problems
from zida.db import open_database
from zida.dialects.dingtalk.events import render

if TYPE_CHECKING:
    from tests.conformance.workflow.oa_support import Oa

FLOW_ALL = ("flow-all", "flow-secret-all-01")
FLOW_READ = ("flow-read", "flow-secret-read-01")
FLOW_FORMS = ("flow-forms", "flow-secret-forms-01")
FLOW_ADMIN = ("flow-admin", "flow-secret-admin-01")
APP1 = {"app_type": "APP_FLOW1", "system_token": "ST-FLOW1-SECRET"}
APP2 = {"app_type": "APP_FLOW2", "system_token": "ST-FLOW2-SECRET"}
CORP = "corpFlow"
TASK_API_CODE = "code-of-corp-flow"


def run(url: str, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One SELECT on the session database, outside the server."""

    async def go() -> list[dict[str, Any]]:
        db = await open_database(url)
        try:
            return [dict(r) for r in await db.fetch(query, params)]
        finally:
            await db.close()

    return asyncio.run(go())


class Flow:
    """The official SDK against the corp_flow bundle, with shortcuts for the steps tests repeat."""

    def __init__(self, server: ServerProcess, url: str) -> None:
        self.sdk = Sdk(server.endpoint)
        self.url = url
        self.base = f"http://{server.endpoint}"

    def call(
        self,
        api: str,
        *path: str,
        user: str | None = "adm",
        credential: tuple[str, str] = FLOW_ALL,
        app: dict[str, str] | None = APP1,
        version: int = 1,
        **fields: Any,
    ) -> Any:
        """``api`` through the SDK as ``user`` of APP_FLOW1 (``app=None`` / ``user=None`` to leave them out)."""
        extra: dict[str, Any] = dict(app or {})
        if user is not None:
            extra["user_id"] = user
        return self.sdk.call(api, *path, token=self.sdk.token(credential), version=version, **extra, **fields)

    def start(self, form: str, data: dict[str, Any], user: str = "li", **fields: Any) -> str:
        """startInstance → the processInstanceId."""
        body = self.call("start_instance", user=user, form_uuid=form, form_data_json=json.dumps(data), **fields).body
        assert body.result.startswith("FINST-")
        result: str = body.result
        return result

    def running(self, instance_id: str, user: str = "adm") -> list[Any]:
        """getRunningTasks of an instance."""
        return list(self.call("get_running_tasks", user=user, process_instance_id=instance_id).body.result)

    def task_of(self, instance_id: str, user: str) -> int:
        """The running task of ``user`` in the instance."""
        mine = [t for t in self.running(instance_id) if t.actual_actioner_id == user]
        assert len(mine) == 1, [(t.actual_actioner_id, t.activity_id) for t in self.running(instance_id)]
        return int(mine[0].task_id)

    def assignees(self, instance_id: str) -> list[str]:
        """Users with a running task, sorted."""
        return sorted(t.actual_actioner_id for t in self.running(instance_id))

    def execute(self, instance_id: str, user: str, result: str = "AGREE", remark: str = "ok", **fields: Any) -> None:
        """executeTask as ``user`` on their running task."""
        task_id = self.task_of(instance_id, user)
        self.call(
            "execute_task",
            user=user,
            process_instance_id=instance_id,
            task_id=task_id,
            out_result=result,
            remark=remark,
            **fields,
        )

    def instance(self, instance_id: str, user: str = "adm") -> Any:
        """getInstanceById."""
        return self.call("get_instance_by_id", instance_id, user=user).body

    def sql(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """A SELECT on the server's database."""
        return run(self.url, query, params)

    def events(self, instance_id: str) -> list[dict[str, Any]]:
        """An instance's events in the outbox, in write order, as DingTalk's approval callbacks carry them."""
        rows = self.sql(
            "SELECT e.id, e.corp_pk, co.corp_id, e.event_type, e.payload, e.created_at FROM outbox_event e"
            " JOIN corp co ON co.id = e.corp_pk ORDER BY e.id"
        )
        out = []
        for row in rows:
            stored = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
            event = DomainEvent(
                topic=row["event_type"],
                corp_pk=row["corp_pk"],
                object_id=stored["object"],
                actor=stored["actor"],
                at=row["created_at"],
                data=stored["data"],
                app=stored["app"],
                event_id=row["id"],
                corp_id=row["corp_id"],
            )
            rendered = render(event)
            if rendered is not None and rendered[1]["processInstanceId"] == instance_id:
                assert rendered[1]["EventType"] == rendered[0]
                out.append(rendered[1])
        return out

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        """The admin API with a Zida.Admin token."""
        headers = {"authorization": f"Bearer {token or self.sdk.token(FLOW_ADMIN)}"}
        return httpx.request(method, self.base + path, json=body, headers=headers, timeout=10)


@pytest.fixture(scope="session")
def flow_url(loaded_url: str) -> str:
    """The session database with the corp_flow bundle loaded."""
    load_fixture_bundle(loaded_url, "corp_flow.yaml")
    return loaded_url


@pytest.fixture(scope="session")
def flow(server: ServerProcess, flow_url: str) -> Iterator[Flow]:
    """Helpers over the official SDK for the approval tests."""
    yield Flow(server, flow_url)


@pytest.fixture(scope="session")
def oa_url(flow_url: str) -> str:
    """The session database with the corp_oa bundle loaded too."""
    load_fixture_bundle(flow_url, "corp_oa.yaml")
    return flow_url


@pytest.fixture(scope="session")
def oa(server: ServerProcess, oa_url: str) -> Iterator[Oa]:
    """The official workflow_1_0 client over corp_oa."""
    from tests.conformance.workflow.oa_support import Oa  # it imports this module

    yield Oa(server, oa_url)


@pytest.fixture(autouse=True)
def consistent(flow_url: str) -> Iterator[None]:
    """After every test: the stored instances it touched keep every workflow rule."""
    started = now_ms() - 1

    async def check() -> list[str]:
        db = await open_database(flow_url)
        try:
            return await find_problems(db, since=started)
        finally:
            await db.close()

    yield
    problems = asyncio.run(check())
    assert not problems, "\n".join(problems)
