"""The one access policy: who may see and change an app's records and approvals, in Python and as a filter.

Every read and write path asks here (records, comments, operation logs, process instances, tasks; searches add
``readable_filter`` to their filter tree, which the records compiler turns into SQL), so the rule is written once:

* **read** a record (and its comments, operation log, and — for a process record — its approval): app admins; its
  originator; and for a record of a process form whoever has or had a task in its approval (including a
  transferred or cancelled one) or was CC'd on it. Another app's or another corp's record does not exist for the
  caller.
* **comment** on a record: whoever may read it.
* **change** a record's values: app admins and its originator; on a process record also whoever holds a running
  task of its approval. Once the approval has finished (completed, terminated) its record is read-only for everyone
  but app admins (whose changes are logged like any other, with their name, in the record's operation log).
* **delete** a record: app admins and its originator; a process record only app admins (deleting it deletes the
  approval).
* **manage** an approval (terminate, urge): app admins and its originator.
* **act for others** (decide, transfer, return or add signers to someone else's task): app admins.
* **a deleted record's history**: app admins (nobody else can be shown to have read the record).
"""

from __future__ import annotations

from collections.abc import Collection

from zida.core.errors import Conflict, NotFound, PermissionDenied
from zida.core.principals import AppActor
from zida.core.records.filters import Condition, Filter, Or
from zida.db import Connection

__all__ = [
    "can_act_for_others",
    "can_change",
    "can_delete",
    "can_manage_approval",
    "can_read",
    "check_changeable",
    "check_readable",
    "participates",
    "readable_filter",
    "reads_deleted_history",
]


def readable_filter(actor: AppActor, *, process_form: bool) -> Filter | None:
    """The condition a search of one of the actor's app's forms adds so that it finds only readable records (None:
    everything, for app admins)."""
    if actor.is_app_admin:
        return None
    own: Filter = Condition("originator", "eq", actor.user_id)
    if not process_form:
        return own
    return Or((own, Condition("participant", "eq", actor.user_id)))


async def participates(conn: Connection, corp_pk: int, record_id: str, user_id: str) -> bool:
    """Whether ``user_id`` has or had a task in the approval of this record, or was CC'd on it."""
    value = await conn.fetchval(
        "SELECT 1 FROM process_instance pi WHERE pi.instance_id = :i AND pi.corp_pk = :c AND ("
        " EXISTS (SELECT 1 FROM task t WHERE t.process_instance_pk = pi.id AND t.assignee_user_id = :u)"
        " OR EXISTS (SELECT 1 FROM process_notification n WHERE n.process_instance_pk = pi.id AND n.user_id = :u"
        " AND n.kind = 'cc'))",
        {"i": record_id, "c": corp_pk, "u": user_id},
    )
    return value is not None


async def can_read(
    conn: Connection,
    actor: AppActor,
    *,
    app_pk: int,
    record_id: str,
    originator: str,
    is_process: bool,
    assignees: Collection[str] | None = None,
) -> bool:
    """Whether the actor may read this record of its app (``assignees``: the approval's task holders when the caller
    already has them, saving a query)."""
    if app_pk != actor.app_pk:
        return False
    if actor.is_app_admin or originator == actor.user_id:
        return True
    if not is_process:
        return False
    if assignees is not None and actor.user_id in assignees:
        return True
    return await participates(conn, actor.corp_pk, record_id, actor.user_id)


async def check_readable(
    conn: Connection,
    actor: AppActor,
    *,
    app_pk: int,
    record_id: str,
    originator: str,
    is_process: bool,
    assignees: Collection[str] | None = None,
    what: str = "record",
) -> None:
    """Raise unless the actor may read the record: ``NotFound`` for another app's, ``PermissionDenied`` else."""
    if app_pk != actor.app_pk:
        raise NotFound(f"{what} {record_id} does not exist or was deleted", reason="record.not_found")
    if not await can_read(
        conn,
        actor,
        app_pk=app_pk,
        record_id=record_id,
        originator=originator,
        is_process=is_process,
        assignees=assignees,
    ):
        raise PermissionDenied(
            f"user {actor.user_id} may not see {what} {record_id}: not an app admin, its originator"
            + (" or a participant of its approval" if is_process else ""),
            reason="permission.denied",
        )


def can_change(
    actor: AppActor, *, originator: str, running_assignees: Collection[str] = (), approval_status: str | None = None
) -> bool:
    """Whether the actor may change a record's values (``running_assignees``: holders of its approval's running
    tasks, for a process record; ``approval_status``: its approval's status, None for a plain record)."""
    if actor.is_app_admin:
        return True
    if approval_status not in (None, "RUNNING"):
        return False
    return originator == actor.user_id or actor.user_id in running_assignees


def check_changeable(
    actor: AppActor,
    *,
    record_id: str,
    originator: str,
    running_assignees: Collection[str] = (),
    approval_status: str | None = None,
) -> None:
    """Raise unless the actor may change the record: ``Conflict`` (``instance.finished``) for a finished approval's
    record, ``PermissionDenied`` for someone who may not change it at all."""
    if can_change(actor, originator=originator, running_assignees=running_assignees, approval_status=approval_status):
        return
    if approval_status not in (None, "RUNNING") and can_change(
        actor, originator=originator, running_assignees=running_assignees
    ):
        raise Conflict(
            f"the approval of {record_id} has finished ({approval_status}): only app admins may change its data",
            reason="instance.finished",
        )
    raise PermissionDenied(f"user {actor.user_id} may not change {record_id}", reason="permission.denied")


def can_delete(actor: AppActor, *, originator: str, is_process: bool) -> bool:
    """Whether the actor may delete a record (a process record: app admins only)."""
    if is_process:
        return actor.is_app_admin
    return actor.is_app_admin or originator == actor.user_id


def can_manage_approval(actor: AppActor, *, originator: str) -> bool:
    """Whether the actor may terminate or urge an approval."""
    return actor.is_app_admin or originator == actor.user_id


def can_act_for_others(actor: AppActor) -> bool:
    """Whether the actor may act on tasks assigned to others."""
    return actor.is_app_admin


def reads_deleted_history(actor: AppActor) -> bool:
    """Whether the actor may read the operation log of records that no longer exist."""
    return actor.is_app_admin
