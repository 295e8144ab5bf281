"""Parsing and validating the bundle's process block: every node kind, and errors that name their path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from zida.core.apps.models import Field, Option
from zida.core.errors import InvalidArgument
from zida.core.records.filters import And, Condition, Or
from zida.core.workflow.definition import (
    ApproverNode,
    CcNode,
    DepartmentHead,
    FieldUsers,
    FixedUsers,
    Manager,
    Originator,
    OriginatorChoice,
    ParallelNode,
    RoleMembers,
    RouteNode,
    parse_process,
)

PATH = "apps[0].forms[1].process"
FIELDS = (
    Field("numberField_days0001", "NumberField", "天数"),
    Field("selectField_kind0001", "SelectField", "类别", options=(Option("annual", "年假"), Option("sick", "病假"))),
    Field("employeeField_agent01", "EmployeeField", "代理人"),
    Field("textField_reason001", "TextField", "事由"),
    Field("tableField_items0001", "TableField", "明细", children=(Field("numberField_cost01", "NumberField", "费用"),)),
)

EXAMPLE: dict[str, Any] = {
    "processCode": "TPROC--LEAVE000000000001",
    "name": "请假审批",
    "nodes": [
        {"approver": {"id": "node_mgr", "name": "主管审批", "who": {"manager": 1}, "mode": "or"}},
        {
            "route": {
                "id": "route_days",
                "branches": [
                    {
                        "when": {"field": "numberField_days0001", "op": "gt", "value": 3},
                        "nodes": [
                            {"approver": {"id": "node_hr", "name": "HR审批", "who": {"role": 9001}, "mode": "and"}}
                        ],
                    },
                    {"default": True, "nodes": []},
                ],
            }
        },
        {"cc": {"id": "node_cc", "name": "抄送财务", "who": {"users": ["zhao"]}}},
    ],
}

FULL: dict[str, Any] = {
    "processCode": "TPROC--FULL0001",
    "name": {"zh_CN": "全功能", "en_US": "Everything"},
    "nodes": [
        {"approver": {"id": "a_users", "name": "固定", "who": {"users": ["wang", "chen"]}, "mode": "sequential"}},
        {"approver": {"id": "a_head", "name": "部门主管", "who": {"deptHead": 2}, "empty": "admin"}},
        {"approver": {"id": "a_field", "name": "代理人", "who": {"field": "employeeField_agent01"}, "empty": "fail"}},
        {
            "approver": {
                "id": "a_vote",
                "name": {"zh_CN": "投票", "en_US": "Vote"},
                "who": {"originatorChooses": True},
                "mode": "vote",
                "ratio": 0.5,
                "onRefuse": "continue",
            }
        },
        {
            "parallel": {
                "id": "p1",
                "name": "并行",
                "branches": [
                    [{"approver": {"id": "a_self", "name": "本人确认", "who": {"originator": True}}}],
                    [
                        {
                            "route": {
                                "id": "r1",
                                "name": "分支",
                                "branches": [
                                    {
                                        "name": "big",
                                        "when": {
                                            "and": [
                                                {"field": "numberField_days0001", "op": "ge", "value": 5},
                                                {
                                                    "or": [
                                                        {
                                                            "field": "selectField_kind0001",
                                                            "op": "eq",
                                                            "value": "annual",
                                                        },
                                                        {"field": "textField_reason001", "op": "empty"},
                                                    ]
                                                },
                                            ]
                                        },
                                        "nodes": [{"cc": {"id": "c1", "name": "抄送", "who": {"manager": 2}}}],
                                    },
                                    {"default": True, "nodes": []},
                                ],
                            }
                        }
                    ],
                ],
            }
        },
        {"approver": {"id": "a_return", "name": "复核", "who": {"role": "9002"}, "onRefuse": "return"}},
    ],
}


def parse(raw: dict[str, Any], version: int = 1) -> Any:
    return parse_process(raw, path=PATH, fields=FIELDS, version=version)


def test_parses_the_bundle_example() -> None:
    definition = parse(EXAMPLE, version=3)
    assert definition.process_code == "TPROC--LEAVE000000000001"
    assert definition.name == "请假审批"
    assert definition.version == 3
    mgr, route, cc = definition.nodes
    assert mgr == ApproverNode("node_mgr", "主管审批", Manager(1), "or")
    assert isinstance(route, RouteNode)
    assert route.branches[0].when == Condition("numberField_days0001", "gt", 3)
    assert route.branches[0].nodes == (ApproverNode("node_hr", "HR审批", RoleMembers(9001), "and"),)
    assert route.branches[1].is_default and route.branches[1].nodes == ()
    assert cc == CcNode("node_cc", "抄送财务", FixedUsers(("zhao",)))
    assert definition.condition_fields == frozenset({"numberField_days0001"})


def test_every_kind_of_approver_and_node() -> None:
    definition = parse(FULL)
    assert definition.name_en == "Everything"
    nodes = {n.node_id: n for n in definition.walk()}
    assert list(nodes) == ["a_users", "a_head", "a_field", "a_vote", "p1", "a_self", "r1", "c1", "a_return"]
    assert nodes["a_users"] == ApproverNode("a_users", "固定", FixedUsers(("wang", "chen")), "sequential")
    assert nodes["a_head"] == ApproverNode("a_head", "部门主管", DepartmentHead(2), empty="admin")
    assert nodes["a_field"] == ApproverNode("a_field", "代理人", FieldUsers("employeeField_agent01"), empty="fail")
    vote = nodes["a_vote"]
    assert isinstance(vote, ApproverNode)
    assert (vote.who, vote.mode, vote.ratio, vote.on_refuse, vote.name_en) == (
        OriginatorChoice(),
        "vote",
        0.5,
        "continue",
        "Vote",
    )
    assert nodes["a_self"] == ApproverNode("a_self", "本人确认", Originator())
    assert nodes["a_return"] == ApproverNode("a_return", "复核", RoleMembers(9002), on_refuse="return")
    parallel = nodes["p1"]
    assert isinstance(parallel, ParallelNode) and len(parallel.branches) == 2
    route = nodes["r1"]
    assert isinstance(route, RouteNode)
    assert route.branches[0].name == "big"
    assert route.branches[0].when == And(
        (
            Condition("numberField_days0001", "ge", 5),
            Or((Condition("selectField_kind0001", "eq", "annual"), Condition("textField_reason001", "empty"))),
        )
    )
    assert definition.condition_fields == frozenset(
        {"numberField_days0001", "selectField_kind0001", "textField_reason001"}
    )


def test_structure_navigation() -> None:
    definition = parse(FULL)
    assert definition.following("a_users") == definition.node("a_head")
    assert definition.following("a_return") is None
    assert definition.owner("a_self") == definition.node("p1")
    assert definition.owner("c1") == definition.node("r1")
    assert definition.owner("a_users") is None
    assert definition.following("a_self") is None


@pytest.mark.parametrize("raw", [EXAMPLE, FULL, {**EXAMPLE, "processKey": "leave_approval"}])
def test_round_trips_through_the_bundle_form(raw: dict[str, Any]) -> None:
    definition = parse(raw)
    assert parse(definition.to_dict()) == definition
    assert definition.to_dict() == parse(definition.to_dict()).to_dict()


def test_option_labels_in_conditions_become_option_values() -> None:
    raw = copy.deepcopy(EXAMPLE)
    raw["nodes"][1]["route"]["branches"][0]["when"] = {
        "field": "selectField_kind0001",
        "op": "in",
        "value": ["年假", "sick"],
    }
    definition = parse(raw)
    route = definition.node("route_days")
    assert isinstance(route, RouteNode)
    assert route.branches[0].when == Condition("selectField_kind0001", "in", ["annual", "sick"])


def test_sub_table_conditions() -> None:
    raw = copy.deepcopy(EXAMPLE)
    raw["nodes"][1]["route"]["branches"][0]["when"] = {
        "field": "numberField_cost01",
        "op": "gt",
        "value": 100,
        "parent": "tableField_items0001",
    }
    definition = parse(raw)
    assert definition.condition_fields == frozenset({"tableField_items0001"})
    assert parse(definition.to_dict()) == definition


def node_at(raw: dict[str, Any], index: int) -> dict[str, Any]:
    node: dict[str, Any] = raw["nodes"][index]
    return node


def broken(change: Any) -> InvalidArgument:
    raw = copy.deepcopy(FULL)
    change(raw)
    with pytest.raises(InvalidArgument) as raised:
        parse(raw)
    assert raised.value.reason == "bundle.invalid"
    return raised.value


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda r: r.update(processCode="PROC-1"), "processCode", "TPROC--"),
        (lambda r: r.pop("name"), "name", "is required"),
        (lambda r: r.update(extra=1), "extra", "unknown key"),
        (lambda r: r.update(nodes={}), "nodes", "expects a list"),
        (lambda r: r["nodes"].append({"approver": {}, "cc": {}}), "nodes[6]", "expects one of"),
        (lambda r: r["nodes"].append({"gateway": {}}), "nodes[6]", "expects one of"),
        (lambda r: node_at(r, 0)["approver"].update(mdoe="or"), "nodes[0].approver.mdoe", "unknown key"),
        (lambda r: node_at(r, 0)["approver"].update(mode="any"), "nodes[0].approver.mode", "expects one of"),
        (lambda r: node_at(r, 0)["approver"].update(id="a_head"), "nodes[1].approver.id", "duplicate node id"),
        (lambda r: node_at(r, 0)["approver"].update(id="9bad"), "nodes[0].approver.id", "not a valid node id"),
        (lambda r: node_at(r, 0)["approver"].update(id="sid-restartevent"), "nodes[0].approver.id", "reserved"),
        (lambda r: node_at(r, 0)["approver"].update(name=""), "nodes[0].approver.name", "non-empty string"),
        (lambda r: node_at(r, 0)["approver"].update(ratio=0.5), "nodes[0].approver.ratio", "only to mode vote"),
        (lambda r: node_at(r, 0)["approver"].update(empty="ask"), "nodes[0].approver.empty", "expects one of"),
        (lambda r: node_at(r, 0)["approver"].update(onRefuse="x"), "nodes[0].approver.onRefuse", "expects one of"),
        (lambda r: node_at(r, 3)["approver"].pop("ratio"), "nodes[3].approver.ratio", "required for mode vote"),
        (lambda r: node_at(r, 3)["approver"].update(ratio=1.5), "nodes[3].approver.ratio", "at most 1"),
        (lambda r: node_at(r, 3)["approver"].update(ratio=0), "nodes[3].approver.ratio", "above 0"),
        (lambda r: node_at(r, 0)["approver"].update(who={}), "nodes[0].approver.who", "exactly one of"),
        (
            lambda r: node_at(r, 0)["approver"].update(who={"users": ["a"], "manager": 1}),
            "nodes[0].approver.who",
            "exactly one of",
        ),
        (lambda r: node_at(r, 0)["approver"].update(who={"boss": 1}), "nodes[0].approver.who.boss", "unknown key"),
        (lambda r: node_at(r, 0)["approver"].update(who={"users": []}), "nodes[0].approver.who.users", "non-empty"),
        (lambda r: node_at(r, 0)["approver"].update(who={"users": [3]}), "nodes[0].approver.who.users[0]", "string"),
        (lambda r: node_at(r, 0)["approver"].update(who={"manager": 0}), "nodes[0].approver.who.manager", "level"),
        (lambda r: node_at(r, 0)["approver"].update(who={"deptHead": True}), "nodes[0].approver.who.deptHead", "level"),
        (lambda r: node_at(r, 0)["approver"].update(who={"role": "finance"}), "nodes[0].approver.who.role", "roleId"),
        (
            lambda r: node_at(r, 0)["approver"].update(who={"field": "textField_reason001"}),
            "nodes[0].approver.who.field",
            "EmployeeField",
        ),
        (lambda r: node_at(r, 0)["approver"].update(who={"field": "employeeField_x"}), "who.field", "unknown field"),
        (
            lambda r: node_at(r, 0)["approver"].update(who={"originatorChooses": False}),
            "nodes[0].approver.who.originatorChooses",
            "expects true",
        ),
        (
            lambda r: node_at(r, 4)["parallel"].update(branches=[[]]),
            "nodes[4].parallel.branches",
            "at least two",
        ),
        (
            lambda r: node_at(r, 4)["parallel"]["branches"][0][0]["approver"].update(who={"role": None}),
            "nodes[4].parallel.branches[0][0].approver.who.role",
            "roleId",
        ),
        (
            lambda r: node_at(r, 4)["parallel"]["branches"][1][0]["route"]["branches"][1].update(when={}),
            "nodes[4].parallel.branches[1][0].route.branches[1]",
            "either when",
        ),
        (
            lambda r: node_at(r, 4)["parallel"]["branches"][1][0]["route"]["branches"][0].update(
                when=None, default=True
            ),
            "nodes[4].parallel.branches[1][0].route.branches[0]",
            "either when",
        ),
        (
            lambda r: (
                node_at(r, 4)["parallel"]["branches"][1][0]["route"]["branches"][0].pop("when")
                and node_at(r, 4)["parallel"]["branches"][1][0]["route"]["branches"][0].update(default=True)
            ),
            "nodes[4].parallel.branches[1][0].route.branches[1].default",
            "one default branch",
        ),
        (
            lambda r: node_at(r, 4)["parallel"]["branches"][1][0]["route"]["branches"][1].update(default="yes"),
            "nodes[4].parallel.branches[1][0].route.branches[1].default",
            "expects true",
        ),
        (
            lambda r: node_at(r, 4)["parallel"]["branches"][1][0]["route"].update(branches=[]),
            "nodes[4].parallel.branches[1][0].route.branches",
            "non-empty list",
        ),
    ],
)
def test_errors_name_the_path(change: Any, path: str, words: str) -> None:
    error = broken(change)
    assert error.details["path"].endswith(path)
    assert error.details["path"].startswith(PATH)
    assert words in error.message
    assert error.message.startswith(error.details["path"] + ": ")


WHEN = "nodes[1].route.branches[0].when"


@pytest.mark.parametrize(
    ("when", "path", "words"),
    [
        ({"field": "numberField_nope", "op": "gt", "value": 3}, WHEN + ".field", "unknown field numberField_nope"),
        ({"field": "numberField_days0001", "op": "bigger", "value": 3}, WHEN + ".op", "unknown operator"),
        ({"field": "numberField_days0001", "op": "gt"}, WHEN + ".value", "is required"),
        ({"field": "numberField_days0001", "op": "gt", "value": "many"}, WHEN + ".value", "expects a number"),
        ({"field": "numberField_days0001", "op": "empty", "value": 1}, WHEN + ".value", "takes no value"),
        ({"field": "numberField_days0001", "op": "like", "value": "1"}, WHEN + ".op", "not supported on numbers"),
        ({"and": []}, WHEN + ".and", "non-empty list"),
        ({"or": [{"field": "x", "op": "eq", "value": 1}]}, WHEN + ".or[0].field", "unknown field x"),
        ({"field": "numberField_days0001", "op": "gt", "value": 1, "by": 2}, WHEN + ".by", "unknown key"),
        ({"field": "numberField_cost01", "op": "gt", "value": 1}, WHEN + ".field", "unknown field"),
    ],
)
def test_condition_errors_name_the_path(when: dict[str, Any], path: str, words: str) -> None:
    raw = copy.deepcopy(EXAMPLE)
    raw["nodes"][1]["route"]["branches"][0]["when"] = when
    with pytest.raises(InvalidArgument) as raised:
        parse(raw)
    assert raised.value.details["path"] == f"{PATH}.{path}"
    assert words in raised.value.message


def test_empty_process_and_non_mapping_block() -> None:
    assert parse({"processCode": "TPROC--EMPTY", "name": "空", "nodes": []}).nodes == ()
    with pytest.raises(InvalidArgument) as raised:
        parse_process([], path=PATH, fields=FIELDS)  # type: ignore[arg-type]
    assert raised.value.details["path"] == PATH


def test_the_process_key_is_weda_s_name_for_the_process() -> None:
    assert parse(EXAMPLE).key == parse(EXAMPLE).process_code  # none named: the process code
    keyed = parse({**EXAMPLE, "processKey": "leave.v2"})
    assert keyed.key == keyed.process_key == "leave.v2" and keyed.to_dict()["processKey"] == "leave.v2"
