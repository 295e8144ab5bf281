"""A records table's search, as its URL carries it: what to find, in which order, which columns to show.

* **Search** (``s.<fieldId>``; ``q`` is the first text field's, as before): only the form's indexed fields
  (``searchable`` in the bundle), so every search the console offers reads an index — text contains the words,
  numbers equal the number, fields with options hold the chosen option. At most one value per field.
* **Sort** (``sort``, ``dir`` asc/desc): by creation or modification time, or by an indexed text or number field
  (the index ``(expr, created_at, id)`` serves it). Newest first when none is chosen.
* **Columns** (``cols``, repeated): the form's fields to show, in the form's order (the first five when none are
  chosen, at most twelve). Exports always hold every field.

A wrong parameter (a field that is not the form's or not indexed, a number that is not one) is a 400 page that
names it; nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from zida.console.fields import Display
from zida.console.web import Ctx
from zida.core.apps.models import Field, Form
from zida.core.errors import InvalidArgument
from zida.core.records.filters import And, Condition, Filter, Sort
from zida.core.records.values import is_empty

__all__ = ["EXPORT_BATCH", "XLSX_MEDIA_TYPE", "TableSearch", "export_cell", "table_search"]

EXPORT_BATCH = 200  # records per statement of an export (the core's largest page)
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DEFAULT_COLUMNS = 5
MAX_COLUMNS = 12
_MAX_WORDS = 200
_TIME_SORTS = ("created_at", "modified_at")


def _searchable(form: Form) -> list[Field]:
    """The fields the table may be searched on: indexed text and number fields, and indexed option fields."""
    return [f for f in form.fields if f.searchable and (f.kind in ("text", "number") or f.options)]


def _sortable(form: Form) -> set[str]:
    return {f.field_id for f in form.fields if f.searchable and f.kind in ("text", "number")} | set(_TIME_SORTS)


@dataclass
class TableSearch:
    """A parsed table search: its filter, order and columns, and the parameters that say it again in a URL."""

    filter: Filter | None
    sort: Sort
    columns: list[Field]
    searchable: list[Field]
    sortable: set[str]
    words: dict[str, str] = field(default_factory=dict)
    params: list[tuple[str, str]] = field(default_factory=list)

    def query_string(self, *, without: tuple[str, ...] = ()) -> str:
        """The search as a query string (without the parameters named in ``without``)."""
        return urlencode([(k, v) for k, v in self.params if k not in without])

    def url(self, base: str) -> str:
        """``base`` with the search (for the pager: a page parameter may follow)."""
        query = self.query_string()
        return f"{base}?{query}" if query else f"{base}?"

    def sort_link(self, base: str, field_id: str) -> str | None:
        """The URL sorting by ``field_id`` (the other way round when it is the current order); None if it cannot."""
        if field_id not in self.sortable:
            return None
        descending = not self.sort.descending if self.sort.field == field_id else field_id in _TIME_SORTS
        query = self.query_string(without=("sort", "dir"))
        order = urlencode([("sort", field_id), ("dir", "desc" if descending else "asc")])
        return f"{base}?{query + '&' if query else ''}{order}"


def _condition(f: Field, raw: str) -> Condition:
    if f.options:
        if f.option(raw) is None:
            raise InvalidArgument(
                f"{raw[:40]} is not an option of {f.field_id}", reason="argument.invalid", param=f"s.{f.field_id}"
            )
        return Condition(f.field_id, "has_any" if f.kind == "array" else "eq", [raw] if f.kind == "array" else raw)
    if f.kind == "number":
        try:
            number = float(raw)
        except ValueError:
            raise InvalidArgument(
                f"{f.field_id} is searched with a number", reason="argument.invalid", param=f"s.{f.field_id}"
            ) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidArgument(f"{f.field_id} is searched with a number", reason="argument.invalid")
        return Condition(f.field_id, "eq", int(number) if number.is_integer() else number)
    return Condition(f.field_id, "like", raw)


def table_search(ctx: Ctx, form: Form) -> TableSearch:
    """The search the request's query parameters describe (module docstring)."""
    query = ctx.request.query_params
    searchable = _searchable(form)
    by_id = {f.field_id: f for f in searchable}
    params: list[tuple[str, str]] = []
    words: dict[str, str] = {}
    first_text = next((f for f in searchable if f.kind == "text" and not f.options), None)
    for name, value in query.multi_items():
        if name == "q" or name.startswith("s."):
            f = first_text if name == "q" else by_id.get(name[2:])
            if f is None:
                raise InvalidArgument(f"{name[:60]} is not an indexed field of {form.form_uuid}",
                                      reason="search.unknown_field", param=name[:60])  # fmt: skip
            text = value.strip()[:_MAX_WORDS]
            if text and f.field_id not in words:
                words[f.field_id] = text
    conditions: list[Filter] = [_condition(by_id[k], v) for k, v in words.items()]
    params += [(f"s.{k}", v) for k, v in words.items()]
    sort_field = query.get("sort", "created_at")
    sortable = _sortable(form)
    if sort_field not in sortable:
        raise InvalidArgument(f"cannot sort by {sort_field[:60]}", reason="search.invalid_sort", param="sort")
    direction = query.get("dir", "desc" if sort_field in _TIME_SORTS else "asc")
    if direction not in ("asc", "desc"):
        raise InvalidArgument("dir must be asc or desc", reason="argument.invalid", param="dir")
    if "sort" in query:
        params += [("sort", sort_field), ("dir", direction)]
    chosen = query.getlist("cols")
    known = {f.field_id for f in form.fields}
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise InvalidArgument(f"{unknown[0][:60]} is not a field of {form.form_uuid}", reason="argument.invalid",
                              param="cols")  # fmt: skip
    if len(set(chosen)) > MAX_COLUMNS:
        raise InvalidArgument(f"choose at most {MAX_COLUMNS} columns", reason="argument.invalid", param="cols")
    if chosen:
        columns = [f for f in form.fields if f.field_id in chosen]
        params += [("cols", f.field_id) for f in columns]
    else:
        columns = [f for f in form.fields if f.component != "TableField"][:DEFAULT_COLUMNS]
    condition: Filter | None = None
    if len(conditions) == 1:
        condition = conditions[0]
    elif conditions:
        condition = And(tuple(conditions))
    return TableSearch(
        filter=condition,
        sort=Sort(sort_field, descending=direction == "desc"),
        columns=columns,
        searchable=searchable,
        sortable=sortable,
        words=words,
        params=params,
    )


def export_cell(f: Field, value: Any, shown: Display) -> str | int | float | None:
    """A field's value in an export: numbers as numbers, the rest as people read it (a sub-table's rows one per
    line, their cells separated by `` | ``; files by their names)."""
    if is_empty(value):
        return None
    if f.kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if shown.kind == "files":
        return ", ".join(name for name, _ in shown.files)
    if shown.kind == "table":
        return "\n".join(" | ".join(_plain(cell) for cell in row) for row in shown.rows)
    return shown.text


def _plain(d: Display) -> str:
    if d.kind == "files":
        return ", ".join(name for name, _ in d.files)
    if d.kind == "table":
        return f"[{len(d.rows)}]"
    return d.text
