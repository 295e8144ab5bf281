"""A check of the stored workflow against its own rules (run after every test; usable as an ops check).

For each process instance: the engine's invariants hold for its state and definition version; the
instance's status and result, and its record's ``instance_status`` / ``approved_result``, mirror the state;
the task rows are exactly the state's tasks (id, node, assignee, status, result); a finished instance has a
finish time and no open task.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from zida.core.workflow.definitions import definition_for
from zida.core.workflow.engine import InstanceState, assert_invariants
from zida.core.workflow.models import INSTANCE_STATUS, TASK_STATUS, global_task_id
from zida.db import Connection

__all__ = ["find_problems"]


async def find_problems(conn: Connection, *, corp_pk: int | None = None, since: int = 0) -> list[str]:
    """Every rule broken by instances (of a corp) modified at or after ``since`` (epoch ms)."""
    params: dict[str, Any] = {"since": since}
    where = "pi.modified_at >= :since"
    if corp_pk is not None:
        where += " AND pi.corp_pk = :c"
        params["c"] = corp_pk
    rows = await conn.fetch(
        "SELECT pi.id, pi.instance_id, pi.form_pk, pi.form_version, pi.status, pi.result, pi.state,"
        " pi.finished_at, fi.instance_status, fi.approved_result, fi.process_instance_id"
        f" FROM process_instance pi JOIN form_instance fi ON fi.id = pi.form_instance_pk WHERE {where}",
        params,
    )
    if not rows:
        return []
    task_rows = await conn.fetch(
        "SELECT t.id, t.process_instance_pk, t.node_id, t.assignee_user_id, t.status, t.result FROM task t"
        f" JOIN process_instance pi ON pi.id = t.process_instance_pk WHERE {where}",
        params,
    )
    stored: dict[int, dict[int, tuple[str, str, str, str | None]]] = defaultdict(dict)
    for t in task_rows:
        stored[t["process_instance_pk"]][int(t["id"])] = (t["node_id"], t["assignee_user_id"], t["status"], t["result"])
    problems: list[str] = []
    for row in rows:
        name = row["instance_id"]
        state = InstanceState.from_json(row["state"])
        definition = await definition_for(conn, row["form_pk"], row["form_version"], state)
        try:
            assert_invariants(state, definition)
        except AssertionError as exc:
            problems.append(f"{name}: {exc}")
        status = INSTANCE_STATUS[state.status]
        if (row["status"], row["result"]) != (status, state.result):
            problems.append(f"{name}: stored {row['status']}/{row['result']}, state says {status}/{state.result}")
        if (row["instance_status"], row["approved_result"]) != (status, state.result):
            problems.append(f"{name}: record shows {row['instance_status']}/{row['approved_result']}")
        if row["process_instance_id"] != name:
            problems.append(f"{name}: record points at process instance {row['process_instance_id']}")
        if (status == "RUNNING") == (row["finished_at"] is not None):
            problems.append(f"{name}: {status} with finished_at {row['finished_at']}")
        expected = {
            global_task_id(row["id"], t.task_id): (t.node_id, t.user_id, TASK_STATUS[t.status], t.result)
            for t in state.tasks
        }
        if stored.get(row["id"], {}) != expected:
            problems.append(f"{name}: task rows {stored.get(row['id'], {})} differ from the state's {expected}")
    return problems
