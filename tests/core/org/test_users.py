"""User actions at the core level: each change writes the user, its audit row and its event in one transaction;
unchanged input writes nothing; bad input (unknown ids, duplicates, unknown references, cycles) changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.core.org.conftest import ACTOR, Org
from zida.clock import now_ms
from zida.core.errors import Conflict, InvalidArgument, NotFound, ZidaError
from zida.core.org import actions
from zida.core.org.actions import SIGN_IN_NAME_HOLDER, UserSpec
from zida.core.org.repository import find_users, get_user

pytestmark = pytest.mark.anyio


async def test_creating_a_user_writes_him_his_audit_row_and_his_event(org: Org) -> None:
    spec = UserSpec("wu", "吴", name_en="Wu", departments=(10, 1), manager="mgr", title="销售", email="wu@x.example")
    user = await actions.create_user(org.db, org.corp, spec, actor=ACTOR)
    assert (user.user_id, user.name, user.dept_ids, user.manager_user_id, user.active) == (
        "wu",
        "吴",
        (10, 1),
        "mgr",
        True,
    )
    assert user.union_id  # generated
    (entry,) = await org.audit("user", "wu")
    assert (entry.topic, entry.actor) == ("user.created", ACTOR)
    assert entry.changes["departments"] == {"new": [10, 1]} and entry.changes["active"] == {"new": True}
    assert entry.changes["name"] == {"new": "吴"} and entry.changes["manager"] == {"new": "mgr"}
    events = [e for e in await org.events() if e.object_id == "wu"]
    assert [(e.topic, e.actor, dict(e.data)) for e in events] == [("user.created", ACTOR, dict(entry.changes))]


async def test_an_update_records_only_what_changed_and_unchanged_input_writes_nothing(org: Org) -> None:
    before = await org.marks()
    same = await actions.update_user(org.db, org.corp, "li", {"name": "李", "departments": (10,)}, actor=ACTOR)
    assert same.name == "李" and await org.marks() == before
    changed = await actions.update_user(
        org.db, org.corp, "li", {"title": "组长", "departments": (1, 10), "manager": "boss"}, actor=ACTOR
    )
    assert (changed.title, changed.dept_ids, changed.manager_user_id) == ("组长", (1, 10), "boss")
    (entry,) = [e for e in await org.audit("user", "li") if e.action == "updated"]
    assert entry.changes == {
        "title": {"old": None, "new": "组长"},
        "departments": {"old": [10], "new": [1, 10]},
        "manager": {"old": "mgr", "new": "boss"},
    }
    # The directory cache of this process was emptied: renderers see the change at once.
    assert (await find_users(org.db, org.corp.pk, ["li"]))["li"].title == "组长"


async def test_a_password_is_stored_hashed_and_never_recorded(org: Org) -> None:
    await actions.create_user(org.db, org.corp, UserSpec("pw", "密", password="pass-word-123"), actor=ACTOR)
    stored = await org.db.fetchval(
        "SELECT password_hash FROM org_user WHERE corp_pk = :c AND user_id = 'pw'", {"c": org.corp.pk}
    )
    assert stored.startswith("scrypt$") and "pass-word-123" not in stored
    await actions.update_user(org.db, org.corp, "pw", {"password": "pass-word-123"}, actor=ACTOR)  # the same
    await actions.update_user(org.db, org.corp, "pw", {"password": "pass-word-456"}, actor=ACTOR)
    entries = await org.audit("user", "pw")
    assert [e.action for e in entries] == ["created", "updated"]
    assert entries[0].changes["password"] == {"changed": True} and entries[1].changes == {"password": {"changed": True}}
    text = repr([e.changes for e in entries]) + repr([dict(e.data) for e in await org.events()])
    for secret in ("pass-word-123", "pass-word-456", stored):
        assert secret not in text


@pytest.mark.parametrize(
    ("spec", "error", "reason", "words"),
    [
        (UserSpec("li", "又一个李"), Conflict, "user.exists", "already exists"),
        (UserSpec("x1", "X", departments=(99,)), InvalidArgument, "department.unknown", "department 99"),
        (UserSpec("x2", "X", departments=(10, 10)), InvalidArgument, "argument.invalid", "twice"),
        (UserSpec("x3", "X", manager="ghost"), InvalidArgument, "user.unknown", "ghost"),
        (UserSpec("x4", "X", manager="x4"), InvalidArgument, "user.manager_cycle", "own manager"),
        (UserSpec("", "X"), InvalidArgument, "argument.invalid", "userId"),
        (UserSpec(" x5", "X"), InvalidArgument, "argument.invalid", "spaces"),
        (UserSpec("x/5", "X"), InvalidArgument, "argument.invalid", "contains a /"),  # /admin/v1/users/{userId}
        (UserSpec("x6", " "), InvalidArgument, "argument.invalid", "name"),
    ],
)
async def test_bad_new_users_change_nothing(
    org: Org, spec: UserSpec, error: type[ZidaError], reason: str, words: str
) -> None:
    before = await org.marks()
    with pytest.raises(error) as raised:
        await actions.create_user(org.db, org.corp, spec, actor=ACTOR)
    assert raised.value.reason == reason and words in raised.value.message, raised.value.message
    assert await org.marks() == before
    if spec.user_id != "li":
        assert await get_user(org.db, org.corp.pk, spec.user_id) is None


@pytest.mark.parametrize(
    ("user_id", "changes", "error", "reason"),
    [
        ("ghost", {"name": "鬼"}, NotFound, "user.not_found"),
        ("mgr", {"manager": "li"}, InvalidArgument, "user.manager_cycle"),  # li → mgr → li
        ("boss", {"manager": "li"}, InvalidArgument, "user.manager_cycle"),  # li → mgr → boss → li
        ("li", {"departments": (10, 404)}, InvalidArgument, "department.unknown"),
        ("li", {"user_id": "li2"}, InvalidArgument, "argument.invalid"),
        ("li", {"name": ""}, InvalidArgument, "argument.invalid"),
    ],
)
async def test_bad_updates_change_nothing(
    org: Org, user_id: str, changes: dict[str, Any], error: type[ZidaError], reason: str
) -> None:
    before = await org.marks()
    stored = await get_user(org.db, org.corp.pk, user_id)
    with pytest.raises(error) as raised:
        await actions.update_user(org.db, org.corp, user_id, changes, actor=ACTOR)
    assert raised.value.reason == reason, raised.value.message
    assert await org.marks() == before and await get_user(org.db, org.corp.pk, user_id) == stored


async def test_a_union_id_names_one_user(org: Org) -> None:
    # getbyunionid and the to-dos' participants find a person by unionId: a second user may not take one.
    li = await get_user(org.db, org.corp.pk, "li")
    assert li is not None
    before = await org.marks()
    with pytest.raises(Conflict, match="already user li's") as taken:
        await actions.create_user(org.db, org.corp, UserSpec("twin", "双胞胎", union_id=li.union_id), actor=ACTOR)
    assert taken.value.reason == "user.union_taken"
    with pytest.raises(Conflict):
        await actions.update_user(org.db, org.corp, "mgr", {"union_id": li.union_id}, actor=ACTOR)
    assert await org.marks() == before
    await actions.update_user(org.db, org.corp, "li", {"union_id": li.union_id, "title": "同一个"}, actor=ACTOR)


async def test_a_sign_in_name_names_one_user_whether_a_username_or_a_user_id(org: Org) -> None:
    """A user without a username signs in with his userId: a new userId (or a username given up) that is another
    user's username was taken, so that neither signed in as himself and no dump loaded back."""
    await actions.update_user(org.db, org.corp, "li", {"username": "lisales"}, actor=ACTOR)
    before = await org.marks()
    with pytest.raises(Conflict, match="already user li's") as taken:
        await actions.create_user(org.db, org.corp, UserSpec("lisales", "撞名"), actor=ACTOR)
    assert taken.value.reason == "user.username_taken" and await org.marks() == before
    await actions.update_user(org.db, org.corp, "sun", {"username": "sunny"}, actor=ACTOR)
    await actions.update_user(org.db, org.corp, "mgr", {"username": "sun"}, actor=ACTOR)  # sun signs in as sunny
    before = await org.marks()
    with pytest.raises(Conflict, match="already user mgr's"):  # giving "sunny" up, sun would sign in as "sun"
        await actions.update_user(org.db, org.corp, "sun", {"username": None}, actor=ACTOR)
    assert await org.marks() == before
    await actions.create_user(org.db, org.corp, UserSpec("free-name", "新人"), actor=ACTOR)
    await actions.update_user(org.db, org.corp, "li", {"username": "li-again"}, actor=ACTOR)


async def test_another_corps_user_does_not_exist(org: Org, db: Any) -> None:
    other = await db.fetchval("SELECT id FROM corp WHERE corp_id = 'corpA'")
    assert await get_user(db, int(other), "admin1") is not None  # corp A has admin1, this corp has not
    with pytest.raises(NotFound):
        await actions.update_user(org.db, org.corp, "admin1", {"title": "x"}, actor=ACTOR)
    with pytest.raises(NotFound):
        await actions.deactivate_user(org.db, org.corp, "admin1", actor=ACTOR)


async def test_the_upsert_writes_inside_the_callers_transaction(org: Org) -> None:
    """The row, its audit row and its event are written together: a transaction that fails leaves none of them."""
    before = await org.marks()
    with pytest.raises(RuntimeError):
        async with org.db.transaction() as tx:
            outcome = await actions.upsert_user(tx, org.corp, UserSpec("tx1", "事务"), actor=ACTOR, now=now_ms())
            assert outcome == "created"
            assert await tx.fetchval("SELECT count(*) FROM audit_log WHERE object_id = 'tx1'") == 1
            raise RuntimeError("the caller fails after the action")
    assert await org.marks() == before and await get_user(org.db, org.corp.pk, "tx1") is None
    async with org.db.transaction() as tx:
        outcome = await actions.upsert_user(tx, org.corp, UserSpec("tx1", "事务"), actor=ACTOR, now=now_ms())
    assert outcome == "created"
    async with org.db.transaction() as tx:
        again = await actions.upsert_user(tx, org.corp, UserSpec("tx1", "事务"), actor=ACTOR, now=now_ms())
    assert again == "unchanged" and len(await org.audit("user", "tx1")) == 1


async def test_a_batch_read_once_writes_what_the_upsert_writes_alone(org: Org) -> None:
    """``read_user_batch`` reads the users and departments a bulk write names once; each upsert takes its user from
    it, a user named again is read afresh, and an unknown department is refused as without the batch."""
    async with org.db.transaction() as tx:
        batch = await actions.read_user_batch(tx, org.corp, ["li", "bt1", "bt1"], [10, 1])
        assert set(batch.stored) == {"li", "bt1"} and batch.stored["bt1"] is None and set(batch.dept_pks) == {1, 10}
        li = batch.stored["li"]
        assert li is not None and li.values["departments"] == [10]
        now = now_ms()
        created = await actions.upsert_user(
            tx, org.corp, UserSpec("bt1", "批", departments=(10,)), actor=ACTOR, now=now, batch=batch
        )
        renamed = await actions.upsert_user(
            tx, org.corp, UserSpec("bt1", "批二", departments=(1,)), actor=ACTOR, now=now, batch=batch
        )
        same = await actions.upsert_user(tx, org.corp, li.spec("li"), actor=ACTOR, now=now, batch=batch)
        assert (created, renamed, same) == ("created", "updated", "unchanged")
        with pytest.raises(InvalidArgument, match="department 99 does not exist"):
            await actions.upsert_user(
                tx, org.corp, UserSpec("bt2", "批", departments=(99,)), actor=ACTOR, now=now, batch=batch
            )
    user = await get_user(org.db, org.corp.pk, "bt1")
    assert user is not None and (user.name, user.dept_ids) == ("批二", (1,))


async def test_concurrent_weda_users_do_not_share_a_mobile_number_or_a_sign_in_name(org: Org) -> None:
    """WeDa's rule (``unique_contacts``): checked, then written, under the corp's lock on PostgreSQL (two creates at
    once both passed the check: two active users with one number, or a unique-index violation answered 500)."""
    results = await asyncio.gather(
        *(
            actions.create_user(
                org.db, org.corp, UserSpec(f"phone{i}", "同号", mobile="13900000077"), actor=ACTOR, unique_contacts=True
            )
            for i in range(6)
        ),
        *(
            actions.create_user(
                org.db, org.corp, UserSpec(f"named{i}", "同名", username="same-name"), actor=ACTOR, unique_contacts=True
            )
            for i in range(6)
        ),
        return_exceptions=True,
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(made) == 2 and all(isinstance(r, Conflict) for r in refused), refused
    assert {r.reason for r in refused} == {"user.contact_taken", "user.username_taken"}  # type: ignore[attr-defined]


async def test_concurrent_writes_do_not_give_one_sign_in_name_or_union_id_to_two_users(org: Org) -> None:
    """Any user write checks, then writes, under the corp's lock: on PostgreSQL a new userId and another user's new
    username at once both passed the check (no index joins the two columns), and so did one unionId twice."""
    for round_ in range(3):
        name = f"taken{round_}"
        await actions.create_user(org.db, org.corp, UserSpec(f"holder{round_}", "持"), actor=ACTOR)
        results = await asyncio.gather(
            actions.create_user(org.db, org.corp, UserSpec(name, "新"), actor=ACTOR),
            actions.update_user(org.db, org.corp, f"holder{round_}", {"username": name}, actor=ACTOR),
            *(
                actions.create_user(
                    org.db, org.corp, UserSpec(f"union{round_}-{i}", "联", union_id=f"union-{round_}"), actor=ACTOR
                )
                for i in range(4)
            ),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, Conflict) for r in refused), refused
        reasons = sorted(r.reason for r in refused)  # type: ignore[attr-defined]
        assert reasons == ["user.union_taken"] * 3 + ["user.username_taken"], reasons
        signing_in = await org.db.fetchval(
            "SELECT COUNT(*) FROM org_user WHERE corp_pk = :c"
            " AND (username = :n OR (user_id = :n AND username IS NULL))",
            {"c": org.corp.pk, "n": name},
        )
        sharing = await org.db.fetchval(
            "SELECT COUNT(*) FROM org_user WHERE corp_pk = :c AND union_id = :n",
            {"c": org.corp.pk, "n": f"union-{round_}"},
        )
        assert (signing_in, sharing) == (1, 1)


async def test_the_sign_in_name_check_reads_by_index(org: Org) -> None:
    """Every new user's sign-in name is checked: with an OR, SQLite scanned every user each time, and importing 20,000
    users into a corp of 5,000 took a minute instead of seconds."""
    if org.db.sql.name != "sqlite":
        pytest.skip("SQLite's plan (PostgreSQL's depends on its statistics)")
    plan = await org.db.fetch("EXPLAIN QUERY PLAN " + SIGN_IN_NAME_HOLDER, {"c": org.corp.pk, "u": "a", "n": "b"})
    details = [str(row["detail"]) for row in plan]
    assert not any(d.startswith("SCAN") for d in details), details
    assert sum(d.startswith("SEARCH org_user USING") for d in details) == 2, details
