"""Bundles with process forms: the people a process names, process codes, and form types that records pin down."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import SECRET_KEY
from tests.core.bundle.test_bundle import base, unique
from zida.bundle.loader import BundleError, load_bundle, parse_bundle
from zida.core.access.members import app_actor
from zida.core.records.actions import save_form_instance
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio


def approver(node_id: str, who: dict[str, Any]) -> dict[str, Any]:
    return {"approver": {"id": node_id, "name": node_id, "who": who}}


def with_process(corp_id: str, *nodes: dict[str, Any], code: str = "TPROC--P1") -> dict[str, Any]:
    """The base bundle plus a process form (second form of the app) with these nodes."""
    bundle = base(corp_id)
    bundle["apps"][0]["forms"].append(
        {
            "formUuid": f"FORM-{corp_id.upper()}-P",
            "title": "流程",
            "type": "process",
            "fields": [{"fieldId": "textField_p", "component": "TextField", "label": "P"}],
            "process": {"processCode": code, "name": "流程", "nodes": list(nodes)},
        }
    )
    return bundle


@pytest.mark.parametrize(
    ("nodes", "error_path", "words"),
    [
        (
            [approver("n1", {"users": ["m", "ghost"]})],
            "apps[0].forms[1].process.nodes[0].approver.who.users[1]",
            "unknown user 'ghost'",
        ),
        ([approver("n1", {"role": 404})], "apps[0].forms[1].process.nodes[0].approver.who.role", "unknown role 404"),
        (
            [{"cc": {"id": "c1", "name": "抄送", "who": {"users": ["nobody"]}}}],
            "apps[0].forms[1].process.nodes[0].cc.who.users[0]",
            "unknown user",
        ),
        (
            [
                {
                    "route": {
                        "id": "r1",
                        "branches": [
                            {"when": {"field": "textField_p", "op": "eq", "value": "x"}, "nodes": []},
                            {"default": True, "nodes": [approver("n2", {"role": "77"})]},
                        ],
                    }
                }
            ],
            "apps[0].forms[1].process.nodes[0].route.branches[1].nodes[0].approver.who.role",
            "unknown role",
        ),
        (
            [
                {
                    "parallel": {
                        "id": "p1",
                        "branches": [[approver("n3", {"users": ["e"]})], [approver("n4", {"users": ["x"]})]],
                    }
                }
            ],
            "apps[0].forms[1].process.nodes[0].parallel.branches[1][0].approver.who.users[0]",
            "unknown user 'x'",
        ),
    ],
)
def test_processes_name_users_and_roles_of_the_bundle(nodes: list[Any], error_path: str, words: str) -> None:
    with pytest.raises(BundleError) as err:
        parse_bundle(with_process(unique(), *nodes), source="org.yaml")
    assert err.value.path == error_path, err.value.message
    assert words in err.value.message and error_path in err.value.message


def test_known_users_and_roles_load() -> None:
    parse_bundle(with_process(unique(), approver("n1", {"users": ["m"]}), approver("n2", {"role": 1})))


def test_two_forms_of_one_app_cannot_share_a_process_code() -> None:
    bundle = with_process(unique(), approver("n1", {"users": ["m"]}))
    twin = copy.deepcopy(bundle["apps"][0]["forms"][1])
    twin["formUuid"] += "-TWIN"
    bundle["apps"][0]["forms"].append(twin)
    with pytest.raises(BundleError) as err:
        parse_bundle(bundle)
    assert err.value.path == "apps[0].forms[2].process.processCode"
    assert "TPROC--P1" in err.value.message and "apps[0].forms[1]" in err.value.message


async def test_a_form_with_records_keeps_its_type(db: Database) -> None:
    corp = unique()
    bundle = base(corp)
    box = SecretBox(SECRET_KEY)
    await load_bundle(db, box, parse_bundle(bundle))
    form = bundle["apps"][0]["forms"][0]
    as_process = copy.deepcopy(bundle)
    as_process["apps"][0]["forms"][0].update(
        type="process",
        process={"processCode": "TPROC--X1", "name": "流程", "nodes": [approver("n1", {"users": ["m"]})]},
    )
    # Without records the form may still become a process form (and back).
    await load_bundle(db, box, parse_bundle(as_process))
    await load_bundle(db, box, parse_bundle(bundle))

    app_pk = await db.fetchval("SELECT id FROM app WHERE app_type = :t", {"t": bundle["apps"][0]["appType"]})
    corp_pk = await db.fetchval("SELECT id FROM corp WHERE corp_id = :c", {"c": corp})
    actor = await app_actor(db, int(corp_pk), int(app_pk), "m")
    await save_form_instance(db, actor, form["formUuid"], {"textField_a": "一条记录"})
    with pytest.raises(BundleError) as err:
        await load_bundle(db, box, parse_bundle(as_process), source="org.yaml")
    assert err.value.path == "apps[0].forms[0].type"
    assert form["formUuid"] in err.value.message and "has records" in err.value.message
    row = await db.fetchrow("SELECT form_type FROM form WHERE form_uuid = :u", {"u": form["formUuid"]})
    assert row is not None and row["form_type"] == "receipt"  # nothing was written
