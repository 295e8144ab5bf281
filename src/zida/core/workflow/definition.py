"""Process definitions: the bundle's ``process:`` block parsed and validated into the nodes the engine walks.

A definition is a list of nodes. ``approver`` nodes wait for people, ``cc`` nodes notify people and move on,
``route`` nodes take the first branch whose condition holds (else the default branch), and ``parallel`` nodes
run every branch and join when all have finished. Node ids are unique across the whole definition, so a
position in a running instance is just a node id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from zida.core.apps.models import Field
from zida.core.errors import InvalidArgument
from zida.core.records.filters import OPERATORS, And, Condition, Filter, Or
from zida.core.workflow.conditions import condition_fault

__all__ = [
    "APPROVAL_MODES",
    "EMPTY_POLICIES",
    "REFUSAL_POLICIES",
    "START_ACTIVITY_ID",
    "ApproverNode",
    "CcNode",
    "DepartmentHead",
    "FieldUsers",
    "FixedUsers",
    "Manager",
    "Node",
    "Originator",
    "OriginatorChoice",
    "ParallelNode",
    "ProcessDefinition",
    "RoleMembers",
    "RouteBranch",
    "RouteNode",
    "Who",
    "filter_to_dict",
    "parse_process",
]

APPROVAL_MODES = ("or", "and", "sequential", "vote")
EMPTY_POLICIES = ("skip", "admin", "fail")
REFUSAL_POLICIES = ("finish", "continue", "return")
# The activity id Yida gives the submission itself; no node may take it.
START_ACTIVITY_ID = "sid-restartevent"
MAX_LEVEL = 20

_NODE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_PROCESS_CODE = re.compile(r"^TPROC--[A-Za-z0-9_\-]{1,64}$")
PROCESS_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$")


# ---------------------------------------------------------------------------------------------- who


@dataclass(frozen=True, slots=True)
class FixedUsers:
    """Named users."""

    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manager:
    """The originator's manager at ``level`` (1 = direct manager, 2 = the manager's manager, …)."""

    level: int


@dataclass(frozen=True, slots=True)
class DepartmentHead:
    """The managers of the originator's department (level 1) or of its ancestor ``level - 1`` steps up."""

    level: int


@dataclass(frozen=True, slots=True)
class RoleMembers:
    """Every member of a role."""

    role_id: int


@dataclass(frozen=True, slots=True)
class FieldUsers:
    """The users picked in an EmployeeField of the form."""

    field_id: str


@dataclass(frozen=True, slots=True)
class OriginatorChoice:
    """Whoever the originator chooses at start (``processData``, keyed by node id)."""


@dataclass(frozen=True, slots=True)
class Originator:
    """The originator themself."""


Who = FixedUsers | Manager | DepartmentHead | RoleMembers | FieldUsers | OriginatorChoice | Originator


# --------------------------------------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True)
class ApproverNode:
    """People who approve: ``mode`` says how their decisions combine, ``empty`` what happens if nobody resolves."""

    node_id: str
    name: str
    who: Who
    mode: str = "or"
    ratio: float | None = None
    empty: str = "skip"
    on_refuse: str = "finish"
    name_en: str | None = None

    @property
    def pass_ratio(self) -> Fraction:
        """Share of agreeing approvers that passes a vote node, exact (``0.5`` → 1/2)."""
        return Fraction(str(self.ratio)) if self.ratio is not None else Fraction(1)


@dataclass(frozen=True, slots=True)
class CcNode:
    """People notified (抄送) when the flow passes; nobody acts."""

    node_id: str
    name: str
    who: Who
    name_en: str | None = None


@dataclass(frozen=True, slots=True)
class RouteBranch:
    """One way out of a route: taken when ``when`` holds; ``when is None`` marks the default branch."""

    nodes: tuple[Node, ...]
    when: Filter | None = None
    name: str | None = None

    @property
    def is_default(self) -> bool:
        """Whether this is the branch taken when no condition holds."""
        return self.when is None


@dataclass(frozen=True, slots=True)
class RouteNode:
    """A condition route: the first branch whose condition holds, else the default branch."""

    node_id: str
    branches: tuple[RouteBranch, ...]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ParallelNode:
    """Branches that run at the same time; the flow continues when every branch has finished."""

    node_id: str
    branches: tuple[tuple[Node, ...], ...]
    name: str | None = None


Node = ApproverNode | CcNode | RouteNode | ParallelNode


@dataclass(frozen=True, slots=True)
class _Place:
    node: Node
    owner: RouteNode | ParallelNode | None
    following: Node | None


@dataclass(frozen=True, slots=True)
class ProcessDefinition:
    """One version of a form's approval process; ``fields`` is the form schema its conditions were checked against."""

    process_code: str
    name: str
    nodes: tuple[Node, ...]
    version: int = 1
    name_en: str | None = None
    fields: tuple[Field, ...] = field(default=(), repr=False)
    process_key: str | None = None  # WeDa's ProcessKey when the bundle names one
    _places: dict[str, _Place] = field(init=False, repr=False, compare=False)
    _condition_fields: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        places: dict[str, _Place] = {}
        fields: set[str] = set()
        _index(self.nodes, None, places, fields)
        object.__setattr__(self, "_places", places)
        object.__setattr__(self, "_condition_fields", frozenset(fields))

    def node(self, node_id: str) -> Node:
        """The node with this id (KeyError if there is none)."""
        return self._places[node_id].node

    def has_node(self, node_id: str) -> bool:
        """Whether a node with this id exists."""
        return node_id in self._places

    def following(self, node_id: str) -> Node | None:
        """The next node in the same node list, or None at the end of the list."""
        return self._places[node_id].following

    def owner(self, node_id: str) -> RouteNode | ParallelNode | None:
        """The route or parallel node whose branch holds this node; None on the main list."""
        return self._places[node_id].owner

    def walk(self) -> Iterator[Node]:
        """Every node, depth first in document order."""
        return (place.node for place in self._places.values())

    @property
    def condition_fields(self) -> frozenset[str]:
        """Top-level field ids that route conditions read."""
        return self._condition_fields

    @property
    def key(self) -> str:
        """WeDa's ProcessKey of the process: the bundle's ``processKey``, else the process code."""
        return self.process_key or self.process_code

    def to_dict(self) -> dict[str, Any]:
        """The bundle form of the definition (``parse_process`` reads it back)."""
        out: dict[str, Any] = {"processCode": self.process_code, "name": _name_out(self.name, self.name_en)}
        if self.process_key is not None:
            out["processKey"] = self.process_key
        out["nodes"] = [_node_to_dict(n) for n in self.nodes]
        return out


def _index(
    nodes: Sequence[Node], owner: RouteNode | ParallelNode | None, places: dict[str, _Place], fields: set[str]
) -> None:
    for i, node in enumerate(nodes):
        following = nodes[i + 1] if i + 1 < len(nodes) else None
        places[node.node_id] = _Place(node, owner, following)
        if isinstance(node, RouteNode):
            for branch in node.branches:
                if branch.when is not None:
                    _collect_fields(branch.when, fields)
                _index(branch.nodes, node, places, fields)
        elif isinstance(node, ParallelNode):
            for branch_nodes in node.branches:
                _index(branch_nodes, node, places, fields)


def _collect_fields(node: Filter, out: set[str]) -> None:
    if isinstance(node, And | Or):
        for item in node.items:
            _collect_fields(item, out)
        return
    out.add(node.parent if node.parent is not None else node.field.split("[", 1)[0])


# ------------------------------------------------------------------------------------------- to_dict


def _name_out(zh: str, en: str | None) -> str | dict[str, str]:
    return {"zh_CN": zh, "en_US": en} if en else zh


def filter_to_dict(node: Filter) -> dict[str, Any]:
    """The bundle form of a condition tree."""
    if isinstance(node, And):
        return {"and": [filter_to_dict(item) for item in node.items]}
    if isinstance(node, Or):
        return {"or": [filter_to_dict(item) for item in node.items]}
    out: dict[str, Any] = {"field": node.field, "op": node.op}
    if node.op not in ("empty", "not_empty"):
        out["value"] = node.value
    if node.parent is not None:
        out["parent"] = node.parent
    return out


def _who_to_dict(who: Who) -> dict[str, Any]:
    if isinstance(who, FixedUsers):
        return {"users": list(who.user_ids)}
    if isinstance(who, Manager):
        return {"manager": who.level}
    if isinstance(who, DepartmentHead):
        return {"deptHead": who.level}
    if isinstance(who, RoleMembers):
        return {"role": who.role_id}
    if isinstance(who, FieldUsers):
        return {"field": who.field_id}
    if isinstance(who, OriginatorChoice):
        return {"originatorChooses": True}
    return {"originator": True}


def _node_to_dict(node: Node) -> dict[str, Any]:
    if isinstance(node, ApproverNode):
        body: dict[str, Any] = {
            "id": node.node_id,
            "name": _name_out(node.name, node.name_en),
            "who": _who_to_dict(node.who),
            "mode": node.mode,
        }
        if node.ratio is not None:
            body["ratio"] = node.ratio
        if node.empty != "skip":
            body["empty"] = node.empty
        if node.on_refuse != "finish":
            body["onRefuse"] = node.on_refuse
        return {"approver": body}
    if isinstance(node, CcNode):
        return {"cc": {"id": node.node_id, "name": _name_out(node.name, node.name_en), "who": _who_to_dict(node.who)}}
    if isinstance(node, RouteNode):
        branches: list[dict[str, Any]] = []
        for branch in node.branches:
            item: dict[str, Any] = {"default": True} if branch.when is None else {"when": filter_to_dict(branch.when)}
            if branch.name is not None:
                item["name"] = branch.name
            item["nodes"] = [_node_to_dict(n) for n in branch.nodes]
            branches.append(item)
        route: dict[str, Any] = {"id": node.node_id}
        if node.name is not None:
            route["name"] = node.name
        route["branches"] = branches
        return {"route": route}
    parallel: dict[str, Any] = {"id": node.node_id}
    if node.name is not None:
        parallel["name"] = node.name
    parallel["branches"] = [[_node_to_dict(n) for n in nodes] for nodes in node.branches]
    return {"parallel": parallel}


# --------------------------------------------------------------------------------------------- parse


def _error(path: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"{path}: {problem}", reason="bundle.invalid", path=path)


class _Parser:
    """Reads one process block; remembers node ids to reject duplicates."""

    def __init__(self, fields: Sequence[Field]) -> None:
        self.fields = {f.field_id: f for f in fields}
        self.field_list = tuple(fields)
        self.seen: dict[str, str] = {}

    def mapping(self, raw: Any, path: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise _error(path, f"expects a mapping, got {type(raw).__name__}")
        for key in raw:
            if key not in allowed:
                raise _error(f"{path}.{key}", f"unknown key (expected one of: {', '.join(allowed)})")
        for key in required:
            if key not in raw:
                raise _error(f"{path}.{key}", "is required")
        return dict(raw)

    def text(self, raw: Any, path: str) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise _error(path, "expects a non-empty string")
        return raw

    def name(self, raw: Any, path: str) -> tuple[str, str | None]:
        if isinstance(raw, Mapping):
            body = self.mapping(raw, path, ("zh_CN", "en_US"), ("zh_CN",))
            en = body.get("en_US")
            return self.text(body["zh_CN"], f"{path}.zh_CN"), self.text(en, f"{path}.en_US") if en is not None else None
        return self.text(raw, path), None

    def level(self, raw: Any, path: str) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_LEVEL:
            raise _error(path, f"expects a level between 1 and {MAX_LEVEL}")
        return raw

    def node_id(self, raw: Any, path: str) -> str:
        node_id = self.text(raw, path)
        if not _NODE_ID.match(node_id):
            raise _error(path, f"{node_id!r} is not a valid node id (a letter, then letters, digits, _ or -)")
        if node_id == START_ACTIVITY_ID:
            raise _error(path, f"{node_id!r} is reserved for the start of the process")
        if node_id in self.seen:
            raise _error(path, f"duplicate node id {node_id!r} (first used at {self.seen[node_id]})")
        self.seen[node_id] = path
        return node_id

    # -------------------------------------------------------------------------------------- who

    def who(self, raw: Any, path: str) -> Who:
        body = self.mapping(
            raw, path, ("users", "manager", "deptHead", "role", "field", "originatorChooses", "originator")
        )
        if len(body) != 1:
            raise _error(
                path, "expects exactly one of users, manager, deptHead, role, field, originatorChooses, originator"
            )
        ((kind, value),) = body.items()
        at = f"{path}.{kind}"
        if kind == "users":
            if not isinstance(value, list) or not value:
                raise _error(at, "expects a non-empty list of userIds")
            users = [self.text(v, f"{at}[{i}]") for i, v in enumerate(value)]
            return FixedUsers(tuple(dict.fromkeys(users)))
        if kind == "manager":
            return Manager(self.level(value, at))
        if kind == "deptHead":
            return DepartmentHead(self.level(value, at))
        if kind == "role":
            if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise _error(at, "expects a roleId (a number)")
            return RoleMembers(value)
        if kind == "field":
            field_id = self.text(value, at)
            f = self.fields.get(field_id)
            if f is None:
                raise _error(at, f"unknown field {field_id!r}")
            if f.refers_to != "users":
                raise _error(at, f"{field_id} is a {f.component}; approvers come from an EmployeeField")
            return FieldUsers(field_id)
        if value is not True:
            raise _error(at, "expects true")
        return OriginatorChoice() if kind == "originatorChooses" else Originator()

    # ------------------------------------------------------------------------------------ nodes

    def nodes(self, raw: Any, path: str) -> tuple[Node, ...]:
        if not isinstance(raw, list):
            raise _error(path, "expects a list of nodes")
        return tuple(self.node(item, f"{path}[{i}]") for i, item in enumerate(raw))

    def node(self, raw: Any, path: str) -> Node:
        kinds = ("approver", "cc", "route", "parallel")
        if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in kinds:
            raise _error(path, "expects one of {approver: …}, {cc: …}, {route: …}, {parallel: …}")
        ((kind, body),) = raw.items()
        at = f"{path}.{kind}"
        if kind == "approver":
            return self.approver(body, at)
        if kind == "cc":
            return self.cc(body, at)
        if kind == "route":
            return self.route(body, at)
        return self.parallel(body, at)

    def approver(self, raw: Any, path: str) -> ApproverNode:
        body = self.mapping(
            raw, path, ("id", "name", "who", "mode", "ratio", "empty", "onRefuse"), ("id", "name", "who")
        )
        node_id = self.node_id(body["id"], f"{path}.id")
        name, name_en = self.name(body["name"], f"{path}.name")
        who = self.who(body["who"], f"{path}.who")
        mode = body.get("mode", "or")
        if mode not in APPROVAL_MODES:
            raise _error(f"{path}.mode", f"expects one of {', '.join(APPROVAL_MODES)}")
        ratio = body.get("ratio")
        if mode == "vote":
            if ratio is None:
                raise _error(f"{path}.ratio", "is required for mode vote")
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
                raise _error(f"{path}.ratio", "expects a number above 0 and at most 1 (0.5 = half must agree)")
            ratio = float(ratio)
        elif ratio is not None:
            raise _error(f"{path}.ratio", "applies only to mode vote")
        empty = body.get("empty", "skip")
        if empty not in EMPTY_POLICIES:
            raise _error(f"{path}.empty", f"expects one of {', '.join(EMPTY_POLICIES)}")
        on_refuse = body.get("onRefuse", "finish")
        if on_refuse not in REFUSAL_POLICIES:
            raise _error(f"{path}.onRefuse", f"expects one of {', '.join(REFUSAL_POLICIES)}")
        return ApproverNode(node_id, name, who, mode, ratio, empty, on_refuse, name_en)

    def cc(self, raw: Any, path: str) -> CcNode:
        body = self.mapping(raw, path, ("id", "name", "who"), ("id", "name", "who"))
        node_id = self.node_id(body["id"], f"{path}.id")
        name, name_en = self.name(body["name"], f"{path}.name")
        return CcNode(node_id, name, self.who(body["who"], f"{path}.who"), name_en)

    def route(self, raw: Any, path: str) -> RouteNode:
        body = self.mapping(raw, path, ("id", "name", "branches"), ("id", "branches"))
        node_id = self.node_id(body["id"], f"{path}.id")
        name = self.text(body["name"], f"{path}.name") if "name" in body else None
        raw_branches = body["branches"]
        if not isinstance(raw_branches, list) or not raw_branches:
            raise _error(f"{path}.branches", "expects a non-empty list of branches")
        branches: list[RouteBranch] = []
        default_at: str | None = None
        for i, item in enumerate(raw_branches):
            at = f"{path}.branches[{i}]"
            branch = self.mapping(item, at, ("when", "default", "name", "nodes"), ("nodes",))
            if ("when" in branch) == ("default" in branch):
                raise _error(at, "expects either when: {condition} or default: true")
            when: Filter | None = None
            if "default" in branch:
                if branch["default"] is not True:
                    raise _error(f"{at}.default", "expects true")
                if default_at is not None:
                    raise _error(f"{at}.default", f"a route has one default branch (already {default_at})")
                default_at = at
            else:
                when = self.condition(branch["when"], f"{at}.when")
            branch_name = self.text(branch["name"], f"{at}.name") if "name" in branch else None
            branches.append(RouteBranch(self.nodes(branch["nodes"], f"{at}.nodes"), when, branch_name))
        return RouteNode(node_id, tuple(branches), name)

    def parallel(self, raw: Any, path: str) -> ParallelNode:
        body = self.mapping(raw, path, ("id", "name", "branches"), ("id", "branches"))
        node_id = self.node_id(body["id"], f"{path}.id")
        name = self.text(body["name"], f"{path}.name") if "name" in body else None
        raw_branches = body["branches"]
        if not isinstance(raw_branches, list) or len(raw_branches) < 2:
            raise _error(f"{path}.branches", "expects a list of at least two node lists")
        branches = tuple(self.nodes(item, f"{path}.branches[{i}]") for i, item in enumerate(raw_branches))
        return ParallelNode(node_id, branches, name)

    # ------------------------------------------------------------------------------- conditions

    def condition(self, raw: Any, path: str) -> Filter:
        if isinstance(raw, Mapping) and len(raw) == 1 and next(iter(raw)) in ("and", "or"):
            ((kind, items),) = raw.items()
            if not isinstance(items, list) or not items:
                raise _error(f"{path}.{kind}", "expects a non-empty list of conditions")
            parsed = tuple(self.condition(item, f"{path}.{kind}[{i}]") for i, item in enumerate(items))
            return And(parsed) if kind == "and" else Or(parsed)
        body = self.mapping(raw, path, ("field", "op", "value", "parent"), ("field", "op"))
        field_id = self.text(body["field"], f"{path}.field")
        op = body["op"]
        if op not in OPERATORS:
            raise _error(f"{path}.op", f"unknown operator {op!r} (expected one of: {', '.join(sorted(OPERATORS))})")
        if op in ("empty", "not_empty"):
            if body.get("value") is not None:
                raise _error(f"{path}.value", f"{op} takes no value")
        elif "value" not in body:
            raise _error(f"{path}.value", "is required")
        parent = self.text(body["parent"], f"{path}.parent") if "parent" in body else None
        cond = Condition(field_id, op, _normalise_value(self.fields, field_id, parent, op, body.get("value")), parent)
        fault = condition_fault(cond, self.field_list)
        if fault is not None:  # the key at fault: the field, the operator, the value or the parent
            key, problem = fault
            raise _error(f"{path}.{key}", problem)
        return cond


def _normalise_value(fields: Mapping[str, Field], field_id: str, parent: str | None, op: str, value: Any) -> Any:
    """Option fields store option values: a condition written with an option's label compares its value."""
    if parent is not None:
        table = fields.get(parent)
        f = next((c for c in table.children if c.field_id == field_id), None) if table is not None else None
    else:
        f = fields.get(field_id)
    if f is None or not f.options or op in ("like", "not_like", "empty", "not_empty"):
        return value

    def one(v: Any) -> Any:
        opt = f.option(v) if isinstance(v, str) else None
        return opt.value if opt is not None else v

    return [one(v) for v in value] if isinstance(value, list) else one(value)


def parse_process(raw: Mapping[str, Any], *, path: str, fields: Sequence[Field], version: int = 1) -> ProcessDefinition:
    """Parse and validate a bundle ``process:`` block; errors name the path inside the bundle."""
    parser = _Parser(fields)
    body = parser.mapping(raw, path, ("processCode", "processKey", "name", "nodes"), ("processCode", "name", "nodes"))
    code = parser.text(body["processCode"], f"{path}.processCode")
    if not _PROCESS_CODE.match(code):
        raise _error(f"{path}.processCode", f"{code!r} is not a process code like TPROC--XXXXXXXX")
    key = body.get("processKey")
    if key is not None and not (isinstance(key, str) and PROCESS_KEY.match(key)):
        raise _error(
            f"{path}.processKey", "expects 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    name, name_en = parser.name(body["name"], f"{path}.name")
    nodes = parser.nodes(body["nodes"], f"{path}.nodes")
    return ProcessDefinition(code, name, nodes, version, name_en, tuple(fields), key)
