"""Values as they are read back and written again, and numbers as they are stored and searched for, on the database
under test (``zida.core.records.values``, ``zida.core.records.filters.compiler``).

An address and files are read back through Yida as JSON text: that text written back leaves the record as it was. A
number given as text is stored as the same JSON literal is, and a search value is read by the same function, so what
is stored is found the same way on SQLite and PostgreSQL (subnormal doubles, decimals with more digits than a double
holds, integers at and past 64 bits).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import orjson
import pytest

from tests.conftest import SECRET_KEY
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.access.members import app_actor
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument
from zida.core.principals import AppActor
from zida.core.records.actions import save_form_instance, update_form_instance
from zida.core.records.filters import And, Condition, Filter, Page, RecordQuery
from zida.core.records.queries import get_form_instance, search_form_instance_ids
from zida.core.records.values import NotANumber, number_value
from zida.crypto import SecretBox
from zida.db import Database, open_database

pytestmark = pytest.mark.anyio

FORM = "FORM-NUMBER-VALUES"
BUNDLE: dict[str, Any] = {
    "corp": {"corpId": "corpNumberValues", "name": "数值"},
    "departments": [{"deptId": 1, "name": "根"}],
    "users": [{"userId": "na", "name": "管理员", "departments": [1]}],
    "apps": [
        {
            "appType": "APP_NUMBER_VALUES",
            "name": "数值",
            "systemToken": "ST-NUMBER-VALUES-01",
            "admins": ["na"],
            "forms": [
                {
                    "formUuid": FORM,
                    "title": "数值",
                    "fields": [
                        {"fieldId": "textField_m", "component": "TextField", "label": "M", "searchable": True},
                        {"fieldId": "numberField_s", "component": "NumberField", "label": "S", "searchable": True},
                        {"fieldId": "numberField_p", "component": "NumberField", "label": "P"},
                        {"fieldId": "addressField_a", "component": "AddressField", "label": "A"},
                        {"fieldId": "attachmentField_f", "component": "AttachmentField", "label": "F"},
                        {"fieldId": "imageField_i", "component": "ImageField", "label": "I"},
                    ],
                }
            ],
        }
    ],
}
NUMBERS = ("numberField_s", "numberField_p")  # searchable (indexed) and not


@pytest.fixture(scope="module")
def numbers_url(loaded_url: str) -> str:
    async def load() -> None:
        db = await open_database(loaded_url)
        try:
            await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(BUNDLE))
        finally:
            await db.close()

    asyncio.run(load())
    return loaded_url


@pytest.fixture
async def actor(numbers_url: str, db: Database) -> AppActor:
    row = await db.fetchrow("SELECT a.id, a.corp_pk FROM app a WHERE a.app_type = 'APP_NUMBER_VALUES'")
    assert row is not None
    return await app_actor(db, row["corp_pk"], row["id"], "na")


def marker() -> str:
    return "N-" + secrets.token_hex(5)


async def save(db: Database, actor: AppActor, m: str, **values: Any) -> str:
    return (await save_form_instance(db, actor, FORM, {"textField_m": m, **values})).instance_id


async def data(db: Database, actor: AppActor, instance_id: str) -> dict[str, Any]:
    inst, _ = await get_form_instance(db, actor, instance_id)
    return inst.data


async def found(db: Database, actor: AppActor, m: str, condition: Filter) -> set[str]:
    form = await get_form(db, actor, FORM)
    query = RecordQuery(filter=And((Condition("textField_m", "eq", m), condition)), page=Page(1, 100))
    _, ids = await search_form_instance_ids(db, actor, form, query)
    return set(ids)


# ------------------------------------------------------------------------------------------------ read back as text


ADDRESS = {"address": "文三路 90 号", "regionIds": [330000, 330100, 330106], "regionText": [{"zh_CN": "浙江省"}]}


async def test_an_address_read_back_as_json_text_and_written_again_is_unchanged(db: Database, actor: AppActor) -> None:
    iid = await save(db, actor, marker(), addressField_a=ADDRESS)
    stored = (await data(db, actor, iid))["addressField_a"]
    assert stored == ADDRESS
    await update_form_instance(db, actor, iid, {"addressField_a": orjson.dumps(stored).decode()})  # as Yida reads it
    assert (await data(db, actor, iid))["addressField_a"] == ADDRESS
    # Any other text is an address line, as before: not JSON, or JSON of something other than an object.
    for line in ("文一西路", "{文一西路}", '{"address": "x"', "[1, 2]", '"x"', "12"):
        await update_form_instance(db, actor, iid, {"addressField_a": line})
        assert (await data(db, actor, iid))["addressField_a"] == {"address": line}


async def test_an_address_as_json_text_is_checked_as_form_data_is(db: Database, actor: AppActor) -> None:
    iid = await save(db, actor, marker(), addressField_a=ADDRESS)
    for text, reason in (
        ('{"address": "a\\u0000b"}', "form_data.invalid_value"),
        ('{"address": "x", "lng": 1e-400}', "form_data.expect_number"),
        ('{"address": "x", "lng": 1e400}', "form_data.expect_number"),  # it was stored as an address line
        ('{"a": ' * 40 + "1" + "}" * 40, "form_data.too_deep"),
    ):
        with pytest.raises(InvalidArgument) as err:
            await update_form_instance(db, actor, iid, {"addressField_a": text})
        assert (err.value.reason, err.value.details.get("field")) == (reason, "addressField_a"), text
    wide = '{"address": "x", "postcode": 123456789012345678901234567890}'  # a number past 64 bits: a double
    await update_form_instance(db, actor, iid, {"addressField_a": wide})
    assert (await data(db, actor, iid))["addressField_a"] == {"address": "x", "postcode": 1.2345678901234568e29}


FILES = [{"downloadUrl": "https://example.com/a.pdf", "name": "a.pdf", "size": 1024, "ext": "pdf"}]
IMAGES = [{"url": "https://example.com/a.png", "previewUrl": "https://example.com/a.png", "name": "a.png"}]


async def test_files_read_back_as_json_text_and_written_again_are_unchanged(db: Database, actor: AppActor) -> None:
    iid = await save(db, actor, marker(), attachmentField_f=FILES, imageField_i=IMAGES)
    stored = await data(db, actor, iid)
    assert (stored["attachmentField_f"], stored["imageField_i"]) == (FILES, IMAGES)
    again = {k: orjson.dumps(stored[k]).decode() for k in ("attachmentField_f", "imageField_i")}  # as Yida reads them
    await update_form_instance(db, actor, iid, again)
    stored = await data(db, actor, iid)
    assert (stored["attachmentField_f"], stored["imageField_i"]) == (FILES, IMAGES)
    # Text that is not JSON of an array of objects is refused as before.
    for text in ("a.pdf", "[1, 2]", '{"downloadUrl": "https://example.com/a.pdf"}', "[{]", '[{"name": "no url"}]'):
        with pytest.raises(InvalidArgument) as err:
            await update_form_instance(db, actor, iid, {"attachmentField_f": text})
        assert err.value.details.get("field") == "attachmentField_f", text


# ------------------------------------------------------------------------------------------------ numbers as text


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("9007199254740993", 9007199254740993),
        ("-9007199254740993", -9007199254740993),
        ("9223372036854775807", 2**63 - 1),
        ("0.1234567890123456789", 0.1234567890123456789),
        ("12.0", 12),
        ("1e2", 100),
        ("9007199254740993.0", 9007199254740992.0),
        ("18446744073709551616", float(2**64)),
        ("123456789012345678901234567890", 1.2345678901234568e29),
        ("5e-324", 5e-324),
    ],
)
async def test_a_number_written_as_text_is_stored_as_its_literal_is(
    db: Database, actor: AppActor, text: str, literal: int | float
) -> None:
    m = marker()
    as_text = await save(db, actor, m, numberField_s=text, numberField_p=text)
    as_literal = await save(db, actor, m, numberField_s=literal, numberField_p=literal)
    for iid in (as_text, as_literal):
        stored = await data(db, actor, iid)
        assert [(stored[k], type(stored[k])) for k in NUMBERS] == [(literal, type(literal))] * 2, text
    for field in NUMBERS:  # and a search for it, as text or as the literal, finds both
        for value in (text, literal):
            assert await found(db, actor, m, Condition(field, "eq", value)) == {as_text, as_literal}, (field, value)


# ------------------------------------------------------------------------------------------------ searches


@pytest.mark.parametrize("tiny", [5e-324, 1e-310, -2.5e-320])
async def test_a_subnormal_number_that_is_stored_can_be_searched_for(
    db: Database, actor: AppActor, tiny: float
) -> None:
    m = marker()
    iid = await save(db, actor, m, numberField_s=tiny, numberField_p=tiny)
    zero = await save(db, actor, m, numberField_s=0, numberField_p=0)
    for field in NUMBERS:
        for value in (tiny, repr(tiny)):
            assert await found(db, actor, m, Condition(field, "eq", value)) == {iid}
            assert await found(db, actor, m, Condition(field, "in", [value, 7])) == {iid}
            assert await found(db, actor, m, Condition(field, "ne", value)) == {zero}
            assert await found(db, actor, m, Condition(field, "between", [value, value])) == {iid}
        below, above = (Condition(field, "lt", 0), Condition(field, "gt", 0))
        assert await found(db, actor, m, below if tiny < 0 else above) == {iid}
    with pytest.raises(InvalidArgument) as err:  # below the smallest double: no number, stored or searched
        await found(db, actor, m, Condition("numberField_s", "eq", "1e-400"))
    assert err.value.reason == "search.expect_number" and "out of the range" in str(err.value)


async def test_a_search_value_is_read_as_a_stored_value_is_on_either_database(db: Database, actor: AppActor) -> None:
    m = marker()
    decimal = await save(db, actor, m, numberField_s=0.1234567890123456789, numberField_p=0.1234567890123456789)
    wide = await save(db, actor, m, numberField_s=2**64, numberField_p="18446744073709551616")
    wider = await save(db, actor, m, numberField_s=10**29, numberField_p=str(10**29))
    for field in NUMBERS:

        async def ids(op: str, value: Any, field: str = field) -> set[str]:
            return await found(db, actor, m, Condition(field, op, value))

        for value in ("0.1234567890123456789", 0.12345678901234568, "0.12345678901234568"):
            assert await ids("eq", value) == {decimal}, (field, value)
            assert await ids("gt", value) == {wide, wider} and await ids("ge", value) == {decimal, wide, wider}
            assert await ids("lt", value) == set() and await ids("le", value) == {decimal}
        assert await ids("between", ["0.1234567890123456789", "0.1234567890123456789"]) == {decimal}
        for value in ("18446744073709551616", 2**64, 2**64 + 1, "18446744073709551617", float(2**64)):
            assert await ids("eq", value) == {wide}, (field, value)
            assert await ids("gt", value) == {wider} and await ids("le", value) == {decimal, wide}
        for value in (10**29, str(10**29), "100000000000000000000000000001", 1e29):
            assert await ids("eq", value) == {wider}, (field, value)
            assert await ids("in", [value, "1"]) == {wider}


async def test_integers_are_exact_within_64_bits_and_doubles_past_them_on_either_database(
    db: Database, actor: AppActor
) -> None:
    """SQLite reads a JSON integer past 64 bits signed as a double: such an integer is stored as the double it is, so
    both databases compare the stored values alike (and as JavaScript or Java would read them)."""
    m = marker()
    top = await save(db, actor, m, numberField_s=2**63 - 1, numberField_p=2**63 - 1)
    low = await save(db, actor, m, numberField_s=-(2**63), numberField_p=str(-(2**63)))
    past = await save(db, actor, m, numberField_s=2**63, numberField_p=str(2**63))
    further = await save(db, actor, m, numberField_s=2**63 + 1, numberField_p=2**63 + 1)
    below = await save(db, actor, m, numberField_s=-(2**63) - 1, numberField_p=str(-(2**63) - 1))
    assert (await data(db, actor, top))["numberField_s"] == 2**63 - 1
    assert (await data(db, actor, low))["numberField_p"] == -(2**63)
    # (PostgreSQL writes the double's shortest decimal out in full: 9223372036854776000, the same double.)
    for iid in (past, further):
        assert [float((await data(db, actor, iid))[k]) for k in NUMBERS] == [float(2**63)] * 2
    assert 2**63 + 1 not in (await data(db, actor, further)).values()  # what is read back is what is compared
    assert [float((await data(db, actor, below))[k]) for k in NUMBERS] == [-float(2**63)] * 2
    for field in NUMBERS:

        async def ids(op: str, value: Any, field: str = field) -> set[str]:
            return await found(db, actor, m, Condition(field, op, value))

        for value in (2**63, 2**63 + 1, "9223372036854775809", float(2**63)):
            assert await ids("eq", value) == {past, further}, (field, value)
            assert await ids("gt", value) == set() and await ids("ge", value) == {past, further}
            assert await ids("lt", value) == {top, low, below}
        assert await ids("eq", 2**63 - 1) == {top} and await ids("gt", 2**63 - 1) == {past, further}
        assert await ids("lt", "-9223372036854775807") == {low, below} and await ids("eq", -(2**63) + 1) == set()
        assert await ids("eq", 2**63 - 2) == set() and await ids("lt", 2**63 - 1) == {low, below}


def test_integer_text_is_exact_whatever_its_leading_zeros_and_no_integer_is_past_every_double() -> None:
    assert number_value("0000000000009007199254740993") == 9007199254740993
    assert number_value("-000009007199254740993") == -9007199254740993
    assert number_value("9223372036854775808") == 2.0**63  # past 64 bits signed: the double
    with pytest.raises(NotANumber, match="out of the range"):
        number_value(10**400)  # JSON decoding refuses such a literal; a caller's own integer is refused too
