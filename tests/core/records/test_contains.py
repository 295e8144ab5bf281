"""Contains-match indexes (pg_trgm on PostgreSQL, FTS5 trigram tables on SQLite): a search they serve returns
exactly what the scan of the same field returns, for any text, on the database under test.

The form has the same values in two text fields: ``textField_i`` is searchable (it has the index) and
``textField_s`` is not (every search of it scans). Properties (hypothesis): for random patterns — pieces of the
stored texts with their case changed, and random text of CJK, full-width, accented and Greek letters, ``%``, ``_``,
``\\``, quotes and spaces — each of ``like``, ``substring`` and their negations finds the same records on both
fields, ``substring`` finds exactly the records whose text contains the pattern, and the index stays in step with
saves, updates and deletes. Plus: the statements really use the index, a form change rebuilds or drops it, and
``zida migrate`` builds a missing one and says how far it got.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from tests.conftest import SECRET_KEY, fresh_database, plans_of
from zida.bundle.loader import load_bundle, parse_bundle
from zida.core.apps.models import Form
from zida.core.apps.queries import get_form
from zida.core.principals import AppActor
from zida.core.records.actions import delete_form_instance, save_form_instance, update_form_instance
from zida.core.records.filters import And, Condition, Page, RecordQuery, Sort
from zida.core.records.filters.compiler import FilterCompiler
from zida.core.records.filters.indexes import (
    contains_indexes,
    ensure_field_indexes,
    forget_sqlite_indexes,
    text_table,
)
from zida.core.records.queries import search_form_instance_ids, search_form_instances
from zida.core.records.store import page_statement
from zida.crypto import SecretBox
from zida.db import Database, open_database

set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "zida-hypothesis"))

PROPERTY = settings(
    max_examples=int(os.environ.get("ZIDA_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Letters whose case and width matter, characters LIKE and FTS5 treat specially, CJK, spaces.
ALPHABET = "aAbBcCxX01９Ａａｂ％＿张三丰中文ÉéΣσςİßΩ%_\\\"' -"


def bundle(searchable: bool = True) -> dict[str, Any]:
    return {
        "corp": {"corpId": "corpContains", "name": "包含搜索"},
        "departments": [{"deptId": 1, "name": "根"}],
        "users": [{"userId": "ca", "name": "管理员", "departments": [1]}],
        "apps": [
            {
                "appType": "APP_CONTAINS",
                "name": "包含",
                "systemToken": "ST-CONTAINS-0001",
                "admins": ["ca"],
                "forms": [
                    {
                        "formUuid": "FORM-CONTAINS",
                        "title": "包含",
                        "fields": [
                            {
                                "fieldId": "textField_i",
                                "component": "TextField",
                                "label": "I",
                                "searchable": searchable,
                            },
                            {"fieldId": "textField_s", "component": "TextField", "label": "S"},
                            {"fieldId": "numberField_n", "component": "NumberField", "label": "N"},
                        ],
                    }
                ],
            }
        ],
    }


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


@dataclass
class Scene:
    loop: asyncio.AbstractEventLoop
    db: Database
    url: str
    actor: AppActor
    form: Form
    texts: dict[str, str]  # instance id → its text

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def ids(self, field: str, op: str, pattern: str) -> set[str]:
        query = RecordQuery(filter=Condition(field, op, pattern), page=Page(1, 100))
        result = self.run(search_form_instances(self.db, self.actor, self.form, query))
        assert result.total == len(result.items)
        return {item.instance_id for item in result.items}


async def _actor(db: Database) -> AppActor:
    row = await db.fetchrow(
        "SELECT a.id, a.corp_pk, u.id AS user_pk FROM app a JOIN org_user u ON u.corp_pk = a.corp_pk"
        " WHERE a.app_type = 'APP_CONTAINS' AND u.user_id = 'ca'"
    )
    assert row is not None
    return AppActor(row["corp_pk"], row["id"], "APP_CONTAINS", row["user_pk"], "ca", "管理员", True)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """A database of its own with 90 records of random text (some updated, some deleted after saving)."""
    with fresh_database(tmp_path_factory.mktemp("contains")) as url:
        loop = asyncio.new_event_loop()
        db = loop.run_until_complete(open_database(url))

        async def prepare() -> tuple[AppActor, Form, dict[str, str]]:
            await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(bundle()))
            actor = await _actor(db)
            rng = random.Random(20261203)
            texts: dict[str, str] = {}
            fixed = ["apple PIE", "Banana 100%", "cherry_tart", "张三丰来了", "ＡＢＣ全角", 'say "hi"', "a\\b", ""]
            for n in range(90):
                text = fixed[n] if n < len(fixed) else random_text(rng)
                inst = await save_form_instance(db, actor, "FORM-CONTAINS", {"textField_i": text, "textField_s": text})
                texts[inst.instance_id] = text
            kept = set(list(texts)[: len(fixed)])
            changeable = sorted(set(texts) - kept)
            for instance_id in rng.sample(changeable, 20):  # the update trigger
                text = random_text(rng)
                await update_form_instance(db, actor, instance_id, {"textField_i": text, "textField_s": text})
                texts[instance_id] = text
            for instance_id in rng.sample(changeable, 10):  # the delete trigger
                await delete_form_instance(db, actor, instance_id)
                del texts[instance_id]
            for instance_id in rng.sample(sorted(texts), 10):  # another field changes: the index row stays
                await update_form_instance(db, actor, instance_id, {"numberField_n": 1})
            return actor, await get_form(db, actor, "FORM-CONTAINS"), texts

        actor, form, texts = loop.run_until_complete(prepare())
        try:
            yield Scene(loop, db, url, actor, form, texts)
        finally:
            loop.run_until_complete(db.close())
            loop.close()


def pieces(texts: list[str]) -> st.SearchStrategy[str]:
    """A piece of a stored text, its case changed at random."""

    @st.composite
    def piece(draw: st.DrawFn) -> str:
        text = draw(st.sampled_from([t for t in texts if t] or ["x"]))
        start = draw(st.integers(0, len(text) - 1))
        end = draw(st.integers(start + 1, len(text)))
        chars = [c.upper() if draw(st.booleans()) else c.lower() for c in text[start:end]]
        return "".join(c if len(c) == 1 else text[start + i] for i, c in enumerate(chars))

    return piece()


@pytest.fixture(scope="module")
def patterns(scene: Scene) -> st.SearchStrategy[str]:
    return pieces(sorted(scene.texts.values())) | st.text(alphabet=ALPHABET, min_size=0, max_size=6)


def test_the_form_has_its_contains_index(scene: Scene) -> None:
    built = scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields))
    assert set(built) == {"textField_i"}  # the searchable text field only


@PROPERTY
@given(data=st.data())
def test_indexed_contains_equals_the_scan(scene: Scene, patterns: st.SearchStrategy[str], data: st.DataObject) -> None:
    pattern = data.draw(patterns)
    for op in ("like", "substring", "not_like", "not_substring"):
        indexed, scanned = scene.ids("textField_i", op, pattern), scene.ids("textField_s", op, pattern)
        assert indexed == scanned, (op, pattern)
    exact = {i for i, text in scene.texts.items() if text and pattern in text}
    assert scene.ids("textField_i", "substring", pattern) == exact, pattern
    if pattern.isascii():  # case-insensitive for ASCII letters on both databases (beyond ASCII, see README)
        ascii_texts = {i for i, text in scene.texts.items() if text.isascii()}
        folded = {i for i in ascii_texts if scene.texts[i] and pattern.lower() in scene.texts[i].lower()}
        assert scene.ids("textField_i", "like", pattern) & ascii_texts == folded, pattern


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("pie", {"apple PIE"}),
        ("100%", {"Banana 100%"}),  # % and _ are literal
        ("y_t", {"cherry_tart"}),
        ("三丰", {"张三丰来了"}),  # two characters: no trigram, the scan answers
        ("张三丰", {"张三丰来了"}),
        ("ＡＢＣ全", {"ＡＢＣ全角"}),
        ('"hi"', {'say "hi"'}),
        ("a\\b", {"a\\b"}),
    ],
)
def test_known_texts(scene: Scene, pattern: str, expected: set[str]) -> None:
    found = {scene.texts[i] for i in scene.ids("textField_i", "like", pattern)}
    assert expected <= found and all(pattern.lower() in t.lower() for t in found)


FILLER = "jsonb_build_object('textField_i', 'filler ' || n, 'textField_s', 'filler ' || n)"


def test_a_contains_search_reads_the_index(scene: Scene) -> None:
    """A contains search of 3+ characters reads the form's contains index; a shorter one does not (a trigram cannot
    serve it: the index would be read whole).

    On PostgreSQL, also the page of a contains search, counted in its scan and newest first, comes from the trigram
    index; never from walking the form in the sort's index order (the planner costs a LIMIT over a window as if it
    stopped early: on 1,000,000 records that walk took 1 s where the index answers in 1 ms). One fill of the form
    serves the three plans."""
    contains = scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields))
    compiler = FilterCompiler(scene.db.sql, scene.form.fields, scene.form.pk, contains=contains)
    statements: list[tuple[str, dict[str, object]]] = []
    for pattern in ("PIE", "PI"):
        where = compiler.where(And((Condition("textField_i", "like", pattern),)))
        statements.append(
            (f"SELECT id FROM form_instance WHERE form_pk = {scene.form.pk} AND {where}", dict(compiler.params))
        )
    postgres = scene.db.sql.name == "postgresql"
    if postgres:
        node = Condition("textField_i", "like", "199")  # ~1% of the filler texts: the estimate that misleads
        where = f"form_pk = {scene.form.pk} AND {compiler.where(node)}"
        counted = page_statement(compiler, RecordQuery(filter=node, page=Page(1, 20)), where, counted=True)
        statements.append((counted, {**compiler.params, "limit": 20, "offset": 0}))
    plans = scene.run(plans_of(scene.db, scene.form.pk, statements, FILLER))
    index = contains["textField_i"]
    assert index in plans[0], plans[0]
    assert index not in plans[1], plans[1]
    if postgres:
        assert index in plans[2], plans[2]
        assert "ix_form_instance_created" not in plans[2], plans[2]


@pytest.mark.parametrize(
    "sort",
    [
        (),
        (Sort("numberField_n"),),
        (Sort("numberField_n", descending=True),),
        (Sort("textField_s"),),
        (Sort("textField_s", descending=True), Sort("numberField_n")),
        (Sort("created_at"),),
        (Sort("modified_at", descending=True),),
    ],
    ids=repr,
)
def test_a_counted_search_pages_in_the_order_of_an_uncounted_one(scene: Scene, sort: tuple[Sort, ...]) -> None:
    """A search counted in its scan (PostgreSQL: in a subquery of its own) gives the pages and order of the same
    search without a total, records and ids alike, for every kind of sort key (numbers with absent values, text,
    system columns)."""
    node = Condition("textField_i", "like", "a")  # a short pattern: many matches
    whole = scene.run(
        search_form_instances(
            scene.db, scene.actor, scene.form, RecordQuery(filter=node, sort=sort, page=Page(1, 100), with_total=False)
        )
    )
    expected = [item.instance_id for item in whole.items]
    assert len(expected) > 14
    paged: list[str] = []
    for number in range(1, len(expected) // 7 + 2):
        query = RecordQuery(filter=node, sort=sort, page=Page(number, 7))
        result = scene.run(search_form_instances(scene.db, scene.actor, scene.form, query))
        assert result.total == len(expected) or not result.items
        paged += [item.instance_id for item in result.items]
        total, ids = scene.run(search_form_instance_ids(scene.db, scene.actor, scene.form, query))
        assert ids == [item.instance_id for item in result.items] and (total == len(expected) or not ids)
    assert paged == expected


def test_a_form_change_drops_and_rebuilds_the_index(scene: Scene) -> None:
    before = scene.ids("textField_i", "like", "pie")

    def load(searchable: bool) -> Form:
        scene.run(load_bundle(scene.db, SecretBox(SECRET_KEY), parse_bundle(bundle(searchable))))
        forget_sqlite_indexes()
        return scene.run(get_form(scene.db, scene.actor, "FORM-CONTAINS"))

    try:
        scene.form = load(False)
        assert scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields)) == {}
        assert _contains_objects(scene) == set()
        assert scene.ids("textField_i", "like", "pie") == before
    finally:
        scene.form = load(True)
    assert set(scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields))) == {"textField_i"}
    assert scene.ids("textField_i", "like", "pie") == before


def _contains_objects(scene: Scene) -> set[str]:
    """The form's contains-match indexes or tables in the catalog."""
    pk = scene.form.pk
    if scene.db.sql.name == "sqlite":
        rows = scene.run(
            scene.db.fetch(
                f"SELECT name FROM sqlite_master WHERE name GLOB 'ft_{pk}_*' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
            )
        )
    else:
        rows = scene.run(
            scene.db.fetch(
                "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()"
                " AND indexdef LIKE '%gin_trgm_ops%'"
            )
        )
    return {str(r["name"]) for r in rows}


def test_migrate_builds_a_missing_index_and_reports_progress(scene: Scene) -> None:
    (name,) = _contains_objects(scene)
    if scene.db.sql.name == "sqlite":
        table = text_table(scene.form.pk, scene.form.fields)
        assert table is not None and table.name == name
        for suffix in ("ai", "au", "ad"):
            scene.run(scene.db.execute(f"DROP TRIGGER {name}_{suffix}"))
        scene.run(scene.db.execute(f"DROP TABLE {name}"))
    else:
        scene.run(scene.db.execute(f"DROP INDEX {name}"))
    forget_sqlite_indexes()
    assert scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields)) == {}
    result = subprocess.run(
        [sys.executable, "-m", "zida.cli", "migrate", "--database", scene.url],
        capture_output=True,
        text=True,
        env={**os.environ, "ZIDA_SECRET_KEY": SECRET_KEY},
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[3],
    )
    assert result.returncode == 0, result.stderr
    assert f"form {scene.form.pk}: " in result.stderr and f"{name}: built" in result.stderr
    assert "search indexes built: 1" in result.stdout
    forget_sqlite_indexes()
    assert scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields)) == {"textField_i": name}
    assert scene.ids("textField_i", "like", "pie") == scene.ids("textField_s", "like", "pie")


def test_postgresql_builds_online_writers_go_on(scene: Scene) -> None:
    """While ``zida migrate`` builds a contains-match index (here: waiting for a writer's open transaction, as
    ``CREATE INDEX CONCURRENTLY`` does), other writes to the form go through; a plain build would queue them."""
    if scene.db.sql.name != "postgresql":
        pytest.skip("SQLite builds inside one write transaction (it has one writer anyway)")
    (name,) = _contains_objects(scene)
    scene.run(scene.db.execute(f"DROP INDEX {name}"))
    forget_sqlite_indexes()

    async def build_while_writing() -> tuple[str, list[str]]:
        saved: list[str] = []
        async with scene.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title,"
                " originator_user_id, modifier_user_id, created_at, modified_at, data, data_version)"
                " SELECT 'HELD-1', corp_pk, app_pk, form_pk, form_version, title, originator_user_id,"
                " modifier_user_id, created_at, modified_at, data, 1 FROM form_instance WHERE form_pk = :f LIMIT 1",
                {"f": scene.form.pk},
            )
            migrate = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "zida.cli",
                "migrate",
                "--database",
                scene.url,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "ZIDA_SECRET_KEY": SECRET_KEY},
            )
            for _ in range(600):  # the build starts, then waits for this transaction
                phase = await scene.db.fetchval(
                    "SELECT phase FROM pg_stat_progress_create_index WHERE relid = to_regclass('form_instance')"
                )
                if phase is not None and str(phase).startswith("waiting"):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the build never started")
            for n in range(3):  # other writers are not held up by the build
                inst = await asyncio.wait_for(
                    save_form_instance(scene.db, scene.actor, "FORM-CONTAINS", {"textField_i": f"online {n}"}), 10
                )
                saved.append(inst.instance_id)
        _, err = await asyncio.wait_for(migrate.communicate(), 120)
        assert migrate.returncode == 0, err.decode()
        return err.decode(), saved

    err, saved = scene.run(build_while_writing())
    try:
        assert f"{name}: building" in err and f"{name}: built" in err
        forget_sqlite_indexes()
        assert scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields)) == {"textField_i": name}
        assert len(scene.ids("textField_i", "like", "online ")) == 3  # written during the build, found by it
    finally:
        for instance_id in saved:
            scene.run(delete_form_instance(scene.db, scene.actor, instance_id))
        scene.run(scene.db.execute("DELETE FROM form_instance WHERE instance_id = 'HELD-1'"))


def test_a_table_another_process_dropped_is_found_gone_and_the_search_answers(scene: Scene) -> None:
    """SQLite: this process still knows the contains-match table another one just replaced: the statement fails,
    the search runs again with what the catalog says now."""
    if scene.db.sql.name != "sqlite":
        pytest.skip("PostgreSQL's planner picks the indexes it has itself")
    expected = scene.ids("textField_s", "like", "pie")
    (name,) = _contains_objects(scene)
    assert scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields)) == {"textField_i": name}
    for suffix in ("ai", "au", "ad"):  # what another process's form change does (this process's cache stays)
        scene.run(scene.db.execute(f"DROP TRIGGER {name}_{suffix}"))
    scene.run(scene.db.execute(f"DROP TABLE {name}"))
    try:
        assert scene.ids("textField_i", "like", "pie") == expected
        assert scene.run(contains_indexes(scene.db, scene.form.pk, scene.form.fields)) == {}
    finally:
        scene.run(ensure_field_indexes(scene.db, scene.form.pk, scene.form.fields, scene.form.search_indexes))
        forget_sqlite_indexes()
    assert scene.ids("textField_i", "like", "pie") == expected
