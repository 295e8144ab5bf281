"""Deactivating a user, at the core level: refused while he holds open tasks unless a successor is named, who then
gets every one of them in the same transaction (or, if one cannot be handed over, nothing changes at all); a
deactivated user can no longer act, be named in a record or be resolved as an approver; he can be reactivated."""

from __future__ import annotations

import pytest

from tests.core.org.conftest import ACTOR, Org
from zida.core.errors import Conflict, InvalidArgument, NotFound, ZidaError
from zida.core.org import actions
from zida.core.org.repository import find_users, get_user
from zida.core.records.actions import save_form_instance
from zida.core.workflow import queries as approvals

pytestmark = pytest.mark.anyio


async def test_a_user_holding_tasks_cannot_be_deactivated_without_a_successor(org: Org) -> None:
    first = await org.start("OR", ["li"])
    second = await org.start("SEQ", ["li", "chen"])
    before = await org.marks()
    for deactivate in (
        actions.deactivate_user(org.db, org.corp, "li", actor=ACTOR),
        actions.update_user(org.db, org.corp, "li", {"active": False}, actor=ACTOR),
    ):
        with pytest.raises(Conflict) as raised:
            await deactivate
        assert raised.value.reason == "user.holds_tasks" and raised.value.param == "hand_over_to"
        assert "2 open tasks in 2 process instances" in raised.value.message
        assert first in raised.value.message and second in raised.value.message
    assert await org.marks() == before
    assert (await get_user(org.db, org.corp.pk, "li")).active  # type: ignore[union-attr]
    assert await org.running(first) == ["li"] and await org.running(second) == ["li"]


async def test_with_a_successor_every_open_task_is_handed_over_in_the_same_transaction(org: Org) -> None:
    first = await org.start("OR", ["li"])
    second = await org.start("SEQ", ["li", "chen"])
    event_mark = (await org.marks())[1]
    done = await actions.deactivate_user(
        org.db, org.corp, "li", actor=ACTOR, hand_over_to="zhou", acting_user="adm", remark="离职交接"
    )
    assert not done.user.active and len(done.handed_over) == 2
    assert await org.running(first) == ["zhou"] and await org.running(second) == ["zhou"]
    (entry,) = [e for e in await org.audit("user", "li") if e.action != "created"]
    assert (entry.topic, entry.actor, entry.changes) == (
        "user.deactivated",
        ACTOR,
        {"active": {"old": True, "new": False}},
    )
    topics = [(e.topic, e.actor) for e in await org.events(after=event_mark)]
    assert topics.count(("task.finished", "adm")) == 2 and topics.count(("task.created", "adm")) == 2
    assert ("user.deactivated", ACTOR) in topics
    _, history, _ = await approvals.inspect_instance(org.db, org.corp.pk, first)
    redirect = [r for r in history if r.kind == "redirect"]
    assert [(r.actor_user_id, r.user_ids, r.remark, r.on_behalf) for r in redirect] == [
        ("adm", ("zhou",), "离职交接", True)
    ]
    # The successor decides; the sequential line then goes on to chen.
    await org.execute(first, "zhou")
    await org.execute(second, "zhou")
    assert await org.status(first) == "COMPLETED" and await org.running(second) == ["chen"]
    assert await org.problems() == []


async def test_without_an_acting_user_the_history_names_the_leaver_never_the_credential(org: Org) -> None:
    # The approval's history (and DingTalk's operationRecords[].userId) names users: "credential:…" leaked there.
    instance = await org.start("OR", ["li"])
    await actions.deactivate_user(org.db, org.corp, "li", actor=ACTOR, hand_over_to="zhou")
    _, history, _ = await approvals.inspect_instance(org.db, org.corp.pk, instance)
    assert [(r.actor_user_id, r.user_ids, r.on_behalf) for r in history if r.kind == "redirect"] == [
        ("li", ("zhou",), False)  # his own tasks, transferred in his name
    ]


async def test_a_task_that_cannot_be_handed_over_leaves_everything_as_it_was(org: Org) -> None:
    movable = await org.start("OR", ["li"])
    blocked = await org.start("OR", ["li", "zhou"])  # zhou already has a turn at that node
    before = await org.marks()
    with pytest.raises(Conflict) as raised:
        await actions.deactivate_user(org.db, org.corp, "li", actor=ACTOR, hand_over_to="zhou")
    assert raised.value.reason == "task.already_assignee"
    assert "cannot be handed over to zhou" in raised.value.message
    assert await org.marks() == before
    assert (await get_user(org.db, org.corp.pk, "li")).active  # type: ignore[union-attr]
    assert await org.running(movable) == ["li"] and await org.running(blocked) == ["li", "zhou"]
    assert await org.problems() == []


@pytest.mark.parametrize(
    ("successor", "acting", "error", "reason"),
    [
        ("ghost", None, NotFound, "user.not_found"),
        ("li", None, InvalidArgument, "user.hand_over_to_self"),
        ("chen", None, InvalidArgument, "user.inactive"),
        ("zhou", "ghost", NotFound, "user.not_found"),
    ],
)
async def test_the_successor_is_another_active_user(
    org: Org, successor: str, acting: str | None, error: type[ZidaError], reason: str
) -> None:
    await actions.deactivate_user(org.db, org.corp, "chen", actor=ACTOR)
    iid = await org.start("OR", ["li"])
    before = await org.marks()
    with pytest.raises(error) as raised:
        await actions.deactivate_user(org.db, org.corp, "li", actor=ACTOR, hand_over_to=successor, acting_user=acting)
    assert raised.value.reason == reason, raised.value.message
    assert await org.marks() == before and await org.running(iid) == ["li"]
    with pytest.raises(NotFound):
        await actions.deactivate_user(org.db, org.corp, "ghost", actor=ACTOR)


async def test_a_deactivated_user_cannot_act_nor_be_named_anew(org: Org) -> None:
    note = await save_form_instance(
        org.db, await org.actor("boss"), org.form("NOTE"), {"textField_note": "旧", "employeeField_owner": ["chen"]}
    )
    await actions.deactivate_user(org.db, org.corp, "chen", actor=ACTOR)
    with pytest.raises(NotFound) as raised:
        await org.actor("chen")
    assert raised.value.reason == "user.not_found"
    with pytest.raises(InvalidArgument) as invalid:
        await save_form_instance(org.db, await org.actor("boss"), org.form("NOTE"), {"employeeField_owner": ["chen"]})
    assert invalid.value.reason == "form_data.unknown_user"
    with pytest.raises(InvalidArgument):
        await org.start("OR", ["chen"])
    # What already names him still renders him.
    assert note.data["employeeField_owner"] == ["chen"]
    chen = (await find_users(org.db, org.corp.pk, ["chen"]))["chen"]
    assert (chen.name, chen.active) == ("陈", False)


async def test_a_deactivated_user_is_never_resolved_as_a_new_approver(org: Org) -> None:
    await actions.deactivate_user(org.db, org.corp, "sun", actor=ACTOR)
    assert await org.running(await org.start("ROLE")) == ["li"]  # role 1 is li and sun
    await actions.deactivate_user(org.db, org.corp, "li", actor=ACTOR, hand_over_to="zhou")
    with pytest.raises(InvalidArgument) as raised:  # the node fails when nobody resolves
        await org.start("ROLE")
    assert raised.value.reason == "process.no_approver"
    await actions.deactivate_user(org.db, org.corp, "mgr", actor=ACTOR)
    # chen's manager is deactivated: the node's policy (app admin) applies.
    assert await org.running(await org.start("MGR", user="chen")) == ["adm"]
    assert await org.problems() == []


async def test_tasks_that_reach_him_later_are_handed_over_by_deactivating_him_again(org: Org) -> None:
    iid = await org.start("SEQ", ["zhou", "chen"])
    done = await actions.deactivate_user(org.db, org.corp, "chen", actor=ACTOR)  # holds nothing yet
    assert done.handed_over == ()
    await org.execute(iid, "zhou")
    assert await org.running(iid) == ["chen"]  # the line was resolved at start
    before = await org.marks()
    again = await actions.deactivate_user(org.db, org.corp, "chen", actor=ACTOR)  # no successor: nothing to do
    assert again.handed_over == () and await org.marks() == before
    again = await actions.deactivate_user(org.db, org.corp, "chen", actor=ACTOR, hand_over_to="sun")
    assert len(again.handed_over) == 1 and await org.running(iid) == ["sun"]
    assert [e.action for e in await org.audit("user", "chen")] == ["created", "deactivated"]
    await org.execute(iid, "sun")
    assert await org.status(iid) == "COMPLETED"
    assert await org.problems() == []


async def test_a_deactivated_user_can_be_reactivated(org: Org) -> None:
    await actions.deactivate_user(org.db, org.corp, "sun", actor=ACTOR)
    user = await actions.update_user(org.db, org.corp, "sun", {"active": True}, actor=ACTOR)
    assert user.active and (await org.actor("sun")).user_id == "sun"
    assert await org.running(await org.start("ROLE")) == ["li", "sun"]
    assert [e.topic for e in await org.audit("user", "sun")] == ["user.created", "user.deactivated", "user.reactivated"]
