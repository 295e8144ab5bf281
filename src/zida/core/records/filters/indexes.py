"""Per-form indexes for searchable fields, on both databases (built when a form is loaded or changed).

* text and number fields: a partial B-tree ``(<typed expr>, created_at, id) WHERE form_pk = N`` whose
  expression is exactly what ``zida.core.records.filters.compiler`` emits, so equality, ranges and sorting by
  the field (with the newest-first tie-break) read it directly; on PostgreSQL an expression statistics object
  goes with it, because the planner ignores the statistics of *partial* indexes and would otherwise guess every
  condition's selectivity (and pick the wrong index for two or three conditions);
* array fields (employees, departments, check boxes…): on PostgreSQL a GIN ``jsonb_path_ops`` index for
  containment; on SQLite a side table ``form_field_value`` of (field, element, record) kept up to date by
  triggers (see migration 0004), indexed by value, filled in the transaction that makes a field searchable;
* text fields of ``CONTAINS_COMPONENTS`` (text, text area, serial number) also get a contains-match index: on
  PostgreSQL a pg_trgm GIN index on the same expression (when the extension is installed, see migration 0012); on
  SQLite one FTS5 table per form, ``ft_<form>_<hash>`` with the trigram tokenizer and a column ``f_<field>`` per
  such field, kept up to date by triggers on ``form_instance`` and filled when built. The compiler
  (``FilterCompiler._indexed_contains``) only uses them to narrow, so results are those of a scan.

Index names carry a hash of their definition: when a field's type or the expression changes, the old
index is dropped and a new one built, never silently reused. PostgreSQL builds them ``CONCURRENTLY``
(outside the bundle's transaction, so writers are not blocked while a big form is indexed).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from zida.cache import TtlCache
from zida.core.apps.models import Field
from zida.core.records.filters import Sort
from zida.core.records.filters.compiler import contains_indexable, field_expression, field_key
from zida.db.database import Connection, Database, PostgresDialect, SqlDialect

__all__ = [
    "FieldIndex",
    "Progress",
    "TextTable",
    "contains_indexes",
    "ensure_field_indexes",
    "forget_sqlite_indexes",
    "planned_indexes",
    "refresh_sqlite_statistics",
    "sort_index_hint",
    "sync_element_table",
    "text_table",
    "trigram_schema",
]

# What an index build reports while it runs (``zida migrate`` prints it): one line of text.
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class FieldIndex:
    """One index (and, on PostgreSQL, statistics object) a searchable field needs."""

    field_id: str
    name: str
    create: str
    statistics: str | None = None  # name of the expression statistics (PostgreSQL text/number fields)
    expression: str = ""  # what the statistics are on: ``(expr)`` or ``(expr1), (expr2)…``
    side_table: bool = False  # SQLite array field: values live in form_field_value
    contains: bool = False  # PostgreSQL pg_trgm index for contains-matches


def _name(prefix: str, form_pk: int, field_id: str, definition: str) -> str:
    tag = hashlib.sha1(definition.encode(), usedforsecurity=False).hexdigest()[:8]
    safe = re.sub(r"[^a-z0-9_]", "_", field_id.lower())
    name = f"{prefix}_{form_pk}_{safe}_{tag}"
    if len(name) > 60:  # PostgreSQL's identifiers stop at 63 characters
        long_tag = hashlib.sha1((field_id + definition).encode(), usedforsecurity=False).hexdigest()[:20]
        name = f"{prefix}_{form_pk}_{long_tag}"
    return name


def planned_indexes(
    sql_name: str,
    form_pk: int,
    fields: tuple[Field, ...],
    trigram: str | None = None,
    combinations: tuple[tuple[str, ...], ...] = (),
) -> list[FieldIndex]:
    """The indexes the searchable fields of one form version need on this database (``trigram``: the schema of
    PostgreSQL's pg_trgm, None when it is not installed; SQLite's contains-match tables: ``text_table``), and one
    composite index per declared combination of fields (``searchIndexes``)."""
    sql = PostgresDialect() if sql_name == "postgresql" else SqlDialect()
    pk = int(form_pk)
    out = []
    for f in fields:
        if not f.searchable:
            continue
        if f.kind in ("text", "number"):
            expr = field_expression(sql, f)
            nulls = " NULLS FIRST" if sql.name == "postgresql" else ""  # NULL sorts as the smallest value
            definition = f"({expr}{nulls}, created_at, id) WHERE form_pk = {pk}"
            name = _name("ix_fi", pk, f.field_id, definition)
            stats = _name("st_fi", pk, f.field_id, expr) if sql.name == "postgresql" else None
            out.append(FieldIndex(f.field_id, name, f"ON form_instance {definition}", stats, f"({expr})"))
            if trigram and sql.name == "postgresql" and f.kind == "text" and contains_indexable(f):
                # fastupdate off: new entries go straight into the index. With it on, they wait in a pending list
                # that every search scans until a vacuum flushes it (contains searches fell from ~700 to ~130 req/s
                # after a few thousand saves).
                gin = f'USING gin (({expr}) "{trigram}".gin_trgm_ops) WITH (fastupdate = off) WHERE form_pk = {pk}'
                name = _name("ix_fi", pk, f.field_id, gin)
                out.append(FieldIndex(f.field_id, name, f"ON form_instance {gin}", contains=True))
        elif f.kind == "array" and sql.name == "postgresql":
            definition = f"USING gin ((data->'{f.field_id}') jsonb_path_ops) WHERE form_pk = {pk}"
            out.append(
                FieldIndex(f.field_id, _name("ix_fi", pk, f.field_id, definition), f"ON form_instance {definition}")
            )
        elif f.kind == "array":
            field_key(f.field_id)  # the id goes into the element table's JSON path
            out.append(FieldIndex(f.field_id, "", "", side_table=True))
    by_id = {f.field_id: f for f in fields}
    for combo in combinations:
        members = [by_id.get(k) for k in combo]
        if any(m is None or m.kind not in ("text", "number") for m in members):
            continue  # (checked when the form is written; a stale declaration builds nothing)
        exprs = [field_expression(sql, m) for m in members if m is not None]
        definition = f"({', '.join(exprs)}, created_at, id) WHERE form_pk = {pk}"
        key = "+".join(combo)
        stats = _name("st_fi", pk, key, ", ".join(exprs)) if sql.name == "postgresql" else None
        targets = ", ".join(f"({e})" for e in exprs)
        out.append(
            FieldIndex(key, _name("ix_fi", pk, key, definition), f"ON form_instance {definition}", stats, targets)
        )
    return out


async def _existing(db: Connection, prefix: str, form_pk: int) -> set[str]:
    start = f"{prefix}_{int(form_pk)}_"
    if db.sql.name == "postgresql":
        if prefix == "st_fi":
            rows = await db.fetch(
                "SELECT stxname AS name FROM pg_statistic_ext WHERE stxnamespace = current_schema()::regnamespace"
            )
        else:
            rows = await db.fetch(
                "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()"
                " AND tablename = 'form_instance'"
            )
    else:
        rows = await db.fetch("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'form_instance'")
    return {str(r["name"]) for r in rows if str(r["name"]).startswith(start)}


async def _invalid_indexes(db: Database) -> set[str]:
    """PostgreSQL indexes left INVALID by an interrupted concurrent build (they must be rebuilt)."""
    rows = await db.fetch(
        "SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE NOT i.indisvalid AND c.relnamespace = current_schema()::regnamespace"
    )
    return {str(r["name"]) for r in rows}


async def trigram_schema(db: Connection) -> str | None:
    """PostgreSQL: the schema pg_trgm is installed in (None: not installed, or SQLite)."""
    if db.sql.name != "postgresql":
        return None
    value = await db.fetchval(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
    )
    return None if value is None else str(value)


async def ensure_field_indexes(
    db: Database,
    form_pk: int,
    fields: tuple[Field, ...],
    combinations: tuple[tuple[str, ...], ...],
    progress: Progress | None = None,
) -> list[str]:
    """Build the missing indexes of a form's searchable fields and declared ``combinations`` (``searchIndexes``) and
    drop those nothing needs any more.

    Runs outside any transaction (``CREATE INDEX CONCURRENTLY`` on PostgreSQL: writers go on meanwhile); returns
    what it built. ``progress`` hears how far a build got, every few seconds (PostgreSQL: from
    ``pg_stat_progress_create_index``; SQLite: records copied into the contains-match table).
    """
    pk = int(form_pk)
    if db.sql.name == "postgresql":
        planned = planned_indexes(db.sql.name, pk, fields, await trigram_schema(db), combinations)
        built: list[str] = []
        wanted = {i.name for i in planned}
        existing = await _existing(db, "ix_fi", pk)
        invalid = await _invalid_indexes(db) & existing
        for name in (existing - wanted) | invalid:
            await db.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            existing.discard(name)
        for index in planned:
            if index.name not in existing:
                statement = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index.name} {index.create}"
                await _build_watched(db, statement, f"form {pk}: index {index.name}", progress)
                built.append(index.name)
        stats = await _existing(db, "st_fi", pk)
        for name in stats - {i.statistics for i in planned if i.statistics}:
            await db.execute(f"DROP STATISTICS IF EXISTS {name}")
        new_stats = [i for i in planned if i.statistics and i.statistics not in stats]
        for index in new_stats:
            await db.execute(
                f"CREATE STATISTICS IF NOT EXISTS {index.statistics} ON {index.expression} FROM form_instance"
            )
        if new_stats:
            await db.execute("ANALYZE form_instance")  # fill the new statistics now, not at the next autovacuum
        forget_sqlite_indexes()
        return built
    planned = planned_indexes(db.sql.name, pk, fields, None, combinations)
    built = []
    wanted = {i.name for i in planned if not i.side_table}
    existing = await _existing(db, "ix_fi", pk)
    table = text_table(pk, fields)
    async with db.transaction() as tx:
        for name in existing - wanted:
            await tx.execute(f"DROP INDEX IF EXISTS {name}")
        for index in planned:
            if not index.side_table and index.name not in existing:
                await tx.execute(f"CREATE INDEX IF NOT EXISTS {index.name} {index.create}")
                built.append(index.name)
        built.extend(await _sync_side_table(tx, pk, [i.field_id for i in planned if i.side_table]))
        built.extend(await _sync_text_table(tx, pk, table, progress))
    forget_sqlite_indexes()
    if built:
        await db.execute("PRAGMA optimize")
        await refresh_sqlite_statistics(db)
    return built


# Rows of each index an SQLite ANALYZE reads (``PRAGMA analysis_limit``): approximate statistics, in milliseconds
# however large the forms.
_ANALYSIS_LIMIT = 1_000
# SQLite's statistics of form_instance are taken again once the table holds this many times the records they counted
# (or this many times fewer).
_STALE_FACTOR = 2
_STALE_MIN_ROWS = 1_000


async def _analyze_sqlite(db: Database) -> None:
    """SQLite: statistics for every (non-empty) index of ``form_instance``, read approximately, in effect on every
    connection of every process.

    A connection reads ``sqlite_stat1`` when it loads the schema, and ANALYZE alone does not make the others load it
    again (a pooled reader went on planning from what it read at startup); a table made and dropped in the same
    transaction changes the schema's version, and each connection reloads schema and statistics before its next
    statement."""
    async with db.transaction() as tx:
        await tx.execute(f"PRAGMA analysis_limit = {_ANALYSIS_LIMIT}")
        await tx.execute("ANALYZE form_instance")
        await tx.execute("CREATE TABLE zida_statistics_reload (x)")
        await tx.execute("DROP TABLE zida_statistics_reload")


async def refresh_sqlite_statistics(db: Database) -> bool:
    """SQLite: analyse ``form_instance`` again when its statistics exist and counted a very different number of
    records than it holds now; True when it did.

    SQLite plans from ``sqlite_stat1`` as last written, never refreshed by itself. Taken while the forms held a
    handful of records (``PRAGMA optimize`` after a bundle's index builds), they go on saying "5 records a form" for
    ``ix_form_instance_modified``; the form's own field index, empty then, has none (SQLite keeps no row for an empty
    index) and the planner's default guess for it loses: an indexed equality on a form grown to 200,000 records then
    read the whole form in modification order (94 ms instead of well under one). Without statistics at all SQLite
    plans from its indexes' shapes, which serves these searches: nothing is done then."""
    if db.sql.name != "sqlite":
        return False
    if not await db.fetchval("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"):
        return False
    stat = await db.fetchval(
        "SELECT stat FROM sqlite_stat1 WHERE tbl = 'form_instance' AND idx = 'ix_form_instance_created'"
    )
    if stat is None:
        return False
    counted = int(str(stat).split()[0])
    rows = int(await db.fetchval("SELECT count(*) FROM form_instance") or 0)
    if max(rows, counted) < _STALE_MIN_ROWS or counted / _STALE_FACTOR <= rows <= counted * _STALE_FACTOR:
        return False
    await _analyze_sqlite(db)
    return True


_PROGRESS_SECONDS = 2.0


async def _build_watched(db: Database, statement: str, what: str, progress: Progress | None) -> None:
    """PostgreSQL: run an index build, telling ``progress`` its phase and share done every few seconds."""
    if progress is None:
        await db.execute(statement)
        return
    progress(f"{what}: building")
    build = asyncio.ensure_future(db.execute(statement))
    while not build.done():
        await asyncio.wait({build}, timeout=_PROGRESS_SECONDS)
        if build.done():
            break
        row = await db.fetchrow(
            "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total FROM pg_stat_progress_create_index"
            " WHERE relid = to_regclass('form_instance') LIMIT 1"
        )
        if row is not None:
            done, total = (
                (row["blocks_done"], row["blocks_total"])
                if row["blocks_total"]
                else (row["tuples_done"], row["tuples_total"])
            )
            share = f", {100 * int(done) // int(total)}%" if total else ""
            progress(f"{what}: {row['phase']}{share}")
    await build
    progress(f"{what}: built")


@dataclass(frozen=True, slots=True)
class TextTable:
    """SQLite: the FTS5 trigram table of a form's contains-indexed fields (a column ``f_<field>`` each)."""

    name: str
    form_pk: int
    field_ids: tuple[str, ...]

    def statements(self) -> list[str]:
        """The table and the triggers that keep it equal to the fields' values."""
        sql = SqlDialect()
        t, pk = self.name, self.form_pk
        columns = ", ".join(f"f_{k}" for k in self.field_ids)
        new = [sql.json_text("new.data", k) for k in self.field_ids]
        old = [sql.json_text("old.data", k) for k in self.field_ids]
        changed = " OR ".join(f"{o} IS NOT {n}" for o, n in zip(old, new, strict=True))
        sets = ", ".join(f"f_{k} = {n}" for k, n in zip(self.field_ids, new, strict=True))
        return [
            f"CREATE VIRTUAL TABLE {t} USING fts5({columns}, tokenize='trigram')",
            f"CREATE TRIGGER {t}_ai AFTER INSERT ON form_instance WHEN new.form_pk = {pk}"
            f" BEGIN INSERT INTO {t} (rowid, {columns}) VALUES (new.id, {', '.join(new)}); END",
            f"CREATE TRIGGER {t}_au AFTER UPDATE OF data ON form_instance WHEN new.form_pk = {pk} AND ({changed})"
            f" BEGIN UPDATE {t} SET {sets} WHERE rowid = new.id; END",
            f"CREATE TRIGGER {t}_ad AFTER DELETE ON form_instance WHEN old.form_pk = {pk}"
            f" BEGIN DELETE FROM {t} WHERE rowid = old.id; END",
        ]


def text_table(form_pk: int, fields: tuple[Field, ...]) -> TextTable | None:
    """SQLite: the contains-match table a form version needs (None: no searchable text field of that kind)."""
    ids = tuple(field_key(f.field_id) for f in fields if f.kind == "text" and contains_indexable(f))
    if not ids:
        return None
    probe = TextTable("", int(form_pk), ids)
    tag = hashlib.sha1("\n".join(probe.statements()).encode(), usedforsecurity=False).hexdigest()[:8]
    return TextTable(f"ft_{int(form_pk)}_{tag}", int(form_pk), ids)


async def _text_tables(conn: Connection, form_pk: int) -> set[str]:
    rows = await conn.fetch(
        f"SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'ft_{int(form_pk)}_*'"
        " AND sql LIKE 'CREATE VIRTUAL TABLE%'"
    )
    return {str(r["name"]) for r in rows}


_FILL_CHUNK = 20_000


async def _sync_text_table(
    tx: Connection, form_pk: int, table: TextTable | None, progress: Progress | None
) -> list[str]:
    """SQLite, in the caller's transaction: drop the form's contains-match tables it no longer needs, build the
    one it needs (filled chunk by chunk from the form's records, reporting progress)."""
    current = await _text_tables(tx, form_pk)
    for name in current - ({table.name} if table else set()):
        for suffix in ("ai", "au", "ad"):
            await tx.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix}")
        await tx.execute(f"DROP TABLE IF EXISTS {name}")
    if table is None or table.name in current:
        return []
    for statement in table.statements():
        await tx.execute(statement)
    sql = SqlDialect()
    columns = ", ".join(f"f_{k}" for k in table.field_ids)
    values = ", ".join(sql.json_text("data", k) for k in table.field_ids)
    what = f"form {form_pk}: contains-match table {table.name}"
    total = int(await tx.fetchval("SELECT count(*) FROM form_instance WHERE form_pk = :f", {"f": form_pk}) or 0)
    done, after, told = 0, 0, time.monotonic()
    while True:
        last = await tx.fetchval(
            "SELECT max(id) FROM (SELECT id FROM form_instance WHERE form_pk = :f AND id > :a ORDER BY id"
            f" LIMIT {_FILL_CHUNK})",
            {"f": form_pk, "a": after},
        )
        if last is None:
            break
        done += await tx.execute(
            f"INSERT INTO {table.name} (rowid, {columns}) SELECT id, {values} FROM form_instance"
            " WHERE form_pk = :f AND id > :a AND id <= :b",
            {"f": form_pk, "a": after, "b": last},
        )
        after = int(last)
        if progress is not None and time.monotonic() - told >= _PROGRESS_SECONDS:
            progress(f"{what}: {done:,} of {total:,} records ({100 * done // max(total, 1)}%)")
            told = time.monotonic()
    if progress is not None:
        progress(f"{what}: built ({done:,} records)")
    return [table.name]


async def sync_element_table(tx: Connection, form_pk: int, fields: tuple[Field, ...]) -> list[str]:
    """SQLite, inside the transaction that changes a form: its searchable array fields' element rows.

    Searches read these rows as soon as a field is searchable, so they are written with the schema change
    itself (data, not DDL); only the B-tree indexes wait for the commit.
    """
    if tx.sql.name != "sqlite":
        return []
    planned = planned_indexes("sqlite", form_pk, fields)
    return await _sync_side_table(tx, int(form_pk), [i.field_id for i in planned if i.side_table])


async def _sync_side_table(tx: Connection, form_pk: int, field_ids: list[str]) -> list[str]:
    """SQLite: make ``form_array_field`` list exactly ``field_ids`` and (re)fill their element rows."""
    rows = await tx.fetch("SELECT field_id FROM form_array_field WHERE form_pk = :f", {"f": form_pk})
    current = {str(r["field_id"]) for r in rows}
    for field_id in current - set(field_ids):
        await tx.execute(
            "DELETE FROM form_array_field WHERE form_pk = :f AND field_id = :k", {"f": form_pk, "k": field_id}
        )
        await tx.execute(
            "DELETE FROM form_field_value WHERE form_pk = :f AND field_id = :k", {"f": form_pk, "k": field_id}
        )
    added = [k for k in field_ids if k not in current]
    for field_id in added:
        await tx.execute(
            "INSERT INTO form_array_field (form_pk, field_id) VALUES (:f, :k)", {"f": form_pk, "k": field_id}
        )
        await tx.execute(
            "INSERT INTO form_field_value (instance_pk, form_pk, field_id, value)"
            f" SELECT fi.id, fi.form_pk, :k, e.value FROM form_instance fi, json_each(fi.data, '$.{field_id}') e"
            " WHERE fi.form_pk = :f AND e.type NOT IN ('object', 'array')",
            {"f": form_pk, "k": field_id},
        )
    return [f"form_field_value[{form_pk}].{k}" for k in added]


_SQLITE_INDEXES: TtlCache[int, frozenset[str]] = TtlCache(scope="indexes")
_CONTAINS: TtlCache[int, dict[str, str]] = TtlCache(scope="indexes")


async def contains_indexes(conn: Connection, form_pk: int, fields: tuple[Field, ...]) -> dict[str, str]:
    """The form's fields whose contains-match index is built: field id → PostgreSQL index or SQLite FTS5 table.

    Read from the catalog once per form and cached (scope ``indexes``); a build or drop by this process
    forgets it. A PostgreSQL index still being built (or left invalid) does not count.
    """
    pk = int(form_pk)
    wanted = [f for f in fields if f.kind == "text" and contains_indexable(f)]
    if not wanted:
        return {}
    known = _CONTAINS.get(pk)
    if known is None:
        known = {}
        if conn.sql.name == "postgresql":
            rows = await conn.fetch(
                "SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = to_regclass('form_instance') AND i.indisvalid"
                " AND a.amname = 'gin' AND c.relname LIKE :prefix",
                {"prefix": f"ix\\_fi\\_{pk}\\_%"},
            )
            names = {str(r["name"]) for r in rows}
            schema = await trigram_schema(conn) if names else None
            for index in planned_indexes("postgresql", pk, tuple(wanted), schema) if schema else []:
                if index.contains and index.name in names:
                    known[index.field_id] = index.name
        else:
            tables = await _text_tables(conn, pk)
            for name in tables:
                columns = await conn.fetch(f"SELECT name FROM pragma_table_info('{name}')")
                for row in columns:
                    column = str(row["name"])
                    if column.startswith("f_"):
                        known[column[2:]] = name
        known = _CONTAINS.put(pk, known)
    return {f.field_id: known[f.field_id] for f in wanted if f.field_id in known}


async def sort_index_hint(conn: Connection, form_pk: int, fields: tuple[Field, ...], sort: Sort) -> str:
    """SQLite: ``INDEXED BY`` the field's index for an unfiltered listing sorted by one searchable field.

    Without per-value statistics SQLite sizes ``form_pk = N`` by the average form, so on a big form among
    many small ones it would fetch every record of the form and sort them, instead of reading the field's
    index in order and stopping after one page. Only named when the index exists (it is built after a load).
    """
    if conn.sql.name != "sqlite":
        return ""
    field = next((f for f in fields if f.field_id == sort.field), None)
    if field is None or not field.searchable or field.kind not in ("text", "number"):
        return ""
    name = next((i.name for i in planned_indexes("sqlite", form_pk, (field,))), None)
    existing = _SQLITE_INDEXES.get(int(form_pk))
    if existing is None:
        existing = _SQLITE_INDEXES.put(int(form_pk), frozenset(await _existing(conn, "ix_fi", form_pk)))
    return f" INDEXED BY {name}" if name in existing else ""


def forget_sqlite_indexes() -> None:
    """Drop the cached index and contains-match table names (after this process changed them, or found one gone)."""
    _SQLITE_INDEXES.clear()
    _CONTAINS.clear()
