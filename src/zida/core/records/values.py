"""Validate and normalise component values before they are stored.

Stored shapes (JSON inside ``form_instance.data``): text components → string; Number/Rate/Date → number
(dates in epoch ms); option components → the option *value* (Checkbox/MultiSelect: list); Employee →
list of userIds; DepartmentSelect → list of dept ids as strings; City/CascadeSelect → list of strings;
CascadeDate → ``[start, end]`` epoch ms numbers (``null`` for an open end); Address → object;
CountrySelect → list of ``{"value": code}``; Attachment/Image → list of file objects; AssociationForm →
list of link objects; TableField → list of row objects, each with a stable ``__rowId``.

Limits (``ValueLimits``, set from ``ZIDA_MAX_TEXT_CHARS`` … at startup): characters of one text value per
component (TextField and SerialNumberField; TextareaField; EditorField and DigitalSignatureField, whose values
are HTML or an image reference: a Zida file id there, ``FILE-…``, must name a stored file of the corp, which the
record's write marks attached as for an attachment, so it never expires and whoever reads the record may read it), in
sub-table rows too (``form_data.too_long``), and bytes of one record's stored
values as JSON, after an update is merged (``form_data.too_large``). Numbers given as text are ASCII decimal
numbers only (``１２`` or ``١٢`` are not numbers here, although Python's ``float`` reads them), read as the same JSON
literal is (``number_value``): ``"9007199254740993"`` keeps every digit, ``"0.1234567890123456789"`` is the double
``0.1234567890123456789`` is. A search value for a number is read by the same function, so a search compares with
exactly what was stored, on either database.

Numbers are stored as integers within 64 bits signed (``[-2**63, 2**63)``, kept exactly) and as doubles otherwise
(``storable_number``): this is the range both databases compare exactly (SQLite's JSON functions read a wider integer
as a double, so ``2**63`` and ``2**63 + 1`` were one number there and two on PostgreSQL), and a wider integer is held as
the double it is on the platform (JavaScript's ``Number``, Java's ``double``).

An AddressField, AttachmentField or ImageField value is read back through Yida's ``getFormDataById`` as JSON text;
that text sent back is taken as the object (address) or the array of objects (files) it writes, so a read-modify-write
leaves the record as it was. Other text is an address line (``{"address": text}``) as before.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from zida.core.apps.models import Field
from zida.core.errors import InvalidArgument
from zida.core.files.attachments import FileMention, zida_file_of
from zida.core.files.models import is_file_id
from zida.ids import is_decimal, new_row_id

__all__ = [
    "ROW_ID",
    "NotANumber",
    "References",
    "ValueLimits",
    "brief",
    "configure_value_limits",
    "is_empty",
    "is_number_text",
    "named",
    "normalize_values",
    "number_value",
    "refuse_internal_key",
    "value_limits",
]

ROW_ID = "__rowId"
_MIN_ROW_BYTES = len(orjson.dumps({ROW_ID: new_row_id()}))  # the smallest stored sub-table row: its id alone


def refuse_internal_key(row: dict[str, Any], where: str, field: str | None = None) -> None:
    """Refuse a sub-table row that names Zida's internal row key (clients name rows by ``rowId``)."""
    if ROW_ID in row:
        details = {} if field is None else {"field": field}
        raise InvalidArgument(
            f"{where}: {ROW_ID} is Zida's own key; name a row by rowId", reason="form_data.internal_key", **details
        )


@dataclass(frozen=True, slots=True)
class ValueLimits:
    """What one record may store (defaults: ``zida.settings.Settings``; README "Limits")."""

    text_chars: int = 10_000  # TextField, SerialNumberField
    textarea_chars: int = 50_000  # TextareaField
    editor_chars: int = 80_000  # EditorField, DigitalSignatureField
    record_bytes: int = 256 * 1024  # one record's stored values, as JSON

    def chars_for(self, component: str) -> int:
        """The longest text value ``component`` stores."""
        if component == "TextareaField":
            return self.textarea_chars
        if component in ("EditorField", "DigitalSignatureField"):
            return self.editor_chars
        return self.text_chars


_limits = ValueLimits()


def configure_value_limits(limits: ValueLimits) -> None:
    """At startup: the limits every later validation applies."""
    global _limits
    _limits = limits


def value_limits() -> ValueLimits:
    """The limits in force."""
    return _limits


_QUOTE_CHARS = 40


def named(text: str, limit: int = 64) -> str:
    """An id a client gave, as a message names it: as it is, or ``brief`` past ``limit`` characters."""
    return text if len(text) <= limit else brief(text)


def brief(value: Any, limit: int = _QUOTE_CHARS) -> str:
    """A client's value as an error message may quote it: at most ``limit`` characters (plus its size), never a
    walk of a deep or long value."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"a number of {value.bit_length()} bits"  # repr() refuses past 4,300 digits
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
        return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} digits)"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)} items"
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    return f"a {type(value).__name__}"


# A JSON-style decimal number in ASCII digits (a sign, a fraction and an exponent allowed; no "_", no other scripts).
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BLANKS = " \t\r\n"


def is_number_text(text: str) -> bool:
    """Whether ``text`` (surrounding ASCII blanks aside) is a decimal number written in ASCII."""
    return _NUMBER_TEXT.fullmatch(text.strip(_BLANKS)) is not None


@dataclass
class References:
    """Users and departments that normalised values point at (checked against the directory later)."""

    user_ids: set[str] = field(default_factory=set)
    dept_ids: set[str] = field(default_factory=set)
    owners: dict[str, str] = field(default_factory=dict)  # referenced id -> fieldId naming it
    files: list[FileMention] = field(default_factory=list)  # attachment items naming a Zida file (completed later)
    # the stored files among them not yet attached: the write that keeps these values marks them, in its transaction
    attaching: set[int] = field(default_factory=set)


def _bad(f: Field, why: str, reason: str = "form_data.invalid_value") -> InvalidArgument:
    return InvalidArgument(f"{f.field_id} ({f.label_zh}): {why}", reason=reason, field=f.field_id)


def is_empty(value: Any) -> bool:
    """No value: None, empty string, empty list or empty object."""
    return value is None or value == "" or value == [] or value == {}


# The integers stored as integers: 64 bits signed, what SQLite and PostgreSQL both compare exactly (SQLite reads a
# wider JSON integer as a double). A wider one is stored as the nearest double, which is what a number holds on the
# platform anyway (form data is decoded with exact integers so that a text field keeps every digit).
_INT64_MIN, _INT64_END = -(2**63), 2**63


def storable_number(value: int | float) -> int | float:
    """A JSON number as Zida stores and compares it: an integer outside 64 bits signed as the nearest double."""
    if isinstance(value, int) and not _INT64_MIN <= value < _INT64_END:
        return float(value)  # orjson refused an infinite literal, so the integer is within a double's range
    return value


def _storable(value: Any) -> Any:
    """A client's JSON value (copied) with every integer outside 64 bits signed as the nearest double; iterative."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, int) and not isinstance(item, bool):
            container[key] = storable_number(item)
        elif isinstance(item, list):
            container[key] = items = list(item)
            stack.extend((items, i) for i in range(len(items)))
        elif isinstance(item, dict):
            container[key] = pairs = dict(item)
            stack.extend((pairs, k) for k in pairs)
    return root[0]


class NotANumber(ValueError):
    """A value ``number_value`` does not read as a number; the message says why (without naming a field)."""


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_EXACT_DIGITS = 19  # integer text of at most this many digits (past its sign and leading zeros) is read exactly


def number_value(value: Any) -> int | float:
    """``value`` (a JSON number or the text of one) as the number Zida stores, compares and searches for.

    Text is read as the same JSON literal is: an integer exactly (outside 64 bits signed, as the nearest double, see
    ``storable_number``), any other number as the nearest double. An integral double below ``2**53`` is an integer.
    Refused (``NotANumber``): booleans and other types, text that is no ASCII decimal number, infinities and text
    below the smallest double (``"1e-400"``: storing 0 would change the value). Any double is accepted, subnormal
    ones (``5e-324``) included, and a search for one compiles (``zida.core.records.filters.compiler``)."""
    if isinstance(value, bool):
        raise NotANumber("expects a number, got a boolean")
    if isinstance(value, int | float):
        try:
            number: int | float = storable_number(value)
        except OverflowError:  # an integer past any double (JSON decoding refuses one; a caller's own need not)
            raise NotANumber(f"{brief(value)} is out of the range of numbers") from None
    elif isinstance(value, str):
        if not is_number_text(value):
            raise NotANumber(f"expects a number, got {brief(value)}")
        text = value.strip(_BLANKS)
        if _INTEGER_TEXT.fullmatch(text) and len(text.lstrip("+-").lstrip("0")) <= _EXACT_DIGITS:
            number = storable_number(int(text))
        else:
            number = float(text)  # the nearest double, as orjson reads the literal (an integer past 64 bits too)
            mantissa = text.lower().split("e")[0]
            if math.isinf(number) or (number == 0 and any(c in "123456789" for c in mantissa)):
                raise NotANumber(f"{brief(value)} is out of the range of numbers")
    else:
        raise NotANumber(f"expects a number, got {type(value).__name__}")
    if isinstance(number, float):
        if not math.isfinite(number):
            raise NotANumber("expects a finite number")
        if number.is_integer() and abs(number) < 2**53:
            number = int(number)
    return number


def _number(f: Field, value: Any) -> int | float:
    try:
        return number_value(value)
    except NotANumber as exc:
        raise _bad(f, str(exc), "form_data.expect_number") from None


# Dates: epoch milliseconds within ± those of 9999-12-31T23:59:59.999Z (beyond, no date; past 64 bits soon after). A
# moment before year 1 is kept: where a date is shown as text, it is shown as its milliseconds (no calendar has it).
_MAX_EPOCH_MS = 253_402_300_799_999


def _epoch_ms(f: Field, value: Any) -> int:
    number = int(_number(f, value))
    if abs(number) > _MAX_EPOCH_MS:
        raise _bad(f, f"expects a date in epoch milliseconds, got {brief(value)}", "form_data.expect_number")
    return number


def _string(f: Field, value: Any) -> str:
    if isinstance(value, str):
        if "\x00" in value:  # neither database stores it in text
            raise _bad(f, "contains a NUL character", "form_data.invalid_value")
        limit = _limits.chars_for(f.component)
        if len(value) > limit:
            raise _bad(f, f"{len(value)} characters; at most {limit} are allowed", "form_data.too_long")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _bad(f, f"expects a string, got {type(value).__name__}", "form_data.expect_string")


def _string_list(f: Field, value: Any) -> list[str]:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [str(value)]
    if not isinstance(value, list):
        raise _bad(f, f"expects an array, got {type(value).__name__}", "form_data.expect_array")
    out = []
    for item in value:
        if not isinstance(item, str | int) or isinstance(item, bool):
            raise _bad(f, f"expects an array of strings, got an item {brief(item)}", "form_data.expect_array")
        if isinstance(item, str) and len(item) > _limits.text_chars:
            raise _bad(f, f"an item of {len(item)} characters; at most {_limits.text_chars}", "form_data.too_long")
        out.append(str(item))
    return out


def _option(f: Field, value: str) -> str:
    if not f.options:
        return value
    opt = f.option(value)
    if opt is None:
        allowed = ", ".join(o.value for o in f.options)
        raise _bad(f, f"{brief(value)} is not one of the options ({allowed})", "form_data.unknown_option")
    return opt.value


def _objects(f: Field, value: Any, required_any: tuple[str, ...]) -> list[dict[str, Any]]:
    if isinstance(value, str):  # as Yida reads files back: JSON text of the array
        decoded = _json_text(f, value, "[")
        value = value if decoded is None else decoded
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _bad(f, "expects an array of objects", "form_data.expect_array")
    for item in value:
        if required_any and not any(item.get(k) for k in required_any):
            raise _bad(f, f"each item needs one of {', '.join(required_any)}")
    items: list[dict[str, Any]] = _storable(value)
    return items


# Levels of JSON text inside a value (an address or files read back): theirs are two or three.
_MAX_TEXT_DEPTH = 32
_TINY_LITERAL = re.compile(r"[0-9][eE]-[0-9]")


def _json_text(f: Field, text: str, opener: str) -> Any:
    """``text`` decoded, if it is JSON text of an object (``opener`` ``{``) or an array (``[``); else None.

    Its numbers are read as form data's are (an integer past 64 bits as a double, below the smallest double refused),
    and a NUL character or nesting past ``_MAX_TEXT_DEPTH`` levels is refused as in form data itself."""
    stripped = text.strip(_BLANKS)
    if not stripped.startswith(opener):
        return None
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):  # JSON with a number no double holds: refused as that literal in form data is
            raise _bad(
                f, f"a number in {brief(text)} is out of the range of numbers", "form_data.expect_number"
            ) from None
        return None  # not JSON: text
    if not isinstance(value, dict if opener == "{" else list):
        return None
    if _TINY_LITERAL.search(stripped):
        try:
            json.loads(stripped, parse_float=number_value)
        except NotANumber as exc:
            raise _bad(f, str(exc), "form_data.expect_number") from None
        except (ValueError, RecursionError):  # orjson read it: nothing else to find
            pass
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _bad(f, "contains a NUL character")
        elif isinstance(item, list | dict):
            if depth > _MAX_TEXT_DEPTH:
                raise _bad(f, f"nests JSON deeper than {_MAX_TEXT_DEPTH} levels", "form_data.too_deep")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def _normalize(f: Field, value: Any, refs: References, old_rows: dict[str, dict[str, Any]] | None) -> Any:
    comp = f.component
    if comp == "DigitalSignatureField":
        text = _string(f, value)
        if is_file_id(text):  # the signature's image is a Zida file: checked to exist and attached like an attachment
            refs.files.append((text, {}, f.field_id))
        return text
    if comp in ("TextField", "TextareaField", "EditorField", "SerialNumberField"):
        return _string(f, value)
    if comp in ("NumberField", "RateField"):
        return _number(f, value)
    if comp == "DateField":
        return _epoch_ms(f, value)
    if comp in ("RadioField", "SelectField"):
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        return _option(f, _string(f, value))
    if comp in ("CheckboxField", "MultiSelectField"):
        return [_option(f, v) for v in _string_list(f, value)]
    if comp == "EmployeeField":
        users = _string_list(f, value)
        if f.multiple is False and len(users) > 1:
            raise _bad(f, "accepts a single employee")
        for u in users:
            refs.user_ids.add(u)
            refs.owners.setdefault("user:" + u, f.field_id)
        return users
    if comp == "DepartmentSelectField":
        depts = _string_list(f, value)
        if f.multiple is False and len(depts) > 1:
            raise _bad(f, "accepts a single department")
        for d in depts:
            if not is_decimal(d, 18):  # ids are positive 64-bit integers
                raise _bad(f, f"department id {brief(d)} is not a numeric id")
            refs.dept_ids.add(d)
            refs.owners.setdefault("dept:" + d, f.field_id)
        return depts
    if comp in ("CitySelectField", "CascadeSelectField"):
        return _string_list(f, value)
    if comp == "CascadeDateField":
        if not isinstance(value, list) or len(value) != 2:
            raise _bad(f, "expects [startMs, endMs]", "form_data.expect_array")
        start, end = (None if v in ("", None) else _epoch_ms(f, v) for v in value)
        if start is not None and end is not None and end < start:  # as the platform's range picker never gives
            raise _bad(f, f"the range ends ({end}) before it starts ({start})")
        return [start, end]
    if comp == "AddressField":
        if isinstance(value, str):  # JSON text of an address object (as Yida reads it back), else an address line
            decoded = _json_text(f, value, "{")
            value = {"address": value} if decoded is None else decoded
        if not isinstance(value, dict):
            raise _bad(f, "expects an address object")
        return _storable(value)
    if comp == "CountrySelectField":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise _bad(f, 'expects [{"value": "CN"}]', "form_data.expect_array")
        countries = []
        for item in value:
            code = item.get("value") if isinstance(item, dict) else item
            if not isinstance(code, str) or not code:
                raise _bad(f, "each country needs a code in value")
            countries.append({"value": code})
        return countries
    if comp in ("AttachmentField", "ImageField"):
        items = _objects(f, value, ("downloadUrl", "url", "previewUrl", "fileUuid"))
        for item in items:
            file_id = zida_file_of(item)
            if file_id is not None:
                refs.files.append((file_id, item, f.field_id))
        return items
    if comp == "AssociationFormField":
        return _objects(f, value, ("instanceId",))
    if comp == "TableField":
        return _table(f, value, refs, old_rows or {})
    raise _bad(f, f"unsupported component {comp}")


def _table(f: Field, value: Any, refs: References, old_rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise _bad(f, "expects an array of row objects", "form_data.expect_array")
    # Each stored row holds at least its row id: more rows than the record's bytes allow are refused before any is
    # built (a million "{}" rows took a worker seconds and hundreds of MB to be refused by the size check).
    if len(value) * _MIN_ROW_BYTES > _limits.record_bytes:
        raise InvalidArgument(
            f"{f.field_id} has {len(value)} rows: stored, they take more bytes than one record's values may (at most"
            f" {_limits.record_bytes} as JSON)",
            reason="form_data.too_large",
            field=f.field_id,
        )
    children = {c.field_id: c for c in f.children}
    rows = []
    used: set[str] = set()
    for index, row in enumerate(value):
        out: dict[str, Any] = {}
        refuse_internal_key(row, f"{f.field_id}[{index}]", f.field_id)
        # A row keeps its id only once: a second row sent with the same rowId is a new row.
        row_id = row.get("rowId")
        kept = isinstance(row_id, str) and row_id in old_rows and row_id not in used
        out[ROW_ID] = row_id if kept and isinstance(row_id, str) else new_row_id()
        used.add(out[ROW_ID])
        for key, cell in row.items():
            if key == "rowId":
                continue
            child = children.get(key)
            if child is None:
                raise InvalidArgument(
                    f"{f.field_id}[{index}]: unknown sub-table field {_key(key)}",
                    reason="form_data.unknown_field",
                    field=f"{f.field_id}.{key}",
                )
            if is_empty(cell):
                continue
            out[key] = _normalize(child, cell, refs, None)
        for child in f.children:
            if child.required and is_empty(out.get(child.field_id)):
                raise InvalidArgument(
                    f"{f.field_id}[{index}].{child.field_id} ({child.label_zh}) is required",
                    reason="form_data.required",
                    field=f"{f.field_id}.{child.field_id}",
                )
        rows.append(out)
    return rows


def normalize_values(
    fields: tuple[Field, ...], values: Any, *, partial: bool, current: dict[str, Any] | None = None
) -> tuple[dict[str, Any], References]:
    """Validate ``values`` ({fieldId: value}) against the schema; return what to store and what it references.

    ``partial`` (updates) validates only the fields given; otherwise required fields must be present.
    A ``null``/empty value clears the field. ``current`` supplies existing sub-table rows so that rows
    sent back with their ``rowId`` keep it.
    """
    if not isinstance(values, dict):
        raise InvalidArgument("form data must be a JSON object of {fieldId: value}", reason="form_data.invalid")
    by_id = {f.field_id: f for f in fields}
    refs = References()
    out: dict[str, Any] = {}
    for key, value in values.items():
        f = by_id.get(key)
        if f is None:
            raise InvalidArgument(f"unknown field {_key(key)}", reason="form_data.unknown_field", field=_key(key))
        if is_empty(value):
            if f.required and (partial or f.component != "SerialNumberField"):  # a new record's is generated
                raise _bad(f, "is required and cannot be empty", "form_data.required")
            out[key] = None
            continue
        old_rows = None
        if f.component == "TableField" and current and isinstance(current.get(key), list):
            old_rows = {r[ROW_ID]: r for r in current[key] if isinstance(r, dict) and ROW_ID in r}
        out[key] = _normalize(f, value, refs, old_rows)
    if not partial:
        for f in fields:
            # A top-level serial number left empty is generated when the record is created (core.records.serials).
            if f.required and f.component != "SerialNumberField" and is_empty(out.get(f.field_id)):
                raise _bad(f, "is required", "form_data.required")
    _check_record_size(out, current if partial else None)
    return out, refs


def _key(key: Any) -> str:
    """A client's key as a message names it (cut short)."""
    text = str(key) if isinstance(key, str | int) else type(key).__name__
    return text if len(text) <= 64 else text[:64] + "…"


def _check_record_size(values: dict[str, Any], current: dict[str, Any] | None) -> None:
    """Refuse a record whose stored values (``current`` with ``values`` merged in) exceed the record size limit."""
    stored = {k: v for k, v in values.items() if v is not None}
    if current:
        stored = {**{k: v for k, v in current.items() if k not in values}, **stored}
    try:
        size = len(orjson.dumps(stored))
    except orjson.JSONEncodeError:  # nested past what JSON encoding allows (the dialects refuse this earlier)
        raise InvalidArgument("the form data nests too deep", reason="form_data.too_deep") from None
    if size > _limits.record_bytes:
        raise InvalidArgument(
            f"the record's values take {size} bytes as JSON; at most {_limits.record_bytes} are allowed",
            reason="form_data.too_large",
        )
