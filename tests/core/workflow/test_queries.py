"""Approval queries at the core level (``zida.core.workflow.queries``): who may see an instance (app admins, its
originator, whoever has or had a task in it or was CC'd), running tasks, searches of a process form, history, and the
org-level lists (to-do, done, submitted, CC'd) for a ``Principal`` speaking for a user."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.core.corp import FLOW, LEAVE, OR, TWO, CorpCoreMain
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied
from zida.core.principals import ALL_SCOPES, Principal
from zida.core.records.filters import Condition, Page, RecordQuery, Sort
from zida.core.workflow import actions as workflow
from zida.core.workflow import queries as approvals
from zida.core.workflow.models import InboxQuery
from zida.db import Database

pytestmark = pytest.mark.anyio

USERS = ("adm", "li", "liu", "wang", "chen", "zhao", "sun", "zhou")


class Corp(CorpCoreMain):
    """corpCoreMain in its flow app, with who sees an approval and principals speaking for its users."""

    default_app = FLOW

    async def start(self, form_uuid: str, values: dict[str, Any], user: str = "li") -> str:
        return (await workflow.start_instance(self.db, await self.actor(user), form_uuid, values)).instance_id

    async def seen_by(self, instance_id: str) -> set[str]:
        """The users who see the instance by id (and in a list of ids: the two must agree)."""
        seen = set()
        for user in USERS:
            me = await self.actor(user)
            try:
                await approvals.get_instance(self.db, me, instance_id)
                by_id = True
            except PermissionDenied:
                by_id = False
            listed = [i.instance_id for i in await approvals.get_instances(self.db, me, [instance_id])]
            assert listed == ([instance_id] if by_id else []), user
            if by_id:
                seen.add(user)
        return seen

    def principal(self, user: str | None, corp_pk: int | None = None, corp_id: str = "corpCoreMain") -> Principal:
        return Principal(
            kind="org_user",
            corp_pk=self.corp_pk if corp_pk is None else corp_pk,
            corp_id=corp_id,
            scopes=ALL_SCOPES,
            client_id="core-main-all",
            user_id=user,
        )


def marker() -> str:
    """An ASCII word no other test uses (the inbox keyword searches the records' values)."""
    return "mk" + secrets.token_hex(5)


# ---------------------------------------------------------------------------------------------- visibility


async def test_an_instance_is_seen_by_admins_its_originator_and_its_participants(corp: Corp) -> None:
    iid = await corp.start(LEAVE, {"numberField_days": 1})
    assert await corp.seen_by(iid) == {"adm", "li", "wang"}
    await workflow.redirect_task(corp.db, await corp.actor("wang"), iid, await corp.task_of(iid, "wang"), "zhou")
    assert await corp.seen_by(iid) == {"adm", "li", "wang", "zhou"}  # wang had a task, zhou has one
    await corp.execute(iid, "zhou")  # one day: no finance node; CC'd to sun
    assert await corp.seen_by(iid) == {"adm", "li", "wang", "zhou", "sun"}


async def test_or_sign_approvers_whose_tasks_were_cancelled_still_see_the_instance(corp: Corp) -> None:
    iid = await corp.start(OR, {"textField_title": "或签可见"}, user="liu")
    await corp.execute(iid, "wang")
    assert await corp.seen_by(iid) == {"adm", "liu", "wang", "chen", "zhao"}


async def test_another_apps_instance_does_not_exist_for_its_actors(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "别的应用"})
    elsewhere = await corp.actor("zhou", "APP_CORE_OTHER")  # an admin there
    with pytest.raises(NotFound):
        await approvals.get_instance(corp.db, elsewhere, iid)
    assert await approvals.get_instances(corp.db, elsewhere, [iid]) == []
    with pytest.raises(NotFound):
        await approvals.running_tasks(corp.db, elsewhere, [iid], strict=True)
    with pytest.raises(NotFound):
        await approvals.get_instance(corp.db, await corp.actor("adm"), "FINST-NOPE")
    assert await approvals.instance_app_pk(corp.db, corp.corp_pk, iid) == corp.app_pks[FLOW]


async def test_instances_by_ids_keep_the_order_asked_and_leave_out_what_the_caller_may_not_see(corp: Corp) -> None:
    a = await corp.start(TWO, {"textField_title": "A"})
    b = await corp.start(OR, {"textField_title": "B"}, user="liu")
    c = await corp.start(TWO, {"textField_title": "C"}, user="liu")
    adm, li = await corp.actor("adm"), await corp.actor("li")
    assert [i.instance_id for i in await approvals.get_instances(corp.db, adm, [b, "FINST-NOPE", a, c])] == [b, a, c]
    assert [i.instance_id for i in await approvals.get_instances(corp.db, li, [b, a, c])] == [a]
    with pytest.raises(InvalidArgument) as err:
        await approvals.get_instances(corp.db, adm, [])
    assert err.value.reason == "process.empty_instance_ids"
    with pytest.raises(InvalidArgument):
        await approvals.get_instances(corp.db, adm, [a] * (approvals.MAX_PAGE_SIZE + 1))


# ------------------------------------------------------------------------------------------ running tasks


async def test_running_tasks_are_listed_for_the_instances_the_caller_may_see(corp: Corp) -> None:
    a = await corp.start(OR, {"textField_title": "待办A"}, user="liu")
    b = await corp.start(TWO, {"textField_title": "待办B"})
    everything = await approvals.running_tasks(corp.db, await corp.actor("adm"), [a, b, "FINST-NOPE"])
    assert sorted((t.instance_id, t.assignee_user_id) for t in everything) == sorted(
        [(a, "wang"), (a, "chen"), (a, "zhao"), (b, "wang")]
    )
    (task,) = [t for t in everything if t.instance_id == b]
    assert (task.node_id, task.status, task.originator_user_id, task.form_uuid) == ("node_one", "RUNNING", "li", TWO)
    assert (task.title, task.instance_status, task.app_type) == ("李员工发起的两级审批", "RUNNING", FLOW)
    zhao = await approvals.running_tasks(corp.db, await corp.actor("zhao"), [a, b])
    assert {t.instance_id for t in zhao} == {a}
    assert await approvals.running_tasks(corp.db, await corp.actor("zhou"), [a, b]) == []
    with pytest.raises(PermissionDenied):
        await approvals.running_tasks(corp.db, await corp.actor("zhou"), [b], strict=True)
    with pytest.raises(NotFound):
        await approvals.running_tasks(corp.db, await corp.actor("adm"), ["FINST-NOPE"], strict=True)
    with pytest.raises(InvalidArgument):
        await approvals.running_tasks(corp.db, await corp.actor("adm"), [""], strict=True)
    assert await approvals.task_instance_id(corp.db, corp.corp_pk, task.task_id) == b
    with pytest.raises(NotFound):
        await approvals.task_instance_id(corp.db, corp.corp_pk, task.task_id + 999)


async def test_the_history_lists_every_step_and_every_task(corp: Corp) -> None:
    iid = await corp.start(TWO, {"textField_title": "历史"})
    await corp.execute(iid, "wang")
    inst, definition, operations, tasks = await approvals.instance_history(corp.db, await corp.actor("li"), iid)
    assert (inst.instance_id, definition.process_code) == (iid, "TPROC--CORE-TWO")
    assert [(o.kind, o.actor_user_id, o.node_id) for o in operations] == [
        ("start", "li", None),
        ("agree", "wang", "node_one"),
    ]
    assert [(t.assignee_user_id, t.status) for t in tasks] == [("wang", "COMPLETED"), ("chen", "RUNNING")]
    with pytest.raises(PermissionDenied):
        await approvals.instance_history(corp.db, await corp.actor("zhou"), iid)


# -------------------------------------------------------------------------------------------------- search


async def test_a_search_filters_by_status_result_and_task_and_shows_members_only_their_instances(corp: Corp) -> None:
    m = marker()
    terminated, agreed, running = [
        await corp.start(TWO, {"textField_title": m, "numberField_amount": n}) for n in (10, 20, 30)
    ]
    await workflow.terminate_instance(corp.db, await corp.actor("li"), terminated)
    await corp.execute(agreed, "wang")
    await corp.execute(agreed, "chen")
    form = await corp.form(TWO)
    query = RecordQuery(filter=Condition("textField_title", "eq", m), page=Page(1, 10))

    async def ids(user: str = "adm", **filters: Any) -> list[str]:
        total, found = await approvals.search_instance_ids(corp.db, await corp.actor(user), form, query, **filters)
        _, instances = await approvals.search_instances(corp.db, await corp.actor(user), form, query, **filters)
        assert sorted(i.instance_id for i in instances) == sorted(found) and total == len(found)
        return sorted(found)

    assert await ids() == sorted([terminated, agreed, running])
    assert await ids(status="TERMINATED") == [terminated]
    assert await ids(status="COMPLETED", result="agree") == [agreed]
    assert await ids(status="RUNNING") == [running]
    assert await ids(task_id=await corp.task_of(running, "wang")) == [running]
    assert await ids(task_id=123) == []  # no such task
    assert await ids("chen") == [agreed]  # the flow reached chen only there
    assert await ids("zhou") == []
    ordered = RecordQuery(
        filter=Condition("textField_title", "eq", m),
        sort=(Sort("numberField_amount", descending=True),),
        page=Page(1, 2),
    )
    total, page = await approvals.search_instances(corp.db, await corp.actor("adm"), form, ordered)
    assert (total, [i.instance_id for i in page]) == (3, [running, agreed])
    with pytest.raises(InvalidArgument) as err:
        await approvals.search_instance_ids(corp.db, await corp.actor("adm"), await corp.form("FORM-CORE-PLAIN"), query)
    assert err.value.reason == "process.not_process_form"


# --------------------------------------------------------------------------------------- org-level lists


async def test_to_do_and_done_lists_follow_a_users_tasks_across_the_corp(corp: Corp) -> None:
    m = marker()
    iid = await corp.start(TWO, {"textField_title": m})
    query = InboxQuery(keyword=m)
    total, todo = await approvals.user_tasks(corp.db, corp.principal("wang"), query)
    assert (total, [(t.instance_id, t.status, t.assignee_user_id) for t in todo]) == (1, [(iid, "RUNNING", "wang")])
    assert await approvals.user_tasks(corp.db, corp.principal("wang"), InboxQuery(keyword=m, process_codes=("X",))) == (
        0,
        [],
    )
    await corp.execute(iid, "wang")
    assert await approvals.user_tasks(corp.db, corp.principal("wang"), query) == (0, [])
    total, done = await approvals.user_tasks(corp.db, corp.principal("wang"), query, done=True)
    assert (total, [(t.instance_id, t.status, t.result) for t in done]) == (1, [(iid, "COMPLETED", "agree")])
    total, chen = await approvals.user_tasks(corp.db, corp.principal("chen"), query)
    assert (total, [t.node_id for t in chen]) == (1, ["node_two"])


async def test_the_keyword_matches_a_value_ignoring_case_never_a_key_or_the_json_between_values(corp: Corp) -> None:
    """The platform's fuzzy match on form values, the same on both databases (it used to match the stored JSON text:
    keys and punctuation, with case ignored on SQLite only)."""
    m = marker()
    iid = await corp.start(LEAVE, {"numberField_days": 3, "textField_reason": f"Trip {m} Hangzhou"})

    async def found(keyword: str) -> list[str]:
        return [i.instance_id for i in (await approvals.user_submissions(
            corp.db, corp.principal("li"), InboxQuery(keyword=keyword)
        ))[1]]  # fmt: skip

    assert await found(m.upper()) == [iid]
    assert await found(f"trip {m} hangzhou") == [iid]
    for stored_form_only in (f'"{m}', "textField_reason", '": "', "numberField_days"):
        assert iid not in await found(stored_form_only), stored_form_only


async def test_a_users_submissions_come_newest_first_and_filter_by_process_and_app(corp: Corp) -> None:
    m = marker()
    first = await corp.start(TWO, {"textField_title": m})
    second = await corp.start(LEAVE, {"numberField_days": 1, "textField_reason": m})
    await corp.start(TWO, {"textField_title": m}, user="liu")
    total, mine = await approvals.user_submissions(corp.db, corp.principal("li"), InboxQuery(keyword=m))
    assert (total, [i.instance_id for i in mine]) == (2, [second, first])
    only_leave = InboxQuery(keyword=m, process_codes=("TPROC--CORE-LEAVE",), app_types=(FLOW,))
    assert [
        i.instance_id for i in (await approvals.user_submissions(corp.db, corp.principal("li"), only_leave))[1]
    ] == [second]
    assert (
        await approvals.user_submissions(corp.db, corp.principal("li"), InboxQuery(keyword=m, app_types=("APP_X",)))
    )[0] == 0
    total, page = await approvals.user_submissions(
        corp.db, corp.principal("li"), InboxQuery(keyword=m, page=Page(2, 1))
    )
    assert (total, [i.instance_id for i in page]) == (2, [first])


async def test_a_user_sees_the_instances_copied_to_him(corp: Corp) -> None:
    m = marker()
    iid = await corp.start(LEAVE, {"numberField_days": 1, "textField_reason": m})
    assert await approvals.user_copies(corp.db, corp.principal("sun"), InboxQuery(keyword=m)) == (0, [])
    await corp.execute(iid, "wang")
    total, copies = await approvals.user_copies(corp.db, corp.principal("sun"), InboxQuery(keyword=m))
    assert total == 1
    (copy,) = copies
    assert (copy.user_id, copy.node_id, copy.instance.instance_id, copy.instance.status) == (
        "sun",
        "node_cc",
        iid,
        "COMPLETED",
    )
    assert (
        await approvals.user_copies(corp.db, corp.principal("sun"), InboxQuery(keyword=m), app_pk=corp.app_pks[FLOW])
    )[0] == 1
    elsewhere = corp.app_pks["APP_CORE_OTHER"]
    assert await approvals.user_copies(corp.db, corp.principal("sun"), InboxQuery(keyword=m), app_pk=elsewhere) == (
        0,
        [],
    )
    assert await approvals.user_copies(corp.db, corp.principal("li"), InboxQuery(keyword=m)) == (0, [])


async def test_the_org_lists_need_a_known_user_and_a_page_in_bounds(corp: Corp, db: Database) -> None:
    for principal, error in (
        (corp.principal(None), InvalidArgument),
        (corp.principal("ghost"), NotFound),
    ):
        with pytest.raises(error):
            await approvals.user_tasks(corp.db, principal, InboxQuery())
    for page in (Page(0, 10), Page(1, 0), Page(1, approvals.MAX_PAGE_SIZE + 1)):
        with pytest.raises(InvalidArgument):
            await approvals.user_submissions(corp.db, corp.principal("li"), InboxQuery(page=page))
    # Another corp's li (speaking for a user of that corp) sees nothing of this corp.
    m = marker()
    await corp.start(TWO, {"textField_title": m})
    other = await db.fetchval("SELECT id FROM corp WHERE corp_id = 'corpCoreOther'")
    assert (await approvals.user_submissions(corp.db, corp.principal("li"), InboxQuery(keyword=m)))[0] == 1
    assert await approvals.user_submissions(
        corp.db, corp.principal("li", int(other), "corpCoreOther"), InboxQuery(keyword=m)
    ) == (0, [])
