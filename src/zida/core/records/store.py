"""SQL for form instances and their operation log."""

from __future__ import annotations

import functools
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar, cast

import orjson

from zida.core.apps.models import Field
from zida.core.records.filters import And, Condition, Filter, Or, RecordQuery
from zida.core.records.filters.compiler import CONTAINS_MATCHES, SYSTEM_COLUMNS, FilterCompiler
from zida.core.records.filters.indexes import contains_indexes, forget_sqlite_indexes, sort_index_hint
from zida.core.records.models import FormInstance
from zida.db import Connection, Row

__all__ = [
    "PAGE_CURSORS",
    "PageCursors",
    "count_form_instances",
    "delete_instance",
    "delete_instances",
    "distinct_array_values",
    "find_instance",
    "find_instances",
    "insert_instance",
    "insert_instance_ctes",
    "insert_instances",
    "insert_operation_log",
    "insert_operation_logs",
    "page_query",
    "page_statement",
    "record_app_pk",
    "search_instance_ids",
    "search_instances",
    "update_instance",
]

T = TypeVar("T")
P = ParamSpec("P")

INSTANCE_COLUMNS = (
    "id, instance_id, corp_pk, app_pk, form_pk, form_version, title, originator_user_id, modifier_user_id,"
    " created_at, modified_at, data, data_version, serial_no, process_instance_id, instance_status,"
    " approved_result"
)
COLUMNS = ", ".join("fi." + c.strip() for c in INSTANCE_COLUMNS.split(",")) + ", f.form_uuid"


def _instance(record: Row, form_uuid: str | None = None) -> FormInstance:
    # By position (the statements select INSTANCE_COLUMNS first, then f.form_uuid): three times faster than by
    # name with SQLite's rows, and a search page builds twenty of these. Both drivers' rows are sequences too.
    row = cast(Sequence[Any], record)
    return FormInstance(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        form_uuid or row[17],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        orjson.loads(row[11]),
        row[12],
        row[13],
        row[14],
        row[15],
        row[16],
    )


async def find_instance(conn: Connection, corp_pk: int, instance_id: str, *, lock: bool = False) -> FormInstance | None:
    """The instance with this id in the corp (row-locked on PostgreSQL when ``lock``)."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM form_instance fi JOIN form f ON f.id = fi.form_pk"
        " WHERE fi.instance_id = :instance_id AND fi.corp_pk = :corp_pk"
        + (conn.sql.for_update.replace("FOR UPDATE", "FOR UPDATE OF fi") if lock else ""),
        {"instance_id": instance_id, "corp_pk": corp_pk},
    )
    return None if row is None else _instance(row)


async def record_app_pk(conn: Connection, corp_pk: int, instance_id: str) -> int | None:
    """The app a record of the corp belongs to (None: no such record)."""
    value = await conn.fetchval(
        "SELECT app_pk FROM form_instance WHERE instance_id = :i AND corp_pk = :c",
        {"i": instance_id, "c": corp_pk},
    )
    return None if value is None else int(value)


async def record_form_uuid(conn: Connection, corp_pk: int, app_pk: int, instance_id: str) -> str | None:
    """The form of a record of the app (None: no such record)."""
    value = await conn.fetchval(
        "SELECT f.form_uuid FROM form_instance i JOIN form f ON f.id = i.form_pk"
        " WHERE i.instance_id = :i AND i.corp_pk = :c AND i.app_pk = :a",
        {"i": instance_id, "c": corp_pk, "a": app_pk},
    )
    return None if value is None else str(value)


async def insert_instance(conn: Connection, inst: FormInstance) -> int:
    """Insert a new instance; returns its primary key."""
    pk = await conn.fetchval(_insert_sql(conn) + " RETURNING id", _insert_params(inst))
    return int(pk)


async def update_instance(conn: Connection, inst: FormInstance) -> None:
    """Write back the data and modification fields of an instance."""
    await conn.execute(
        f"UPDATE form_instance SET data = {conn.sql.json_param('data')}, data_version = :data_version,"
        " form_version = :form_version, modifier_user_id = :modifier, modified_at = :modified_at,"
        " serial_no = :serial_no WHERE id = :pk",
        {
            "serial_no": inst.serial_no,
            "data": orjson.dumps(inst.data).decode(),
            "data_version": inst.data_version,
            "form_version": inst.form_version,
            "modifier": inst.modifier_user_id,
            "modified_at": inst.modified_at,
            "pk": inst.pk,
        },
    )


async def delete_instance(conn: Connection, pk: int) -> None:
    """Remove an instance row."""
    await conn.execute("DELETE FROM form_instance WHERE id = :pk", {"pk": pk})


async def insert_operation_log(
    conn: Connection,
    *,
    corp_pk: int,
    form_pk: int,
    instance_id: str,
    operator: str,
    operation: str,
    changes: Any,
    at: int,
) -> None:
    """Append one row to a record's operation log."""
    await conn.execute(
        "INSERT INTO form_operation_log (corp_pk, form_pk, instance_id, operator_user_id, operation_type, changes,"
        f" created_at) VALUES (:corp_pk, :form_pk, :instance_id, :operator, :operation,"
        f" {conn.sql.json_param('changes')}, :at)",
        {
            "corp_pk": corp_pk,
            "form_pk": form_pk,
            "instance_id": instance_id,
            "operator": operator,
            "operation": operation,
            "changes": orjson.dumps(changes).decode(),
            "at": at,
        },
    )


def _mentions(node: Filter | None, test: Callable[[Condition], bool]) -> bool:
    """Whether some condition of the filter passes ``test``."""
    stack = [] if node is None else [node]
    while stack:
        item = stack.pop()
        if isinstance(item, And | Or):
            stack.extend(item.items)
        elif test(item):
            return True
    return False


def _mentions_contains(node: Filter | None) -> bool:
    """Whether the filter has a contains-match (which may use a contains-match index)."""
    return _mentions(node, lambda c: c.op in CONTAINS_MATCHES)


async def _where(
    conn: Connection, corp_pk: int, form_pk: int, fields: tuple[Field, ...], query: RecordQuery
) -> tuple[str, FilterCompiler]:
    contains = await contains_indexes(conn, form_pk, fields) if _mentions_contains(query.filter) else None
    compiler = FilterCompiler(conn.sql, fields, form_pk, corp_pk=corp_pk, contains=contains)
    # The form is a literal so that the per-form partial indexes (zida.core.records.filters.indexes) apply.
    return f"form_pk = {int(form_pk)} AND {compiler.where(query.filter)}", compiler


async def count_form_instances(conn: Connection, form_pk: int) -> int:
    """All records of a form, from the counter the database keeps (no scan)."""
    value = await conn.fetchval("SELECT sum(n) FROM form_record_count WHERE form_pk = :f", {"f": int(form_pk)})
    return int(value or 0)


class PageCursors:
    """Where recently served pages ended, so the next page continues from there (keyset) instead of skipping
    every earlier row again.

    The form API pages by number, so a client reading page after page makes each page cost
    more than the last with OFFSET. Remembering the sort key of each served page's last row (per form, filter
    and page size, for ``ZIDA_PAGE_CURSOR_SECONDS``, default 600 s, in this process) turns page N+1 into an
    index seek. Used for the orders whose keys are never NULL: newest first (the default) and by creation or
    modification time. Cursors belong to one generation of the form (its record count and latest
    modification, read with each page): once a record is added, changed or removed they are no longer used,
    so a continued page holds exactly the rows OFFSET gives, whoever served the page before. (A change is stamped
    once its rows are locked, so one that waited for another is later than it; two changes in one millisecond, or
    a commit overtaking one stamped a few milliseconds earlier, can leave the generation as it was: that page may
    then differ from OFFSET's by the changed records, as any page read while a form changes may.) Each
    query keeps the ends of its ``per_query`` most recently served pages (not the deepest ones), so a client
    that starts over from an earlier page after another one read further is continued too. Queries are remembered
    by a digest of the search (never its text) and a page's end is two numbers, so the memory is bounded by
    ``size × per_query`` small entries whatever the searches.
    """

    def __init__(self, ttl: float = 600.0, size: int = 2_000, per_query: int = 64) -> None:
        self.ttl, self.size, self.per_query = ttl, size, per_query
        self._pages: OrderedDict[tuple[object, ...], dict[int, tuple[float, tuple[Any, ...]]]] = OrderedDict()

    def nearest(self, key: tuple[object, ...], page: int) -> tuple[int, tuple[Any, ...]] | None:
        """The latest page before ``page`` whose end is known: (its number, its last row's sort key)."""
        pages = self._pages.get(key)
        if not pages:
            return None
        now = time.monotonic()
        best = max((n for n, (at, _) in pages.items() if n < page and now - at < self.ttl), default=None)
        return None if best is None else (best, pages[best][1])

    def remember(self, key: tuple[object, ...], page: int, last: tuple[Any, ...]) -> None:
        """Record where ``page`` ended."""
        pages = self._pages.setdefault(key, {})
        self._pages.move_to_end(key)
        pages[page] = (time.monotonic(), last)
        if len(pages) > self.per_query:  # the page served longest ago goes: a reader starting over keeps its own
            del pages[min(pages, key=lambda n: pages[n][0])]
        while len(self._pages) > self.size:
            self._pages.popitem(last=False)


PAGE_CURSORS = PageCursors()  # (its ttl: ZIDA_PAGE_CURSOR_SECONDS, set when the server starts)


_APPROVAL_STATE = frozenset({"participant", "current_node", "current_node_name"})


def _mentions_approval_state(node: Filter | None) -> bool:
    """Whether the filter has a condition on the approvals' state (task and notification rows, not the record)."""
    return _mentions(node, lambda c: c.field in _APPROVAL_STATE)


def _keyset_columns(query: RecordQuery) -> tuple[tuple[str, str], bool] | None:
    """The NOT NULL sort columns of ``query`` and whether they descend, when a keyset can continue it."""
    if not query.sort:
        return ("created_at", "id"), True
    if len(query.sort) == 1 and query.sort[0].field in ("created_at", "modified_at"):
        return (SYSTEM_COLUMNS[query.sort[0].field], "id"), query.sort[0].descending
    return None


def _lost_text_table(error: BaseException) -> bool:
    """SQLite: whether a statement failed because another process just dropped a contains-match table."""
    message = str(error)
    return "ft_" in message and ("no such table" in message or "no such column" in message)


def _retried(search: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A search that runs again, with the current contains-match tables, should one it used be gone (replaced by
    another process)."""

    @functools.wraps(search)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await search(*args, **kwargs)
        except Exception as exc:
            if not _lost_text_table(exc):
                raise
            forget_sqlite_indexes()
            return await search(*args, **kwargs)

    return run


@_retried
async def search_instances(
    conn: Connection, corp_pk: int, form_pk: int, form_uuid: str, fields: tuple[Field, ...], query: RecordQuery
) -> tuple[int | None, list[FormInstance]]:
    """One page of a form's instances matching ``query``, and the total count if asked.

    ``totalCount`` policy: no filter → the form's record counter (no scan); a filter an index bounds (see
    ``FilterCompiler.indexed``) → ``count(*)`` over that index; any other filter → counted in the same single
    scan that finds the page (a window count), so an unindexed search never reads the form twice.
    """
    where, compiler = await _where(conn, corp_pk, form_pk, fields, query)
    count_in_scan = query.with_total and query.filter is not None and not compiler.indexed(query.filter)
    params: dict[str, Any] = {**compiler.params, "limit": query.page.size, "offset": query.page.offset}
    # Page ends are remembered per generation of the form's records; a filter on the approvals' state (who takes
    # part, which node waits) can match other records without any record changing, so it is never continued.
    # The first page is neither continued nor remembered: page 2 skips its 20 rows at no cost, and most searches
    # read only page 1, which then needs no generation statement.
    continuable = not count_in_scan and not _mentions_approval_state(query.filter) and query.page.number > 1
    seek, cursor_key, keyset = "", None, _keyset_columns(query) if continuable else None
    form_total = None
    if keyset is not None:
        form_total, generation = await _generation(conn, form_pk)
        # A digest of the search, never its text: a cursor costs the same few bytes however large the filter.
        search = repr((where, sorted(compiler.params.items()), query.sort, query.page.size)).encode()
        cursor_key = (int(form_pk), generation, hashlib.sha256(search).digest())
        known = PAGE_CURSORS.nearest(cursor_key, query.page.number) if query.page.number > 1 else None
        if known is not None:
            number, last = known
            columns, descending = keyset
            seek = f" AND ({', '.join(columns)}) {'<' if descending else '>'} (:seek0, :seek1)"
            params.update(seek0=last[0], seek1=last[1], offset=(query.page.number - 1 - number) * query.page.size)
    hint = await sort_index_hint(conn, form_pk, fields, query.sort[0]) if _sort_only(query) else ""

    def statement(hint: str) -> str:
        return page_statement(compiler, query, where, counted=count_in_scan, seek=seek, hint=hint)

    rows = await _fetch_hinted(conn, statement, hint, params)
    if keyset is not None and cursor_key is not None and len(rows) == query.page.size:
        PAGE_CURSORS.remember(cursor_key, query.page.number, tuple(rows[-1][c] for c in keyset[0]))
    total = None
    if count_in_scan and rows:
        total = int(rows[0]["total_count"])
    elif count_in_scan and query.page.offset == 0:
        total = 0  # the scan found nothing at all
    elif query.with_total and query.filter is None and form_total is not None:
        total = form_total
    elif query.with_total:
        total = await _count(conn, form_pk, where, compiler, query)
    return total, [_instance(r, form_uuid) for r in rows]


def page_statement(
    compiler: FilterCompiler, query: RecordQuery, where: str, *, counted: bool, seek: str = "", hint: str = ""
) -> str:
    """The statement of a search page: the rows of the page's ids, with ``total_count`` when ``counted``.

    Deferred join: the page's ids come from the index alone (skipped rows are never read from the table), then
    only the page's rows are fetched.
    """
    page = page_query(compiler, query, where, ("id", "page_id"), counted=counted, seek=seek, hint=hint)
    order = compiler.order_by(query.sort)
    return (
        f"SELECT {INSTANCE_COLUMNS}{', p.total_count' if counted else ''} FROM form_instance"
        f" JOIN ({page}) p ON p.page_id = form_instance.id ORDER BY {order}"
    )


def page_query(
    compiler: FilterCompiler,
    query: RecordQuery,
    where: str,
    column: tuple[str, str],
    *,
    counted: bool,
    seek: str = "",
    hint: str = "",
) -> str:
    """``SELECT column AS name[, total_count]`` of the page's matches in the search's order.

    On PostgreSQL a page counted in its scan (``count(*) OVER ()``) is found in a subquery of its own: the window
    sees every match before the page is cut, but the planner costs the LIMIT as if it stopped early and walks the
    whole form in the sort's index order, testing each row (1 s for a contains search on 1,000,000 records whose
    trigram index finds its 100 matches in 1 ms). A subquery with a window is never pulled up, so the matches are
    found the cheapest way and the page is sorted from them.
    """
    expression, name = column
    window = ", count(*) OVER () AS total_count" if counted else ""
    if counted and compiler.sql.name == "postgresql":
        keys = compiler.order_keys(query.sort)
        projected = ", ".join(f"{key} AS k{n}" for n, (key, _) in enumerate(keys))
        sort = ", ".join(f"k{n} {direction}" for n, (_, direction) in enumerate(keys))
        return (
            f"SELECT {name}, total_count FROM (SELECT {expression} AS {name}, {projected}{window}"
            f" FROM form_instance{hint} WHERE {where}{seek}) w ORDER BY {sort} LIMIT :limit OFFSET :offset"
        )
    return (
        f"SELECT {expression} AS {name}{window} FROM form_instance{hint} WHERE {where}{seek}"
        f" ORDER BY {compiler.order_by(query.sort)} LIMIT :limit OFFSET :offset"
    )


async def _generation(conn: Connection, form_pk: int) -> tuple[int, tuple[int, int]]:
    """The form's record count and a value that changes whenever any of its records is added, changed or
    removed (count, latest modification): page cursors of another generation are never used."""
    row = await conn.fetchrow(
        "SELECT (SELECT sum(n) FROM form_record_count WHERE form_pk = :f) AS total,"
        " (SELECT max(modified_at) FROM form_instance WHERE form_pk = :f) AS latest",
        {"f": int(form_pk)},
    )
    total = int(row["total"] or 0) if row is not None else 0
    latest = int(row["latest"] or 0) if row is not None else 0
    return total, (total, latest)


async def _fetch_hinted(
    conn: Connection, statement: Callable[[str], str], hint: str, params: dict[str, Any]
) -> list[Row]:
    """Run ``statement(hint)``; should another process have just dropped the hinted index, run it without."""
    try:
        return await conn.fetch(statement(hint), params)
    except Exception as exc:
        if not hint or "no such index" not in str(exc):
            raise
        forget_sqlite_indexes()
        return await conn.fetch(statement(""), params)


def _sort_only(query: RecordQuery) -> bool:
    return query.filter is None and len(query.sort) == 1


async def _count(conn: Connection, form_pk: int, where: str, compiler: FilterCompiler, query: RecordQuery) -> int:
    if query.filter is None:
        return await count_form_instances(conn, form_pk)
    if query.count_limit is not None:
        return int(
            await conn.fetchval(
                f"SELECT count(*) FROM (SELECT 1 FROM form_instance WHERE {where} LIMIT :count_limit) counted",
                {**compiler.params, "count_limit": query.count_limit},
            )
        )
    return int(await conn.fetchval(f"SELECT count(*) FROM form_instance WHERE {where}", compiler.params))


@_retried
async def search_instance_ids(
    conn: Connection, corp_pk: int, form_pk: int, fields: tuple[Field, ...], query: RecordQuery
) -> tuple[int | None, list[str]]:
    """Like :func:`search_instances` but only the instance ids (same ``totalCount`` policy)."""
    where, compiler = await _where(conn, corp_pk, form_pk, fields, query)
    count_in_scan = query.with_total and query.filter is not None and not compiler.indexed(query.filter)
    hint = await sort_index_hint(conn, form_pk, fields, query.sort[0]) if _sort_only(query) else ""
    rows = await _fetch_hinted(
        conn,
        lambda hint: page_query(
            compiler, query, where, ("instance_id", "instance_id"), counted=count_in_scan, hint=hint
        ),
        hint,
        {**compiler.params, "limit": query.page.size, "offset": query.page.offset},
    )
    total = None
    if count_in_scan and rows:
        total = int(rows[0]["total_count"])
    elif count_in_scan and query.page.offset == 0:
        total = 0
    elif query.with_total:
        total = await _count(conn, form_pk, where, compiler, query)
    return total, [r["instance_id"] for r in rows]


async def find_instances(
    conn: Connection, corp_pk: int, instance_ids: list[str], *, lock: bool = False
) -> dict[str, FormInstance]:
    """Instances of the corp by id (absent ids are missing from the map); locked in id order when ``lock``."""
    if not instance_ids:
        return {}
    names = {f"i{n}": v for n, v in enumerate(dict.fromkeys(instance_ids))}
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM form_instance fi JOIN form f ON f.id = fi.form_pk"
        f" WHERE fi.corp_pk = :corp_pk AND fi.instance_id IN ({', '.join(':' + n for n in names)})"
        " ORDER BY fi.id" + (conn.sql.for_update.replace("FOR UPDATE", "FOR UPDATE OF fi") if lock else ""),
        {"corp_pk": corp_pk, **names},
    )
    return {r["instance_id"]: _instance(r) for r in rows}


def _insert_params(inst: FormInstance) -> dict[str, Any]:
    return {
        "instance_id": inst.instance_id,
        "corp_pk": inst.corp_pk,
        "app_pk": inst.app_pk,
        "form_pk": inst.form_pk,
        "form_version": inst.form_version,
        "title": inst.title,
        "originator": inst.originator_user_id,
        "modifier": inst.modifier_user_id,
        "created_at": inst.created_at,
        "modified_at": inst.modified_at,
        "data": orjson.dumps(inst.data).decode(),
        "data_version": inst.data_version,
        "serial_no": inst.serial_no,
        "process_instance_id": inst.process_instance_id,
        "instance_status": inst.instance_status,
        "approved_result": inst.approved_result,
    }


def _insert_sql(conn: Connection) -> str:
    return (
        "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title, originator_user_id,"
        " modifier_user_id, created_at, modified_at, data, data_version, serial_no, process_instance_id,"
        " instance_status, approved_result)"
        " VALUES (:instance_id, :corp_pk, :app_pk, :form_pk, :form_version, :title, :originator, :modifier,"
        f" :created_at, :modified_at, {conn.sql.json_param('data')}, :data_version, :serial_no,"
        " :process_instance_id, :instance_status, :approved_result)"
    )


def insert_instance_ctes(inst: FormInstance, log: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: the CTEs ``record`` (the new instance row, RETURNING its id) and ``record_log`` (one
    operation-log row, keys as :func:`insert_operation_log` takes them) that lead a caller's single
    data-modifying statement, with their parameters (all named ``rec_…``)."""
    params = {f"rec_{k}": v for k, v in _insert_params(inst).items()}
    params.update({f"rec_log_{k}": v for k, v in log.items()})
    params["rec_log_changes"] = orjson.dumps(log["changes"]).decode()
    return _INSERT_CTES, params


_INSERT_CTES = (
    "record AS (INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title,"
    " originator_user_id, modifier_user_id, created_at, modified_at, data, data_version, serial_no,"
    " process_instance_id, instance_status, approved_result) VALUES (:rec_instance_id, :rec_corp_pk, :rec_app_pk,"
    " :rec_form_pk, :rec_form_version, :rec_title, :rec_originator, :rec_modifier, :rec_created_at,"
    " :rec_modified_at, CAST(:rec_data AS jsonb), :rec_data_version, :rec_serial_no, :rec_process_instance_id,"
    " :rec_instance_status, :rec_approved_result) RETURNING id)"
    ", record_log AS (INSERT INTO form_operation_log (corp_pk, form_pk, instance_id, operator_user_id,"
    " operation_type, changes, created_at) VALUES (:rec_log_corp_pk, :rec_log_form_pk, :rec_log_instance_id,"
    " :rec_log_operator, :rec_log_operation, CAST(:rec_log_changes AS jsonb), :rec_log_at))"
)


async def insert_instances(conn: Connection, items: list[FormInstance]) -> None:
    """Insert many new instances in one statement batch."""
    if items:
        await conn.executemany(_insert_sql(conn), [_insert_params(i) for i in items])


async def delete_instances(conn: Connection, pks: list[int]) -> None:
    """Remove instance rows by primary key."""
    if pks:
        names = {f"p{n}": v for n, v in enumerate(pks)}
        await conn.execute(f"DELETE FROM form_instance WHERE id IN ({', '.join(':' + n for n in names)})", names)


async def insert_operation_logs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Append many operation-log rows (keys as :func:`insert_operation_log` takes them)."""
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO form_operation_log (corp_pk, form_pk, instance_id, operator_user_id, operation_type, changes,"
        f" created_at) VALUES (:corp_pk, :form_pk, :instance_id, :operator, :operation,"
        f" {conn.sql.json_param('changes')}, :at)",
        [{**r, "changes": orjson.dumps(r["changes"]).decode()} for r in rows],
    )


@_retried
async def distinct_array_values(
    conn: Connection,
    corp_pk: int,
    form_pk: int,
    fields: tuple[Field, ...],
    query: RecordQuery,
    field_id: str,
    limit: int,
) -> list[str]:
    """Distinct elements of an array field (e.g. the users of a people field) over the records matching ``query``."""
    where, compiler = await _where(conn, corp_pk, form_pk, fields, query)
    if conn.sql.name == "postgresql":
        sql = (
            f"SELECT DISTINCT v FROM (SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(data->'{field_id}')"
            f" = 'array' THEN data->'{field_id}' ELSE '[]'::jsonb END) AS v FROM form_instance WHERE {where}) s"
            " ORDER BY v LIMIT :limit"
        )
    else:
        # (the records in a subquery: json_each has columns of its own, ``id`` among them)
        sql = (
            f"SELECT DISTINCT e.value AS v FROM (SELECT data FROM form_instance WHERE {where}) AS fi,"
            f" json_each(fi.data, '$.{field_id}') AS e ORDER BY v LIMIT :limit"
        )
    rows = await conn.fetch(sql, {**compiler.params, "limit": limit})
    return [str(r["v"]) for r in rows]
