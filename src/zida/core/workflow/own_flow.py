"""A flow of an instance's own: approvers and CC users named when it starts, instead of (or around) its form's process.

Some APIs let the caller name an instance's approvers when it starts (steps of users who all agree, any one of whom
agrees, or who decide one after the other) and the users it is copied to (at its start, at its end, or both). Such
an instance runs a flow of its own: the bundle form of its nodes is kept in its state (``InstanceState.flow``) and
parsed against its form version's fields, so every later step, check and reader runs the flow it started with
(``zida.core.workflow.definitions.definition_of``).

Choices (each tested): approver steps replace the form's whole flow (its routes, parallel branches and CC nodes
too); CC users without approver steps are copied around the form's own flow. A CC "at the end" is sent when the flow
runs through its end, i.e. when the instance is approved; a refused or terminated instance does not reach it. Node
ids are ``own_approver_<n>`` and ``own_cc_start`` / ``own_cc_finish``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from zida.core.errors import InvalidArgument
from zida.core.workflow.definition import APPROVAL_MODES, ProcessDefinition, parse_process

__all__ = [
    "CC_MOMENTS",
    "MAX_APPROVER_STEPS",
    "MAX_CC_USERS",
    "MAX_STEP_USERS",
    "OWN_APPROVER_PREFIX",
    "ApproverStep",
    "flow_nodes",
    "with_flow",
]

MAX_APPROVER_STEPS = 20
MAX_STEP_USERS = 100  # users of one approver step (the platform documents none; a bound keeps a flow small)
OWN_APPROVER_PREFIX = "own_approver_"  # an own flow's approver steps' node ids: the prefix, then 1, 2…
MAX_CC_USERS = 50
CC_MOMENTS = ("start", "finish", "start_finish")


@dataclass(frozen=True, slots=True)
class ApproverStep:
    """One approval step of an own flow: its users and how their decisions combine (``or``, ``and``, ``sequential``)."""

    user_ids: tuple[str, ...]
    mode: str = "or"


def _check(steps: Sequence[ApproverStep], cc_users: Sequence[str], cc_at: str) -> None:
    if len(steps) > MAX_APPROVER_STEPS:
        raise InvalidArgument(
            f"at most {MAX_APPROVER_STEPS} approver steps, got {len(steps)}",
            reason="process.invalid_approvers",
            param="approvers",
        )
    for index, step in enumerate(steps):
        if not step.user_ids or not all(isinstance(u, str) and u for u in step.user_ids):
            raise InvalidArgument(
                f"approver step {index + 1} names no user", reason="process.invalid_approvers", param="approvers"
            )
        if len(step.user_ids) > MAX_STEP_USERS:
            raise InvalidArgument(
                f"approver step {index + 1}: at most {MAX_STEP_USERS} users, got {len(step.user_ids)}",
                reason="process.invalid_approvers",
                param="approvers",
            )
        if step.mode not in APPROVAL_MODES or step.mode == "vote":
            raise InvalidArgument(
                f"approver step {index + 1}: unknown mode {step.mode}",
                reason="process.invalid_approvers",
                param="approvers",
            )
    if len(cc_users) > MAX_CC_USERS:
        raise InvalidArgument(
            f"at most {MAX_CC_USERS} CC users, got {len(cc_users)}", reason="process.invalid_cc", param="cc"
        )
    if cc_at not in CC_MOMENTS:
        raise InvalidArgument(f"unknown CC moment {cc_at}", reason="process.invalid_cc", param="cc")


def flow_nodes(
    template: ProcessDefinition, steps: Sequence[ApproverStep], cc_users: Sequence[str], cc_at: str = "start"
) -> list[dict[str, Any]]:
    """The nodes (bundle form) of an own flow: the approver steps (else the template's nodes) with the CC users
    copied at the start and/or the end."""
    _check(steps, cc_users, cc_at)
    nodes: list[dict[str, Any]]
    if steps:
        nodes = [
            {
                "approver": {
                    "id": f"{OWN_APPROVER_PREFIX}{n}",
                    "name": f"审批人{n}",
                    "who": {"users": list(dict.fromkeys(step.user_ids))},
                    "mode": step.mode,
                }
            }
            for n, step in enumerate(steps, 1)
        ]
    else:
        nodes = list(template.to_dict()["nodes"])
    users = list(dict.fromkeys(cc_users))
    if users:
        if cc_at in ("start", "start_finish"):
            nodes.insert(0, {"cc": {"id": "own_cc_start", "name": "抄送人", "who": {"users": users}}})
        if cc_at in ("finish", "start_finish"):
            nodes.append({"cc": {"id": "own_cc_finish", "name": "抄送人", "who": {"users": users}}})
    return nodes


# (id of the template, the flow's JSON) → (the template, the parsed flow); the template is kept to keep its id valid.
# Emptied when its keys (a caller's flows) pass _FLOWS_BYTES together.
_FLOWS: dict[tuple[int, bytes], tuple[ProcessDefinition, ProcessDefinition]] = {}
_FLOWS_BYTES = 8 << 20
_flows_bytes = 0


def with_flow(template: ProcessDefinition, nodes: list[dict[str, Any]]) -> ProcessDefinition:
    """The template's process (code, version, name, fields) running ``nodes`` instead of its own (parsed once)."""
    key = (id(template), orjson.dumps(nodes))
    cached = _FLOWS.get(key)
    if cached is not None and cached[0] is template:
        return cached[1]
    raw = template.to_dict()
    raw["nodes"] = nodes
    parsed = parse_process(raw, path="flow", fields=template.fields, version=template.version)
    global _flows_bytes
    if len(_FLOWS) >= 10_000 or _flows_bytes + len(key[1]) > _FLOWS_BYTES:
        _FLOWS.clear()
        _flows_bytes = 0
    _FLOWS[key] = (template, parsed)
    _flows_bytes += len(key[1])
    return parsed
