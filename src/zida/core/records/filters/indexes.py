"""Per-form indexes for searchable fields, on both databases (built when a form is loaded or changed).

* text and number fields: a partial B-tree ``(<typed expr>, created_at, id) WHERE form_pk = N`` whose
  expression is exactly what ``zida.core.records.filters.compiler`` emits, so equality, ranges and sorting by
  the field (with the newest-first tie-break) read it directly; on PostgreSQL an expression statistics object
  goes with it, because the planner ignores the statistics of *partial* indexes and would otherwise guess every
  condition's selectivity (and pick the wrong index for two or three conditions);
* array fields (employees, departments, check boxes…): on PostgreSQL a GIN ``jsonb_path_ops`` index for
  containment; on SQLite a side table ``form_field_value`` of (field, element, record) kept up to date by
  triggers (see migration 0004), indexed by value, filled in the transaction that makes a field searchable.

Index names carry a hash of their definition: when a field's type or the expression changes, the old
index is dropped and a new one built, never silently reused. PostgreSQL builds them ``CONCURRENTLY``
(outside the bundle's transaction, so writers are not blocked while a big form is indexed).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from zida.cache import TtlCache
from zida.core.apps.models import Field
from zida.core.records.filters import Sort
from zida.core.records.filters.compiler import field_expression, field_key
from zida.db.database import Connection, Database, PostgresDialect, SqlDialect

__all__ = [
    "FieldIndex",
    "ensure_field_indexes",
    "forget_sqlite_indexes",
    "planned_indexes",
    "sort_index_hint",
    "sync_element_table",
]


@dataclass(frozen=True, slots=True)
class FieldIndex:
    """One index (and, on PostgreSQL, statistics object) a searchable field needs."""

    field_id: str
    name: str
    create: str
    statistics: str | None = None  # name of the expression statistics (PostgreSQL text/number fields)
    expression: str = ""
    side_table: bool = False  # SQLite array field: values live in form_field_value


def _name(prefix: str, form_pk: int, field_id: str, definition: str) -> str:
    tag = hashlib.sha1(definition.encode(), usedforsecurity=False).hexdigest()[:8]
    safe = re.sub(r"[^a-z0-9_]", "_", field_id.lower())
    name = f"{prefix}_{form_pk}_{safe}_{tag}"
    if len(name) > 60:  # PostgreSQL's identifiers stop at 63 characters
        long_tag = hashlib.sha1((field_id + definition).encode(), usedforsecurity=False).hexdigest()[:20]
        name = f"{prefix}_{form_pk}_{long_tag}"
    return name


def planned_indexes(sql_name: str, form_pk: int, fields: tuple[Field, ...]) -> list[FieldIndex]:
    """The indexes the searchable fields of one form version need on this database."""
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
            out.append(FieldIndex(f.field_id, name, f"ON form_instance {definition}", stats, expr))
        elif f.kind == "array" and sql.name == "postgresql":
            definition = f"USING gin ((data->'{f.field_id}') jsonb_path_ops) WHERE form_pk = {pk}"
            out.append(
                FieldIndex(f.field_id, _name("ix_fi", pk, f.field_id, definition), f"ON form_instance {definition}")
            )
        elif f.kind == "array":
            field_key(f.field_id)  # the id goes into the element table's JSON path
            out.append(FieldIndex(f.field_id, "", "", side_table=True))
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


async def ensure_field_indexes(db: Database, form_pk: int, fields: tuple[Field, ...]) -> list[str]:
    """Build the missing indexes of a form's searchable fields and drop those no field needs any more.

    Runs outside any transaction (``CREATE INDEX CONCURRENTLY`` on PostgreSQL); returns what it built.
    """
    pk = int(form_pk)
    planned = planned_indexes(db.sql.name, pk, fields)
    built: list[str] = []
    if db.sql.name == "postgresql":
        wanted = {i.name for i in planned}
        existing = await _existing(db, "ix_fi", pk)
        invalid = await _invalid_indexes(db) & existing
        for name in (existing - wanted) | invalid:
            await db.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            existing.discard(name)
        for index in planned:
            if index.name not in existing:
                await db.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index.name} {index.create}")
                built.append(index.name)
        stats = await _existing(db, "st_fi", pk)
        for name in stats - {i.statistics for i in planned if i.statistics}:
            await db.execute(f"DROP STATISTICS IF EXISTS {name}")
        new_stats = [i for i in planned if i.statistics and i.statistics not in stats]
        for index in new_stats:
            await db.execute(
                f"CREATE STATISTICS IF NOT EXISTS {index.statistics} ON ({index.expression}) FROM form_instance"
            )
        if new_stats:
            await db.execute("ANALYZE form_instance")  # fill the new statistics now, not at the next autovacuum
        return built
    wanted = {i.name for i in planned if not i.side_table}
    existing = await _existing(db, "ix_fi", pk)
    async with db.transaction() as tx:
        for name in existing - wanted:
            await tx.execute(f"DROP INDEX IF EXISTS {name}")
        for index in planned:
            if not index.side_table and index.name not in existing:
                await tx.execute(f"CREATE INDEX IF NOT EXISTS {index.name} {index.create}")
                built.append(index.name)
        built.extend(await _sync_side_table(tx, pk, [i.field_id for i in planned if i.side_table]))
    forget_sqlite_indexes()
    if built:
        await db.execute("PRAGMA optimize")
    return built


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
    """Drop the cached index names (after this process changed them, or found one gone)."""
    _SQLITE_INDEXES.clear()
