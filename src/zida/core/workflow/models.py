"""Persisted workflow entities: process instances, tasks, operation records, notifications, inbox queries.

Stored vocabularies (shared by every dialect and by record searches, which filter on them):

* instance status ``RUNNING``, ``COMPLETED``, ``TERMINATED``, ``ERROR`` and result ``agree`` / ``disagree`` —
  the platform's own enums, also kept on the linked ``form_instance`` row (``instance_status``,
  ``approved_result``);
* task status ``RUNNING``, ``PAUSED``, ``COMPLETED``, ``CANCELED``, ``TERMINATED`` (DingTalk's task statuses)
  and task result ``agree``, ``disagree``, ``redirect``, ``return``.

Task ids are numbers: ``process_instance.pk * TASK_ID_BLOCK + n`` where n is the engine's task number inside
the instance, so a task id names its instance and the engine state stays self-contained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zida.core.records.filters import Page
from zida.core.records.models import FormInstance
from zida.core.workflow.engine import InstanceState

__all__ = [
    "INSTANCE_STATUS",
    "OPEN_TASK_STATUSES",
    "TASK_ID_BLOCK",
    "TASK_STATUS",
    "InboxQuery",
    "Notification",
    "OperationRecord",
    "ProcessInstance",
    "TaskView",
    "global_task_id",
    "split_task_id",
]

TASK_ID_BLOCK = 1_000_000

# Engine vocabulary → stored vocabulary.
INSTANCE_STATUS = {"running": "RUNNING", "completed": "COMPLETED", "terminated": "TERMINATED", "error": "ERROR"}
TASK_STATUS = {
    "running": "RUNNING",
    "paused": "PAUSED",
    "completed": "COMPLETED",
    "cancelled": "CANCELED",
    "terminated": "TERMINATED",
}
OPEN_TASK_STATUSES = ("RUNNING", "PAUSED")


def global_task_id(instance_pk: int, local_id: int) -> int:
    """The public task id of the engine's task ``local_id`` in instance ``instance_pk``."""
    return instance_pk * TASK_ID_BLOCK + local_id


def split_task_id(task_id: int) -> tuple[int, int]:
    """(instance pk, engine task number) of a public task id."""
    return divmod(task_id, TASK_ID_BLOCK)


@dataclass(slots=True)
class ProcessInstance:
    """A process instance with its engine state and the form record it approves (same id)."""

    pk: int
    instance_id: str
    corp_id: str
    corp_pk: int
    app_pk: int
    app_type: str
    form_pk: int
    form_uuid: str
    form_version: int
    process_code: str
    originator_user_id: str
    department_id: int | None
    status: str
    result: str | None
    state: InstanceState
    lock_version: int
    created_at: int
    modified_at: int
    finished_at: int | None
    record: FormInstance

    @property
    def title(self) -> str:
        """The record's title (``<originator>发起的<form>``)."""
        return self.record.title

    def global_task_id(self, local_id: int) -> int:
        """Public id of one of this instance's tasks."""
        return global_task_id(self.pk, local_id)


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task row with the context inboxes show (its instance's app, form, title, originator, status)."""

    task_id: int
    instance_id: str
    node_id: str
    assignee_user_id: str
    actor_user_id: str | None
    status: str
    result: str | None
    created_at: int
    active_at: int
    finished_at: int | None
    app_type: str
    form_pk: int
    form_version: int
    form_uuid: str
    process_code: str
    title: str
    originator_user_id: str
    instance_status: str


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One row of an instance's history (``kind`` as the engine names it: start, agree, redirect, cc…)."""

    record_id: int
    kind: str
    actor_user_id: str | None
    node_id: str | None
    task_id: int | None
    result: str | None
    remark: str
    user_ids: tuple[str, ...]
    target_node_id: str | None
    on_behalf: bool
    digital_sign: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Notification:
    """A CC (抄送) of an instance to a user, with the instance context lists show."""

    notification_id: int
    node_id: str | None
    user_id: str
    created_at: int
    instance: ProcessInstance


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """Filters shared by the org-level lists (to-do, done, submitted, CC): apps, processes, times, keyword."""

    app_types: tuple[str, ...] = ()
    process_codes: tuple[str, ...] = ()
    created_from: int | None = None
    created_to: int | None = None
    instance_created_from: int | None = None
    instance_created_to: int | None = None
    keyword: str | None = None
    page: Page = field(default_factory=Page)
