"""Process definitions as stored with each form version: loaded and parsed once, looked up by code, and the node
names record searches may name (``current_node_name``) resolved to node ids."""

from __future__ import annotations

from typing import Any

import orjson

from zida.core.apps.models import Field, Form
from zida.core.apps.queries import parse_fields
from zida.core.errors import InvalidArgument, NotFound
from zida.core.principals import AppActor
from zida.core.records.filters import And, Condition, Filter, Or
from zida.core.records.values import named
from zida.core.workflow import store
from zida.core.workflow.definition import ApproverNode, CcNode, ProcessDefinition, parse_process
from zida.core.workflow.engine import InstanceState
from zida.core.workflow.models import ProcessInstance
from zida.core.workflow.own_flow import with_flow
from zida.db import Connection

__all__ = [
    "definition_for",
    "definition_of",
    "find_process_by_code",
    "load_definition",
    "process_activities",
    "record_fields",
    "resolve_node_names",
]

_DEFINITIONS: dict[tuple[int, int], ProcessDefinition] = {}


async def load_definition(conn: Connection, form_pk: int, version: int) -> ProcessDefinition:
    """The process of one form version, parsed once (versions never change)."""
    key = (form_pk, version)
    cached = _DEFINITIONS.get(key)
    if cached is None:
        row = await store.find_definition_row(conn, form_pk, version)
        if row is None or row["process"] is None:
            raise NotFound(f"form version {version} has no approval process", reason="process.not_found")
        fields = parse_fields(form_pk, version, row["fields"])
        cached = parse_process(orjson.loads(row["process"]), path="process", fields=fields, version=version)
        if len(_DEFINITIONS) > 10_000:
            _DEFINITIONS.clear()
        _DEFINITIONS[key] = cached
    return cached


async def record_fields(conn: Connection, form_pk: int, version: int) -> tuple[Field, ...]:
    """The schema of one form version (to render records the caller may already see)."""
    row = await store.find_definition_row(conn, form_pk, version)
    if row is None:
        raise NotFound(f"form version {version} does not exist", reason="form.not_found")
    return parse_fields(form_pk, version, row["fields"])


async def definition_for(conn: Connection, form_pk: int, version: int, state: InstanceState) -> ProcessDefinition:
    """The process an instance in ``state`` of this form version runs: the form's, or its own flow."""
    template = await load_definition(conn, form_pk, version)
    return template if state.flow is None else with_flow(template, state.flow)


async def definition_of(conn: Connection, inst: ProcessInstance) -> ProcessDefinition:
    """The process an instance runs (its form version's, or the flow of its own it started with)."""
    return await definition_for(conn, inst.form_pk, inst.form_version, inst.state)


async def find_process_by_code(conn: Connection, corp_pk: int, process_code: str) -> tuple[int, str]:
    """(app pk, form uuid) of the corp's process form whose current process has this code (``process.not_found``
    when none has; ``process.ambiguous_code`` when processes of several apps share it)."""
    if not process_code:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="process")
    rows = await store.find_process_forms_by_code(conn, corp_pk, process_code)
    if not rows:
        raise NotFound(f"process {named(process_code)} does not exist", reason="process.not_found")
    if len(rows) > 1:
        raise InvalidArgument(
            f"processCode {named(process_code)} names processes in several apps", reason="process.ambiguous_code"
        )
    return int(rows[0]["app_pk"]), str(rows[0]["form_uuid"])


async def process_activities(conn: Connection, actor: AppActor, process_code: str) -> ProcessDefinition:
    """The current definition of the app's process with this code (its nodes are the activities)."""
    if not process_code:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="process")
    row = await store.find_process_form(conn, actor.app_pk, process_code)
    if row is None:
        raise NotFound(f"process {named(process_code)} does not exist in this application", reason="process.not_found")
    return await load_definition(conn, int(row["id"]), int(row["version"]))


def _names_match(op: str, value: Any, names: tuple[str, ...]) -> bool:
    if op == "like":
        return any(str(value).lower() in n.lower() for n in names)
    if op in ("in", "eq") and isinstance(value, list):
        return any(str(v) in names for v in value)
    if op == "eq":
        return str(value) in names
    raise InvalidArgument(f"current node names support eq, like and in, not {op}", reason="search.unsupported_operator")


def _mentions(node: Filter, field_name: str) -> bool:
    if isinstance(node, And | Or):
        return any(_mentions(i, field_name) for i in node.items)
    return node.field == field_name


async def resolve_node_names(conn: Connection, form: Form, node: Filter | None) -> Filter | None:
    """Turn ``current_node_name`` conditions into ``current_node`` (the ids of the approver and CC nodes so
    named in any version of the form's process, Chinese or English name)."""
    if node is None or not _mentions(node, "current_node_name"):
        return node
    named: list[tuple[str, tuple[str, ...]]] = []
    for row in await store.process_versions(conn, form.pk):
        raw = row["process"] if isinstance(row["process"], dict) else orjson.loads(row["process"])
        fields = tuple(Field.from_dict(f) for f in orjson.loads(row["fields"]))
        definition = parse_process(raw, path="process", fields=fields, version=int(row["version"]))
        for n in definition.walk():
            if isinstance(n, ApproverNode | CcNode):
                named.append((n.node_id, tuple(x for x in (n.name, n.name_en) if x)))

    def rewrite(item: Filter) -> Filter:
        if isinstance(item, And):
            return And(tuple(rewrite(i) for i in item.items))
        if isinstance(item, Or):
            return Or(tuple(rewrite(i) for i in item.items))
        if item.field != "current_node_name":
            return item
        ids = sorted({node_id for node_id, names in named if _names_match(item.op, item.value, names)})
        return Condition("current_node", "in", ids)

    return rewrite(node)
