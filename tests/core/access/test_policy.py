"""The one access policy (``zida.core.access.policy``): who may read, change, delete and manage, as its docstring
states, and its ``readable_filter`` finding in SQL exactly the records ``can_read`` allows in Python."""

from __future__ import annotations

import secrets

import pytest

from tests.core.corp import RECORDS, REVIEW, STOCK, CorpCoreMain
from zida.core.access import policy
from zida.core.apps.queries import get_form
from zida.core.errors import NotFound, PermissionDenied
from zida.core.principals import AppActor
from zida.core.records import actions as records
from zida.core.records import queries
from zida.core.records import store as record_store
from zida.core.records.filters import Condition, Or, Page, RecordQuery
from zida.core.workflow import actions as workflow

pytestmark = pytest.mark.anyio

USERS = ("adm", "li", "liu", "wang", "chen", "sun", "zhou")


def actor(user: str, *, admin: bool = False, app_pk: int = 1) -> AppActor:
    """An actor built by hand: the pure rules need nothing from the database."""
    return AppActor(
        corp_pk=1, app_pk=app_pk, app_type="APP_X", user_pk=1, user_id=user, user_name=user, is_app_admin=admin
    )


# ----------------------------------------------------------------------------------------- the pure rules


def test_admins_search_everything_and_members_their_own_or_their_approvals() -> None:
    assert policy.readable_filter(actor("adm", admin=True), process_form=False) is None
    assert policy.readable_filter(actor("adm", admin=True), process_form=True) is None
    assert policy.readable_filter(actor("li"), process_form=False) == Condition("originator", "eq", "li")
    assert policy.readable_filter(actor("li"), process_form=True) == Or(
        (Condition("originator", "eq", "li"), Condition("participant", "eq", "li"))
    )


def test_values_are_changed_by_admins_the_originator_and_running_task_holders() -> None:
    assert policy.can_change(actor("adm", admin=True), originator="li")
    assert policy.can_change(actor("li"), originator="li")
    assert not policy.can_change(actor("liu"), originator="li")
    assert policy.can_change(actor("wang"), originator="li", running_assignees={"wang", "chen"})
    assert not policy.can_change(actor("zhou"), originator="li", running_assignees={"wang", "chen"})


def test_a_plain_record_is_deleted_by_admins_and_its_originator_a_process_record_by_admins_only() -> None:
    assert policy.can_delete(actor("adm", admin=True), originator="li", is_process=False)
    assert policy.can_delete(actor("li"), originator="li", is_process=False)
    assert not policy.can_delete(actor("liu"), originator="li", is_process=False)
    assert policy.can_delete(actor("adm", admin=True), originator="li", is_process=True)
    assert not policy.can_delete(actor("li"), originator="li", is_process=True)


def test_an_approval_is_managed_by_admins_and_its_originator() -> None:
    assert policy.can_manage_approval(actor("adm", admin=True), originator="li")
    assert policy.can_manage_approval(actor("li"), originator="li")
    assert not policy.can_manage_approval(actor("wang"), originator="li")


def test_only_admins_act_for_others_and_read_the_history_of_deleted_records() -> None:
    assert policy.can_act_for_others(actor("adm", admin=True))
    assert not policy.can_act_for_others(actor("li"))
    assert policy.reads_deleted_history(actor("adm", admin=True))
    assert not policy.reads_deleted_history(actor("li"))


# ------------------------------------------------------------------------------------ with the database


class Corp(CorpCoreMain):
    """corpCoreMain whose approvers may also hand their task on."""

    async def approve(self, instance_id: str, user: str, *, redirect_to: str | None = None) -> None:
        if redirect_to is None:
            await super().approve(instance_id, user)
        else:
            task = await self.task_of(instance_id, user)
            await workflow.redirect_task(self.db, await self.actor(user), instance_id, task, redirect_to)


async def can_read(corp: Corp, user: str, instance_id: str) -> bool:
    inst = await record_store.find_instance(corp.db, corp.corp_pk, instance_id)
    assert inst is not None
    return await policy.can_read(
        corp.db,
        await corp.actor(user),
        app_pk=inst.app_pk,
        record_id=instance_id,
        originator=inst.originator_user_id,
        is_process=inst.process_instance_id is not None,
    )


async def test_a_participant_is_whoever_has_or_had_a_task_or_was_copied(corp: Corp) -> None:
    inst = await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "参与"})
    iid = inst.instance_id

    async def participants() -> set[str]:
        return {u for u in USERS if await policy.participates(corp.db, corp.corp_pk, iid, u)}

    assert await participants() == {"wang"}  # the originator and the admins read it, but take no part
    await corp.approve(iid, "wang", redirect_to="liu")
    assert await participants() == {"wang", "liu"}
    await corp.approve(iid, "liu")
    await corp.approve(iid, "chen")
    assert await participants() == {"wang", "liu", "chen", "sun"}
    assert not await policy.participates(corp.db, corp.corp_pk + 10_000, iid, "wang")  # another corp's view


async def test_reading_a_record_follows_the_rules_of_its_kind(corp: Corp) -> None:
    (plain,) = (
        await records.save_form_instances(corp.db, await corp.actor("li"), STOCK, [{"textField_sku": "policy"}])
    ).ids
    process = (
        await workflow.start_instance(corp.db, await corp.actor("li"), REVIEW, {"textField_title": "读"})
    ).instance_id
    assert {u for u in USERS if await can_read(corp, u, plain)} == {"adm", "li"}
    assert {u for u in USERS if await can_read(corp, u, process)} == {"adm", "li", "wang"}
    # The task holders a caller already has save the query; another app's admin never reads.
    assert await policy.can_read(
        corp.db,
        await corp.actor("zhou"),
        app_pk=corp.app_pks[RECORDS],
        record_id=process,
        originator="li",
        is_process=True,
        assignees={"zhou"},
    )
    other_admin = await corp.actor("zhou", "APP_CORE_OTHER")
    assert not await policy.can_read(
        corp.db, other_admin, app_pk=corp.app_pks[RECORDS], record_id=plain, originator="li", is_process=False
    )
    with pytest.raises(NotFound):
        await policy.check_readable(
            corp.db, other_admin, app_pk=corp.app_pks[RECORDS], record_id=plain, originator="li", is_process=False
        )
    with pytest.raises(PermissionDenied) as err:
        await policy.check_readable(
            corp.db,
            await corp.actor("zhou"),
            app_pk=corp.app_pks[RECORDS],
            record_id=process,
            originator="li",
            is_process=True,
        )
    assert err.value.reason == "permission.denied" and process in err.value.message


async def test_the_readable_filter_finds_exactly_what_can_read_allows(corp: Corp) -> None:
    m = "POLICY-" + secrets.token_hex(4)
    ids = []
    for user in ("li", "liu", "adm"):
        ids += (await records.save_form_instances(corp.db, await corp.actor(user), STOCK, [{"textField_sku": m}])).ids
    flows = [
        (await workflow.start_instance(corp.db, await corp.actor(u), REVIEW, {"textField_title": m})).instance_id
        for u in ("li", "liu", "li", "chen")
    ]
    await corp.approve(flows[1], "wang")  # chen's turn
    await corp.approve(flows[2], "wang", redirect_to="zhou")  # zhou's turn, wang had one
    await corp.approve(flows[3], "wang")
    await corp.approve(flows[3], "chen")  # finished: CC'd to sun
    for form_uuid, condition, candidates in (
        (STOCK, Condition("textField_sku", "eq", m), ids),
        (REVIEW, Condition("textField_title", "eq", m), flows),
    ):
        for user in USERS:
            me = await corp.actor(user)
            form = await get_form(corp.db, me, form_uuid)
            query = RecordQuery(filter=condition, page=Page(1, 100))
            _, found = await queries.search_form_instance_ids(corp.db, me, form, query)
            allowed = [i for i in candidates if await can_read(corp, user, i)]
            assert sorted(found) == sorted(allowed), (form_uuid, user)
