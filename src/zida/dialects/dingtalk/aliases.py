"""``useAlias`` (yida_2_0): component aliases instead of fieldIds in request values and in ``formData``."""

from __future__ import annotations

from typing import Any

from zida.core.apps.models import Field, Form
from zida.core.errors import InvalidArgument

__all__ = ["aliased_form_data", "values_from_aliases"]


def _by_alias(fields: tuple[Field, ...]) -> dict[str, Field]:
    return {f.alias or f.field_id: f for f in fields}


def _rows_from_aliases(table: Field, rows: Any) -> Any:
    if not isinstance(rows, list):
        return rows
    children = _by_alias(table.children)
    out = []
    for row in rows:
        if not isinstance(row, dict):
            out.append(row)
            continue
        out.append({(children[k].field_id if k in children else k): v for k, v in row.items()})
    return out


def values_from_aliases(form: Form, values: Any) -> Any:
    """Rename alias keys (top level and sub-table rows) to fieldIds; a fieldId is accepted as itself."""
    if not isinstance(values, dict):
        return values
    by_alias = _by_alias(form.fields)
    out: dict[str, Any] = {}
    for key, value in values.items():
        f = by_alias.get(key) or form.field(key)
        if f is None:
            name = key if len(key) <= 64 else key[:64] + "…"  # never quote a client's key whole
            raise InvalidArgument(f"unknown field or alias {name}", reason="form_data.unknown_field", field=name)
        out[f.field_id] = _rows_from_aliases(f, value) if f.component == "TableField" else value
    return out


def _aliased(fields: tuple[Field, ...], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.field_id: (f.alias or f.field_id) for f in fields}
    tables = {f.field_id: f for f in fields if f.component == "TableField"}
    out: dict[str, Any] = {}
    for key, value in data.items():
        base, suffix = key, ""
        for companion in ("_id", "_value"):
            if key.endswith(companion) and key[: -len(companion)] in names:
                base, suffix = key[: -len(companion)], companion
        if base in tables and not suffix and isinstance(value, list):
            value = [_aliased(tables[base].children, r) if isinstance(r, dict) else r for r in value]
        out[names.get(base, base) + suffix] = value
    return out


def aliased_form_data(fields: tuple[Field, ...], form_data: dict[str, Any]) -> dict[str, Any]:
    """``formData`` with fieldIds replaced by aliases (fields without an alias keep their id)."""
    return _aliased(fields, form_data)
