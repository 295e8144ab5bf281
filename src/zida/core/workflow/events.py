"""The domain events of an approval step (``zida.core.events.models``: ``process.*`` and ``task.*``), from the engine's
``EventEmitted`` effects and the instance's facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zida.core.workflow.engine import Effect, EventEmitted
from zida.core.workflow.models import ProcessInstance
from zida.core.workflow.step_store import NewEvent

__all__ = ["instance_facts", "process_event", "step_events"]

_FINISHING = frozenset({"process.finished", "process.terminated", "process.deleted"})


def instance_facts(inst: ProcessInstance) -> dict[str, Any]:
    """What every ``process.*`` event says about its instance."""
    return {
        "form": inst.form_uuid,
        "process": inst.process_code,
        "title": inst.title,
        "originator": inst.originator_user_id,
        "started_at": inst.created_at,
    }


def process_event(inst: ProcessInstance, topic: str, actor: str, now: int, *, result: str | None = None) -> NewEvent:
    """A ``process.*`` event of the instance."""
    data = instance_facts(inst)
    if result is not None:
        data["result"] = result
    if topic in _FINISHING:
        data["finished_at"] = now
    return NewEvent(topic, {"object": inst.instance_id, "actor": actor, "app": inst.app_type, "data": data})


def step_events(
    inst: ProcessInstance, effects: Sequence[Effect], created_now: set[int], actor: str, now: int
) -> list[NewEvent]:
    """The events of one engine step, in the engine's order; a task event's ``created_at`` is its task's creation
    time (``now`` for tasks created by this step, else read from the task's row when written)."""
    events = []
    for e in effects:
        if not isinstance(e, EventEmitted):
            continue
        if e.task_id is None:
            events.append(process_event(inst, e.topic, actor, now, result=e.result))
            continue
        task = inst.state.task(e.task_id)
        task_id = inst.global_task_id(e.task_id)
        data: dict[str, Any] = {
            "process_instance": inst.instance_id,
            "form": inst.form_uuid,
            "process": inst.process_code,
            "title": inst.title,
            "node": task.node_id if task is not None else None,
            "assignee": e.user_id,
            "created_at": now,
        }
        if e.result is not None:
            data["result"] = e.result
            data["remark"] = e.remark or ""
        if e.topic == "task.finished":
            data["finished_at"] = now
        events.append(
            NewEvent(
                e.topic,
                {"object": str(task_id), "actor": actor, "app": inst.app_type, "data": data},
                None if e.task_id in created_now else task_id,
            )
        )
    return events
