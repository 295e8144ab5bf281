"""A fresh corp for each org test (its own ids, so nothing here changes what other tests count), loaded from a small
bundle: a department tree, a manager chain, a role, and one app whose process forms take their approvers from an
EmployeeField (or-sign and sequential), a role and the manager, plus a plain form."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import SECRET_KEY
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.access.members import app_actor
from zida.core.audit import AuditEntry, list_audit
from zida.core.events.models import DomainEvent
from zida.core.events.outbox import pending_events
from zida.core.org.models import CorpRef
from zida.core.principals import AppActor
from zida.core.workflow import actions as workflow
from zida.core.workflow.consistency import find_problems
from zida.crypto import SecretBox
from zida.db import Database

ACTOR = "credential:test-admin"


def approver(node: str, who: dict[str, Any], **how: Any) -> dict[str, Any]:
    return {"approver": {"id": node, "name": node, "who": who, **how}}


def process_form(uuid: str, node: dict[str, Any]) -> dict[str, Any]:
    return {
        "formUuid": uuid,
        "title": uuid,
        "type": "process",
        "fields": [
            {"fieldId": "textField_title", "component": "TextField", "label": "标题"},
            {"fieldId": "employeeField_who", "component": "EmployeeField", "label": "审批人", "multiple": True},
        ],
        "process": {"processCode": "TPROC--" + uuid[5:], "name": uuid, "nodes": [node]},
    }


def org_bundle(corp_id: str) -> dict[str, Any]:
    """boss heads the root (1), mgr heads sales (10) and manages li, sun, zhou and chen; role 1 is li and sun."""
    s = corp_id.upper()
    user = {"departments": [10], "manager": "mgr"}
    return {
        "corp": {"corpId": corp_id, "name": "组织测试", "taskApiCode": "code-org-01"},
        "departments": [
            {"deptId": 1, "name": "根", "managers": ["boss"]},
            {"deptId": 10, "name": "销售", "parentId": 1, "managers": ["mgr"]},
        ],
        "users": [
            {"userId": "boss", "name": "老板", "departments": [1]},
            {"userId": "mgr", "name": "经理", "departments": [10], "manager": "boss"},
            {"userId": "adm", "name": "管理员", "departments": [1]},
            {"userId": "li", "name": "李", **user},
            {"userId": "sun", "name": "孙", **user},
            {"userId": "zhou", "name": "周", **user},
            {"userId": "chen", "name": "陈", **user},
        ],
        "roles": [{"roleId": 1, "name": "审批", "members": ["li", "sun"]}],
        "apps": [
            {
                "appType": f"APP_{s}",
                "name": "应用",
                "systemToken": "ST-ORG-SECRET-01",
                "admins": ["adm"],
                "forms": [
                    process_form(f"FORM-{s}-OR", approver("n_or", {"field": "employeeField_who"}, empty="fail")),
                    process_form(
                        f"FORM-{s}-SEQ",
                        approver("n_seq", {"field": "employeeField_who"}, mode="sequential", empty="fail"),
                    ),
                    process_form(f"FORM-{s}-ROLE", approver("n_role", {"role": 1}, empty="fail")),
                    process_form(f"FORM-{s}-MGR", approver("n_mgr", {"manager": 1}, empty="admin")),
                    {
                        "formUuid": f"FORM-{s}-NOTE",
                        "title": "记录",
                        "fields": [
                            {"fieldId": "textField_note", "component": "TextField", "label": "内容"},
                            {"fieldId": "employeeField_owner", "component": "EmployeeField", "label": "负责人"},
                        ],
                    },
                ],
            }
        ],
    }


@dataclass
class Org:
    """One test's corp, with shortcuts over the core's approval actions and the corp's audit log and outbox."""

    db: Database
    box: SecretBox
    corp: CorpRef
    app_type: str
    app_pk: int

    def form(self, kind: str) -> str:
        """The uuid of the corp's form of this kind (OR, SEQ, ROLE, MGR, NOTE)."""
        return f"FORM-{self.corp.corp_id.upper()}-{kind}"

    async def actor(self, user: str) -> AppActor:
        return await app_actor(self.db, self.corp.pk, self.app_pk, user)

    async def start(self, kind: str, approvers: list[str] | None = None, user: str = "boss") -> str:
        values: dict[str, Any] = {"textField_title": kind}
        if approvers is not None:
            values["employeeField_who"] = approvers
        inst = await workflow.start_instance(self.db, await self.actor(user), self.form(kind), values)
        return inst.instance_id

    async def tasks(self, instance_id: str) -> list[tuple[int, str, str]]:
        """(task id, assignee, status) of an instance's tasks, oldest first."""
        rows = await self.db.fetch(
            "SELECT t.id, t.assignee_user_id, t.status FROM task t JOIN process_instance pi"
            " ON pi.id = t.process_instance_pk WHERE pi.instance_id = :i ORDER BY t.id",
            {"i": instance_id},
        )
        return [(int(r["id"]), r["assignee_user_id"], r["status"]) for r in rows]

    async def running(self, instance_id: str) -> list[str]:
        """Assignees of the instance's running tasks, sorted."""
        return sorted(user for _, user, status in await self.tasks(instance_id) if status == "RUNNING")

    async def execute(self, instance_id: str, user: str, *, agree: bool = True) -> None:
        (task,) = [t for t, who, status in await self.tasks(instance_id) if who == user and status == "RUNNING"]
        await workflow.execute_task(self.db, await self.actor(user), instance_id, task, agree=agree)

    async def status(self, instance_id: str) -> str:
        return str(
            await self.db.fetchval("SELECT status FROM process_instance WHERE instance_id = :i", {"i": instance_id})
        )

    async def audit(self, kind: str | None = None, object_id: str | None = None) -> list[AuditEntry]:
        return await list_audit(self.db, self.corp.pk, limit=1000, kind=kind, object_id=object_id)

    async def events(self, after: int = 0) -> list[DomainEvent]:
        return await pending_events(self.db, self.corp.pk, after_id=after, limit=1000)

    async def marks(self) -> tuple[int, int]:
        """The newest audit row and event of the corp (what a test compares to see that nothing was written)."""
        audit = await self.db.fetchval(
            "SELECT COALESCE(MAX(id), 0) FROM audit_log WHERE corp_pk = :c", {"c": self.corp.pk}
        )
        events = await self.db.fetchval(
            "SELECT COALESCE(MAX(id), 0) FROM outbox_event WHERE corp_pk = :c", {"c": self.corp.pk}
        )
        return int(audit), int(events)

    async def problems(self) -> list[str]:
        """Broken workflow rules among the corp's instances (none expected)."""
        return await find_problems(self.db, corp_pk=self.corp.pk)


def unique_corp() -> str:
    return "org" + secrets.token_hex(4)


@pytest.fixture
async def org(db: Database) -> Org:
    """A freshly loaded corp (see ``org_bundle``)."""
    corp_id = unique_corp()
    box = SecretBox(SECRET_KEY)
    await load_bundle(db, box, parse_bundle(org_bundle(corp_id)))
    corp_pk = int(await db.fetchval("SELECT id FROM corp WHERE corp_id = :c", {"c": corp_id}))
    app_type = f"APP_{corp_id.upper()}"
    app_pk = int(await db.fetchval("SELECT id FROM app WHERE app_type = :t", {"t": app_type}))
    return Org(db, box, CorpRef(corp_pk, corp_id), app_type, app_pk)
