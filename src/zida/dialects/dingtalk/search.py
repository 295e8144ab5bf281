"""Yida search syntaxes → the core filter tree.

``searchFieldJson`` comes in two syntaxes (spec yida-openapi §5.3): a map ``{fieldId: value}`` whose
match depends on the component (text fuzzy, number range, exact options…), and the "数据管理" filter array
``[{key, value, type, operator, componentName, parentId}]`` (also the ``searchCondition`` syntax). Choices
where the spec is silent, kept in this module:

* map syntax: an empty value (``""``, ``null``, ``[]``) means "no condition on this field";
* ``logicOperator`` ``OR`` (case-insensitive) joins the conditions with OR, anything else with AND;
* time filters ``yyyy-MM-dd`` cover the whole day, ``yyyy-MM-dd HH:mm:ss`` is a point in time, both in
  ``ZIDA_TIMEZONE`` (default Asia/Shanghai, the platform's own zone); epoch milliseconds are accepted too;
* results are newest first unless ``dynamicOrder``/``orderConfigJson`` says otherwise; ``gmt_create`` and
  ``gmt_modified`` are the built-in sort keys.

Limits: a search of more conditions than ``ZIDA_MAX_SEARCH_CONDITIONS`` or an order of more than 16 keys is refused
here, before anything is built (``search.too_large``); JSON text inside a condition value is decoded within
``ZIDA_MAX_JSON_DEPTH`` (``zida.dialects.http.decode_json``); the compiler holds the rest of the search budget.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from zida.core.apps.models import Field, Form
from zida.core.errors import InvalidArgument
from zida.core.records.filters import And, Condition, Filter, Or, Sort
from zida.core.records.filters.compiler import MAX_SORTS, search_limits
from zida.core.records.values import brief
from zida.dialects.http import decode_json
from zida.dialects.search_values import country_condition, decoded_list, option_value
from zida.ids import is_decimal

__all__ = ["order_from_json", "parse_search", "time_range"]

# Built-in keys of the filter array and of orderConfigJson → core system fields.
BUILTIN_KEYS = {
    "originator": "originator",
    "originatorId": "originator",
    "processApprovedResult": "approved_result",
    "approvedResult": "approved_result",
    "instanceStatus": "instance_status",
    "processInstanceStatus": "instance_status",
    "title": "title",
    "formInstanceId": "instance_id",
    "formInstId": "instance_id",
    "processInstanceId": "process_instance_id",
    "serialNo": "serial_no",
    "gmt_create": "created_at",
    "gmtCreate": "created_at",
    "gmt_modified": "modified_at",
    "gmtModified": "modified_at",
    "modifier": "modifier",
    "currentNodeName": "current_node_name",  # the approver node a running instance waits at (by its name)
}

OPERATORS = {
    "eq": "eq",
    "=": "eq",
    "ne": "ne",
    "neq": "ne",
    "not_eq": "ne",
    "!=": "ne",
    "like": "like",
    "gt": "gt",
    ">": "gt",
    "ge": "ge",
    "gte": "ge",
    ">=": "ge",
    "lt": "lt",
    "<": "lt",
    "le": "le",
    "lte": "le",
    "<=": "le",
    "between": "between",
    "in": "in",
    "contains": "contains",
    "is_empty": "empty",
    "isEmpty": "empty",
    "is_null": "empty",
    "isnull": "empty",
    "is_not_empty": "not_empty",
    "isNotEmpty": "not_empty",
    "not_null": "not_empty",
    "notnull": "not_empty",
}


def _bad(message: str, key: str | None = None) -> InvalidArgument:
    return InvalidArgument(message, reason="search.invalid", field=key)


def _name(key: Any) -> str:
    """A client's key as a message names it (cut short)."""
    text = key if isinstance(key, str) else brief(key)
    return text if len(text) <= 64 else text[:64] + "…"


def _unknown(key: Any, where: str = "this form") -> InvalidArgument:
    return InvalidArgument(
        f"field is null: {_name(key)} is not a field of {where}", reason="search.unknown_field", field=_name(key)
    )


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _resolve(form: Form, key: str, use_alias: bool) -> Field | None:
    f = form.field(key)
    if f is None and use_alias:
        f = form.field_by_alias(key)
    return f


def _map_condition(f: Field, value: Any) -> Filter | None:
    comp = f.component
    fid = f.field_id
    if _is_empty(value):
        return None
    if comp == "CascadeDateField":
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, list) for v in value)):
            raise _bad(f"{fid}: expects [[startFrom, startTo], [endFrom, endTo]]", fid)
        parts = [
            Condition(f"{fid}[{i}]", "between", list(v))
            for i, v in enumerate(value)
            if any(x not in (None, "") for x in v)
        ]
        return And(tuple(parts)) if parts else None
    if f.kind == "number":
        if isinstance(value, list):
            if len(value) != 2:
                raise _bad(f"{fid}: expects [min, max]", fid)
            return Condition(fid, "between", value)
        return Condition(fid, "eq", value)
    if comp in ("RadioField", "SelectField"):
        return Condition(fid, "eq", option_value(f, value[0] if isinstance(value, list) and len(value) == 1 else value))
    if comp in ("CheckboxField", "MultiSelectField"):
        values = value if isinstance(value, list) else [value]
        return Condition(fid, "has_all", [option_value(f, v) for v in values])
    if comp in ("EmployeeField", "DepartmentSelectField"):
        if isinstance(value, list):
            return Condition(fid, "seq_eq", [str(v) for v in value])
        return Condition(fid, "has_all", [str(value)])
    if comp in ("CitySelectField", "CascadeSelectField"):
        return Condition(fid, "prefix", value if isinstance(value, list) else [value])
    if comp == "CountrySelectField":
        return country_condition(f, "eq", value)
    if f.kind == "text":
        return Condition(fid, "like", value if isinstance(value, str) else str(value))
    return Condition(fid, "like", value if isinstance(value, str) else orjson.dumps(value).decode())


def _parse_map(form: Form, raw: dict[str, Any], use_alias: bool) -> list[Filter]:
    out: list[Filter] = []
    for key, value in raw.items():
        f = _resolve(form, key, use_alias)
        if f is None:
            system = BUILTIN_KEYS.get(key)
            if system is None:
                raise _unknown(key)
            if not _is_empty(value):
                out.append(Condition(system, "eq", value))
            continue
        cond = _map_condition(f, value)
        if cond is not None:
            out.append(cond)
    return out


def _array_item(form: Form, item: Any, use_alias: bool) -> Filter:
    if not isinstance(item, dict):
        raise _bad("each search condition must be an object with key, value and operator")
    key = item.get("key")
    if not isinstance(key, str) or not key:
        raise _bad("a search condition has no key")
    parent = item.get("parentId") or None
    value = item.get("value")
    raw_op = item.get("operator")
    op = OPERATORS.get(str(raw_op)) if raw_op not in (None, "") else None
    if raw_op not in (None, "") and op is None:
        raise InvalidArgument(
            f"{_name(key)}: unsupported operator {brief(raw_op)}",
            reason="search.unsupported_operator",
            field=_name(key),
        )
    if parent is not None:
        table = _resolve(form, parent, use_alias) if isinstance(parent, str) else None
        if table is None or table.component != "TableField":
            raise InvalidArgument(
                f"parentId {_name(parent)} is not a sub-table of this form", reason="search.unknown_field"
            )
        child = next((c for c in table.children if c.field_id == key or (use_alias and c.alias == key)), None)
        if child is None:
            raise _unknown(key, table.field_id)
        return _in_rows(_typed_condition(child, op, value), table.field_id)
    f = _resolve(form, key, use_alias)
    if f is None:
        system = BUILTIN_KEYS.get(key)
        if system is None:
            raise _unknown(key)
        if system in ("created_at", "modified_at") and isinstance(value, list | str):
            value = [time_point(v) for v in value] if isinstance(value, list) else time_point(value)
        core_op = op or "eq"
        if core_op == "contains":
            # contains on a list is membership (originator contains ["u1","u2"]), on text a substring.
            listed = decoded_list(value)
            core_op, value = ("in", listed) if listed is not None else ("like", value)
        if isinstance(value, list) and core_op == "eq":
            core_op = "in"
        return Condition(system, core_op, value)
    if f.component == "CascadeDateField" and op is None:
        cond = _map_condition(f, value)
        return cond if cond is not None else And(())
    return _typed_condition(f, op, value)


def _in_rows(node: Filter, table_id: str) -> Filter:
    """``node`` applied to the rows of the sub-table ``table_id`` (each condition: some row matches)."""
    if isinstance(node, Condition):
        return Condition(node.field, node.op, node.value, parent=table_id)
    items = tuple(_in_rows(item, table_id) for item in node.items)
    return And(items) if isinstance(node, And) else Or(items)


def _typed_condition(f: Field, op: str | None, value: Any) -> Filter:
    fid = f.field_id
    op = op or "eq"
    comp = f.component
    if comp == "CountrySelectField" and op in ("contains", "eq", "in"):
        return country_condition(f, "in" if op == "in" else "eq", value)  # eq/contains: every country named
    if op == "contains":
        if f.kind == "array":
            if isinstance(value, str) and value.startswith("["):
                try:
                    value = decode_json(value, f"{fid} search value")
                except InvalidArgument as exc:
                    if exc.reason != "argument.bad_json":
                        raise
                    raise _bad(f"{fid}: contains expects a JSON array", fid) from None
            values = value if isinstance(value, list) else [value]
            values = [option_value(f, v) for v in values]
            return Condition(fid, "has_any" if comp == "EmployeeField" else "has_all", values)
        if comp in ("RadioField", "SelectField"):
            # A single-choice field "contains" one of the listed options (spec §5.3: ARRAY, contains).
            listed = decoded_list(value)
            values = listed if listed is not None else [value]
            return Condition(fid, "in", [option_value(f, v) for v in values])
        return Condition(fid, "like", value if isinstance(value, str) else orjson.dumps(value).decode())
    if op == "in":
        values = value if isinstance(value, list) else [value]
        values = [option_value(f, v) for v in values]
        return Condition(fid, "has_any" if f.kind == "array" else "in", values)
    if op in ("eq", "ne") and comp in ("RadioField", "SelectField", "CheckboxField", "MultiSelectField"):
        value = [option_value(f, v) for v in value] if isinstance(value, list) else option_value(f, value)
    if op == "between" and (not isinstance(value, list) or len(value) != 2):
        raise _bad(f"{fid}: between expects [min, max]", fid)
    if op == "like" and f.kind == "number":
        raise InvalidArgument(f"{fid}: {comp} does not support like", reason="search.unsupported_operator", field=fid)
    return Condition(fid, op, value)


def parse_search(form: Form, raw: Any, *, use_alias: bool = False, logic: str | None = None) -> Filter | None:
    """Parse a decoded ``searchFieldJson``/``searchCondition`` (map or array syntax) into a filter."""
    if raw is None or raw == {} or raw == []:
        return None
    limit = search_limits().conditions
    if isinstance(raw, dict | list) and len(raw) > limit:
        raise InvalidArgument(f"the search has more than {limit} conditions", reason="search.too_large")
    if isinstance(raw, dict):
        items = _parse_map(form, raw, use_alias)
    elif isinstance(raw, list):
        items = [_array_item(form, item, use_alias) for item in raw]
    else:
        raise _bad("searchFieldJson must be a JSON object or array")
    items = [i for i in items if not (isinstance(i, And) and not i.items)]
    if not items:
        return None
    if logic is not None and logic.strip().upper() == "OR":
        return Or(tuple(items))
    return items[0] if len(items) == 1 else And(tuple(items))


_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _epoch_ms(value: int | float) -> int:
    if abs(value) > _MAX_EPOCH_MS or not math.isfinite(value):
        raise InvalidArgument(
            f"invalid time {brief(value)}: not epoch milliseconds of a date", reason="argument.invalid"
        )
    return int(value)


def time_point(value: Any, zone: str = "Asia/Shanghai", *, end_of_day: bool = False) -> int:
    """``yyyy-MM-dd`` / ``yyyy-MM-dd HH:mm:ss`` (in ``zone``) or epoch ms → epoch ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch_ms(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"invalid time {brief(value)}", reason="argument.invalid")
    text = value.strip()
    if is_decimal(text):
        return _epoch_ms(int(text))
    tz = ZoneInfo(zone)
    for fmt, whole_day in (("%Y-%m-%d %H:%M:%S", False), ("%Y-%m-%d %H:%M", False), ("%Y-%m-%d", True)):
        try:
            moment = datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
        if whole_day and end_of_day:
            moment = moment.replace(hour=23, minute=59, second=59, microsecond=999_000)
        try:
            return _epoch_ms(int(moment.timestamp() * 1000))
        except (OverflowError, ValueError):
            break
    else:
        raise InvalidArgument(
            f"invalid time {brief(value)}: use yyyy-MM-dd or yyyy-MM-dd HH:mm:ss", reason="argument.invalid"
        )
    raise InvalidArgument(f"invalid time {brief(value)}: out of range", reason="argument.invalid")


def time_range(system_field: str, start: Any, end: Any, zone: str) -> Condition | None:
    """A ``between`` on ``created_at``/``modified_at`` from the ``*From/*ToTimeGMT`` pair."""
    if start in (None, "") and end in (None, ""):
        return None
    low = time_point(start, zone) if start not in (None, "") else None
    high = time_point(end, zone, end_of_day=True) if end not in (None, "") else None
    return Condition(system_field, "between", [low, high])


def order_from_json(form: Form, raw: Any, *, use_alias: bool = False) -> tuple[Sort, ...]:
    """``{"<fieldId or gmt_create>": "+" | "-"}`` → sorts, in the object's key order."""
    if raw is None or raw == {}:
        return ()
    if not isinstance(raw, dict):
        raise _bad('the order must be a JSON object like {"gmt_create": "-"}')
    if len(raw) > MAX_SORTS:
        raise InvalidArgument(f"the order has more than {MAX_SORTS} keys", reason="search.too_large")
    sorts = []
    for key, direction in raw.items():
        if not isinstance(direction, str) or direction not in ("+", "-", "asc", "desc", "ASC", "DESC"):
            raise _bad(f"order of {_name(key)} must be + or -", _name(key))
        desc = direction in ("-", "desc", "DESC")
        f = _resolve(form, key, use_alias)
        if f is not None:
            sorts.append(Sort(f.field_id, desc))
        elif key in BUILTIN_KEYS:
            sorts.append(Sort(BUILTIN_KEYS[key], desc))
        else:
            raise InvalidArgument(
                f"cannot order by {_name(key)}: not a field of this form", reason="search.unknown_field"
            )
    return tuple(sorts)
