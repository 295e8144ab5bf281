"""The corpCoreMain bundle (``tests/fixtures/corp_core_main.yaml``) for the core-level tests: its ids and a handle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from zida.core.access.members import app_actor
from zida.core.apps.models import Form
from zida.core.apps.queries import get_form
from zida.core.principals import AppActor
from zida.core.records import queries as record_queries
from zida.core.workflow import actions as workflow
from zida.core.workflow import queries as approvals
from zida.core.workflow.models import ProcessInstance
from zida.db import Database

RECORDS = "APP_CORE_RECORDS"
FLOW = "APP_CORE_FLOW"
STOCK = "FORM-CORE-STOCK"
NOTE = "FORM-CORE-NOTE"
REVIEW = "FORM-CORE-REVIEW"  # wang, then chen, then a CC to sun
TWO = "FORM-CORE-TWO"  # wang, then chen
OR = "FORM-CORE-OR"  # or-sign: wang, chen, zhao
LEAVE = "FORM-CORE-LEAVE"  # the originator's manager (wang for li); more than 3 days: zhao; CC sun


@dataclass
class CorpCoreMain:
    """The corpCoreMain bundle on an open database; a test module's ``Corp`` subclass adds its own helpers."""

    db: Database
    corp_pk: int
    app_pks: dict[str, int]
    default_app: ClassVar[str] = RECORDS

    async def actor(self, user: str, app: str | None = None) -> AppActor:
        return await app_actor(self.db, self.corp_pk, self.app_pks[app or self.default_app], user)

    async def form(self, form_uuid: str, app: str | None = None) -> Form:
        return await get_form(self.db, await self.actor("adm", app), form_uuid)

    async def data(self, instance_id: str) -> dict[str, Any]:
        inst, _ = await record_queries.get_form_instance(self.db, await self.actor("adm"), instance_id)
        return inst.data

    async def task_of(self, instance_id: str, user: str) -> int:
        tasks = await approvals.running_tasks(self.db, await self.actor("adm"), [instance_id], strict=True)
        (task,) = [t.task_id for t in tasks if t.assignee_user_id == user]
        return task

    async def execute(
        self, instance_id: str, user: str, *, agree: bool = True, remark: str = "", values: Any = None
    ) -> ProcessInstance:
        task = await self.task_of(instance_id, user)
        return await workflow.execute_task(
            self.db, await self.actor(user), instance_id, task, agree=agree, remark=remark, values=values
        )

    async def approve(self, instance_id: str, user: str) -> None:
        await self.execute(instance_id, user)
