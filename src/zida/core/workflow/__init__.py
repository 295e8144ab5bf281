"""Approvals: process definitions, route conditions and the pure workflow engine (no database, no I/O)."""

from __future__ import annotations

from zida.core.workflow.conditions import condition_problem, matches
from zida.core.workflow.definition import ProcessDefinition, parse_process
from zida.core.workflow.engine import InstanceState, act, assert_invariants, start

__all__ = [
    "InstanceState",
    "ProcessDefinition",
    "act",
    "assert_invariants",
    "condition_problem",
    "matches",
    "parse_process",
    "start",
]
