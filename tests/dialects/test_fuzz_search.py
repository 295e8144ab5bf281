"""Property-based tests (hypothesis) of the search and filter parsers, on the database under test.

Random JSON of any depth, size and type, in the shapes DingTalk's search syntaxes take (the map and the filter
array, orders, page and scalar parameters) and in no shape at all. The properties: a request is answered with a
result or a clear error (a ``ZidaError`` in process, a 4xx over HTTP), never anything else and never a 5xx; and
within a time bound (generous: a noisy machine, every statement run).

In process: the JSON decoding every dialect shares, DingTalk's search parser, the filter compiler and the search
statement. Over HTTP: the same through a live server's search routes.
"""

from __future__ import annotations

import asyncio
import os
import string
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from tests.dialects.test_limits import APP, FORM, KEY, Client, limits_corp  # noqa: F401 (the corp's fixture)
from zida.core.apps.models import Form
from zida.core.apps.queries import get_form
from zida.core.errors import ZidaError
from zida.core.principals import AppActor
from zida.core.records.actions import save_form_instance
from zida.core.records.filters import And, Page, RecordQuery
from zida.core.records.filters.compiler import FilterCompiler
from zida.core.records.queries import search_form_instances
from zida.db import Database, open_database
from zida.db.database import PostgresDialect, SqlDialect
from zida.dialects.dingtalk.search import BUILTIN_KEYS, OPERATORS, order_from_json, parse_search, time_range
from zida.dialects.http import decode_json

# Hypothesis keeps caches (Unicode tables) in a directory of its own: outside the work tree.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "zida-hypothesis"))

# Generous bounds for a noisy 2-core machine: one search (parse, compile, run) and one HTTP request.
SEARCH_SECONDS = 5.0
REQUEST_SECONDS = 10.0

FUZZ = settings(
    max_examples=int(os.environ.get("ZIDA_FUZZ_EXAMPLES", "200")),
    deadline=None,  # the time bound is the property's own assertion
    database=None,  # no example database written into the work tree
    derandomize=os.environ.get("CI") == "true",  # CI: the same examples every run; locally: new ones
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

FIELDS = [
    "textField_lt",
    "textField_plain",
    "textareaField_la",
    "editorField_le",
    "serialNumberField_ls",
    "numberField_ln",
    "dateField_ld",
    "selectField_lsel",
    "checkboxField_lc",
    "checkboxField_lcp",
    "employeeField_lemp",
    "departmentSelectField_ldep",
    "cascadeSelectField_lcas",
    "cascadeDateField_lcd",
    "addressField_lad",
    "countrySelectField_lco",
    "attachmentField_lat",
    "tableField_lrows",
]
CHILDREN = ["textField_lrow", "numberField_lrow", "checkboxField_lrow"]
KEYS = FIELDS + CHILDREN + list(BUILTIN_KEYS) + ["nope", "", "cascadeDateField_lcd[0]", "gmt_create"]

# -- strategies ----------------------------------------------------------------------------------------------------

tricky_text = st.sampled_from(
    [
        "",
        "%",
        "_",
        "\\",
        "1e-400",
        "1e400000",
        "-0",
        "１２",
        "١٢",
        "NaN",
        "[1,2]",
        "[[[[[]]]]]",
        '["c01","c02"]',
        "2024-01-01",
        "9999-12-31 23:59:59",
        "c01",
        "ladmin",
        "\u0000",
        "\\u0000",
        "'; DROP TABLE form_instance; --",
    ]
) | st.builds(
    lambda piece, times: piece * times,  # long texts: LIKE patterns past SQLite's limit, deep-looking JSON text
    st.sampled_from(["%_\\", "中", "[", "a"]),
    st.sampled_from([400, 1_000, 1_001, 3_000, 17_000, 50_001]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what JSON parsers read as integers
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.text(alphabet=string.digits + "-:. e", max_size=20),
    tricky_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=8) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)
big_lists = st.builds(
    lambda n, item: [item] * n if not isinstance(item, str) else [f"{item}{i}" for i in range(n)],
    st.integers(min_value=0, max_value=1_200),
    st.sampled_from(["c", "x", 1, 2.5, None]),
)
values = st.one_of(json_values, big_lists)
operators = st.one_of(st.sampled_from(sorted(OPERATORS)), st.none(), st.text(max_size=6), json_values)
conditions = st.fixed_dictionaries(
    {"key": st.one_of(st.sampled_from(KEYS), json_values), "value": values},
    optional={
        "operator": operators,
        "parentId": st.one_of(st.sampled_from(["tableField_lrows", "textField_lt", "nope", ""]), json_values),
        "type": st.sampled_from(["TEXT", "DOUBLE", "ARRAY", "DATE", "STRING"]),
        "componentName": st.sampled_from(["TextField", "NumberField", "CheckboxField", "TableField"]),
    },
)
# Well-formed conditions (known fields, known operators, plausible values) reach the compiler and the statement.
clean_text = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=20)
plain = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    clean_text,
    st.sampled_from(
        ["c01", "c02", "甲", "ladmin", "CN", "cn", "zj", "fuzz-", "%", "_", "2024-01-01", "1e-400", "１２"]
    ),
)
plausible = st.one_of(plain, st.lists(plain, max_size=6), big_lists, st.lists(st.lists(plain, max_size=3), max_size=3))
well_formed = st.one_of(
    st.builds(
        lambda key, op, value: {"key": key, "operator": op, "value": value},
        st.sampled_from(FIELDS + list(BUILTIN_KEYS)),
        st.sampled_from(sorted(OPERATORS)),
        plausible,
    ),
    st.builds(
        lambda key, op, value: {"key": key, "operator": op, "value": value, "parentId": "tableField_lrows"},
        st.sampled_from(CHILDREN),
        st.sampled_from(sorted(OPERATORS)),
        plausible,
    ),
)
structured = st.one_of(
    st.lists(well_formed, min_size=1, max_size=6),
    st.dictionaries(st.sampled_from(FIELDS), plausible, min_size=1, max_size=4),
    st.dictionaries(st.sampled_from(FIELDS), plain, min_size=1, max_size=2),
)
anything = st.one_of(
    st.lists(st.one_of(well_formed, conditions), max_size=12),
    st.dictionaries(st.sampled_from(KEYS), values, max_size=8),
    json_values,
)
searches = st.one_of(structured, structured, structured, anything)
orders = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=8),
        st.sampled_from(["+", "-", "asc", "DESC", "x"]) | json_values,
        max_size=5,
    ),
    json_values,
)


@st.composite
def json_texts(draw: st.DrawFn, inner: st.SearchStrategy[Any]) -> str:
    """JSON text of a drawn value; sometimes nested 1 to 3,000 levels deep (built as text, without recursion) or
    not JSON at all."""
    kind = draw(st.sampled_from(["value"] * 8 + ["deep", "broken"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=3_000))
        opener, closer = draw(
            st.sampled_from([("[", "]"), ('{"textField_lt":', "}"), ('[{"key":"title","value":', "}]")])
        )
        leaf = orjson.dumps(draw(scalars)).decode()
        return opener * depth + leaf + closer * depth
    text = orjson.dumps(draw(inner)).decode()
    if kind == "broken":
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        return text[:cut] + draw(st.sampled_from(["", "]", "}", ",", "1e-400", "\\"]))
    return text


# -- in process: decoding, parsing, compiling and running the statement --------------------------------------------


@dataclass
class Scene:
    loop: asyncio.AbstractEventLoop
    db: Database
    actor: AppActor
    form: Form

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


RECORDS: list[dict[str, Any]] = [
    {
        "textField_lt": "fuzz-a%_\\",
        "numberField_ln": 1,
        "checkboxField_lc": ["c01", "c02"],
        "checkboxField_lcp": ["c03"],
    },
    {
        "textField_lt": "fuzz-b",
        "numberField_ln": -2.5,
        "dateField_ld": 1_700_000_000_000,
        "employeeField_lemp": ["ladmin", "lu1"],
        "cascadeSelectField_lcas": ["cn", "zj"],
        "cascadeDateField_lcd": [1, None],
        "addressField_lad": {"address": "西湖"},
        "countrySelectField_lco": ["CN"],
        "tableField_lrows": [{"textField_lrow": "行", "numberField_lrow": 3, "checkboxField_lrow": ["c01"]}],
    },
    {"textField_lt": "fuzz-c", "selectField_lsel": "甲", "textareaField_la": "中" * 100},
]


@pytest.fixture(scope="module")
def scene(limits_corp: str) -> Iterator[Scene]:  # noqa: F811 (the imported fixture by name)
    """The limits corp's form, as its app admin, on a database opened on this module's own event loop."""
    loop = asyncio.new_event_loop()
    db = loop.run_until_complete(open_database(limits_corp))

    async def prepare() -> tuple[AppActor, Form]:
        row = await db.fetchrow(
            "SELECT a.id, a.corp_pk, u.id AS user_pk FROM app a JOIN org_user u ON u.corp_pk = a.corp_pk"
            " WHERE a.app_type = 'APP_LIMITS' AND u.user_id = 'ladmin'"
        )
        assert row is not None
        actor = AppActor(row["corp_pk"], row["id"], "APP_LIMITS", row["user_pk"], "ladmin", "限额管理员", True)
        form = await get_form(db, actor, FORM)
        found = await search_form_instances(
            db, actor, form, RecordQuery(filter=parse_search(form, {"textField_lt": "fuzz-"}), page=Page(1, 10))
        )
        if not found.total:
            for values in RECORDS:
                await save_form_instance(db, actor, FORM, values)
        return actor, form

    actor, form = loop.run_until_complete(prepare())
    yield Scene(loop, db, actor, form)
    loop.run_until_complete(db.close())
    loop.close()


def _search(scene: Scene, search_text: str, order_text: str | None, logic: Any, created: Any) -> None:
    raw = decode_json(search_text, "searchFieldJson")
    node = parse_search(scene.form, raw, logic=logic if isinstance(logic, str) else None)
    bounds = time_range("created_at", created, None, "Asia/Shanghai")
    if bounds is not None:
        node = bounds if node is None else And((node, bounds))
    sort = order_from_json(scene.form, None if order_text is None else decode_json(order_text, "orderConfigJson"))
    for sql in (SqlDialect(), PostgresDialect()):  # compiles for both, whichever database runs it
        compiler = FilterCompiler(sql, scene.form.fields, scene.form.pk, corp_pk=scene.actor.corp_pk)
        compiler.where(node)
        compiler.order_by(sort)
    query = RecordQuery(filter=node, sort=sort, page=Page(1, 20))
    scene.run(search_form_instances(scene.db, scene.actor, scene.form, query))


@FUZZ
@given(
    search_text=json_texts(searches),
    order_text=st.none() | json_texts(orders),
    logic=st.none() | st.sampled_from(["OR", "and", "or "]) | json_values,
    created=st.one_of(st.none(), st.none(), st.none(), st.sampled_from(["2024-01-01", 1_700_000_000_000]), scalars),
)
def test_any_search_is_answered_or_refused_clearly_in_time(
    scene: Scene, search_text: str, order_text: str | None, logic: Any, created: Any
) -> None:
    started = time.monotonic()
    try:
        _search(scene, search_text, order_text, logic, created)
        event("answered")
    except ZidaError as err:  # a clear error, which each dialect renders as a 4xx
        event(f"refused: {err.reason}")
    elapsed = time.monotonic() - started
    assert elapsed < SEARCH_SECONDS, (elapsed, search_text[:200])


@FUZZ
@given(text=json_texts(json_values), depth=st.integers(min_value=0, max_value=1_200))
def test_decoding_refuses_only_with_clear_errors(text: str, depth: int) -> None:
    for candidate in (text, "[" * depth + text + "]" * depth, '{"a":' * depth + text + "}" * depth):
        try:
            decode_json(candidate, "value")
        except ZidaError as err:
            assert err.reason in (
                "argument.bad_json",
                "request.too_deep",
                "request.number_out_of_range",
                "request.nul_character",
            ), err
            assert len(err.message) < 300


# -- over HTTP: the search routes of a live server -----------------------------------------------------------------

ROUTES = [
    ("/v1.0/yida/forms/instances/search", "searchFieldJson", "dynamicOrder", "currentPage"),
    ("/v1.0/yida/forms/instances/advances/queryAll", "searchCondition", "orderConfigJson", "pageNumber"),
    ("/v2.0/yida/forms/instances/advances/queryAll", "searchCondition", "orderConfigJson", "pageNumber"),
    ("/v1.0/yida/forms/instances/query", "searchFieldJson", "orderConfigJson", "pageNumber"),
    (f"/v1.0/yida/forms/instances/ids/APP_LIMITS/{FORM}", "searchFieldJson", "orderConfigJson", "pageNumber"),
    ("/v1.0/yida/processes/instances", "searchFieldJson", "orderConfigJson", "pageNumber"),
    ("/v1.0/yida/processes/instanceIds", "searchFieldJson", "orderConfigJson", "pageNumber"),
    ("/v1.0/yida/forms/employeeFields", "searchFieldJson", "targetFieldJson", "pageNumber"),
]


@pytest.fixture(scope="module")
def client(limits_corp: str, base_url: str) -> Iterator[Client]:  # noqa: F811 (the imported fixture by name)
    c = Client(base_url, KEY)
    yield c
    c.http.close()


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    search_text=json_texts(searches),
    order_text=st.none() | json_texts(orders),
    as_object=st.booleans(),
    page=st.one_of(st.none(), st.none(), st.integers(min_value=-5, max_value=5), scalars | json_values),
    size=st.one_of(st.none(), st.none(), st.integers(min_value=-5, max_value=200), scalars),
    extra=st.one_of(
        st.just({}),
        st.just({}),
        st.dictionaries(
            st.sampled_from(
                ["useAlias", "logicOperator", "originatorId", "createFromTimeGMT", "modifiedToTimeGMT", "language"]
            ),
            json_values,
            max_size=2,
        ),
    ),
)
def test_any_search_request_is_answered_without_a_5xx_in_time(
    client: Client,
    route: tuple[str, str, str, str],
    search_text: str,
    order_text: str | None,
    as_object: bool,
    page: Any,
    size: Any,
    extra: dict[str, Any],
) -> None:
    path, search_name, order_name, page_name = route
    body: dict[str, Any] = {**APP, "formUuid": FORM, **extra}
    # The JSON-in-a-string parameter, or the same JSON as a value of the body (depth then counts in the body).
    search_member = orjson.dumps(search_text).decode()
    if as_object:
        try:
            orjson.loads(search_text)
            search_member = search_text
        except orjson.JSONDecodeError:
            pass
    members = [f'"{search_name}": {search_member}']
    if order_text is not None:
        members.append(f'"{order_name}": {orjson.dumps(order_text).decode()}')
    if page is not None:
        members.append(f'"{page_name}": {orjson.dumps(page).decode()}')
    if size is not None:
        members.append(f'"pageSize": {orjson.dumps(size).decode()}')
    raw = orjson.dumps(body).decode()[:-1] + ", " + ", ".join(members) + "}"
    started = time.monotonic()
    try:
        reply = client.post(path, raw=raw)
    except httpx.TimeoutException:
        pytest.fail(f"no answer in time: {raw[:300]}")
    elapsed = time.monotonic() - started
    event(f"{path.split('/')[-1]}: {reply.status_code} {reply.json().get('code', '')}")
    assert reply.status_code < 500, (reply.status_code, reply.text[:300], raw[:300])
    assert reply.status_code in (200, 400, 403, 413), (reply.status_code, reply.text[:300])
    if reply.status_code != 200:
        message = reply.json()["message"]
        assert len(message) < 400, message[:300]
    assert elapsed < REQUEST_SECONDS, (elapsed, raw[:300])


@FUZZ
@given(
    values=st.one_of(
        st.dictionaries(st.sampled_from(FIELDS), plausible, max_size=5),
        st.dictionaries(
            st.just("tableField_lrows"),
            st.lists(st.dictionaries(st.sampled_from(CHILDREN), plausible, max_size=3), max_size=4),
        ),
        json_values,
    ),
    as_text=st.booleans(),
)
def test_any_form_data_is_saved_or_refused_without_a_5xx(client: Client, values: Any, as_text: bool) -> None:
    # The values' parser (the same JSON decoding, then each component's validation) under the same properties.
    data = orjson.dumps(values).decode()
    body = {**APP, "formUuid": FORM, "formDataJson": data if as_text else values}
    started = time.monotonic()
    reply = client.post("/v1.0/yida/forms/instances", raw=orjson.dumps(body).decode())
    event(f"save: {reply.status_code} {reply.json().get('code', '')}")
    assert reply.status_code in (200, 400), (reply.status_code, reply.text[:300], data[:300])
    assert time.monotonic() - started < REQUEST_SECONDS
