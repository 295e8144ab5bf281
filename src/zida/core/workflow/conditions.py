"""Evaluate a filter tree in Python against one record's values (route conditions of a process).

Same semantics as the SQL compiler (``zida.core.records.filters.compiler``) applies to the same tree, over values
stored as ``{fieldId: value}``: numbers are JSON numbers (dates in epoch ms), option fields hold option values, array
components hold lists of strings, sub-tables hold lists of row objects. A condition on a missing value is
false, except ``ne`` (a missing value is not equal to anything) and ``empty``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from zida.core.apps.models import Field
from zida.core.errors import InvalidArgument
from zida.core.records.filters import OPERATORS, And, Condition, Filter, Or
from zida.core.records.values import ROW_ID, NotANumber, number_value

__all__ = ["condition_fault", "condition_problem", "matches"]

_ELEMENT = re.compile(r"^(?P<field>[A-Za-z][A-Za-z0-9_]{0,63})\[(?P<index>[01])\]$")
_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
# Contains-matches, each with whether it is case-sensitive: ``like`` is not, ``substring`` (WeDa's $search) is.
_CONTAINS = {"like": False, "not_like": False, "substring": True, "not_substring": True}
_ARRAY_OPS = frozenset({"eq", "ne", "in", "has_any", "has_all", "seq_eq", "prefix", "empty", "not_empty", *_CONTAINS})


class _Target:
    """Where a condition reads its value and how that value compares."""

    __slots__ = ("element", "field", "kind")

    def __init__(self, field: Field, kind: str, element: int | None = None) -> None:
        self.field = field
        self.kind = kind
        self.element = element

    def read(self, values: Mapping[str, Any]) -> Any:
        value = values.get(self.field.field_id)
        if self.element is None:
            return value
        return value[self.element] if isinstance(value, list) and len(value) > self.element else None


def _target(cond: Condition, fields: Mapping[str, Field]) -> _Target | str:
    """The target of ``cond`` among ``fields``, or why there is none."""
    element = _ELEMENT.match(cond.field)
    if element:
        f = fields.get(element["field"])
        if f is None or f.kind != "range":
            return f"unknown field {cond.field}"
        return _Target(f, "number", int(element["index"]))
    f = fields.get(cond.field)
    if f is None:
        return f"unknown field {cond.field}"
    return _Target(f, f.kind)


def _values(value: Any) -> list[Any]:
    """A list operand: a list, a JSON array text, or one value."""
    if isinstance(value, str) and value.startswith("["):
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(value)
    return list(value) if isinstance(value, list | tuple) else [value]


def _number(value: Any) -> Decimal | None:
    """A number as a record stores it and a search compares it (``values.number_value``), exactly; None: none."""
    try:
        number = number_value(value)
    except NotANumber:
        return None
    return Decimal(number) if isinstance(number, int) else Decimal(repr(number))


def _scalar_problem(kind: str, value: Any) -> str | None:
    if kind == "number":
        return None if _number(value) is not None else f"expects a number, got {value!r}"
    if isinstance(value, list | dict) or value is None:
        return f"expects a single value, got {value!r}"
    return None


def _operand_problem(target: _Target, cond: Condition) -> tuple[str, str] | None:
    """Why the operator (``op``) or the value (``value``) of ``cond`` does not fit its target: the key and the
    problem."""
    op, kind, value = cond.op, target.kind, cond.value

    def of_value(problem: str | None) -> tuple[str, str] | None:
        return None if problem is None else ("value", problem)

    if op in ("empty", "not_empty"):
        return None
    if op in _CONTAINS:
        if kind == "number":
            return "op", f"{op} is not supported on numbers"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return "value", f"{op} expects a string"
        return None
    if kind in ("text", "number"):
        if op in _COMPARISONS and not (op == "eq" and isinstance(value, list)):
            return of_value(_scalar_problem(kind, value))
        if op == "between":
            if not isinstance(value, list | tuple) or len(value) != 2:
                return "value", "between expects [low, high]"
            return of_value(next((p for b in value if b not in (None, "") and (p := _scalar_problem(kind, b))), None))
        return of_value(next((p for v in _values(value) if (p := _scalar_problem(kind, v))), None))
    if kind == "array":
        if op not in _ARRAY_OPS:
            return "op", f"operator {op} is not supported for {target.field.kind} values"
        bad = [v for v in _values(value) if isinstance(v, list | dict) or v is None]
        return ("value", f"expects strings, got {bad[0]!r}") if bad else None
    if op == "has_any" and (target.field.kind == "objects" or target.field.component == "AssociationFormField"):
        return None
    return "op", f"operator {op} is not supported for {target.field.kind} values"


def condition_fault(cond: Condition, fields: Sequence[Field]) -> tuple[str, str] | None:
    """Why ``cond`` cannot be evaluated over a form with ``fields``: the key of the condition at fault (``field``,
    ``op``, ``value``, ``parent``) and the problem; None when it can."""
    if cond.op not in OPERATORS:
        return "op", f"unknown operator {cond.op!r}"
    index = {f.field_id: f for f in fields}
    if cond.parent is not None:
        table = index.get(cond.parent)
        if table is None or table.kind != "table":
            return "parent", f"{cond.parent} is not a sub-table of this form"
        index = {c.field_id: c for c in table.children}
    target = _target(cond, index)
    if isinstance(target, str):
        return "field", target
    fault = _operand_problem(target, cond)
    return None if fault is None else (fault[0], f"{cond.field}: {fault[1]}")


def condition_problem(cond: Condition, fields: Sequence[Field]) -> str | None:
    """Why ``cond`` cannot be evaluated over a form with ``fields``; None when it can."""
    fault = condition_fault(cond, fields)
    return None if fault is None else fault[1]


# ------------------------------------------------------------------------------------------- evaluate


def matches(node: Filter, data: Mapping[str, Any], fields: Sequence[Field]) -> bool:
    """Whether the record ``data`` ({fieldId: stored value}) satisfies the filter tree ``node``."""
    return _holds(node, data, tuple(fields))


def _holds(node: Filter, data: Mapping[str, Any], fields: tuple[Field, ...]) -> bool:
    if isinstance(node, And):
        return all(_holds(item, data, fields) for item in node.items)
    if isinstance(node, Or):
        return any(_holds(item, data, fields) for item in node.items)
    problem = condition_problem(node, fields)
    if problem is not None:
        raise InvalidArgument(problem, reason="condition.invalid", field=node.field)
    if node.parent is not None:
        table = next(f for f in fields if f.field_id == node.parent)
        rows = data.get(node.parent)
        inner = Condition(node.field, node.op, node.value)
        children = table.children
        return isinstance(rows, list) and any(isinstance(row, Mapping) and _holds(inner, row, children) for row in rows)
    target = _target(node, {f.field_id: f for f in fields})
    assert isinstance(target, _Target)
    stored = target.read(data)
    if node.op in _CONTAINS:
        found = _contains(node.op, node.value, stored, target.kind)
        return not found if node.op.startswith("not_") else found
    if target.kind in ("text", "number"):
        return _scalar_holds(node.op, node.value, stored, target.kind)
    if target.kind == "array":
        return _array_holds(node.op, node.value, stored)
    return _other_holds(node.op, node.value, stored)


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _text(value: Any) -> str:
    """A scalar as text, the way the SQL compiler binds it (``5`` → ``"5"``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _json_text(value)


def _leaves(value: Any, table: bool = False) -> Iterator[str]:
    """The texts and numbers (as text) anywhere in a stored value; of a sub-table's rows, all but their ``__rowId``."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            if not table:
                yield from _leaves(item)
            elif isinstance(item, Mapping):
                yield from _leaves({k: v for k, v in item.items() if k != ROW_ID})
    elif isinstance(value, Mapping) and not table:
        for item in value.values():
            yield from _leaves(item)


def _contains(op: str, pattern: Any, stored: Any, kind: str) -> bool:
    """Whether the stored value contains ``pattern``: a text value itself; a list, sub-table or structured value
    some text or number in it (not its keys, as the SQL compiler reads it). ``like`` ignores case."""
    texts = [_text(stored)] if kind == "text" and stored is not None else _leaves(stored, kind == "table")
    if _CONTAINS[op]:
        return any(str(pattern) in text for text in texts)
    wanted = str(pattern).casefold()
    return any(wanted in text.casefold() for text in texts)


def _scalar(kind: str, value: Any) -> Decimal | str | None:
    """A stored or given scalar as it compares: Decimal for numbers, text otherwise; None when absent."""
    if value is None:
        return None
    if kind == "number":
        return _number(value)
    return _text(value)


def _ordered(op: str, left: Any, right: Any) -> bool:
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)


def _scalar_holds(op: str, value: Any, stored: Any, kind: str) -> bool:
    current = _scalar(kind, stored)
    if op == "empty":
        return current is None or current == ""
    if op == "not_empty":
        return current is not None and current != ""
    if op == "eq" and isinstance(value, list):
        op = "in"
    if op in _COMPARISONS:
        given = _scalar(kind, value)
        if op == "ne":
            return current is None or current != given
        if current is None:
            return False
        if op == "eq":
            return current == given
        return _ordered(op, current, given)
    if op == "between":
        if current is None:
            return False
        low, high = value
        if low not in (None, "") and _ordered("lt", current, _scalar(kind, low)):
            return False
        return not (high not in (None, "") and _ordered("gt", current, _scalar(kind, high)))
    values = _values(value)
    if op in ("has_all", "seq_eq", "prefix") and len(values) > 1:
        return False
    if not values:
        return op not in ("in", "has_any")
    return current is not None and current in {_scalar(kind, v) for v in values}


def _string_list(stored: Any) -> list[str] | None:
    if stored is None:
        return None
    if isinstance(stored, list):
        return [_text(v) for v in stored]
    return [_text(stored)]


def _array_holds(op: str, value: Any, stored: Any) -> bool:
    items = _string_list(stored)
    if op == "empty":
        return not items
    if op == "not_empty":
        return bool(items)
    if op == "ne":
        return not _array_holds("eq", value, stored)
    if op == "eq" and not isinstance(value, list):
        return items is not None and _text(value) in items
    values = [_text(v) for v in _values(value)]
    if op == "eq" or op == "seq_eq":
        return items is not None and items == values
    if op == "has_all":
        return not values or (items is not None and all(v in items for v in values))
    if op in ("has_any", "in"):
        return items is not None and any(v in items for v in values)
    # prefix: the stored path starts with the given one (province, city, district)
    return not values or (items is not None and items[: len(values)] == values)


def _other_holds(op: str, value: Any, stored: Any) -> bool:
    if op in ("empty", "not_empty"):
        empty = stored is None or stored == [] or stored == {}
        return empty if op == "empty" else not empty
    # has_any on a CountrySelectField (stored [{"value": code}, …]) or an AssociationFormField ([{"instanceId"}])
    codes = (
        {item.get("value", item.get("instanceId")) for item in stored if isinstance(item, Mapping)}
        if isinstance(stored, list)
        else set()
    )
    return any(str(v) in codes for v in _values(value))
