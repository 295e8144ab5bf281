"""``currentNodeName`` in searches of a process form: the records waiting at the approver node so named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conformance.workflow.conftest import Flow


def _search(flow: Flow, condition: list[dict[str, Any]], user: str = "adm") -> set[str]:
    body = flow.call(
        "search_form_datas",
        user=user,
        form_uuid="FORM-FLOW-TWO",
        search_field_json=json.dumps(condition, ensure_ascii=False),
        page_size=100,
    ).body
    return {d.form_instance_id for d in body.data}


def _instances_of(flow: Flow, condition: list[dict[str, Any]], user: str = "adm") -> set[str]:
    body = flow.call(
        "get_instance_id_list",
        user=user,
        form_uuid="FORM-FLOW-TWO",
        search_field_json=json.dumps(condition, ensure_ascii=False),
        page_size=100,
    ).body
    return set(body.data)


def _node(op: str, value: Any) -> list[dict[str, Any]]:
    return [{"key": "currentNodeName", "value": value, "type": "TEXT", "operator": op, "componentName": "TextField"}]


@pytest.fixture
def waiting(flow: Flow) -> tuple[str, str, str]:
    """Three instances of the two-step form: at 一审, at 二审, and finished."""
    first = flow.start("FORM-FLOW-TWO", {})
    second = flow.start("FORM-FLOW-TWO", {})
    flow.execute(second, "wang")
    done = flow.start("FORM-FLOW-TWO", {})
    flow.execute(done, "wang")
    flow.execute(done, "chen")
    return first, second, done


def test_current_node_name_selects_the_instances_waiting_there(flow: Flow, waiting: tuple[str, str, str]) -> None:
    first, second, done = waiting
    for search in (_search, _instances_of):
        at_first = search(flow, _node("eq", "一审"))
        at_second = search(flow, _node("like", "二"))
        assert first in at_first and second not in at_first and done not in at_first
        assert second in at_second and first not in at_second and done not in at_second
        either = search(flow, _node("in", ["一审", "二审"]))
        assert {first, second} <= either and done not in either
        assert not search(flow, _node("eq", "no such node")) & {first, second, done}


def test_current_node_name_for_a_member_sees_only_their_instances(flow: Flow, waiting: tuple[str, str, str]) -> None:
    first, second, _ = waiting
    # wang acted on `second` (and has a task on `first`): both are visible to him, filtered by node.
    assert _instances_of(flow, _node("eq", "一审"), user="wang") & {first, second} == {first}
    assert _instances_of(flow, _node("eq", "二审"), user="wang") & {first, second} == {second}
