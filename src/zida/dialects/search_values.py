"""How a search names a field's values, whatever the dialect's search syntax: an option by its value or either
label, countries by their codes in any shape a CountrySelectField is written or read in.

The Yida search (``zida.dialects.dingtalk.search``) and WeDa's where DSL (``zida.dialects.weda.models``) both go by
these, so that the same field and value match the same records whichever dialect asks.
"""

from __future__ import annotations

from typing import Any, Literal

from zida.core.apps.models import Field
from zida.core.errors import InvalidArgument
from zida.core.records.filters import And, Condition, Filter
from zida.core.records.values import brief
from zida.dialects.http import decode_json

__all__ = ["country_condition", "decoded_list", "option_value"]


def option_value(f: Field, value: Any) -> Any:
    """The stored value of the option of ``f`` that ``value`` names (its value or either label); else ``value``."""
    if isinstance(value, str) and f.options:
        opt = f.option(value)
        if opt is not None:
            return opt.value
    return value


def decoded_list(value: Any) -> list[Any] | None:
    """``value`` as a list when it is one (or JSON text of one), else None."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = decode_json(value, "search value")
        except InvalidArgument as exc:
            if exc.reason != "argument.bad_json":
                raise
            return None
    return value if isinstance(value, list) else None


def _country_codes(fid: str, value: Any) -> list[str]:
    """The country codes a search names, in any shape a CountrySelectField is written or read in: ``"JP"``,
    ``["JP", "CN"]`` (its ``_id``), ``[{"value": "JP"}]`` (as saved), or the JSON text of a list."""
    listed = decoded_list(value)
    items = listed if listed is not None else [value]
    codes = [item.get("value") if isinstance(item, dict) else item for item in items]
    if not codes or not all(isinstance(c, str) and c for c in codes):
        raise InvalidArgument(
            f'{fid}: expects country codes ("CN", ["CN"] or [{{"value": "CN"}}]), got {brief(value)}',
            reason="search.invalid",
            field=fid,
        )
    return [str(c) for c in codes]


def _every_country(fid: str, codes: list[str]) -> Filter:
    """Records whose countries include every one of ``codes`` (as a checkbox search needs every option)."""
    parts = tuple(Condition(fid, "has_any", [code]) for code in dict.fromkeys(codes))
    return parts[0] if len(parts) == 1 else And(parts)


def country_condition(f: Field, op: Literal["eq", "in"], value: Any) -> Filter:
    """A CountrySelectField's condition: ``eq`` has every country named, ``in`` one of them."""
    codes = _country_codes(f.field_id, value)
    return Condition(f.field_id, "has_any", codes) if op == "in" else _every_country(f.field_id, codes)
