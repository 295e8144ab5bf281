"""The approval engine: a pure state machine over a process definition.

``start`` and ``act`` take a definition, an instance state and an action, and return the new state plus the
effects the persistence layer applies in one transaction: tasks created, paused, resumed, completed or
cancelled, CC sent, instance finished, operation records and outbox events. There is no database, clock or I/O
here; every effect of one step happens at the instant the caller stamps on it. The state is plain data that
round-trips through JSON, so any waiting instance survives a restart.

Execution model. The main flow and every parallel branch is a ``Branch`` waiting at one node: an approver node
(an ``Approval`` with one ``Seat`` per resolved approver) or a parallel node (waiting for its child branches).
A seat is a chain of people who decide in turn: the resolved approver plus whoever was added before or after
them (加签); the seat's outcome is the chain's outcome, and the node's mode combines the seats' outcomes.
Approvers are resolved once, at start (the flow chart the originator sees); route conditions are evaluated when
the flow reaches them, over the values the conditions read (kept in the state, refreshed by ``act``).

Returning to the submitter (退回发起人). A ``Return`` to ``sid-restartevent`` (``START_ACTIVITY_ID``) cancels
every open task, drops every parallel branch and gives the originator one task at the start activity: the
flow waits for them to resubmit. ``Agree`` on that task resubmits: the flow restarts from its first node, with
the values the record has then (routes see them; when ``act`` is given a directory, approvers are resolved
again from them, and a ``fail`` node that now resolves to nobody refuses the resubmission). ``Disagree`` on it,
or ``Withdraw``, gives up: the instance ends terminated. The resubmission task cannot be redirected, returned
or given signers.

One turn per person per node. A redirect or an added signer may not give a turn at a node to someone who
already has one there — decided, open, or waiting later in a sequential line or a signer chain — since they
would then decide (or be counted) twice; the action is refused with ``task.already_assignee``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from zida.core.workflow.conditions import matches
from zida.core.workflow.definition import (
    START_ACTIVITY_ID,
    ApproverNode,
    CcNode,
    DepartmentHead,
    FieldUsers,
    FixedUsers,
    Manager,
    Node,
    Originator,
    OriginatorChoice,
    ParallelNode,
    ProcessDefinition,
    RoleMembers,
    RouteBranch,
    RouteNode,
    Who,
)

__all__ = [
    "INSTANCE_STATUSES",
    "OPERATION_KINDS",
    "STATE_SCHEMA",
    "TASK_RESULTS",
    "TASK_STATUSES",
    "Action",
    "AddSigner",
    "Agree",
    "Approval",
    "Branch",
    "CcSent",
    "Directory",
    "Disagree",
    "Effect",
    "EventEmitted",
    "InstanceFinished",
    "InstanceState",
    "OperationRecorded",
    "Redirect",
    "Return",
    "Seat",
    "StaticDirectory",
    "Task",
    "TaskCancelled",
    "TaskCompleted",
    "TaskCreated",
    "TaskPaused",
    "TaskResumed",
    "TaskUrged",
    "Terminate",
    "Urge",
    "Withdraw",
    "act",
    "assert_invariants",
    "forecast",
    "start",
]

STATE_SCHEMA = 1

RUNNING = "running"
COMPLETED = "completed"
TERMINATED = "terminated"
ERROR = "error"
INSTANCE_STATUSES = frozenset({RUNNING, COMPLETED, TERMINATED, ERROR})

PAUSED = "paused"
CANCELLED = "cancelled"
TASK_STATUSES = frozenset({RUNNING, PAUSED, COMPLETED, CANCELLED, TERMINATED})
OPEN_TASK_STATUSES = frozenset({RUNNING, PAUSED})

AGREE = "agree"
DISAGREE = "disagree"
REDIRECT = "redirect"
RETURN = "return"
TASK_RESULTS = frozenset({AGREE, DISAGREE, REDIRECT, RETURN})

OPERATION_KINDS = frozenset(
    {
        "start",
        "agree",
        "disagree",
        "redirect",
        "add_signer_before",
        "add_signer_after",
        "return",
        "withdraw",
        "resubmit",
        "terminate",
        "urge",
        "cc",
        "skip",
        "fallback_to_admin",
        "finish",
        "error",
    }
)

_MAX_DEPARTMENT_DEPTH = 100


# ------------------------------------------------------------------------------------------ directory


class Directory(Protocol):
    """What the engine asks the org directory while it resolves approvers at start."""

    def user_exists(self, user_id: str) -> bool:
        """Whether the user is an active member of the corp."""
        ...

    def manager_of(self, user_id: str) -> str | None:
        """The user's direct manager."""
        ...

    def main_department(self, user_id: str) -> int | None:
        """The user's main department."""
        ...

    def parent_department(self, dept_id: int) -> int | None:
        """The parent of a department; None for the root."""
        ...

    def department_managers(self, dept_id: int) -> Sequence[str]:
        """The managers (heads) of a department."""
        ...

    def role_members(self, role_id: int) -> Sequence[str]:
        """The members of a role."""
        ...

    def app_admins(self) -> Sequence[str]:
        """The administrators of the app the process belongs to."""
        ...


@dataclass(frozen=True, slots=True)
class StaticDirectory:
    """A directory held in memory: for tests, and for callers that load the corp's org once."""

    user_ids: Collection[str]
    user_managers: Mapping[str, str] = field(default_factory=dict)
    user_departments: Mapping[str, int] = field(default_factory=dict)
    department_parents: Mapping[int, int | None] = field(default_factory=dict)
    department_heads: Mapping[int, Sequence[str]] = field(default_factory=dict)
    role_users: Mapping[int, Sequence[str]] = field(default_factory=dict)
    admin_ids: Sequence[str] = ()

    def user_exists(self, user_id: str) -> bool:
        """Whether the user is known."""
        return user_id in self.user_ids

    def manager_of(self, user_id: str) -> str | None:
        """The user's direct manager."""
        return self.user_managers.get(user_id)

    def main_department(self, user_id: str) -> int | None:
        """The user's main department."""
        return self.user_departments.get(user_id)

    def parent_department(self, dept_id: int) -> int | None:
        """The parent department."""
        return self.department_parents.get(dept_id)

    def department_managers(self, dept_id: int) -> Sequence[str]:
        """The department's heads."""
        return self.department_heads.get(dept_id, ())

    def role_members(self, role_id: int) -> Sequence[str]:
        """The role's members."""
        return self.role_users.get(role_id, ())

    def app_admins(self) -> Sequence[str]:
        """The app administrators."""
        return self.admin_ids


# ---------------------------------------------------------------------------------------------- state


@dataclass(slots=True)
class Task:
    """One person's turn at an approver node."""

    task_id: int
    node_id: str
    branch_id: int
    seat: int
    user_id: str
    status: str = RUNNING
    result: str | None = None

    @property
    def is_open(self) -> bool:
        """Running, or paused while signers added before its assignee decide."""
        return self.status in OPEN_TASK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.task_id,
            "node": self.node_id,
            "branch": self.branch_id,
            "seat": self.seat,
            "user": self.user_id,
            "status": self.status,
            "result": self.result,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Task:
        """Inverse of :meth:`to_dict`."""
        return cls(raw["id"], raw["node"], raw["branch"], raw["seat"], raw["user"], raw["status"], raw["result"])


@dataclass(slots=True)
class Seat:
    """A resolved approver's place at a node: the chain of people who decide it in turn, and its outcome."""

    chain: list[str]
    at: int = 0
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"chain": list(self.chain), "at": self.at, "outcome": self.outcome}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Seat:
        """Inverse of :meth:`to_dict`."""
        return cls(list(raw["chain"]), raw["at"], raw["outcome"])


@dataclass(slots=True)
class Approval:
    """An approver node a branch waits at."""

    node_id: str
    mode: str
    seats: list[Seat]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"node": self.node_id, "mode": self.mode, "seats": [s.to_dict() for s in self.seats]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Approval:
        """Inverse of :meth:`to_dict`."""
        return cls(raw["node"], raw["mode"], [Seat.from_dict(s) for s in raw["seats"]])


@dataclass(slots=True)
class Branch:
    """The main flow (no parent) or one branch of a parallel node.

    It waits at ``node_id``: an approver node (``approval`` set) or a parallel node whose branches run
    (``approval`` None). ``history`` lists the approver nodes it passed, the targets a return may pick.
    """

    branch_id: int
    parent_id: int | None
    node_id: str | None = None
    approval: Approval | None = None
    history: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.branch_id,
            "parent": self.parent_id,
            "node": self.node_id,
            "approval": self.approval.to_dict() if self.approval is not None else None,
            "history": list(self.history),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Branch:
        """Inverse of :meth:`to_dict`."""
        approval = Approval.from_dict(raw["approval"]) if raw["approval"] is not None else None
        return cls(raw["id"], raw["parent"], raw["node"], approval, list(raw["history"]))


@dataclass(slots=True)
class InstanceState:
    """Everything the engine knows about one process instance; round-trips through JSON.

    ``status`` is running, completed (``result`` agree or disagree), terminated or error. ``acted`` turns true
    when an approver first acts (withdrawal is allowed until then). ``route_data`` holds the form values route
    conditions read; ``assignees`` the people each approver and CC node resolved to at start; ``admins`` the
    app administrators at start (the fallback for nodes nobody resolves to). ``tasks`` keeps every task the
    instance ever had, open or closed. ``flow`` is set when the instance runs a flow of its own instead of its
    form's (approvers and CCs given at start; the bundle form of its nodes, ``zida.core.workflow.own_flow``).
    """

    process_code: str
    definition_version: int
    originator: str
    status: str = RUNNING
    result: str | None = None
    acted: bool = False
    route_data: dict[str, Any] = field(default_factory=dict)
    assignees: dict[str, list[str]] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    next_task_id: int = 1
    next_branch_id: int = 0
    flow: list[dict[str, Any]] | None = None

    def task(self, task_id: int) -> Task | None:
        """The task with this id."""
        return next((t for t in self.tasks if t.task_id == task_id), None)

    def branch(self, branch_id: int) -> Branch:
        """The live branch with this id."""
        return next(b for b in self.branches if b.branch_id == branch_id)

    def lineage(self, branch: Branch) -> list[Branch]:
        """The branch, its parent, … up to the main flow."""
        out = [branch]
        while out[-1].parent_id is not None:
            out.append(self.branch(out[-1].parent_id))
        return out

    def return_targets(self, task_id: int) -> list[str]:
        """Where a return (退回) from an open task may send the flow besides the submitter: the approver nodes its
        branch and the branches above it passed, oldest first; the last is where a return without a target goes.
        Empty for a task that is not open."""
        task = self.task(task_id)
        if task is None or not task.is_open:
            return []
        out: list[str] = []
        for b in reversed(self.lineage(self.branch(task.branch_id))):
            out.extend(n for n in b.history if n not in out)
        return out

    def open_tasks(self) -> list[Task]:
        """Tasks still waiting: running, or paused behind signers added before them."""
        return [t for t in self.tasks if t.is_open]

    def current_node_ids(self) -> list[str]:
        """The approver nodes the instance waits at."""
        return [b.approval.node_id for b in self.branches if b.approval is not None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see :meth:`to_json`); ``flow`` only when the instance has its own."""
        out: dict[str, Any] = {
            "schema": STATE_SCHEMA,
            "process_code": self.process_code,
            "definition_version": self.definition_version,
            "originator": self.originator,
            "status": self.status,
            "result": self.result,
            "acted": self.acted,
            "route_data": self.route_data,
            "assignees": {k: list(v) for k, v in self.assignees.items()},
            "admins": list(self.admins),
            "branches": [b.to_dict() for b in self.branches],
            "tasks": [t.to_dict() for t in self.tasks],
            "next_task_id": self.next_task_id,
            "next_branch_id": self.next_branch_id,
        }
        if self.flow is not None:
            out["flow"] = self.flow
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> InstanceState:
        """Inverse of :meth:`to_dict`."""
        if raw.get("schema") != STATE_SCHEMA:
            raise ValueError(f"unknown workflow state schema {raw.get('schema')!r}")
        return cls(
            process_code=raw["process_code"],
            definition_version=raw["definition_version"],
            originator=raw["originator"],
            status=raw["status"],
            result=raw["result"],
            acted=raw["acted"],
            route_data=dict(raw["route_data"]),
            assignees={k: list(v) for k, v in raw["assignees"].items()},
            admins=list(raw["admins"]),
            branches=[Branch.from_dict(b) for b in raw["branches"]],
            tasks=[Task.from_dict(t) for t in raw["tasks"]],
            next_task_id=raw["next_task_id"],
            next_branch_id=raw["next_branch_id"],
            flow=raw.get("flow"),
        )

    def to_json(self) -> str:
        """The state as JSON text."""
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> InstanceState:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(orjson.loads(text))

    def copy(self) -> InstanceState:
        """A deep copy."""
        return self.from_json(self.to_json())


# -------------------------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class TaskCreated:
    """A task now waits for ``user_id`` at ``node_id``."""

    task_id: int
    node_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class TaskPaused:
    """The task waits for signers added before its assignee."""

    task_id: int
    user_id: str


@dataclass(frozen=True, slots=True)
class TaskResumed:
    """The signers added before the assignee agreed; the task runs again."""

    task_id: int
    user_id: str


@dataclass(frozen=True, slots=True)
class TaskCompleted:
    """The assignee (or someone on their behalf) acted: ``result`` is agree, disagree, redirect or return."""

    task_id: int
    user_id: str
    result: str


@dataclass(frozen=True, slots=True)
class TaskCancelled:
    """The task closed without its assignee acting: ``status`` is cancelled or terminated."""

    task_id: int
    user_id: str
    status: str


@dataclass(frozen=True, slots=True)
class TaskUrged:
    """Remind the assignee of a running task (催办)."""

    task_id: int
    user_id: str
    actor: str


@dataclass(frozen=True, slots=True)
class CcSent:
    """The flow passed a CC node: notify these users (抄送)."""

    node_id: str
    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InstanceFinished:
    """The instance ended: completed (result agree/disagree), terminated or error (no result)."""

    status: str
    result: str | None


@dataclass(frozen=True, slots=True)
class OperationRecorded:
    """A row of the instance's operation history; ``actor`` None means the engine itself (skip, CC, finish)."""

    kind: str
    actor: str | None = None
    node_id: str | None = None
    task_id: int | None = None
    result: str | None = None
    remark: str = ""
    user_ids: tuple[str, ...] = ()
    target_node_id: str | None = None
    on_behalf: bool = False


@dataclass(frozen=True, slots=True)
class EventEmitted:
    """A domain event of the step, in order: ``topic`` is ``process.started`` / ``process.finished`` /
    ``process.terminated`` (``user_id``: the originator) or ``task.created`` / ``task.finished`` / ``task.cancelled``
    (``user_id``: the task's assignee); ``result`` (agree, disagree, redirect, return) and ``remark`` where the
    instance or task finished with one. The persistence layer adds the instance's facts and the times."""

    topic: str
    user_id: str
    task_id: int | None = None
    result: str | None = None
    remark: str | None = None


Effect = (
    TaskCreated
    | TaskPaused
    | TaskResumed
    | TaskCompleted
    | TaskCancelled
    | TaskUrged
    | CcSent
    | InstanceFinished
    | OperationRecorded
    | EventEmitted
)


# -------------------------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Agree:
    """Approve a task; ``on_behalf`` when the caller has checked that ``actor`` may act for the assignee."""

    task_id: int
    actor: str
    remark: str = ""
    on_behalf: bool = False


@dataclass(frozen=True, slots=True)
class Disagree:
    """Refuse a task: the node is refused (the instance ends ``disagree`` unless the node says otherwise)."""

    task_id: int
    actor: str
    remark: str = ""
    on_behalf: bool = False


@dataclass(frozen=True, slots=True)
class Redirect:
    """Transfer a task to another user (转交)."""

    task_id: int
    actor: str
    to_user: str
    remark: str = ""
    on_behalf: bool = False


@dataclass(frozen=True, slots=True)
class Return:
    """Send the flow back to an earlier approver node (退回); the latest one when ``to_node`` is None."""

    task_id: int
    actor: str
    to_node: str | None = None
    remark: str = ""
    on_behalf: bool = False


@dataclass(frozen=True, slots=True)
class AddSigner:
    """Add signers (加签) who decide before the assignee (``before``) or after the assignee agrees (``after``)."""

    task_id: int
    actor: str
    user_ids: tuple[str, ...]
    position: str = "before"
    remark: str = ""
    on_behalf: bool = False


@dataclass(frozen=True, slots=True)
class Terminate:
    """End the instance now (终止); open tasks are terminated."""

    actor: str
    remark: str = ""


@dataclass(frozen=True, slots=True)
class Withdraw:
    """The originator takes the instance back (撤回), allowed only before any approver acted."""

    actor: str
    remark: str = ""


@dataclass(frozen=True, slots=True)
class Urge:
    """Remind the assignees of running tasks (催办): one task, or all when ``task_id`` is None."""

    actor: str
    task_id: int | None = None
    remark: str = ""


Action = Agree | Disagree | Redirect | Return | AddSigner | Terminate | Withdraw | Urge


# ---------------------------------------------------------------------------------------- resolution


def _manager(originator: str, level: int, directory: Directory) -> list[str]:
    user, seen = originator, {originator}
    for _ in range(level):
        manager = directory.manager_of(user)
        if manager is None or manager in seen:
            return []
        seen.add(manager)
        user = manager
    return [user]


def _department_head(originator: str, level: int, department_id: int | None, directory: Directory) -> list[str]:
    dept = department_id if department_id is not None else directory.main_department(originator)
    chain: list[int] = []
    while dept is not None and dept not in chain and len(chain) < _MAX_DEPARTMENT_DEPTH:
        chain.append(dept)
        dept = directory.parent_department(dept)
    # An originator who heads their own department is approved by the head above, not by themself.
    while chain and originator in directory.department_managers(chain[0]):
        chain.pop(0)
    return list(directory.department_managers(chain[level - 1])) if len(chain) >= level else []


def _field_users(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _resolve(
    who: Who,
    node_id: str,
    *,
    originator: str,
    department_id: int | None,
    form_data: Mapping[str, Any],
    chosen: Mapping[str, list[str]],
    directory: Directory,
) -> list[str]:
    candidates: Sequence[str]
    if isinstance(who, FixedUsers):
        candidates = who.user_ids
    elif isinstance(who, Manager):
        candidates = _manager(originator, who.level, directory)
    elif isinstance(who, DepartmentHead):
        candidates = _department_head(originator, who.level, department_id, directory)
    elif isinstance(who, RoleMembers):
        candidates = directory.role_members(who.role_id)
    elif isinstance(who, FieldUsers):
        candidates = _field_users(form_data.get(who.field_id))
    elif isinstance(who, OriginatorChoice):
        candidates = chosen.get(node_id, [])
    else:
        assert isinstance(who, Originator)
        candidates = [originator]
    return [u for u in dict.fromkeys(candidates) if directory.user_exists(u)]


def _chosen_approvers(
    definition: ProcessDefinition, raw: Mapping[str, Sequence[str]], directory: Directory
) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    for node_id, users in raw.items():
        node = definition.node(node_id) if definition.has_node(node_id) else None
        if not isinstance(node, ApproverNode | CcNode) or not isinstance(node.who, OriginatorChoice):
            raise InvalidArgument(
                f"node {node_id} does not let the originator choose its approvers",
                reason="process.invalid_choice",
                node=node_id,
            )
        if isinstance(users, str) or not all(isinstance(u, str) for u in users):
            raise InvalidArgument(
                f"node {node_id}: expects a list of userIds", reason="process.invalid_choice", node=node_id
            )
        for user in users:
            if not directory.user_exists(user):
                raise InvalidArgument(
                    f"node {node_id}: user {user} does not exist",
                    reason="process.unknown_user",
                    node=node_id,
                    user=user,
                )
        chosen[node_id] = list(dict.fromkeys(users))
    return chosen


def _chosen_so_far(definition: ProcessDefinition, state: InstanceState) -> dict[str, list[str]]:
    """The people the originator chose at start for originator-choice nodes (kept in the assignees)."""
    return {
        node.node_id: list(state.assignees.get(node.node_id, ()))
        for node in definition.walk()
        if isinstance(node, ApproverNode | CcNode) and isinstance(node.who, OriginatorChoice)
    }


def _route_data(definition: ProcessDefinition, form_data: Mapping[str, Any]) -> dict[str, Any]:
    """The values route conditions read, copied through JSON so the state owns them."""
    picked = {k: form_data[k] for k in sorted(definition.condition_fields) if k in form_data}
    data: dict[str, Any] = orjson.loads(orjson.dumps(picked))
    return data


def _choose(route: RouteNode, data: Mapping[str, Any], definition: ProcessDefinition) -> RouteBranch | None:
    for branch in route.branches:
        if branch.when is not None and matches(branch.when, data, definition.fields):
            return branch
    return next((b for b in route.branches if b.is_default), None)


def _forecast(nodes: Sequence[Node], data: Mapping[str, Any], definition: ProcessDefinition) -> Iterator[ApproverNode]:
    """The approver nodes the flow will reach if the values stay as they are."""
    for node in nodes:
        if isinstance(node, ApproverNode):
            yield node
        elif isinstance(node, RouteNode):
            chosen = _choose(node, data, definition)
            if chosen is not None:
                yield from _forecast(chosen.nodes, data, definition)
        elif isinstance(node, ParallelNode):
            for branch_nodes in node.branches:
                yield from _forecast(branch_nodes, data, definition)


def forecast(definition: ProcessDefinition, form_data: Mapping[str, Any]) -> list[ApproverNode]:
    """The approver nodes a new instance with these values would reach, in order (routes taken as they stand)."""
    return list(_forecast(definition.nodes, _route_data(definition, form_data), definition))


# ----------------------------------------------------------------------------------------------- step


class _Step:
    """One call of ``start`` or ``act``: mutates its own copy of the state and collects effects."""

    def __init__(
        self,
        definition: ProcessDefinition,
        state: InstanceState,
        new_task_id: Callable[[], int] | None,
        public_task_id: Callable[[int], int] | None = None,
    ) -> None:
        self.definition = definition
        self.state = state
        self.effects: list[Effect] = []
        self.new_task_id = new_task_id
        self.public_task_id = public_task_id
        # Set by ``act`` when it has a directory: resolves every node's people again (a resubmission).
        self.reassign: Callable[[], None] | None = None

    def public(self, task_id: int) -> int:
        """The id callers know a task by (error messages name it, not the engine's number)."""
        return self.public_task_id(task_id) if self.public_task_id is not None else task_id

    # ------------------------------------------------------------------------------ records, events

    def record(self, kind: str, **fields: Any) -> None:
        self.effects.append(OperationRecorded(kind, **fields))

    def instance_event(self, topic: str, result: str | None = None) -> None:
        self.effects.append(EventEmitted(topic, self.state.originator, result=result))

    def task_event(self, task: Task, topic: str, result: str | None = None, remark: str | None = None) -> None:
        self.effects.append(
            EventEmitted(topic, task.user_id, task.task_id, result, None if result is None else remark or "")
        )

    # ---------------------------------------------------------------------------------------- tasks

    def allocate_task_id(self) -> int:
        if self.new_task_id is not None:
            return self.new_task_id()
        task_id = self.state.next_task_id
        self.state.next_task_id += 1
        return task_id

    def create_task(self, branch: Branch, seat: int, user_id: str) -> None:
        assert branch.approval is not None
        task = Task(self.allocate_task_id(), branch.approval.node_id, branch.branch_id, seat, user_id)
        self.state.tasks.append(task)
        self.effects.append(TaskCreated(task.task_id, task.node_id, user_id))
        self.task_event(task, "task.created")

    def complete_task(self, task: Task, result: str, remark: str) -> None:
        task.status, task.result = COMPLETED, result
        self.effects.append(TaskCompleted(task.task_id, task.user_id, result))
        self.task_event(task, "task.finished", result, remark)

    def cancel_task(self, task: Task, status: str = CANCELLED) -> None:
        task.status = status
        self.effects.append(TaskCancelled(task.task_id, task.user_id, status))
        self.task_event(task, "task.cancelled")

    def open_tasks_of(self, branch: Branch, seat: int | None = None) -> list[Task]:
        return [
            t
            for t in self.state.tasks
            if t.is_open and t.branch_id == branch.branch_id and (seat is None or t.seat == seat)
        ]

    def holds_open_task(self, branch: Branch, user_id: str) -> bool:
        return any(t.user_id == user_id for t in self.open_tasks_of(branch))

    # ----------------------------------------------------------------------------------- branches

    def lineage(self, branch: Branch) -> list[Branch]:
        """The branch, its parent, … up to the main flow."""
        return self.state.lineage(branch)

    def subtree(self, branch: Branch) -> list[Branch]:
        """The branch and every branch forked below it."""
        return [b for b in self.state.branches if branch in self.lineage(b)]

    def previous_approver(self, branch: Branch) -> str | None:
        return next((b.history[-1] for b in self.lineage(branch) if b.history), None)

    # --------------------------------------------------------------------------------- navigation

    def enter(self, branch: Branch, node: Node) -> None:
        if self.state.status != RUNNING:
            return
        if isinstance(node, ApproverNode):
            self.open_approval(branch, node)
        elif isinstance(node, CcNode):
            users = tuple(self.state.assignees.get(node.node_id, ()))
            if users:
                self.record("cc", node_id=node.node_id, user_ids=users)
                self.effects.append(CcSent(node.node_id, users))
            self.continue_after(branch, node.node_id)
        elif isinstance(node, RouteNode):
            chosen = _choose(node, self.state.route_data, self.definition)
            if chosen is not None and chosen.nodes:
                self.enter(branch, chosen.nodes[0])
            else:
                self.continue_after(branch, node.node_id)
        else:
            self.fork(branch, node)

    def continue_after(self, branch: Branch, node_id: str) -> None:
        if self.state.status != RUNNING:
            return
        following = self.definition.following(node_id)
        if following is not None:
            self.enter(branch, following)
            return
        owner = self.definition.owner(node_id)
        if owner is None:
            self.finish(COMPLETED, AGREE)
        elif isinstance(owner, RouteNode):
            self.continue_after(branch, owner.node_id)
        else:
            self.branch_finished(branch)

    def fork(self, branch: Branch, node: ParallelNode) -> None:
        branch.node_id, branch.approval = node.node_id, None
        starts: list[tuple[Branch, Node]] = []
        for branch_nodes in node.branches:
            if branch_nodes:
                child = Branch(self.state.next_branch_id, branch.branch_id)
                self.state.next_branch_id += 1
                self.state.branches.append(child)
                starts.append((child, branch_nodes[0]))
        if not starts:
            self.continue_after(branch, node.node_id)
            return
        # Every child exists before any runs, so a child that finishes at once does not join early.
        for child, first in starts:
            self.enter(child, first)

    def branch_finished(self, branch: Branch) -> None:
        self.state.branches.remove(branch)
        assert branch.parent_id is not None
        parent = self.state.branch(branch.parent_id)
        if not any(b.parent_id == parent.branch_id for b in self.state.branches):
            assert parent.node_id is not None
            self.continue_after(parent, parent.node_id)

    # ---------------------------------------------------------------------------------- approvals

    def open_approval(self, branch: Branch, node: ApproverNode) -> None:
        users = list(self.state.assignees.get(node.node_id, ()))
        if not users:
            if node.empty == "skip":
                self.record("skip", node_id=node.node_id)
                self.continue_after(branch, node.node_id)
                return
            users = list(self.state.admins)
            if not users:
                # Reached only when the values changed since start and a route chose an unforeseen branch.
                self.record("error", node_id=node.node_id)
                self.finish(ERROR, None)
                return
            self.record("fallback_to_admin", node_id=node.node_id, user_ids=tuple(users))
        branch.node_id = node.node_id
        branch.approval = Approval(node.node_id, node.mode, [Seat([user]) for user in users])
        for index in range(1 if node.mode == "sequential" else len(users)):
            self.open_seat(branch, index)

    def open_seat(self, branch: Branch, index: int) -> None:
        assert branch.approval is not None
        seat = branch.approval.seats[index]
        user = seat.chain[seat.at]
        paused = next((t for t in self.open_tasks_of(branch, index) if t.status == PAUSED and t.user_id == user), None)
        if paused is not None:
            paused.status = RUNNING
            self.effects.append(TaskResumed(paused.task_id, user))
        else:
            self.create_task(branch, index, user)

    def claim(self, branch: Branch, index: int) -> None:
        """Or-sign: the first seat to decide takes the node; the other seats' tasks are cancelled."""
        assert branch.approval is not None
        if branch.approval.mode != "or":
            return
        for other, seat in enumerate(branch.approval.seats):
            if other != index and seat.outcome is None:
                seat.outcome = CANCELLED
                for task in self.open_tasks_of(branch, other):
                    self.cancel_task(task)

    def advance_seat(self, branch: Branch, index: int) -> None:
        """The person whose turn it was agreed: the next in the chain decides, or the seat agrees."""
        assert branch.approval is not None
        self.claim(branch, index)
        seat = branch.approval.seats[index]
        seat.at += 1
        if seat.at < len(seat.chain):
            self.open_seat(branch, index)
        else:
            seat.outcome = AGREE
            self.decide(branch)

    def outcome(self, branch: Branch) -> str | None:
        """The node's outcome from its seats' outcomes, or None while undecided."""
        assert branch.approval is not None
        approval = branch.approval
        outcomes = [s.outcome for s in approval.seats]
        if approval.mode == "or":
            return next((o for o in outcomes if o in (AGREE, DISAGREE)), None)
        if approval.mode in ("and", "sequential"):
            if DISAGREE in outcomes:
                return DISAGREE
            return AGREE if all(o == AGREE for o in outcomes) else None
        node = self.definition.node(approval.node_id)
        assert isinstance(node, ApproverNode)
        needed = node.pass_ratio * len(outcomes)
        agrees, undecided = outcomes.count(AGREE), outcomes.count(None)
        if agrees >= needed:
            return AGREE
        return DISAGREE if agrees + undecided < needed else None

    def decide(self, branch: Branch) -> None:
        assert branch.approval is not None
        approval = branch.approval
        outcome = self.outcome(branch)
        if outcome is None:
            if approval.mode == "sequential":
                following = next(i for i, s in enumerate(approval.seats) if s.outcome is None)
                self.open_seat(branch, following)
            return
        for seat in approval.seats:
            if seat.outcome is None:
                seat.outcome = CANCELLED
        for task in self.open_tasks_of(branch):
            self.cancel_task(task)
        node = self.definition.node(approval.node_id)
        assert isinstance(node, ApproverNode)
        if outcome == AGREE or node.on_refuse == "continue":
            branch.history.append(node.node_id)
            branch.approval = None
            self.continue_after(branch, node.node_id)
            return
        target = self.previous_approver(branch) if node.on_refuse == "return" else None
        if target is None:
            self.finish(COMPLETED, DISAGREE)
            return
        self.record("return", node_id=node.node_id, target_node_id=target)
        self.return_to(branch, target)

    def return_to(self, branch: Branch, target: str) -> None:
        """Re-enter an approver node this branch (or one it was forked from) passed; later work is undone."""
        owner = next(b for b in self.lineage(branch) if target in b.history)
        for below in self.subtree(owner):
            for task in self.open_tasks_of(below):
                self.cancel_task(task)
            if below is not owner:
                self.state.branches.remove(below)
        owner.approval = None
        del owner.history[owner.history.index(target) :]
        self.enter(owner, self.definition.node(target))

    def awaits_resubmission(self) -> bool:
        """Whether the flow was returned to the originator and waits for them to resubmit."""
        return any(b.approval is not None and b.approval.node_id == START_ACTIVITY_ID for b in self.state.branches)

    def return_to_originator(self) -> None:
        """Undo all work in flight and give the originator a task to resubmit at the start activity."""
        main = next(b for b in self.state.branches if b.parent_id is None)
        for branch in list(self.state.branches):
            for task in self.open_tasks_of(branch):
                self.cancel_task(task)
            if branch is not main:
                self.state.branches.remove(branch)
        main.history = []
        main.node_id = START_ACTIVITY_ID
        main.approval = Approval(START_ACTIVITY_ID, "or", [Seat([self.state.originator])])
        self.open_seat(main, 0)

    def resubmit(self, task: Task, branch: Branch, action: Agree) -> None:
        """The originator resubmits: the flow restarts from its first node over the record's current values."""
        if self.reassign is not None:
            self.reassign()
        self.record(
            "resubmit",
            actor=action.actor,
            node_id=START_ACTIVITY_ID,
            task_id=task.task_id,
            remark=action.remark,
            on_behalf=action.actor != task.user_id,
        )
        self.complete_task(task, AGREE, action.remark)
        branch.node_id, branch.approval, branch.history = None, None, []
        if self.definition.nodes:
            self.enter(branch, self.definition.nodes[0])
        else:
            self.finish(COMPLETED, AGREE)

    def give_up(self, task: Task, actor: str, remark: str) -> None:
        """The originator refuses to resubmit: the instance is withdrawn (terminated)."""
        self.record(
            "withdraw",
            actor=actor,
            node_id=START_ACTIVITY_ID,
            task_id=task.task_id,
            remark=remark,
            on_behalf=actor != task.user_id,
        )
        self.complete_task(task, DISAGREE, remark)
        self.finish(TERMINATED, None)

    def finish(self, status: str, result: str | None) -> None:
        for task in self.state.open_tasks():
            self.cancel_task(task, CANCELLED if status == COMPLETED else TERMINATED)
        self.state.status, self.state.result = status, result
        self.state.branches = []
        if status == COMPLETED:
            self.record("finish", result=result)
        self.effects.append(InstanceFinished(status, result))
        if status == COMPLETED:
            self.instance_event("process.finished", result)
        else:
            self.instance_event("process.terminated")

    # ------------------------------------------------------------------------------------ actions

    def acting_task(self, task_id: int, actor: str, on_behalf: bool) -> tuple[Task, Branch]:
        task = self.state.task(task_id)
        public = self.public(task_id)
        if task is None:
            raise NotFound(
                f"task {public} does not exist in this process instance", reason="task.not_found", task_id=public
            )
        if task.status != RUNNING:
            raise Conflict(f"task {public} is {task.status}, not running", reason="task.not_running", task_id=public)
        if actor != task.user_id and not on_behalf:
            raise PermissionDenied(
                f"task {public} is assigned to {task.user_id}, not {actor}",
                reason="task.not_assignee",
                task_id=public,
            )
        return task, self.state.branch(task.branch_id)

    def not_on_resubmission(self, task: Task, what: str) -> None:
        if task.node_id == START_ACTIVITY_ID:
            raise Conflict(
                f"task {self.public(task.task_id)} is the originator's resubmission: it cannot be {what}",
                reason="task.resubmission",
                task_id=self.public(task.task_id),
            )

    def has_turn(self, branch: Branch, user_id: str, *, besides: Task | None = None) -> bool:
        """Whether ``user_id`` decides, decided or will decide at the node ``branch`` waits at.

        ``besides`` is a task whose turn is being handed on: its own place in its seat does not count.
        """
        assert branch.approval is not None
        for index, seat in enumerate(branch.approval.seats):
            for position, user in enumerate(seat.chain):
                if besides is not None and index == besides.seat and position == seat.at:
                    continue
                if user == user_id and seat.outcome != CANCELLED:
                    return True
        return self.holds_open_task(branch, user_id)

    def agree(self, action: Agree) -> None:
        task, branch = self.acting_task(action.task_id, action.actor, action.on_behalf)
        if task.node_id == START_ACTIVITY_ID:
            self.resubmit(task, branch, action)
            return
        self.state.acted = True
        self.record(
            "agree",
            actor=action.actor,
            node_id=task.node_id,
            task_id=task.task_id,
            result=AGREE,
            remark=action.remark,
            on_behalf=action.actor != task.user_id,
        )
        self.complete_task(task, AGREE, action.remark)
        self.advance_seat(branch, task.seat)

    def disagree(self, action: Disagree) -> None:
        task, branch = self.acting_task(action.task_id, action.actor, action.on_behalf)
        if task.node_id == START_ACTIVITY_ID:
            self.give_up(task, action.actor, action.remark)
            return
        self.state.acted = True
        self.record(
            "disagree",
            actor=action.actor,
            node_id=task.node_id,
            task_id=task.task_id,
            result=DISAGREE,
            remark=action.remark,
            on_behalf=action.actor != task.user_id,
        )
        self.complete_task(task, DISAGREE, action.remark)
        assert branch.approval is not None
        branch.approval.seats[task.seat].outcome = DISAGREE
        for waiting in self.open_tasks_of(branch, task.seat):
            self.cancel_task(waiting)
        self.claim(branch, task.seat)
        self.decide(branch)

    def redirect(self, action: Redirect) -> None:
        task, branch = self.acting_task(action.task_id, action.actor, action.on_behalf)
        self.not_on_resubmission(task, "transferred")
        if action.to_user == task.user_id:
            raise InvalidArgument(
                f"task {self.public(task.task_id)} is already assigned to {action.to_user}",
                reason="task.redirect_to_assignee",
            )
        if self.has_turn(branch, action.to_user, besides=task):
            raise Conflict(
                f"{action.to_user} already has a turn at node {task.node_id}: a transfer would let them decide twice",
                reason="task.already_assignee",
                user=action.to_user,
            )
        self.state.acted = True
        self.record(
            "redirect",
            actor=action.actor,
            node_id=task.node_id,
            task_id=task.task_id,
            remark=action.remark,
            user_ids=(action.to_user,),
            on_behalf=action.actor != task.user_id,
        )
        self.complete_task(task, REDIRECT, action.remark)
        assert branch.approval is not None
        seat = branch.approval.seats[task.seat]
        seat.chain[seat.at] = action.to_user
        self.create_task(branch, task.seat, action.to_user)

    def add_signer(self, action: AddSigner) -> None:
        task, branch = self.acting_task(action.task_id, action.actor, action.on_behalf)
        self.not_on_resubmission(task, "given signers")
        if action.position not in ("before", "after"):
            raise InvalidArgument("position must be before or after", reason="task.invalid_position")
        users = tuple(dict.fromkeys(action.user_ids))
        if not users:
            raise InvalidArgument("name at least one signer to add", reason="task.no_signer")
        for user in users:
            if user == task.user_id or self.has_turn(branch, user):
                raise Conflict(
                    f"{user} already has a turn at node {task.node_id}: as a signer they would decide twice",
                    reason="task.already_assignee",
                    user=user,
                )
        self.state.acted = True
        assert branch.approval is not None
        seat = branch.approval.seats[task.seat]
        self.record(
            f"add_signer_{action.position}",
            actor=action.actor,
            node_id=task.node_id,
            task_id=task.task_id,
            result=AGREE if action.position == "after" else None,
            remark=action.remark,
            user_ids=users,
            on_behalf=action.actor != task.user_id,
        )
        if action.position == "before":
            task.status = PAUSED
            self.effects.append(TaskPaused(task.task_id, task.user_id))
            seat.chain[seat.at : seat.at] = users
            self.open_seat(branch, task.seat)
        else:
            self.complete_task(task, AGREE, action.remark)
            seat.chain[seat.at + 1 : seat.at + 1] = users
            self.advance_seat(branch, task.seat)

    def return_(self, action: Return) -> None:
        task, branch = self.acting_task(action.task_id, action.actor, action.on_behalf)
        self.not_on_resubmission(task, "returned")
        to_originator = action.to_node == START_ACTIVITY_ID
        target = START_ACTIVITY_ID if to_originator else self.return_target(action.to_node, branch)
        self.state.acted = True
        self.record(
            "return",
            actor=action.actor,
            node_id=task.node_id,
            task_id=task.task_id,
            remark=action.remark,
            target_node_id=target,
            on_behalf=action.actor != task.user_id,
        )
        self.complete_task(task, RETURN, action.remark)
        if to_originator:
            self.return_to_originator()
        else:
            self.return_to(branch, target)

    def return_target(self, to_node: str | None, branch: Branch) -> str:
        """The approver node a return goes back to: the one asked, else the previous approver of the branch."""
        target = to_node if to_node is not None else self.previous_approver(branch)
        if target is None:
            raise InvalidArgument("there is no earlier approver node to return to", reason="task.no_return_target")
        if not any(target in b.history for b in self.lineage(branch)):
            raise InvalidArgument(
                f"{target} is not an approver node this instance passed on the way here",
                reason="task.invalid_return_target",
                node=target,
            )
        return target

    def terminate(self, action: Terminate) -> None:
        self.record("terminate", actor=action.actor, remark=action.remark)
        self.finish(TERMINATED, None)

    def withdraw(self, action: Withdraw) -> None:
        if action.actor != self.state.originator:
            raise PermissionDenied("only the originator may withdraw the instance", reason="instance.not_originator")
        if self.state.acted and not self.awaits_resubmission():
            raise Conflict(
                "an approver has already acted; the instance can no longer be withdrawn",
                reason="instance.already_acted",
            )
        self.record("withdraw", actor=action.actor, remark=action.remark)
        self.finish(TERMINATED, None)

    def urge(self, action: Urge) -> None:
        running = [t for t in self.state.tasks if t.status == RUNNING]
        if action.task_id is not None:
            task = self.state.task(action.task_id)
            if task is None:
                raise NotFound(
                    f"task {self.public(action.task_id)} does not exist in this process instance",
                    reason="task.not_found",
                    task_id=self.public(action.task_id),
                )
            if task.status != RUNNING:
                raise Conflict(
                    f"task {self.public(action.task_id)} is {task.status}, not running",
                    reason="task.not_running",
                    task_id=self.public(action.task_id),
                )
            running = [task]
        self.record(
            "urge", actor=action.actor, remark=action.remark, user_ids=tuple(dict.fromkeys(t.user_id for t in running))
        )
        for task in running:
            self.effects.append(TaskUrged(task.task_id, task.user_id, action.actor))


# ------------------------------------------------------------------------------------------ start, act


def _assign(
    definition: ProcessDefinition,
    state: InstanceState,
    form_data: Mapping[str, Any],
    chosen: Mapping[str, list[str]],
    directory: Directory,
    department_id: int | None,
) -> None:
    """Resolve every approver and CC node's people into ``state``; a node on the way that resolves to nobody
    and may not be skipped fails it (``process.no_approver``) before anything changes."""
    assignees = {
        node.node_id: _resolve(
            node.who,
            node.node_id,
            originator=state.originator,
            department_id=department_id,
            form_data=form_data,
            chosen=chosen,
            directory=directory,
        )
        for node in definition.walk()
        if isinstance(node, ApproverNode | CcNode)
    }
    admins = [u for u in dict.fromkeys(directory.app_admins()) if directory.user_exists(u)]
    for node in _forecast(definition.nodes, state.route_data, definition):
        if not assignees[node.node_id] and (node.empty == "fail" or (node.empty == "admin" and not admins)):
            raise InvalidArgument(
                f"nobody can approve node {node.name} ({node.node_id}): its approvers resolve to no user"
                + (" and the app has no administrator" if node.empty == "admin" else ""),
                reason="process.no_approver",
                node=node.node_id,
            )
    state.assignees, state.admins = assignees, admins


def start(
    definition: ProcessDefinition,
    *,
    originator: str,
    form_data: Mapping[str, Any],
    directory: Directory,
    chosen_approvers: Mapping[str, Sequence[str]] | None = None,
    department_id: int | None = None,
    new_task_id: Callable[[], int] | None = None,
) -> tuple[InstanceState, list[Effect]]:
    """Start an instance: resolve every node's people, run to the first approvals; fails if a ``fail`` node is empty."""
    if not directory.user_exists(originator):
        raise InvalidArgument(f"user {originator} does not exist", reason="process.unknown_user", user=originator)
    chosen = _chosen_approvers(definition, chosen_approvers or {}, directory)
    state = InstanceState(
        process_code=definition.process_code,
        definition_version=definition.version,
        originator=originator,
        route_data=_route_data(definition, form_data),
        branches=[Branch(0, None)],
        next_branch_id=1,
    )
    _assign(definition, state, form_data, chosen, directory, department_id)
    step = _Step(definition, state, new_task_id)
    step.record("start", actor=originator)
    step.instance_event("process.started")
    if definition.nodes:
        step.enter(state.branches[0], definition.nodes[0])
    else:
        step.finish(COMPLETED, AGREE)
    return state, step.effects


def act(
    definition: ProcessDefinition,
    state: InstanceState,
    action: Action,
    *,
    form_data: Mapping[str, Any] | None = None,
    new_task_id: Callable[[], int] | None = None,
    directory: Directory | None = None,
    department_id: int | None = None,
    public_task_id: Callable[[int], int] | None = None,
) -> tuple[InstanceState, list[Effect]]:
    """Apply one action to a running instance; ``form_data`` gives the record's current values for routes.

    ``directory`` (with the instance's ``department_id``) lets a resubmission resolve its approvers again;
    ``public_task_id`` maps engine task numbers to the ids error messages name.
    """
    if definition.process_code != state.process_code or definition.version != state.definition_version:
        raise Conflict(
            f"the instance runs {state.process_code} version {state.definition_version}, not "
            f"{definition.process_code} version {definition.version}",
            reason="process.version_mismatch",
        )
    if state.status != RUNNING:
        raise Conflict(f"the process instance has already finished ({state.status})", reason="instance.finished")
    state = state.copy()
    if form_data is not None:
        state.route_data = _route_data(definition, form_data)
    step = _Step(definition, state, new_task_id, public_task_id)
    if directory is not None:
        org = directory
        step.reassign = lambda: _assign(
            definition, state, form_data or {}, _chosen_so_far(definition, state), org, department_id
        )
    if isinstance(action, Agree):
        step.agree(action)
    elif isinstance(action, Disagree):
        step.disagree(action)
    elif isinstance(action, Redirect):
        step.redirect(action)
    elif isinstance(action, Return):
        step.return_(action)
    elif isinstance(action, AddSigner):
        step.add_signer(action)
    elif isinstance(action, Terminate):
        step.terminate(action)
    elif isinstance(action, Withdraw):
        step.withdraw(action)
    else:
        step.urge(action)
    return state, step.effects


# ----------------------------------------------------------------------------------------- invariants


def assert_invariants(state: InstanceState, definition: ProcessDefinition | None = None) -> None:
    """Raise AssertionError naming every rule ``state`` breaks (call it after every step, in every test)."""
    problems = list(_problems(state, definition))
    if problems:
        raise AssertionError("workflow state broken: " + "; ".join(problems))


def _problems(state: InstanceState, definition: ProcessDefinition | None) -> Iterator[str]:
    if state.status not in INSTANCE_STATUSES:
        yield f"unknown instance status {state.status!r}"
    if (state.status == COMPLETED) != (state.result in (AGREE, DISAGREE)):
        yield f"status {state.status} with result {state.result!r}"
    ids = [t.task_id for t in state.tasks]
    if len(set(ids)) != len(ids):
        yield "task ids are not unique"
    for task in state.tasks:
        if task.status not in TASK_STATUSES:
            yield f"task {task.task_id} has unknown status {task.status!r}"
        if (task.status == COMPLETED) != (task.result in TASK_RESULTS):
            yield f"task {task.task_id} is {task.status} with result {task.result!r}"
        if (
            definition is not None
            and task.node_id != START_ACTIVITY_ID
            and not (definition.has_node(task.node_id) and isinstance(definition.node(task.node_id), ApproverNode))
        ):
            yield f"task {task.task_id} belongs to {task.node_id}, not an approver node of the definition"
    if definition is not None and (definition.process_code, definition.version) != (
        state.process_code,
        state.definition_version,
    ):
        yield "state and definition differ in process code or version"
    open_tasks = state.open_tasks()
    if state.status != RUNNING:
        if open_tasks:
            yield f"{state.status} instance has open tasks {[t.task_id for t in open_tasks]}"
        if state.branches:
            yield f"{state.status} instance still has branches"
        return
    yield from _branch_problems(state, definition)
    by_id = {b.branch_id: b for b in state.branches}
    for task in open_tasks:
        owner = by_id.get(task.branch_id)
        if owner is None or owner.approval is None or owner.approval.node_id != task.node_id:
            yield f"open task {task.task_id} belongs to no current node"
        elif not 0 <= task.seat < len(owner.approval.seats) or owner.approval.seats[task.seat].outcome is not None:
            yield f"open task {task.task_id} belongs to no undecided seat"
    for branch in state.branches:
        users = [t.user_id for t in open_tasks if t.branch_id == branch.branch_id]
        if len(set(users)) != len(users):
            yield f"a user holds two open tasks at node {branch.node_id}"
    if not any(t.status == RUNNING for t in state.tasks):
        yield "running instance waits for nobody"


def _branch_problems(state: InstanceState, definition: ProcessDefinition | None) -> Iterator[str]:
    by_id = {b.branch_id: b for b in state.branches}
    if len(by_id) != len(state.branches):
        yield "branch ids are not unique"
    if sum(1 for b in state.branches if b.parent_id is None) != 1:
        yield "running instance needs exactly one main branch"
    for branch in state.branches:
        children = [b for b in state.branches if b.parent_id == branch.branch_id]
        if branch.parent_id is not None and branch.parent_id not in by_id:
            yield f"branch {branch.branch_id} has no parent branch {branch.parent_id}"
        node = (
            definition.node(branch.node_id)
            if definition is not None and branch.node_id is not None and definition.has_node(branch.node_id)
            else None
        )
        if branch.node_id is None:
            yield f"branch {branch.branch_id} waits nowhere"
        elif branch.approval is None:
            if not children:
                yield f"branch {branch.branch_id} joins at {branch.node_id} with no branch running"
            if definition is not None and not isinstance(node, ParallelNode):
                yield f"branch {branch.branch_id} joins at {branch.node_id}, not a parallel node"
        else:
            if children:
                yield f"branch {branch.branch_id} approves at {branch.node_id} and has branches running"
            if branch.approval.node_id != branch.node_id:
                yield f"branch {branch.branch_id} is at {branch.node_id} but approves {branch.approval.node_id}"
            if branch.node_id == START_ACTIVITY_ID:
                chains = [s.chain for s in branch.approval.seats]
                if branch.parent_id is not None or len(state.branches) != 1:
                    yield "an instance waiting for its originator to resubmit has other branches"
                if branch.approval.mode != "or" or chains != [[state.originator]]:
                    yield f"the resubmission waits for {chains}, not for the originator {state.originator}"
                yield from _seat_problems(state, branch)
                continue
            if definition is not None and not (isinstance(node, ApproverNode) and node.mode == branch.approval.mode):
                yield f"branch {branch.branch_id} approves at {branch.node_id}, not an approver node in that mode"
            yield from _seat_problems(state, branch)
        if definition is not None:
            for passed in branch.history:
                if not definition.has_node(passed) or not isinstance(definition.node(passed), ApproverNode):
                    yield f"branch {branch.branch_id} passed {passed}, not an approver node"


def _seat_problems(state: InstanceState, branch: Branch) -> Iterator[str]:
    assert branch.approval is not None
    approval = branch.approval
    outcomes = [s.outcome for s in approval.seats]
    if not approval.seats:
        yield f"node {approval.node_id} has no seats"
        return
    if approval.mode == "or" and (AGREE in outcomes or DISAGREE in outcomes):
        yield f"or-sign node {approval.node_id} is decided but still waits"
    if approval.mode in ("and", "sequential") and (DISAGREE in outcomes or all(o == AGREE for o in outcomes)):
        yield f"node {approval.node_id} is decided but still waits"
    active = next((i for i, o in enumerate(outcomes) if o is None), None)
    for index, seat in enumerate(approval.seats):
        tasks = [t for t in state.tasks if t.is_open and t.branch_id == branch.branch_id and t.seat == index]
        running = [t for t in tasks if t.status == RUNNING]
        opened = seat.outcome is None and (approval.mode != "sequential" or index == active)
        if not opened:
            if tasks:
                yield f"seat {index} of {approval.node_id} is not open but has open tasks"
            continue
        if not 0 <= seat.at < len(seat.chain):
            yield f"seat {index} of {approval.node_id} points past its chain"
            continue
        if len(running) != 1 or running[0].user_id != seat.chain[seat.at]:
            yield f"seat {index} of {approval.node_id} should have one running task for {seat.chain[seat.at]}"
        waiting = seat.chain[seat.at + 1 :]
        for task in tasks:
            if task.status == PAUSED and task.user_id not in waiting:
                yield f"paused task {task.task_id} is not waiting in its seat's chain"
