"""A refused bundle's error names the exact path of the value at fault: the part of a serial-number rule, the key of
a callback, a credential or a process condition, the entry of a list, the place in a query template's where tree or
parameters — not the item, list or rule that holds it. The path comes from the bundle itself (a repeated entry) or
from the core's error (the part and key it found at fault), never from the wording of a message."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.conftest import SECRET_KEY
from tests.core.bundle.test_bundle import AES, base, mutate, unique
from zida.bundle.loader import BundleError, load_bundle, parse_bundle
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio

FORM = "apps[0].forms[0]"
RULE = f"{FORM}.fields[2].props.serialNumberRule"


def serial(rule: list[Any]) -> dict[str, Any]:
    """The base bundle whose form has a SerialNumberField (its third field) with this rule."""
    bundle = base(unique())
    bundle["apps"][0]["forms"][0]["fields"].append(
        {"fieldId": "serialNumberField_no", "component": "SerialNumberField", "label": "单号",
         "props": {"serialNumberRule": rule}}
    )  # fmt: skip
    return bundle


def process(when: dict[str, Any], key: str = "leave") -> dict[str, Any]:
    """The base bundle with a second form, a process form whose route branches on ``when``."""
    bundle = base(unique())
    s = bundle["corp"]["corpId"].upper()
    bundle["apps"][0]["forms"].append(
        {
            "formUuid": f"FORM-{s}-P",
            "title": "流程",
            "type": "process",
            "fields": [{"fieldId": "numberField_days", "component": "NumberField", "label": "天数"},
                       {"fieldId": "textField_reason", "component": "TextField", "label": "事由"}],
            "process": {
                "processCode": f"TPROC--{s}",
                "processKey": key,
                "name": "流程",
                "nodes": [{"route": {"id": "r1", "branches": [{"when": when, "nodes": []},
                                                              {"default": True, "nodes": []}]}}],
            },
        }
    )  # fmt: skip
    return bundle


def two_models() -> dict[str, Any]:
    bundle = base(unique())
    form = bundle["apps"][0]["forms"][0]
    other = {**form, "formUuid": form["formUuid"] + "-2", "fields": [{**form["fields"][0], "alias": "title"}]}
    form["fields"] = [{**form["fields"][0], "alias": "title"}]
    bundle["apps"][0]["forms"] = [{**form, "modelName": "same"}, {**other, "modelName": "same"}]
    return bundle


def signing_in_as_m() -> dict[str, Any]:
    return mutate(base(unique()), "users[1].username", "m")  # user m signs in by his userId


def callbacks(*items: dict[str, Any]) -> dict[str, Any]:
    bundle = base(unique())
    bundle["callbacks"] = [{"appKey": bundle["credentials"][0]["appKey"], **item} for item in items]
    return bundle


def credential(**keys: str) -> dict[str, Any]:
    return mutate(base(unique()), "credentials[0]", keys)


@pytest.mark.parametrize(
    ("bundle", "error_path", "words"),
    [
        # A serial-number rule: the part at fault and its key, not the rule.
        (serial([{"ruleType": "autoCount"}, {"ruleType": "character", "content": ""}]), f"{RULE}[1].content",
         "a character part needs content"),
        (serial([{"ruleType": "character", "content": "BX"}, {"ruleType": "autoCount", "digitCount": 12}]),
         f"{RULE}[1].digitCount", "digitCount must be 1-9"),
        (serial([{"ruleType": "autoCount"}, {"ruleType": "date"}, {"ruleType": "autoCount"}]), f"{RULE}[2]",
         "exactly one autoCount part, not 2"),
        (serial([{"ruleType": "date", "timeZone": "+8"}, {"ruleType": "date", "timeZone": "+9"},
                 {"ruleType": "autoCount"}]), f"{RULE}[1].timeZone", "the same timeZone"),
        (serial([{"ruleType": "date", "dateFormat": "HH"}, {"ruleType": "autoCount", "resetPeriod": "day"}]),
         f"{RULE}[1].resetPeriod", "starts again each day"),
        (serial([{"ruleType": "autoCount"}, {"ruleType": "form", "formField": "tableField_t"}]),
         f"{RULE}[1].formField", "is not a top-level text"),
        (serial([{"ruleType": "autoCount"}, "BX"]), f"{RULE}[1]", "is an object with a ruleType"),
        # An empty text written as {zh_CN, en_US}: its zh_CN.
        (mutate(base(unique()), f"{FORM}.fields[0].label", {"zh_CN": " ", "en_US": "A"}),
         f"{FORM}.fields[0].label.zh_CN", "needs a label"),
        (mutate(base(unique()), f"{FORM}.title", {"zh_CN": "", "en_US": "Form"}), f"{FORM}.title.zh_CN",
         "non-empty text"),
        # A text-or-mapping written as a mapping: its own error, not the text's.
        (mutate(base(unique()), f"{FORM}.fields[0].label", {"zh_CN": "A", "colour": "red"}),
         f"{FORM}.fields[0].label.colour", "Extra inputs"),
        # A combination of searchIndexes: the field that cannot be in one.
        (mutate(base(unique()), f"{FORM}.searchIndexes", [["textField_a", "tableField_t"]]),
         f"{FORM}.searchIndexes[0][1]", "'tableField_t' is not a top-level field"),
        # A process condition: its key at fault.
        (process({"field": "numberField_nope", "op": "gt", "value": 3}),
         "apps[0].forms[1].process.nodes[0].route.branches[0].when.field", "unknown field numberField_nope"),
        (process({"or": [{"field": "numberField_days", "op": "gt", "value": 3},
                         {"field": "numberField_days", "op": "gt", "value": "many"}]}),
         "apps[0].forms[1].process.nodes[0].route.branches[0].when.or[1].value", "expects a number"),
        (process({"field": "numberField_days", "op": "like", "value": "3"}),
         "apps[0].forms[1].process.nodes[0].route.branches[0].when.op", "like is not supported on numbers"),
        (process({"field": "numberField_days", "op": "gt", "value": 3, "parent": "textField_reason"}),
         "apps[0].forms[1].process.nodes[0].route.branches[0].when.parent", "is not a sub-table"),
        # An entry of a list named twice: the second listing (found in the bundle itself).
        (mutate(base(unique()), "users[1].departments", [2, 1, 2]), "users[1].departments[2]", "names 2 twice"),
        (mutate(base(unique()), "departments[1].managers", ["m", "m"]), "departments[1].managers[1]",
         "names 'm' twice"),
        (mutate(base(unique()), "roles[0].members", ["e", "m", "e"]), "roles[0].members[2]", "names 'e' twice"),
        (mutate(base(unique()), "apps[0].admins", ["m", "m"]), "apps[0].admins[1]", "names 'm' twice"),
        # Two of a kind: the key that repeats, of the item that holds it.
        (two_models(), f"{FORM}.modelName", "two forms are the data model 'same'"),
        (signing_in_as_m(), "users[1].username", "two users sign in as 'm'"),
        (callbacks({"kind": "stream", "tags": ["*"]}, {"kind": "stream", "tags": ["*"]}), "callbacks[0].kind",
         "two stream callbacks"),
        (callbacks({"kind": "stream", "tags": ["bpms_task_change", "nope"]}), "callbacks[0].tags[1]",
         "unknown event type 'nope'"),
        # A credential's pair: the key that does not belong (or is missing).
        (credential(appKey="k-1", secretKey="secret-0001"), "credentials[0].secretKey", "secretKey goes with"),
        (credential(secretId="k-1", appSecret="secret-0001"), "credentials[0].appSecret", "appSecret goes with"),
        (credential(appKey="k-1", secretId="k-2"), "credentials[0].secretId", "either appKey"),
        (credential(appSecret="secret-0001"), "credentials[0].appKey", "either appKey"),
    ],
)  # fmt: skip
def test_a_refused_bundle_names_the_exact_path(bundle: dict[str, Any], error_path: str, words: str) -> None:
    with pytest.raises(BundleError) as err:
        parse_bundle(bundle, source="org.yaml")
    assert err.value.path == error_path, err.value.message
    assert words in err.value.problem, err.value.message


def with_template(**template: Any) -> dict[str, Any]:
    """The base bundle whose form is data model ``expense`` (fields ``title`` and ``items``) with one query
    template ``t1`` (its where, parameters and order as given, else one search by title)."""
    bundle = base(unique())
    form = bundle["apps"][0]["forms"][0]
    form["modelName"] = "expense"
    form["fields"][0]["alias"] = "title"
    form["fields"][1]["alias"] = "items"
    bundle["weda"] = {
        "envId": "env-" + bundle["corp"]["corpId"],
        "queryTemplates": [{"name": "t1", "model": "expense", "where": {"title": {"$eq": "{{q}}"}},
                            "parameters": [{"key": "q", "type": "STRING"}], **template}],
    }  # fmt: skip
    return bundle


def stream(**secrets_: str) -> dict[str, Any]:
    return callbacks({"kind": "stream", "tags": ["*"], **secrets_})


def weda_credential(**keys: str) -> dict[str, Any]:
    bundle = base(unique())
    bundle["credentials"].append(keys)
    return bundle


def same_process_key() -> dict[str, Any]:
    bundle = process({"field": "numberField_days", "op": "gt", "value": 3})
    other = {**bundle["apps"][0], "appType": bundle["apps"][0]["appType"] + "_2"}
    form = bundle["apps"][0]["forms"][1]
    other["forms"] = [
        {
            **form,
            "formUuid": form["formUuid"] + "-2",
            "process": {**form["process"], "processCode": form["process"]["processCode"] + "2"},
        }
    ]
    bundle["apps"].append(other)
    return bundle  # fmt: skip


T = "weda.queryTemplates[0]"
Q = {"key": "q", "type": "STRING"}


@pytest.mark.parametrize(
    ("bundle", "error_path", "words"),
    [
        # corp.weda.envId is no key of a bundle: weda is at its top.
        (mutate(base(unique()), "weda", {"envId": "env/" + secrets.token_hex(3)}), "weda.envId", "contains a /"),
        # A callback's secrets by their keys.
        (callbacks({"tags": ["*"], "url": "https://x.example/cb", "token": "tok-1234", "aesKey": AES[:42]}),
         "callbacks[0].aesKey", "exactly 43 letters and digits"),
        (stream(url="https://x.example/cb"), "callbacks[0].url", "a Stream subscription has no url"),
        (stream(aesKey=AES), "callbacks[0].aesKey", "a Stream subscription has no url"),
        # A query template: the place in its where tree or parameters that check_template names (a where tree or
        # an order its model refuses names the template: that check is WeDa's).
        (with_template(where={"title": {"$eq": "pre-{{q}}"}}), f"{T}.where.title.$eq",
         "a placeholder must be the whole value"),
        (with_template(where={"title": {"$eq": "{{q}}"}, "$or": [{"title": "{{ kind }}"}]}), f"{T}.where.$or[0].title",
         "undeclared parameters: kind"),
        (with_template(parameters=[Q, {"key": "min", "type": "NUMBER"}]), f"{T}.parameters[1]",
         "parameters not used in where: min"),
        (with_template(parameters=[Q, Q]), f"{T}.parameters[1].key", "must be a unique identifier"),
        (with_template(where={"title": "{{q}}", "items": "{{n}}"},
                       parameters=[Q, {"key": "n", "type": "NUMBER", "default": "many"}]),
         f"{T}.parameters[1].default", "is not a value of that type"),
        # A WeDa credential's keys are secretId and secretKey.
        (weda_credential(secretId="weda/1", secretKey="secret-0001"), "credentials[1].secretId", "a client id must"),
        (weda_credential(secretId="weda-" + secrets.token_hex(3)), "credentials[1].secretKey",
         "needs a secret (secretKey)"),
        # An app's empty Chinese name; a process key another form of the corp has.
        (mutate(base(unique()), "apps[0].name", {"zh_CN": "", "en_US": "App"}), "apps[0].name.zh_CN",
         "non-empty text"),
        (same_process_key(), "apps[1].forms[0].process.processKey", "process key leave is already"),
    ],
)  # fmt: skip
async def test_a_refused_load_names_the_exact_path(
    db: Database, bundle: dict[str, Any], error_path: str, words: str
) -> None:
    with pytest.raises(BundleError) as err:
        await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(bundle, source="org.yaml"), source="org.yaml")
    assert err.value.path == error_path, err.value.message
    assert words in err.value.problem, err.value.message
    assert await db.fetchval("SELECT count(*) FROM corp WHERE corp_id = :c", {"c": bundle["corp"]["corpId"]}) == 0
