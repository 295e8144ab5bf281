"""App and form actions at the core level: create and update apps (secret, admins), create forms and give them new
versions; each change with its audit row and event, never a secret in them; bad input changes nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.core.org.conftest import ACTOR, Org
from zida.bundle.loader import form_spec
from zida.bundle.schema import FormIn
from zida.core.access.members import app_secret_digest, find_app_membership
from zida.core.apps import actions
from zida.core.apps.actions import AppSpec, FormSpec, check_form
from zida.core.apps.models import Field
from zida.core.apps.queries import find_app, find_form_definition, get_form, list_apps
from zida.core.errors import Conflict, InvalidArgument, NotFound, ZidaError
from zida.core.records.actions import save_form_instance

pytestmark = pytest.mark.anyio


def form(uuid: str, **extra: Any) -> FormSpec:
    raw: dict[str, Any] = {
        "formUuid": uuid,
        "title": "表单",
        "fields": [
            {"fieldId": "textField_a", "component": "TextField", "label": "A", "searchable": True},
            {"fieldId": "selectField_k", "component": "SelectField", "label": "K", "options": ["x", "y"]},
        ],
        **extra,
    }
    return form_spec(FormIn.model_validate(raw))


async def secret_matches(o: Org, app_type: str, secret: str) -> bool:
    found = await find_app_membership(o.db, o.corp.pk, app_type=app_type, app_pk=None, user_id="adm")
    assert found is not None
    return found.secret_digest == app_secret_digest(o.box, secret)


async def test_an_app_is_created_with_a_generated_code_and_secret_shown_once(org: Org) -> None:
    created = await actions.create_app(
        org.db, org.box, org.corp, AppSpec(None, "新应用", admins=("adm", "li")), actor=ACTOR
    )
    app = created.details.app
    assert app.app_type.startswith("APP_") and created.details.admins == ("adm", "li")
    assert app.creator_user_id == "adm" and app.status == "ONLINE"
    assert await secret_matches(org, app.app_type, created.secret)
    stored = await org.db.fetchrow("SELECT secret_enc, secret_digest FROM app WHERE id = :a", {"a": app.pk})
    assert stored is not None and created.secret not in stored["secret_enc"] + stored["secret_digest"]
    (entry,) = await org.audit("app", app.app_type)
    assert entry.changes["secret"] == {"changed": True} and entry.changes["admins"] == {"new": ["adm", "li"]}
    assert created.secret not in repr(entry.changes) + repr([dict(e.data) for e in await org.events()])


async def test_an_app_update_changes_its_secret_and_admins(org: Org) -> None:
    before = await org.marks()
    same = await actions.update_app(org.db, org.box, org.corp, org.app_type, {"name": "应用"}, actor=ACTOR)
    assert same.app.name == "应用" and await org.marks() == before
    updated = await actions.update_app(
        org.db,
        org.box,
        org.corp,
        org.app_type,
        {"secret": "ST-ORG-SECRET-02", "admins": ("adm", "boss"), "status": "OFFLINE"},
        actor=ACTOR,
    )
    assert updated.admins == ("adm", "boss") and updated.app.status == "OFFLINE"
    assert await secret_matches(org, org.app_type, "ST-ORG-SECRET-02")
    assert not await secret_matches(org, org.app_type, "ST-ORG-SECRET-01")
    assert (await org.actor("boss")).is_app_admin
    (entry,) = [e for e in await org.audit("app", org.app_type) if e.action == "updated"]
    assert entry.changes == {
        "status": {"old": "ONLINE", "new": "OFFLINE"},
        "admins": {"old": ["adm"], "new": ["adm", "boss"]},
        "secret": {"changed": True},
    }


@pytest.mark.parametrize(
    ("call", "error", "reason"),
    [
        (
            lambda o: actions.create_app(o.db, o.box, o.corp, AppSpec(o.app_type, "重"), actor=ACTOR),
            Conflict,
            "app.exists",
        ),
        (
            lambda o: actions.create_app(o.db, o.box, o.corp, AppSpec("APP_A1", "别家"), actor=ACTOR),
            Conflict,
            "app.exists",
        ),
        (
            lambda o: actions.create_app(o.db, o.box, o.corp, AppSpec(None, "无", admins=("ghost",)), actor=ACTOR),
            InvalidArgument,
            "user.unknown",
        ),
        (
            lambda o: actions.create_app(o.db, o.box, o.corp, AppSpec("NOPE", "坏"), actor=ACTOR),
            InvalidArgument,
            "argument.invalid",
        ),
        (
            lambda o: actions.create_app(o.db, o.box, o.corp, AppSpec(None, "短", secret="short"), actor=ACTOR),
            InvalidArgument,
            "argument.invalid",
        ),
        (
            lambda o: actions.update_app(o.db, o.box, o.corp, "APP_A1", {"name": "偷"}, actor=ACTOR),
            NotFound,
            "app.not_found",
        ),
        (
            lambda o: actions.update_app(o.db, o.box, o.corp, o.app_type, {"status": "GONE"}, actor=ACTOR),
            InvalidArgument,
            "argument.invalid",
        ),
    ],
)
async def test_bad_app_input_changes_nothing(org: Org, call: Any, error: type[ZidaError], reason: str) -> None:
    before = await org.marks()
    with pytest.raises(error) as raised:
        await call(org)
    assert raised.value.reason == reason, raised.value.message
    assert await org.marks() == before


async def test_forms_are_created_and_get_a_new_version_when_their_schema_changes(org: Org) -> None:
    uuid = f"FORM-{org.corp.corp_id.upper()}-NEW"
    created = await actions.put_form(org.db, org.corp, org.app_type, form(uuid), actor=ACTOR)
    assert (created.outcome, created.version, created.new_version) == ("created", 1, True)
    before = await org.marks()
    again = await actions.put_form(org.db, org.corp, org.app_type, form(uuid), actor=ACTOR)
    assert (again.outcome, again.version) == ("unchanged", 1) and await org.marks() == before
    retitled = await actions.put_form(org.db, org.corp, org.app_type, form(uuid, title="新标题"), actor=ACTOR)
    assert (retitled.outcome, retitled.version, retitled.new_version) == ("updated", 1, False)
    record = await save_form_instance(org.db, await org.actor("adm"), uuid, {"textField_a": "v1 的记录"})
    retitled_spec = form(uuid, title="新标题")
    extra = Field(field_id="numberField_n", component="NumberField", label_zh="N")
    grown = replace(retitled_spec, fields=(*retitled_spec.fields, extra))
    changed = await actions.put_form(org.db, org.corp, org.app_type, grown, actor=ACTOR)
    assert (changed.outcome, changed.version, changed.new_version) == ("updated", 2, True)
    current = await get_form(org.db, await org.actor("adm"), uuid)  # the cache was emptied
    assert current.version == 2 and current.field("numberField_n") is not None
    assert record.form_version == 1
    entries = await org.audit("form", uuid)
    assert [e.action for e in entries] == ["created", "updated", "updated"]
    assert entries[1].changes == {"title": {"old": "表单", "new": "新标题"}}
    assert entries[2].changes["version"] == {"old": 1, "new": 2} and "fields" in entries[2].changes
    definition = await find_form_definition(org.db, org.corp.pk, uuid)
    assert definition is not None and definition.process is None and definition.form.version == 2
    details = await find_app(org.db, org.corp.pk, org.app_type)
    assert details is not None and uuid in [f.form_uuid for f in details.forms]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            {"fields": [{"fieldId": "textField_a", "component": "FooField", "label": "A"}]},
            "fields[0].component",
            "unknown",
        ),
        (
            {"fields": [{"fieldId": "t", "component": "TableField", "label": "T"}]},
            "fields[0].fields",
            "at least one child",
        ),
        (
            {
                "fields": [
                    {"fieldId": "a", "component": "TextField", "label": "A"},
                    {"fieldId": "a", "component": "TextField", "label": "B"},
                ]
            },
            "fields[1].fieldId",
            "duplicate",
        ),
        ({"type": "process"}, "process", "needs a process block"),
        (
            {
                "type": "process",
                "process": {"processCode": "TPROC--X", "name": "p", "nodes": [{"approver": {"id": "n", "name": "n"}}]},
            },
            "process.nodes[0].approver.who",
            "is required",
        ),
    ],
)
def test_form_schemas_are_checked_as_a_whole(change: dict[str, Any], path: str, words: str) -> None:
    raw = {"formUuid": "FORM-CHECK", "title": "检查", **change}
    with pytest.raises(InvalidArgument) as raised:
        check_form(form_spec(FormIn.model_validate(raw)))
    assert raised.value.details["path"] == path and words in raised.value.message, raised.value.message


@pytest.mark.parametrize(
    ("who", "reason", "words"),
    [
        ({"users": ["li", "ghost"]}, "form.unknown_user", "process.nodes[0].approver.who.users[1]: user ghost"),
        ({"role": 404}, "form.unknown_role", "role 404"),
    ],
)
async def test_a_process_may_name_only_the_corps_users_and_roles(
    org: Org, who: dict[str, Any], reason: str, words: str
) -> None:
    uuid = f"FORM-{org.corp.corp_id.upper()}-P"
    process = {"processCode": "TPROC--NEWP", "name": "p", "nodes": [{"approver": {"id": "n", "name": "n", "who": who}}]}
    before = await org.marks()
    with pytest.raises(InvalidArgument) as raised:
        await actions.put_form(org.db, org.corp, org.app_type, form(uuid, type="process", process=process), actor=ACTOR)
    assert raised.value.reason == reason and words in raised.value.message, raised.value.message
    assert await org.marks() == before and await find_form_definition(org.db, org.corp.pk, uuid) is None


async def test_bad_form_writes_change_nothing(org: Org) -> None:
    await save_form_instance(org.db, await org.actor("adm"), org.form("NOTE"), {"textField_note": "有记录"})
    before = await org.marks()
    with pytest.raises(NotFound):  # another corp's app
        await actions.put_form(org.db, org.corp, "APP_A1", form("FORM-ELSEWHERE"), actor=ACTOR)
    with pytest.raises(Conflict) as raised:  # a form of corp A's app
        await actions.put_form(org.db, org.corp, org.app_type, form("FORM-A1ALL"), actor=ACTOR)
    assert raised.value.reason == "form.taken"
    taken = {
        "processCode": "TPROC--" + org.form("OR")[5:],
        "name": "p",
        "nodes": [{"approver": {"id": "n", "name": "n", "who": {"users": ["li"]}}}],
    }
    with pytest.raises(Conflict) as raised:
        await actions.put_form(
            org.db, org.corp, org.app_type, form(org.form("X"), type="process", process=taken), actor=ACTOR
        )
    assert raised.value.reason == "form.process_code_taken" and org.form("OR") in raised.value.message
    note = form(org.form("NOTE"), type="process", process={**taken, "processCode": "TPROC--NOTE2"})
    with pytest.raises(Conflict) as raised:
        await actions.put_form(org.db, org.corp, org.app_type, note, actor=ACTOR)
    assert raised.value.reason == "form.type_locked" and "has records" in raised.value.message
    assert await org.marks() == before


async def test_a_process_key_names_one_process_of_the_corp(org: Org) -> None:
    def process(code: str, key: str | None) -> dict[str, Any]:
        keyed = {"processKey": key} if key is not None else {}
        approver = {"approver": {"id": "n", "name": "n", "who": {"users": ["li"]}}}
        return {"processCode": code, "name": "p", "nodes": [approver], **keyed}

    first = form(org.form("KEY1"), type="process", process=process("TPROC--KEY1", "weda_key"))
    await actions.put_form(org.db, org.corp, org.app_type, first, actor=ACTOR)
    stored = await find_form_definition(org.db, org.corp.pk, org.form("KEY1"))
    assert stored is not None and stored.process is not None and stored.process["processKey"] == "weda_key"
    await actions.put_form(org.db, org.corp, org.app_type, first, actor=ACTOR)  # its own key: no conflict
    before = await org.marks()
    second = form(org.form("KEY2"), type="process", process=process("TPROC--KEY2", "weda_key"))
    with pytest.raises(Conflict) as raised:
        await actions.put_form(org.db, org.corp, org.app_type, second, actor=ACTOR)
    assert raised.value.reason == "form.process_key_taken" and org.form("KEY1") in raised.value.message
    for bad in ("", "has space", "-leading", "x" * 65, 12):
        with pytest.raises(InvalidArgument, match="processKey"):
            check_form(form(org.form("KEY3"), type="process", process=process("TPROC--KEY3", bad)))  # type: ignore[arg-type]
    assert await org.marks() == before


async def test_the_app_name_keyword_ignores_case_on_both_databases(org: Org) -> None:
    created = await actions.create_app(
        org.db, org.box, org.corp, AppSpec(None, "Demo CRM 客户", admins=("adm",)), actor=ACTOR
    )
    for keyword in ("demo", "DEMO crm", "crm 客"):
        total, apps = await list_apps(
            org.db, org.box, org.corp.pk, "adm", keyword=keyword, created_by_me=False, page=1, size=50
        )
        assert [a.app.app_type for a in apps] == [created.details.app.app_type] and total == 1, keyword
