"""Compile the core filter tree (``zida.core.records.filters``) into SQL for SQLite or PostgreSQL.

The expressions emitted for fields are exactly the ones ``zida.core.records.filters.indexes`` builds
indexes on, and every query names its form as a literal (``form_pk = 12``) so that the per-form partial indexes apply.

Every search is within a budget (``SearchLimits``, set from ``ZIDA_MAX_SEARCH_*`` / ``ZIDA_MAX_BOUND_VALUES`` at
startup) checked while compiling, before any statement runs: conditions and values per condition
(``search.too_large``), values bound by the statement (``TooExpensive``), characters of a like value
(``search.value_too_long``: SQLite refuses LIKE patterns past 50,000 bytes) and of any other value (longer than any
stored text, so it cannot match). A condition with many values compiles to one ``IN`` list, one containment or one
aggregate, never to a chain of one expression per value (SQLite refuses expression trees deeper than 1,000).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson

from zida.core.apps.models import Field
from zida.core.errors import InvalidArgument, TooExpensive
from zida.core.records.filters import SYSTEM_FIELDS, And, Condition, Filter, Or, Sort
from zida.core.records.values import ROW_ID, NotANumber, brief, number_value
from zida.db.database import SqlDialect

__all__ = [
    "CONTAINS_COMPONENTS",
    "CONTAINS_MATCHES",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_SORTS",
    "MAX_VALUES",
    "SYSTEM_COLUMNS",
    "FilterCompiler",
    "SearchLimits",
    "configure_search_limits",
    "contains_indexable",
    "field_expression",
    "field_key",
    "search_limits",
]

SYSTEM_COLUMNS = {
    "instance_id": "instance_id",
    "title": "title",
    "originator": "originator_user_id",
    "modifier": "modifier_user_id",
    "created_at": "created_at",
    "modified_at": "modified_at",
    "instance_status": "instance_status",
    "approved_result": "approved_result",
    "process_instance_id": "process_instance_id",
    "serial_no": "serial_no",
}  # current_node(_name): a subquery on the process tables, see FilterCompiler._current_node

# System columns that may be NULL (the others are NOT NULL, and a NULLS clause would keep PostgreSQL from
# reading their indexes in order).
_NULLABLE_COLUMNS = frozenset({"instance_status", "approved_result", "process_instance_id", "serial_no"})

_FIELD_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_ELEMENT = re.compile(r"^(?P<field>[A-Za-z][A-Za-z0-9_]{0,63})\[(?P<index>[01])\]$")


# Text components whose searchable fields get a contains-match index (trigrams: PostgreSQL pg_trgm, SQLite FTS5).
CONTAINS_COMPONENTS = frozenset({"TextField", "TextareaField", "SerialNumberField"})

# SQLite's FTS5 trigram index answers any text of at least this many characters.
_TRIGRAM = 3


def contains_indexable(field: Field) -> bool:
    """Whether a field gets a contains-match index: searchable, of a text component."""
    return field.searchable and field.component in CONTAINS_COMPONENTS


def _trigram_run(text: str) -> bool:
    """PostgreSQL: whether pg_trgm finds a trigram in a contains pattern: three letters or digits in a row
    (it reads words of letters and digits; a shorter pattern would make it read its whole index)."""
    run = 0
    for ch in text:
        run = run + 1 if ch.isalnum() else 0
        if run >= _TRIGRAM:
            return True
    return False


def _fts_phrase(column: str, text: str) -> str:
    """An FTS5 query: ``text`` as one literal phrase in ``column`` (quotes doubled, nothing else special)."""
    return f'{column} : "' + text.replace('"', '""') + '"'


def field_key(field_id: str) -> str:
    """``field_id`` if it is safe inside a JSON path (letters, digits, underscores), else ``search.unknown_field``."""
    if not _FIELD_ID.match(field_id):
        raise InvalidArgument(
            f"invalid field id {brief(field_id)}", reason="search.unknown_field", field=brief(field_id)
        )
    return field_id


def field_expression(sql: SqlDialect, field: Field, column: str = "data") -> str:
    """The typed scalar expression for a text or number field (what its index is built on)."""
    if field.kind == "number":
        return sql.json_number(column, field_key(field.field_id))
    return sql.json_text(column, field_key(field.field_id))


def _json_value(sql: SqlDialect, column: str, key: str) -> str:
    """The raw JSON value (arrays/objects): JSON text on SQLite, jsonb on PostgreSQL."""
    if sql.name == "postgresql":
        return f"({column}->'{key}')"
    return f"json_extract({column}, '$.{key}')"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _check_chars(cond: Condition, text: str, limit: int, what: str = "a search value") -> None:
    if len(text) > limit:
        raise InvalidArgument(
            f"{_field_name(cond)}: {what} may have at most {limit} characters, got {len(text)}",
            reason="search.value_too_long",
            field=_field_name(cond),
        )


# Bounds on one search: a filter larger than this is a mistake (or an attack), and past them the databases
# fail on their own limits (SQLite's expression depth, PostgreSQL's 32,767 bind parameters). The defaults of the
# settings; ``search_limits()`` holds the ones in force.
MAX_CONDITIONS = 200
MAX_VALUES = 1_000
MAX_DEPTH = 16  # levels of And/Or (the dialects' syntaxes nest two)
MAX_SORTS = 16  # sort keys of one search
_MAX_PREFIX = 32  # elements of a cascade path (province, city, district…) in a prefix condition
# A has_all/has_any with at most this many values keeps its per-value form (what the indexes answer best);
# beyond it, one aggregate or IN list.
_SMALL_LIST = 8
# Contains-matches a contains-match index can narrow, and those with their negations.
CONTAINS_MATCHES = frozenset({"like", "substring"})
_CONTAINS_OPS = CONTAINS_MATCHES | {"not_like", "not_substring"}


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """The budget of one search (defaults: ``zida.settings.Settings``; README "Limits")."""

    conditions: int = MAX_CONDITIONS
    values: int = MAX_VALUES  # values of one condition
    bound_values: int = 5_000  # values one statement binds for its filter
    like_chars: int = 1_000  # characters of a like/contains value
    value_chars: int = 80_000  # characters of any other value: the longest text a field stores


_limits = SearchLimits()


def configure_search_limits(limits: SearchLimits) -> None:
    """At startup: the budget every later search is held to."""
    global _limits
    _limits = limits


def search_limits() -> SearchLimits:
    """The budget in force."""
    return _limits


def _too_large(message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="search.too_large")


def _field_name(cond: Condition) -> str:
    return cond.field if len(cond.field) <= 64 else cond.field[:64] + "…"


def _check_size(node: Filter) -> None:
    """Refuse filters with too many conditions, values or levels (``search.too_large``)."""
    limits = _limits
    count = 0
    stack: list[tuple[Filter, int]] = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_large(f"the search nests more than {MAX_DEPTH} levels")
        if isinstance(item, And | Or):
            stack.extend((child, depth + 1) for child in item.items)
            continue
        count += 1
        if count > limits.conditions:
            raise _too_large(f"the search has more than {limits.conditions} conditions")
        if isinstance(item.value, list | tuple) and len(item.value) > limits.values:
            raise _too_large(f"{_field_name(item)}: more than {limits.values} values")


class FilterCompiler:
    """Turns a filter tree over one form into a WHERE fragment with named parameters."""

    def __init__(
        self,
        sql: SqlDialect,
        fields: tuple[Field, ...],
        form_pk: int | None = None,
        *,
        corp_pk: int | None = None,
        contains: Mapping[str, str] | None = None,
    ) -> None:
        self.sql = sql
        self.fields = {f.field_id: f for f in fields}
        self.params: dict[str, Any] = {}
        # Fields with a built contains-match index: field id → its index (PostgreSQL) or FTS5 table (SQLite),
        # from ``zida.core.records.filters.indexes.contains_indexes``.
        self.contains = contains or {}
        # Known form: searchable array fields on SQLite are matched through their element table.
        self.form_pk = None if form_pk is None else int(form_pk)
        # Known corp: who takes part in an approval is found through the corp's inbox indexes.
        self.corp_pk = None if corp_pk is None else int(corp_pk)

    def _next_name(self) -> str:
        """The next parameter's name, within the statement's budget of bound values (``TooExpensive``)."""
        if len(self.params) >= _limits.bound_values:
            raise TooExpensive(
                f"the search binds more than {_limits.bound_values} values; split it into narrower searches",
                reason="search.too_many_values",
            )
        return f"f{len(self.params)}"

    def _param(self, value: Any) -> str:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidArgument("a search value contains a NUL character", reason="search.invalid_value")
        name = self._next_name()
        self.params[name] = value
        return f":{name}"

    def _json_param(self, value: Any) -> str:
        name = self._next_name()
        if _has_nul(value):
            raise InvalidArgument("a search value contains a NUL character", reason="search.invalid_value")
        self.params[name] = orjson.dumps(value).decode()
        return self.sql.json_param(name)

    # ------------------------------------------------------------ values

    def _number(self, cond: Condition, value: Any) -> Any:
        """A search value for a number, read exactly as a stored value is (``values.number_value``): the search
        compares with what a record holds, and what a record can hold can be searched for, on either database."""
        name = _field_name(cond)
        if value is None:
            raise InvalidArgument(f"{name}: expects a number", reason="search.expect_number", field=name)
        try:
            number = number_value(value)
        except NotANumber as exc:
            raise InvalidArgument(f"{name}: {exc}", reason="search.expect_number", field=name) from None
        if self.sql.name == "postgresql":
            # The stored JSON number is the shortest text of the double (or the integer): the same decimal, compared
            # as numeric (what the index on the field holds).
            return Decimal(number) if isinstance(number, int) else Decimal(repr(number))
        return number  # SQLite: an integer within 64 bits, or a double, as json_extract reads the stored number

    def _scalar(self, kind: str, cond: Condition, value: Any) -> Any:
        if kind == "number":
            return self._number(cond, value)
        if isinstance(value, list | dict) or value is None:
            raise InvalidArgument(f"{_field_name(cond)}: expects a single value", reason="search.invalid_value")
        text = str(value) if not isinstance(value, str) else value
        _check_chars(cond, text, _limits.value_chars)
        return text

    def _list(self, cond: Condition) -> list[Any]:
        """The condition's values: a list of scalars (JSON text of one is decoded), at most ``values`` of them."""
        value = cond.value
        if isinstance(value, str) and value.startswith("["):
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(value)
        if not isinstance(value, list):
            value = [value]
        if len(value) > _limits.values:
            raise _too_large(f"{_field_name(cond)}: more than {_limits.values} values")
        for item in value:
            if isinstance(item, list | dict):
                raise InvalidArgument(
                    f"{_field_name(cond)}: expects a list of single values, got {brief(item)} in it",
                    reason="search.invalid_value",
                )
            if isinstance(item, str):
                _check_chars(cond, item, _limits.value_chars)
        return value

    # ------------------------------------------------------------ compile

    def where(self, node: Filter | None) -> str:
        """SQL boolean expression for ``node`` (``1=1`` for no filter)."""
        if node is None:
            return "1=1"
        _check_size(node)
        return self._node(node, "data", self.fields)

    def _node(self, node: Filter, column: str, fields: Mapping[str, Field]) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self._node(n, column, fields) for n in node.items) + ")" if node.items else "1=1"
        if isinstance(node, Or):
            return "(" + " OR ".join(self._node(n, column, fields) for n in node.items) + ")" if node.items else "1=0"
        return self._condition(node, column, fields)

    def _condition(self, cond: Condition, column: str, fields: Mapping[str, Field]) -> str:
        if cond.parent is not None:
            return self._row_condition(cond)
        if column == "data" and cond.field == "current_node":
            return self._current_node(cond)
        if column == "data" and cond.field == "participant":
            return self._participant(cond)
        if column == "data" and cond.field == "current_node_name":
            raise InvalidArgument(
                "current node names must be resolved against the form's process first", reason="search.invalid"
            )
        if column == "data" and cond.field in SYSTEM_FIELDS:
            return self._scalar_condition(cond, SYSTEM_COLUMNS[cond.field], SYSTEM_FIELDS[cond.field])
        element = _ELEMENT.match(cond.field)
        if element:
            f = fields.get(element["field"])
            if f is None or f.kind != "range":
                raise InvalidArgument(f"unknown field {cond.field}", reason="search.unknown_field", field=cond.field)
            path = f"{f.field_id}[{element['index']}]"
            expr = (
                f"(({column}->'{f.field_id}'->>{element['index']})::numeric)"
                if self.sql.name == "postgresql"
                else f"json_extract({column}, '$.{path}')"
            )
            return self._scalar_condition(cond, expr, "number")
        f = fields.get(cond.field)
        if f is None:
            raise InvalidArgument(f"unknown field {cond.field}", reason="search.unknown_field", field=cond.field)
        if column == "data" and cond.op in CONTAINS_MATCHES and f.field_id in self.contains:
            return self._indexed_contains(cond, f)
        if f.kind in ("text", "number"):
            return self._scalar_condition(cond, field_expression(self.sql, f, column), f.kind)
        if f.kind == "array":
            return self._array_condition(cond, column, f)
        return self._other_condition(cond, column, f)

    def _current_node(self, cond: Condition) -> str:
        """Records whose running process instance has a running task at one of the node ids in ``cond``."""
        node_ids = [str(v) for v in self._list(cond)]
        if cond.op not in ("in", "eq") or not node_ids:
            return "1=0"
        form = f" AND pi.form_pk = {self.form_pk}" if self.form_pk is not None else ""
        return (
            "id IN (SELECT pi.form_instance_pk FROM process_instance pi"
            " JOIN task t ON t.process_instance_pk = pi.id"
            f" WHERE pi.status = 'RUNNING'{form} AND t.status = 'RUNNING'"
            f" AND t.node_id IN ({', '.join(self._param(n) for n in node_ids)}))"
        )

    def _participant(self, cond: Condition) -> str:
        """Records whose approval ``cond.value`` (a user) has or had a task in, or was CC'd on."""
        if cond.op != "eq" or not isinstance(cond.value, str) or self.corp_pk is None or self.form_pk is None:
            raise InvalidArgument("participant takes one user (eq) on a known form", reason="search.invalid")
        user, corp, form = self._param(cond.value), self._param(self.corp_pk), self._param(self.form_pk)
        return (
            "id IN (SELECT pi.form_instance_pk FROM task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
            f" WHERE t.corp_pk = {corp} AND t.assignee_user_id = {user} AND pi.form_pk = {form}"
            " UNION SELECT pi.form_instance_pk FROM process_notification n"
            " JOIN process_instance pi ON pi.id = n.process_instance_pk"
            f" WHERE n.corp_pk = {corp} AND n.user_id = {user} AND n.kind = 'cc' AND pi.form_pk = {form})"
        )

    def _row_condition(self, cond: Condition) -> str:
        table = self.fields.get(cond.parent or "")
        if table is None or table.kind != "table":
            raise InvalidArgument(
                f"{cond.parent} is not a sub-table of this form",
                reason="search.unknown_field",
                field=cond.parent,
            )
        children = {c.field_id: c for c in table.children}
        inner = self._condition(Condition(cond.field, cond.op, cond.value), "r.value", children)
        key = field_key(table.field_id)
        if self.sql.name == "postgresql":
            source = (
                f"jsonb_array_elements(CASE WHEN jsonb_typeof(data->'{key}') = 'array' THEN data->'{key}'"
                " ELSE '[]'::jsonb END) AS r(value)"
            )
        else:
            source = f"json_each(data, '$.{key}') AS r"
        return f"EXISTS (SELECT 1 FROM {source} WHERE {inner})"

    def _scalar_condition(self, cond: Condition, expr: str, kind: str) -> str:
        op = cond.op
        if op in ("eq", "ne", "gt", "ge", "lt", "le"):
            if isinstance(cond.value, list) and op == "eq":
                return self._scalar_condition(Condition(cond.field, "in", cond.value), expr, kind)
            p = self._param(self._scalar(kind, cond, cond.value))
            sym = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
            if op == "ne":
                return f"({expr} IS NULL OR {expr} <> {p})"
            return f"{expr} {sym} {p}"
        if op == "between":
            bounds = cond.value
            if not isinstance(bounds, list | tuple) or len(bounds) != 2:
                raise InvalidArgument(f"{cond.field}: between expects [low, high]", reason="search.invalid_value")
            parts = []
            if bounds[0] not in (None, ""):
                parts.append(f"{expr} >= {self._param(self._scalar(kind, cond, bounds[0]))}")
            if bounds[1] not in (None, ""):
                parts.append(f"{expr} <= {self._param(self._scalar(kind, cond, bounds[1]))}")
            return "(" + " AND ".join(parts) + ")" if parts else f"{expr} IS NOT NULL"
        if op in ("in", "has_any", "has_all", "seq_eq", "prefix"):
            values = self._list(cond)
            if op in ("has_all", "seq_eq", "prefix") and len(values) > 1:
                return "1=0"
            if not values:
                return "1=0" if op in ("in", "has_any") else "1=1"
            params = ", ".join(self._param(self._scalar(kind, cond, v)) for v in values)
            return f"{expr} IN ({params})"
        if op in _CONTAINS_OPS:
            if kind == "number":
                raise InvalidArgument(
                    f"{cond.field}: {op} is not supported on numbers", reason="search.unsupported_operator"
                )
            return self._like(expr, cond)
        if op == "empty":
            return f"({expr} IS NULL OR {expr} = '')" if kind == "text" else f"{expr} IS NULL"
        if op == "not_empty":
            return f"({expr} IS NOT NULL AND {expr} <> '')" if kind == "text" else f"{expr} IS NOT NULL"
        raise InvalidArgument(f"{cond.field}: unsupported operator {op}", reason="search.unsupported_operator")

    def _contains_text(self, cond: Condition) -> str:
        if not isinstance(cond.value, str | int | float) or isinstance(cond.value, bool):
            raise InvalidArgument(f"{_field_name(cond)}: {cond.op} expects a string", reason="search.invalid_value")
        text = str(cond.value)
        _check_chars(cond, text, _limits.like_chars, what="a contains search")
        return text

    def _like(self, expr: str, cond: Condition) -> str:
        """``expr`` contains the condition's text: ``like`` case-insensitively, ``substring`` exactly (``not_…``:
        does not, absent values included). ``%``, ``_`` and ``\\`` are literal characters."""
        text = self._contains_text(cond)
        if cond.op in ("substring", "not_substring"):
            position = "strpos" if self.sql.name == "postgresql" else "instr"
            test = f"{position}({expr}, {self._param(text)}) > 0"
        else:
            test = f"{expr} {self.sql.like} {self._param('%' + _escape_like(text) + '%')} ESCAPE '\\'"
        if cond.op.startswith("not_"):
            return f"({expr} IS NULL OR NOT ({test}))"
        return test

    def _value_contains(self, cond: Condition, column: str, f: Field) -> str:
        """A contains-match on a list, a sub-table or another structured value (an address, countries, linked
        records, files): some text or number in it contains the text (``not_…``: none does, absent values included).

        Only values are searched, as the record reads: not the keys they are stored under (``like "address"`` does
        not find every address), not the JSON punctuation between them, and not a sub-table row's internal
        ``__rowId`` (whose time-based characters once made ``like "nut"`` match a row of bolts). Numbers are read as
        their text. ``zida.core.workflow.conditions`` evaluates the same rule in Python."""
        key = field_key(f.field_id)
        text = "(leaf.value #>> '{}')" if self.sql.name == "postgresql" else "leaf.atom"
        test = self._like(text, replace(cond, op=cond.op.removeprefix("not_")))
        if self.sql.name == "postgresql":
            values = 'strict $.** ? (@.type() == "string" || @.type() == "number")'
            if f.kind == "table":
                rows = f"{column}->'{key}'"
                source = (
                    f"jsonb_array_elements(CASE WHEN jsonb_typeof({rows}) = 'array' THEN {rows} ELSE '[]'::jsonb END)"
                    " AS row_(item), jsonb_path_query(CASE WHEN jsonb_typeof(row_.item) = 'object' THEN"
                    f" row_.item - '{ROW_ID}' ELSE '{{}}'::jsonb END, '{values}') AS leaf(value)"
                )
            else:
                source = f"jsonb_path_query({column}->'{key}', '{values}') AS leaf(value)"
            found = f"EXISTS (SELECT 1 FROM {source} WHERE {test})"
        else:
            if f.kind == "table":
                source = (
                    f"json_each({column}, '$.{key}') AS row_, json_tree(row_.value) AS leaf"
                    f" WHERE row_.type = 'object' AND leaf.key IS NOT '{ROW_ID}' AND"
                )
            else:
                source = f"json_tree({column}, '$.{key}') AS leaf WHERE"
            found = f"EXISTS (SELECT 1 FROM {source} leaf.type IN ('text', 'integer', 'real') AND {test})"
        return f"NOT {found}" if cond.op.startswith("not_") else found

    def _indexed_contains(self, cond: Condition, f: Field) -> str:
        """A contains-match (``like`` or ``substring``) on a field with a contains-match index.

        The index only narrows: every candidate it gives is tested with the very expression an unindexed
        search uses, so the result is exactly that of a scan. SQLite: the form's FTS5 trigram table gives the
        records containing the text case-insensitively (a superset of both operators' matches) when the text
        has at least 3 characters. PostgreSQL: ``ILIKE`` on the field is what its pg_trgm index answers; for a
        pattern with no 3 letters or digits in a row (which pg_trgm cannot narrow) the expression is written so
        that the planner cannot pick the index (it would read all of it), and the search scans the form. Either
        way every candidate is read from the table, so the total is counted in the pass that finds the page
        (``indexed`` is false for it).
        """
        expr = field_expression(self.sql, f)
        text = self._contains_text(cond)
        if self.sql.name == "postgresql":
            if not _trigram_run(text):
                return self._like(f"({expr} || '')", cond)
            if cond.op == "like":
                return self._like(expr, cond)
            narrow = f"{expr} ILIKE {self._param('%' + _escape_like(text) + '%')} ESCAPE '\\'"
            return f"({narrow} AND {self._like(expr, cond)})"
        if len(text) < _TRIGRAM:
            return self._like(expr, cond)
        table = self.contains[f.field_id]
        phrase = self._param(_fts_phrase(f"f_{f.field_id}", text))
        return f"(id IN (SELECT rowid FROM {table} WHERE {table} MATCH {phrase}) AND {self._like(expr, cond)})"

    def _element_table(self, column: str, f: Field) -> bool:
        """Whether array elements of ``f`` are in ``form_field_value`` (SQLite, searchable, top-level field)."""
        return self.sql.name == "sqlite" and f.searchable and column == "data" and self.form_pk is not None

    def _with_elements(self, key: str, values: list[str]) -> str:
        """Records having any of ``values`` among the elements of ``key`` (SQLite element table)."""
        params = ", ".join(self._param(v) for v in values)
        return (
            f"id IN (SELECT instance_pk FROM form_field_value WHERE form_pk = {self.form_pk}"
            f" AND field_id = '{key}' AND value IN ({params}))"
        )

    def _contains(self, column: str, f: Field, value: str) -> str:
        key = field_key(f.field_id)
        if self.sql.name == "postgresql":
            return f"({column}->'{key}') @> {self._json_param([value])}"
        if self._element_table(column, f):
            return self._with_elements(key, [value])
        return f"EXISTS (SELECT 1 FROM json_each({column}, '$.{key}') AS e WHERE e.value = {self._param(value)})"

    def _has_any(self, column: str, f: Field, values: list[str]) -> str:
        """Records whose array ``f`` holds at least one of ``values``."""
        key = field_key(f.field_id)
        if self._element_table(column, f):
            return self._with_elements(key, values)
        if self.sql.name == "postgresql":  # one containment each: what the GIN index answers (a BitmapOr)
            return "(" + " OR ".join(self._contains(column, f, v) for v in values) + ")"
        params = ", ".join(self._param(v) for v in values)
        return f"EXISTS (SELECT 1 FROM json_each({column}, '$.{key}') AS e WHERE e.value IN ({params}))"

    def _has_all(self, column: str, f: Field, values: list[str]) -> str:
        """Records whose array ``f`` holds every one of ``values`` (distinct)."""
        key = field_key(f.field_id)
        if self.sql.name == "postgresql":  # one containment of the whole list (the GIN index answers it)
            return f"({column}->'{key}') @> {self._json_param(values)}"
        if len(values) <= _SMALL_LIST:
            return "(" + " AND ".join(self._contains(column, f, v) for v in values) + ")"
        # Many values: count the distinct ones present (a chain of one test per value would be an expression
        # tree SQLite refuses past 1,000 levels).
        params = ", ".join(self._param(v) for v in values)
        if self._element_table(column, f):
            return (
                f"id IN (SELECT instance_pk FROM form_field_value WHERE form_pk = {self.form_pk}"
                f" AND field_id = '{key}' AND value IN ({params})"
                f" GROUP BY instance_pk HAVING count(DISTINCT value) = {len(values)})"
            )
        return (
            f"(SELECT count(DISTINCT e.value) FROM json_each({column}, '$.{key}') AS e"
            f" WHERE e.value IN ({params})) = {len(values)}"
        )

    def _array_condition(self, cond: Condition, column: str, f: Field) -> str:
        key = field_key(f.field_id)
        op = cond.op
        if op == "eq" and not isinstance(cond.value, list):
            return self._contains(column, f, str(cond.value))
        if op in ("has_all", "has_any", "in", "eq"):
            values = [str(v) for v in self._list(cond)]
            if not values:
                return "1=1" if op == "has_all" else "1=0"
            if op == "eq":
                op = "seq_eq"
            elif op == "has_all":
                return self._has_all(column, f, list(dict.fromkeys(values)))
            else:
                return self._has_any(column, f, values)
        if op == "seq_eq":
            values = [str(v) for v in self._list(cond)]
            if not values:
                return self._array_condition(Condition(cond.field, "empty"), column, f)
            # Containment first (what the GIN index / element table answers), exact order second.
            narrow = self._contains(column, f, values[0]) + " AND "
            p = self._param(orjson.dumps(values).decode())
            if self.sql.name == "postgresql":
                return f"({narrow}({column}->'{key}') = CAST({p} AS jsonb))"
            return f"({narrow}json_extract({column}, '$.{key}') = json({p}))"
        if op == "ne":
            # Not "NOT (…)": on PostgreSQL a record without the field makes the containment NULL, and NOT NULL would
            # leave it out, where a scalar ``ne`` (and SQLite) takes it: "not A" holds for a record with no value.
            equal = self._array_condition(Condition(cond.field, "eq", cond.value), column, f)
            return f"(({equal}) IS NOT TRUE)"
        if op == "prefix":
            values = [str(v) for v in self._list(cond)]
            if len(values) > _MAX_PREFIX:
                raise _too_large(f"{_field_name(cond)}: a path of more than {_MAX_PREFIX} levels")
            parts = []
            for i, v in enumerate(values):
                elem = (
                    f"({column}->'{key}'->>{i})"
                    if self.sql.name == "postgresql"
                    else f"json_extract({column}, '$.{key}[{i}]')"
                )
                parts.append(f"{elem} = {self._param(v)}")
            return "(" + " AND ".join(parts) + ")" if parts else "1=1"
        if op in _CONTAINS_OPS:
            return self._value_contains(cond, column, f)
        if op in ("empty", "not_empty"):
            raw = _json_value(self.sql, column, key)
            if self.sql.name == "postgresql":
                empty = f"({raw} IS NULL OR {raw} = 'null'::jsonb OR {raw} = '[]'::jsonb)"
            else:
                empty = f"({raw} IS NULL OR json_array_length({column}, '$.{key}') = 0)"
            return empty if op == "empty" else f"NOT {empty}"
        raise InvalidArgument(
            f"{cond.field}: operator {op} is not supported for {f.kind} values",
            reason="search.unsupported_operator",
        )

    def _other_condition(self, cond: Condition, column: str, f: Field) -> str:
        key = field_key(f.field_id)
        if cond.op in _CONTAINS_OPS:
            return self._value_contains(cond, column, f)
        if cond.op in ("empty", "not_empty"):
            raw = _json_value(self.sql, column, key)
            if self.sql.name == "postgresql":
                empty = f"({raw} IS NULL OR {raw} = 'null'::jsonb OR {raw} = '[]'::jsonb OR {raw} = '{{}}'::jsonb)"
            else:
                empty = f"({raw} IS NULL OR {raw} IN ('[]', '{{}}'))"
            return empty if cond.op == "empty" else f"NOT {empty}"
        if cond.op == "has_any" and (f.kind == "objects" or f.component == "AssociationFormField"):
            # Countries are [{"value": code}], associations [{"instanceId": id, …}]: any of the given ones.
            member = "instanceId" if f.component == "AssociationFormField" else "value"
            values = [str(v) for v in self._list(cond)]
            if not values:
                return "1=0"
            if self.sql.name == "postgresql":
                parts = [f"({column}->'{key}') @> {self._json_param([{member: v}])}" for v in values]
                return "(" + " OR ".join(parts) + ")"
            params = ", ".join(self._param(v) for v in values)
            return (
                f"EXISTS (SELECT 1 FROM json_each({column}, '$.{key}') AS e"
                f" WHERE json_extract(e.value, '$.{member}') IN ({params}))"
            )
        raise InvalidArgument(
            f"{cond.field}: operator {cond.op} is not supported for {f.kind} values",
            reason="search.unsupported_operator",
        )

    # ------------------------------------------------------------ index use

    def indexed(self, node: Filter | None) -> bool:
        """Whether an index bounds the rows ``node`` can match (so counting them is not a full scan).

        A condition is index-backed when it compares a searchable text/number field (or, on PostgreSQL, tests
        containment in a searchable array field) or a system column with an index; ``And`` needs one such
        conjunct, ``Or`` needs every branch. A contains-match is not: even with its index every candidate is read
        from the table to be tested, so the page and the total are best found in that one pass.
        """
        if node is None:
            return True  # the (form_pk, created_at, id) index bounds the whole form
        if isinstance(node, And):
            return any(self.indexed(n) for n in node.items)
        if isinstance(node, Or):
            return bool(node.items) and all(self.indexed(n) for n in node.items)
        if node.parent is not None or node.op in (*_CONTAINS_OPS, "ne", "empty", "not_empty"):
            return False
        if node.field in ("originator", "created_at", "modified_at", "instance_id"):
            return True
        f = self.fields.get(node.field)
        if f is None or not f.searchable:
            return False
        if f.kind in ("text", "number"):
            return True
        indexable = self.sql.name == "postgresql" or self.form_pk is not None
        return f.kind == "array" and indexable and node.op in ("eq", "has_all", "has_any", "in", "seq_eq")

    # ------------------------------------------------------------ order

    def order_by(self, sorts: tuple[Sort, ...]) -> str:
        """ORDER BY list; newest first when no sort is given.

        An absent value sorts as the smallest (first ascending, last descending) on both databases. Ties are
        broken by ``created_at, id`` after a component field (the order its index ``(expr, created_at, id)``
        holds, so sorting by one searchable field reads the index) and by ``id`` after a system column.
        """
        return ", ".join(f"{expression} {direction}" for expression, direction in self.order_keys(sorts))

    def order_keys(self, sorts: tuple[Sort, ...]) -> list[tuple[str, str]]:
        """``order_by``'s keys: each an expression over a form_instance row and its direction (with NULLS)."""
        if not sorts:
            return [("created_at", "DESC"), ("id", "DESC")]
        if len(sorts) > MAX_SORTS:
            raise _too_large(f"the search sorts by more than {MAX_SORTS} fields")
        keys = []
        for s in sorts:
            direction = "DESC" if s.descending else "ASC"
            if s.field in SYSTEM_COLUMNS:
                column = SYSTEM_COLUMNS[s.field]
                keys.append((column, f"{direction}{self._nulls(s) if column in _NULLABLE_COLUMNS else ''}"))
                continue
            f = self.fields.get(s.field)
            if f is None:
                raise InvalidArgument(f"cannot sort by unknown field {s.field}", reason="search.unknown_field")
            if f.kind not in ("text", "number"):
                raise InvalidArgument(f"cannot sort by {s.field} ({f.kind} values)", reason="search.invalid_sort")
            keys.append((field_expression(self.sql, f), f"{direction}{self._nulls(s)}"))
        last = sorts[-1]
        direction = "DESC" if last.descending else "ASC"
        if last.field not in SYSTEM_COLUMNS:
            keys.append(("created_at", direction))
        keys.append(("id", direction))
        return keys

    def _nulls(self, sort: Sort) -> str:
        # SQLite already puts NULL first ascending and last descending; PostgreSQL does the opposite.
        if self.sql.name != "postgresql":
            return ""
        return " NULLS LAST" if sort.descending else " NULLS FIRST"
