"""The one filter tree every dialect's search syntax parses into.

A filter is ``And``/``Or`` of ``Condition(field, op, value)``. ``field`` is a component fieldId or one of
the system fields below; ``parent`` names the TableField when the condition applies to sub-table rows
(true when *some* row matches). Operators:

=================  ==========================================================================
``eq`` / ``ne``    equal / not equal (scalars)
``like``           case-insensitive substring (text; on lists, sub-tables and structured values: some text or
                   number in them, never their keys); ``not_like``: not (absent values included)
``substring``      case-sensitive substring (WeDa's ``$search``); ``not_substring``: not (absent included)
``gt ge lt le``    ordered comparisons (numbers, dates as epoch ms, text)
``between``        inclusive range ``[low, high]``; either bound may be ``None``
``in``             scalar is one of a list
``has_all``        stored array contains every value of a list
``has_any``        stored array contains at least one value of a list
``seq_eq``         stored array equals a list, same order
``prefix``         stored array starts with a list (cascading paths: province, city, district)
``empty``          no value (absent, null, empty string or empty array); ``not_empty`` the opposite
=================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "OPERATORS",
    "SYSTEM_FIELDS",
    "And",
    "Condition",
    "Filter",
    "Or",
    "Page",
    "RecordQuery",
    "Sort",
]

Operator = Literal[
    "eq",
    "ne",
    "like",
    "not_like",
    "substring",
    "not_substring",
    "gt",
    "ge",
    "lt",
    "le",
    "between",
    "in",
    "has_all",
    "has_any",
    "seq_eq",
    "prefix",
    "empty",
    "not_empty",
]
OPERATORS: frozenset[str] = frozenset(Operator.__args__)  # type: ignore[attr-defined]

# System fields of a form instance, with their kind (how values compare).
SYSTEM_FIELDS: dict[str, str] = {
    "instance_id": "text",
    "title": "text",
    "originator": "text",
    "modifier": "text",
    "created_at": "number",
    "modified_at": "number",
    "instance_status": "text",
    "approved_result": "text",
    "process_instance_id": "text",
    "serial_no": "text",
    # Process records: the approver node(s) the instance waits at. ``current_node_name`` is what callers
    # write; the records service resolves it to ``current_node`` (node ids) from the form's process.
    "current_node_name": "text",
    "current_node": "text",
    # Process records: those whose approval this user has or had a task in, or was CC'd on (the access policy's).
    "participant": "text",
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One comparison of a field with a value."""

    field: str
    op: str
    value: Any = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class And:
    """All of ``items`` hold."""

    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one of ``items`` holds."""

    items: tuple[Filter, ...]


Filter = Condition | And | Or


@dataclass(frozen=True, slots=True)
class Sort:
    """Order by a component or system field."""

    field: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """1-based page number and page size."""

    number: int = 1
    size: int = 10

    @property
    def offset(self) -> int:
        """Rows skipped before this page."""
        return (self.number - 1) * self.size


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """A search over one form's instances."""

    filter: Filter | None = None
    sort: tuple[Sort, ...] = field(default_factory=tuple)
    page: Page = field(default_factory=Page)
    with_total: bool = True
    # Count at most this many matches where counting would read them one by one (a total equal to the limit then
    # means at least that many); a total the search knows anyway (the form's record count, a count made in the same
    # scan) is exact whatever it is. None: always exact.
    count_limit: int | None = None
