"""Serial numbers (``zida.core.records.serials``) on the real database: Yida's rule parts, the counter advanced in the
record's own transaction (gap-free, concurrent saves never share a number), periods that start the counter again,
numbers given by an import kept, approvals numbered when they start, and rules a form cannot follow refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import load_fixture_bundle
from zida.clock import now_ms
from zida.core.access.members import app_actor
from zida.core.apps.actions import FormSpec, check_form
from zida.core.apps.models import Field, Form
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument
from zida.core.principals import AppActor
from zida.core.records import actions as records
from zida.core.records import queries
from zida.core.records.changes import new_record
from zida.core.records.filters import Condition, Page, RecordQuery
from zida.core.records.serials import RuleError, assign_serials, rule_of
from zida.core.workflow import actions as workflow
from zida.db import Database

pytestmark = pytest.mark.anyio

CLAIM = "FORM-SERIAL-CLAIM"
TRIP = "FORM-SERIAL-TRIP"
EAST8 = timezone(timedelta(hours=8))


def today(at_ms: int | None = None) -> str:
    """The day (yyyyMMdd, UTC+8) a record saved now is numbered in."""
    return datetime.fromtimestamp((at_ms or now_ms()) / 1000, EAST8).strftime("%Y%m%d")


def day_period(at_ms: int) -> str:
    """The counter period of a daily counter at ``at_ms`` (UTC+8)."""
    return datetime.fromtimestamp(at_ms / 1000, EAST8).strftime("%Y-%m-%d")


class Undo(Exception):
    """Raised to roll a test's transaction back."""


def serial(component_props: dict[str, Any] | None = None, *others: Field) -> tuple[Field, tuple[Field, ...]]:
    f = Field("serialNumberField_x", "SerialNumberField", "单号", props=component_props or {})
    return f, (f, *others)


# ------------------------------------------------------------------------------------------------- the rule alone


def test_a_rule_joins_its_parts_in_order() -> None:
    select = Field("selectField_k", "SelectField", "类别")
    f, fields = serial(
        {
            "serialNumberRule": [
                {"ruleType": "character", "content": "HT-"},
                {"ruleType": "date", "dateFormat": "yyyy-MM", "timeZone": "+8"},
                {"ruleType": "form", "formField": "selectField_k"},
                {"ruleType": "autoCount", "digitCount": "5", "isFixed": True},
            ]
        },
        select,
    )
    rule = rule_of(f, fields)
    at = int(datetime(2026, 1, 31, 17, 0, tzinfo=UTC).timestamp() * 1000)  # 2026-02-01 01:00 in UTC+8
    assert rule.render(42, at, {"selectField_k": "差旅"}) == "HT-2026-02差旅00042"
    assert rule.render(123_456, at, {}) == "HT-2026-02123456"  # past its digits the counter grows; no value: nothing


def test_the_default_rule_is_four_padded_digits_that_never_start_again() -> None:
    f, fields = serial()
    rule = rule_of(f, fields)
    assert rule.render(7, 0, {}) == "0007"
    assert rule.period(0) == rule.period(now_ms()) == ""


def test_the_counter_starts_again_in_the_date_parts_time_zone() -> None:
    f, fields = serial(
        {
            "serialNumberRule": [
                {"ruleType": "date", "dateFormat": "yyMMdd", "timeZone": "+0"},
                {"ruleType": "autoCount", "resetPeriod": "day"},
            ]
        }
    )
    rule = rule_of(f, fields)
    evening = int(datetime(2026, 3, 2, 20, 0, tzinfo=UTC).timestamp() * 1000)  # 04:00 on the 3rd in UTC+8
    night = int(datetime(2026, 3, 2, 23, 0, tzinfo=UTC).timestamp() * 1000)
    assert rule.period(evening) == rule.period(night) and rule.render(1, night, {}) == "2603020001"


def test_an_unfixed_counter_is_not_padded() -> None:
    f, fields = serial({"serialNumberRule": [{"ruleType": "autoCount", "digitCount": 6, "isFixed": False}]})
    assert rule_of(f, fields).render(7, 0, {}) == "7"


@pytest.mark.parametrize(
    ("reset", "first", "second", "same"),
    [
        ("day", (2026, 3, 2, 23, 59), (2026, 3, 3, 0, 1), False),
        ("day", (2026, 3, 3, 0, 1), (2026, 3, 3, 23, 59), True),
        ("week", (2026, 3, 1, 23, 0), (2026, 3, 2, 1, 0), False),  # Sunday, then Monday
        ("week", (2026, 3, 2, 1, 0), (2026, 3, 8, 23, 0), True),  # Monday to Sunday
        ("month", (2026, 3, 31, 23, 0), (2026, 4, 1, 0, 30), False),
        ("year", (2026, 1, 1, 0, 0), (2026, 12, 31, 23, 59), True),
    ],
)
def test_a_counter_starts_again_each_period_in_its_time_zone(
    reset: str, first: tuple[int, ...], second: tuple[int, ...], same: bool
) -> None:
    date = {"ruleType": "date", "dateFormat": "yyyyMMdd"}
    f, fields = serial({"serialNumberRule": [date, {"ruleType": "autoCount", "resetPeriod": reset, "timeZone": "+8"}]})
    rule = rule_of(f, fields)

    def ms(parts: tuple[int, ...]) -> int:
        return int(datetime(*parts, tzinfo=EAST8).timestamp() * 1000)  # type: ignore[misc]

    assert (rule.period(ms(first)) == rule.period(ms(second))) is same


@pytest.mark.parametrize(
    ("rule", "problem", "at"),
    [
        ([], "non-empty list", ""),
        ([{"ruleType": "character", "content": "A"}], "exactly one autoCount", ""),
        ([{"ruleType": "autoCount"}, {"ruleType": "autoCount"}], "exactly one autoCount", "[1]"),
        ([{"ruleType": "autoCount", "digitCount": 12}], "digitCount must be 1-9", "[0].digitCount"),
        ([{"ruleType": "autoCount", "resetPeriod": "hour"}], "resetPeriod 'hour'", "[0].resetPeriod"),
        ([{"ruleType": "autoCount", "timeZone": "Asia/Shanghai"}], "timeZone", "[0].timeZone"),
        ([{"ruleType": "autoCount"}, {"ruleType": "date", "dateFormat": "yyyy年"}], "dateFormat", "[1].dateFormat"),
        ([{"ruleType": "autoCount"}, {"ruleType": "form", "formField": "employeeField_who"}], "formField",
         "[1].formField"),
        ([{"ruleType": "autoCount"}, {"ruleType": "character", "content": ""}], "content", "[1].content"),
        ([{"ruleType": "autoCount"}, {"ruleType": "random"}], "ruleType 'random'", "[1].ruleType"),
        ([{"ruleType": "autoCount"}, "BX"], "each part", "[1]"),
        ([{"ruleType": "autoCount", "resetPeriod": "day"}], "needs a date part showing the year, month and day",
         "[0].resetPeriod"),
        ([{"ruleType": "date", "dateFormat": "yyyyMM"}, {"ruleType": "autoCount", "resetPeriod": "week"}],
         "showing the year, month and day", "[1].resetPeriod"),
        ([{"ruleType": "date", "dateFormat": "MMdd"}, {"ruleType": "autoCount", "resetPeriod": "month"}], "year and",
         "[1].resetPeriod"),
        ([{"ruleType": "date", "timeZone": "+0"}, {"ruleType": "autoCount", "resetPeriod": "day", "timeZone": "+8"}],
         "same timeZone", "[1].timeZone"),
    ],
)  # fmt: skip
def test_a_rule_that_cannot_be_followed_is_refused(rule: Any, problem: str, at: str) -> None:
    """The form's check names the part at fault and its key (``at``), as the rule's error carries them."""
    who = Field("employeeField_who", "EmployeeField", "人")
    f, fields = serial({"serialNumberRule": rule}, who)
    with pytest.raises(RuleError, match=problem):
        rule_of(f, fields)
    with pytest.raises(InvalidArgument) as refused:
        check_form(FormSpec(form_uuid="FORM-SERIAL-BAD", title="坏的", fields=fields))
    assert refused.value.details["path"] == f"fields[0].props.serialNumberRule{at}"
    assert problem.split("'")[0] in refused.value.message


@pytest.mark.parametrize(
    ("reset", "formats"), [("day", "yyyyMMdd"), ("month", "yyyyMM or yyyyMMdd"), ("year", "yyyy, yyyyMM or yyyyMMdd")]
)
def test_a_counter_without_its_period_s_date_names_formats_that_show_it(reset: str, formats: str) -> None:
    """The hint named yyyyMMdd, yyyyMM or yyyy for every period, formats a daily counter then refused."""
    f, fields = serial({"serialNumberRule": [{"ruleType": "autoCount", "resetPeriod": reset}]})
    with pytest.raises(RuleError) as refused:
        rule_of(f, fields)
    assert f"(dateFormat {formats}):" in str(refused.value), refused.value


def test_a_serial_number_inside_a_sub_table_is_plain_text() -> None:
    inner = Field("serialNumberField_row", "SerialNumberField", "行号", props={"serialNumberRule": "not a rule"})
    table = Field("tableField_rows", "TableField", "明细", children=(inner,))
    check_form(FormSpec(form_uuid="FORM-SERIAL-TABLE", title="明细", fields=(table,)))


# ------------------------------------------------------------------------------------------------- on the database


class Serials:
    def __init__(self, db: Database, corp_pk: int, app_pk: int) -> None:
        self.db, self.corp_pk, self.app_pk = db, corp_pk, app_pk
        self.created_at = 0  # of the last record saved

    async def actor(self, user: str = "li") -> AppActor:
        return await app_actor(self.db, self.corp_pk, self.app_pk, user)

    async def form(self, form_uuid: str = CLAIM) -> Form:
        return await get_form(self.db, await self.actor("adm"), form_uuid)

    async def save(self, note: str, **values: Any) -> dict[str, Any]:
        """Save a claim; a number the server gave carries the day (UTC+8) the record was created in."""
        saved = await records.save_form_instance(self.db, await self.actor(), CLAIM, {"textField_note": note, **values})
        assert saved.serial_no == saved.data["serialNumberField_no"]
        if "serialNumberField_no" not in values or not values["serialNumberField_no"]:
            assert parts(saved.data["serialNumberField_no"])[0] == today(saved.created_at)
        self.created_at = saved.created_at
        return saved.data

    async def counted(self, form_uuid: str = CLAIM) -> dict[tuple[str, str], int]:
        form = await self.form(form_uuid)
        rows = await self.db.fetch(
            "SELECT field_id, period, last_value FROM serial_counter WHERE form_pk = :f", {"f": form.pk}
        )
        return {(r["field_id"], r["period"]): int(r["last_value"]) for r in rows}


@pytest.fixture(scope="module")
def serials_url(loaded_url: str) -> str:
    load_fixture_bundle(loaded_url, "corp_serials.yaml")
    return loaded_url


@pytest.fixture
async def corp(serials_url: str, db: Database) -> Serials:
    row = await db.fetchrow(
        "SELECT a.id, a.corp_pk FROM app a JOIN corp c ON c.id = a.corp_pk WHERE c.corp_id = 'corpSerials'"
    )
    assert row is not None
    return Serials(db, row["corp_pk"], row["id"])


def parts(number: str) -> tuple[str, int]:
    """A BX number as (its day, its counter)."""
    assert number.startswith("BX") and len(number) == 13, number
    return number[2:10], int(number[10:])


async def test_a_saved_record_gets_the_next_number_of_each_serial_field(corp: Serials) -> None:
    first = await corp.save("one", selectField_kind="差旅")
    second = await corp.save("two")
    day, n = parts(first["serialNumberField_no"])
    next_day, m = parts(second["serialNumberField_no"])
    assert m == (n + 1 if next_day == day else 1)  # a new day (16:00 UTC) starts the counter again
    assert int(second["serialNumberField_plain"]) == int(first["serialNumberField_plain"]) + 1
    assert len(first["serialNumberField_plain"]) >= 4
    kind, k = first["serialNumberField_kind"].split("-")
    assert kind == "差旅" and not second["serialNumberField_kind"].startswith("差旅")
    assert int(second["serialNumberField_kind"].lstrip("-")) == int(k) + 1


async def test_the_record_is_found_by_its_serial_number(corp: Serials) -> None:
    data = await corp.save("findable")
    number = data["serialNumberField_no"]
    query = RecordQuery(filter=Condition("serialNumberField_no", "eq", number), page=Page(1, 10))
    result = await queries.search_form_instances(corp.db, await corp.actor("adm"), await corp.form(), query)
    assert [r.serial_no for r in result.items] == [number]
    by_record = RecordQuery(filter=Condition("serial_no", "eq", number), page=Page(1, 10))
    result = await queries.search_form_instances(corp.db, await corp.actor("adm"), await corp.form(), by_record)
    assert [r.data["textField_note"] for r in result.items] == ["findable"]


async def test_a_number_given_by_an_import_is_kept_and_takes_no_number(corp: Serials) -> None:
    before = await corp.counted()
    data = await corp.save("imported", serialNumberField_no="OLD-2019-0042", serialNumberField_plain="77")
    assert (data["serialNumberField_no"], data["serialNumberField_plain"]) == ("OLD-2019-0042", "77")
    after = await corp.counted()
    day = ("serialNumberField_no", day_period(corp.created_at))
    assert after.get(day) == before.get(day)
    assert after.get(("serialNumberField_plain", "")) == before.get(("serialNumberField_plain", ""))
    assert after[("serialNumberField_kind", "")] == before.get(("serialNumberField_kind", ""), 6) + 1  # starts at 7


async def test_a_serial_number_sent_empty_is_generated_but_not_cleared_by_an_update(corp: Serials) -> None:
    data = await corp.save("sent empty", serialNumberField_no="", serialNumberField_plain=None)
    assert data["serialNumberField_plain"].isdigit()  # and serialNumberField_no of its day (Serials.save)
    query = RecordQuery(filter=Condition("serialNumberField_no", "eq", data["serialNumberField_no"]))
    (inst,) = (await queries.search_form_instances(corp.db, await corp.actor("adm"), await corp.form(), query)).items
    with pytest.raises(InvalidArgument, match="serialNumberField_no"):
        await records.update_form_instance(
            corp.db, await corp.actor("adm"), inst.instance_id, {"serialNumberField_no": ""}
        )


async def test_a_refused_save_takes_no_number(corp: Serials) -> None:
    before = await corp.counted()
    with pytest.raises(InvalidArgument, match="textField_note"):
        await records.save_form_instance(corp.db, await corp.actor(), CLAIM, {"selectField_kind": "差旅"})
    with pytest.raises(InvalidArgument, match=r"^\[1\]"):
        await records.save_form_instances(
            corp.db, await corp.actor(), CLAIM, [{"textField_note": "ok"}, {"selectField_kind": "火箭"}]
        )
    assert await corp.counted() == before


async def test_a_batch_is_numbered_in_order(corp: Serials) -> None:
    result = await records.save_form_instances(
        corp.db, await corp.actor(), CLAIM, [{"textField_note": f"b{i}"} for i in range(5)]
    )
    saved = await queries.get_form_instances(corp.db, await corp.actor("adm"), await corp.form(), result.ids)
    numbers = [parts(r.data["serialNumberField_no"])[1] for r in saved]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    assert [r.serial_no for r in saved] == [r.data["serialNumberField_no"] for r in saved]


async def test_concurrent_saves_never_share_a_number_and_leave_no_gap(corp: Serials) -> None:
    before = await corp.counted()
    saved = await asyncio.gather(*(corp.save(f"c{i}") for i in range(12)))
    numbers = sorted(int(d["serialNumberField_plain"]) for d in saved)
    start = before.get(("serialNumberField_plain", ""), 0) + 1
    assert numbers == list(range(start, start + 12))


async def test_an_upsert_that_creates_numbers_the_record(corp: Serials) -> None:
    form = await corp.form()
    note = f"upsert-{now_ms()}"
    instance_id, created = await records.upsert_form_instance_split(
        corp.db, await corp.actor(), form, Condition("textField_note", "eq", note), {}, {"textField_note": note}
    )
    assert created
    (inst,) = await queries.get_form_instances(corp.db, await corp.actor("adm"), form, [instance_id])
    assert (
        parts(inst.data["serialNumberField_no"])[0] == today(inst.created_at)
        and inst.serial_no == inst.data["serialNumberField_no"]
    )


async def test_an_update_of_the_first_serial_field_moves_the_records_serial_number(corp: Serials) -> None:
    data = await corp.save("to renumber")
    query = RecordQuery(filter=Condition("serialNumberField_no", "eq", data["serialNumberField_no"]))
    result = await queries.search_form_instances(corp.db, await corp.actor("adm"), await corp.form(), query)
    (inst,) = result.items
    updated = await records.update_form_instance(
        corp.db, await corp.actor("adm"), inst.instance_id, {"serialNumberField_no": "BX-FIXED-1"}
    )
    assert updated.serial_no == "BX-FIXED-1"
    (again,) = await queries.get_form_instances(corp.db, await corp.actor("adm"), await corp.form(), [inst.instance_id])
    assert again.serial_no == "BX-FIXED-1"


async def test_the_counter_starts_again_on_a_new_day(corp: Serials, db: Database) -> None:
    form = await corp.form()
    actor = await corp.actor()
    day = 86_400_000
    then = now_ms() - 400 * day  # a day no other test numbers in
    made = [new_record(actor, form, {"textField_note": "x"}, at) for at in (then, then, then + day)]
    with pytest.raises(Undo):
        async with db.transaction() as tx:
            await assign_serials(tx, form, made)
            raise Undo
    assert [parts(r.data["serialNumberField_no"]) for r in made] == [
        (today(then), 1),
        (today(then), 2),
        (today(then + day), 1),
    ]
    assert ("serialNumberField_no", datetime.fromtimestamp(then / 1000, EAST8).strftime("%Y-%m-%d")) not in (
        await corp.counted()
    )


async def test_an_approval_is_numbered_when_it_starts(corp: Serials) -> None:
    first = await workflow.start_instance(corp.db, await corp.actor(), TRIP, {"textField_where": "上海"})
    second = await workflow.start_instance(corp.db, await corp.actor(), TRIP, {"textField_where": "北京"})
    one, two = first.record.data["serialNumberField_trip"], second.record.data["serialNumberField_trip"]
    assert one.startswith("CC") and len(one) == 6 and int(two[2:]) == int(one[2:]) + 1
    assert (first.record.serial_no, second.record.serial_no) == (one, two)
    inst, _ = await queries.get_form_instance(corp.db, await corp.actor("adm"), first.instance_id)
    assert inst.serial_no == one and inst.data["serialNumberField_trip"] == one
