"""``zida load`` goes through the core's actions: every object it creates or changes gets its audit row and event
(actor ``bundle:<file>``, never a secret), loading the same bundle again writes nothing at all, and what an action
refuses (a user holding tasks deactivated by the bundle) fails the whole load with the bundle path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.conftest import SECRET_KEY
from tests.core.bundle.test_bundle import base, unique
from zida.bundle.dumper import dump_bundle
from zida.bundle.loader import BundleError, load_bundle, parse_bundle
from zida.core.access.members import app_actor
from zida.core.audit import list_audit
from zida.core.events.outbox import pending_events
from zida.core.workflow.actions import start_instance
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio


async def corp_pk(db: Database, corp_id: str) -> int:
    return int(await db.fetchval("SELECT id FROM corp WHERE corp_id = :c", {"c": corp_id}))


async def written(db: Database, corp_id: str) -> tuple[int, int]:
    pk = await corp_pk(db, corp_id)
    audit = await db.fetchval("SELECT count(*) FROM audit_log WHERE corp_pk = :c", {"c": pk})
    events = await db.fetchval("SELECT count(*) FROM outbox_event WHERE corp_pk = :c", {"c": pk})
    return int(audit), int(events)


async def test_a_load_records_each_change_and_a_reload_writes_nothing(db: Database) -> None:
    corp = unique()
    bundle = base(corp)
    box = SecretBox(SECRET_KEY)
    await load_bundle(db, box, parse_bundle(bundle), source="org.yaml")
    entries = await list_audit(db, await corp_pk(db, corp), limit=1000)
    created = ["corp", "department", "department", "user", "user", "role", "credential", "app", "form"]
    assert sorted(e.topic for e in entries) == sorted(f"{kind}.created" for kind in created)
    assert {e.actor for e in entries} == {"bundle:org.yaml"}
    events = await pending_events(db, await corp_pk(db, corp), limit=1000)
    assert [e.topic for e in events] == [e.topic for e in entries]
    text = repr([e.changes for e in entries]) + repr([dict(e.data) for e in events])
    for secret in ("secret-0001", "ST-SECRET-0001", "code-1", "pw-123456", "scrypt$"):
        assert secret not in text
    form = next(e for e in entries if e.topic == "form.created")
    assert form.changes["version"] == {"new": 1} and form.changes["form_type"] == {"new": "receipt"}

    before = await written(db, corp)
    report = await load_bundle(db, box, parse_bundle(bundle), source="org.yaml")
    assert not report.created and not report.updated and not report.scopes
    assert await written(db, corp) == before

    changed = copy.deepcopy(bundle)
    changed["users"][1]["title"] = "组长"
    changed["credentials"][0]["appSecret"] = "secret-0002"
    report = await load_bundle(db, box, parse_bundle(changed), source="org.yaml")
    assert report.updated == {"users": 1, "credentials": 1}
    assert report.scopes == {"org", "apps", "credentials"}
    latest = (await list_audit(db, await corp_pk(db, corp), limit=1000))[-2:]
    assert [(e.topic, e.changes) for e in latest] == [
        ("user.updated", {"title": {"old": None, "new": "组长"}}),
        ("credential.rotated", {"secret": {"changed": True}}),
    ]


async def test_a_bundle_cannot_deactivate_a_user_who_holds_tasks(db: Database) -> None:
    corp = unique()
    bundle = base(corp)
    s = corp.upper()
    bundle["apps"][0]["forms"].append(
        {
            "formUuid": f"FORM-{s}-P",
            "title": "流程",
            "type": "process",
            "fields": [{"fieldId": "textField_p", "component": "TextField", "label": "P"}],
            "process": {
                "processCode": f"TPROC--{s}",
                "name": "流程",
                "nodes": [{"approver": {"id": "n1", "name": "n1", "who": {"users": ["e"]}}}],
            },
        }
    )
    box = SecretBox(SECRET_KEY)
    await load_bundle(db, box, parse_bundle(bundle))
    app_pk = int(await db.fetchval("SELECT id FROM app WHERE app_type = :t", {"t": f"APP_{s}"}))
    actor = await app_actor(db, await corp_pk(db, corp), app_pk, "m")
    inst = await start_instance(db, actor, f"FORM-{s}-P", {"textField_p": "x"})
    leaving: dict[str, Any] = copy.deepcopy(bundle)
    leaving["users"][1]["active"] = False
    leaving["users"][0]["title"] = "改了"  # loaded before the refusal: rolled back with it
    before = await written(db, corp)
    with pytest.raises(BundleError) as raised:
        await load_bundle(db, box, parse_bundle(leaving), source="org.yaml")
    assert raised.value.path == "users[1].active", raised.value.message
    assert inst.instance_id in raised.value.message and "handOverTo" in raised.value.message
    assert await written(db, corp) == before
    assert (
        await db.fetchval(
            "SELECT title FROM org_user WHERE user_id = 'm' AND corp_pk = :c", {"c": await corp_pk(db, corp)}
        )
        is None
    )


async def test_deactivated_users_are_dumped_and_load_back_unchanged(db: Database) -> None:
    corp = unique()
    bundle = base(corp)
    bundle["users"][1]["active"] = False
    box = SecretBox(SECRET_KEY)
    await load_bundle(db, box, parse_bundle(bundle))
    dumped = await dump_bundle(db, corp)
    assert [u.get("active") for u in dumped["users"]] == [None, False]
    before = await written(db, corp)
    report = await load_bundle(db, box, parse_bundle(dumped))
    assert not report.created and not report.updated and await written(db, corp) == before
    # A bundle that does not say ``active`` keeps what the user is.
    report = await load_bundle(db, box, parse_bundle(base(corp)))
    assert not report.updated
    assert not await db.fetchval(
        "SELECT active FROM org_user WHERE user_id = 'e' AND corp_pk = :c", {"c": await corp_pk(db, corp)}
    )


async def test_a_yaml_dump_loads_back_unchanged_with_line_separators_and_empty_english(db: Database) -> None:
    # YAML folded NEL in a quoted name, and an empty English text was dumped as none: both came back as changes.
    from zida.cli import _BundleDumper

    corp = unique()
    bundle = base(corp)
    bundle["users"][0]["name"] = "经\x85理"
    bundle["users"][1]["name"] = "员\u2028工"
    bundle["apps"][0]["name"] = {"zh_CN": "应用", "en_US": ""}
    box = SecretBox(SECRET_KEY)
    await load_bundle(db, box, parse_bundle(bundle))
    text = yaml.dump(await dump_bundle(db, corp), Dumper=_BundleDumper, allow_unicode=True, sort_keys=False)
    before = await written(db, corp)
    report = await load_bundle(db, box, parse_bundle(yaml.safe_load(text)))
    assert not report.created and not report.updated and await written(db, corp) == before
    rows = await db.fetch("SELECT user_id, name FROM org_user WHERE corp_pk = :c", {"c": await corp_pk(db, corp)})
    names = {r["user_id"]: r["name"] for r in rows}
    assert names["m"] == "经\x85理" and names["e"] == "员\u2028工"


async def test_texts_written_with_surrounding_blanks_are_stored_trimmed_so_a_dump_loads_back(db: Database) -> None:
    # The bundle trims every text; the admin and contacts APIs stored "  Padded  " as given, so each reload of a
    # dump "updated" those users and departments.
    from zida.core.org import actions
    from zida.core.org.actions import DepartmentSpec, UserSpec
    from zida.core.org.models import CorpRef

    corp = unique()
    box = SecretBox(SECRET_KEY)
    await load_bundle(db, box, parse_bundle(base(corp)))
    ref = CorpRef(await corp_pk(db, corp), corp)
    await actions.create_user(db, ref, UserSpec("p", "  Padded  ", title="Eng ", departments=(2,)), actor="test")
    await actions.create_department(db, ref, DepartmentSpec(3, "\u00a0nbsp\u3000", parent_id=1), actor="test")
    stored = await db.fetchrow("SELECT name, title FROM org_user WHERE corp_pk = :c AND user_id = 'p'", {"c": ref.pk})
    assert stored is not None and (stored["name"], stored["title"]) == ("Padded", "Eng")
    before = await written(db, corp)
    report = await load_bundle(db, box, parse_bundle(await dump_bundle(db, corp)))
    assert not report.created and not report.updated and await written(db, corp) == before
