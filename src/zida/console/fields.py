"""Forms on screen: a form's components as inputs, a submitted HTML form back into the core's values, and stored
values as people read them.

Inputs: text, textarea (also the rich-text editor, as plain text), number (also rate), date, date range (two dates),
select, radio, checkbox (also multi-select), employees (user ids with a searchable list), departments, attachments
and images (uploaded by ``console.js`` as soon as they are chosen; the form carries their file ids), sub-tables
(rows added and removed by ``console.js``; cells: text, textarea, number, date, options, employees), and:

* address: one line of text, stored as the core's ``{"address": text}`` (an address stored with more keys is
  shown by its ``address`` and kept unless the line is changed);
* country: country codes separated by commas or spaces (``CN, US``), stored as ``[{"value": "CN"}, …]`` (upper case);
* city: the levels separated by ``/`` (``浙江省/杭州市/西湖区``), stored as the list of levels;
* cascade: with an options tree in ``props.options`` (``[{value, label, children}]``, ``label`` a text or
  ``{zh_CN, en_US}``) a list of every path to a leaf, stored as the path's values; without one, levels typed
  as for a city;
* association: record ids separated by commas or spaces, with suggestions from a search of the associated form's
  records (``props.associationForm.formUuid``); stored as ``[{"instanceId", "formUuid", "title"}]`` after each id
  is checked to be a record the user may read (``zida.console.records``);
* serial number: shown, never entered (a serial number is not the user's to write; the console sends none).

* signature: an image uploaded as attachments are (through the files core), stored as its file id — the string
  the core keeps for a signature, which it checks and attaches as it does an attachment's file; shown as the image.

Dates are days in the server's timezone (``ZIDA_TIMEZONE``): a day is stored as its midnight in epoch ms. Every other
rule (required, numbers, options, lengths, who and what may be named) is the core's: each field is checked alone
by ``zida.core.records.values.normalize_values`` so that every wrong field gets its message at once, and the save
itself checks everything again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from zida.console.i18n import translate
from zida.core.apps.models import Field, Form
from zida.core.errors import InvalidArgument
from zida.core.files.models import is_file_id
from zida.core.records.values import ROW_ID, is_empty, normalize_values

__all__ = [
    "Cell",
    "Display",
    "Widget",
    "associated_form",
    "cascade_paths",
    "changed_values",
    "day_of",
    "display_values",
    "entered_of",
    "field_errors",
    "label_of",
    "message_of",
    "parse_submission",
    "referenced",
    "submitted_pairs",
    "widgets",
]

_KINDS = {
    "TextField": "text",
    "TextareaField": "textarea",
    "EditorField": "textarea",
    "NumberField": "number",
    "RateField": "number",
    "DateField": "date",
    "CascadeDateField": "daterange",
    "SelectField": "select",
    "RadioField": "radio",
    "CheckboxField": "checkbox",
    "MultiSelectField": "checkbox",
    "EmployeeField": "people",
    "DepartmentSelectField": "departments",
    "AttachmentField": "files",
    "ImageField": "files",
    "TableField": "table",
    "AddressField": "address",
    "CountrySelectField": "country",
    "CitySelectField": "levels",
    "CascadeSelectField": "levels",
    "AssociationFormField": "association",
    "SerialNumberField": "readonly",
    "DigitalSignatureField": "signature",
}
_CELL_KINDS = {"text", "textarea", "number", "date", "select", "radio", "checkbox", "people"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PEOPLE_SPLIT = re.compile(r"[\s,，;；]+")
_COUNTRY = re.compile(r"^[A-Z]{2,3}$")


def _kind(f: Field, *, cell: bool = False) -> str:
    kind = _KINDS.get(f.component, "unsupported")
    if cell and kind not in _CELL_KINDS:
        return "unsupported"
    if kind == "levels" and cascade_paths(f, "zh_CN"):
        return "cascade"
    return kind


_MAX_DEPTH = 6
_MAX_PATHS = 2000


def _option_label(node: Mapping[str, Any], lang: str) -> str:
    label = node.get("label")
    if isinstance(label, Mapping):
        label = label.get(lang) or label.get("zh_CN") or next(iter(label.values()), None)
    return str(label if label is not None else node.get("value"))


def cascade_paths(f: Field, lang: str) -> list[tuple[str, str]]:
    """A cascade field's choices from its options tree (``props.options``): every path to a leaf, as (the path's
    values as JSON text — what the form sends —, its labels joined by `` / ``); empty when it has no tree."""
    tree = f.props.get("options") if f.component == "CascadeSelectField" else None
    out: list[tuple[str, str]] = []

    def walk(nodes: Any, values: list[str], labels: list[str]) -> None:
        if not isinstance(nodes, list) or len(values) >= _MAX_DEPTH:
            return
        for node in nodes:
            if len(out) >= _MAX_PATHS or not isinstance(node, Mapping) or node.get("value") in (None, ""):
                continue
            path, shown = [*values, str(node["value"])], [*labels, _option_label(node, lang)]
            children = node.get("children")
            if isinstance(children, list) and children:
                walk(children, path, shown)
            else:
                out.append((orjson.dumps(path).decode(), " / ".join(shown)))

    walk(tree, [], [])
    return out


def associated_form(f: Field) -> str | None:
    """The form whose records an association field links to (``props.associationForm.formUuid``), if it names one."""
    linked = f.props.get("associationForm")
    uuid = linked.get("formUuid") if isinstance(linked, Mapping) else None
    return uuid if isinstance(uuid, str) and uuid else None


def label_of(f: Field, lang: str) -> str:
    """A field's label in ``lang``."""
    return f.label_en if lang == "en_US" and f.label_en else f.label_zh


@dataclass
class Cell:
    """One input of a form (a top-level field, or a sub-table cell), with what the user entered and its error."""

    field: Field
    kind: str
    name: str
    label: str
    value: Any = ""
    error: str | None = None
    options: list[tuple[str, str]] = _field(default_factory=list)
    suggest: str = ""  # an association's search of the records it may link to


@dataclass
class Widget(Cell):
    """A top-level input; a sub-table's has its columns (``columns``: the empty row) and its ``rows``."""

    columns: list[Cell] = _field(default_factory=list)
    rows: list[list[Cell]] = _field(default_factory=list)
    files: list[tuple[str, str]] = _field(default_factory=list)


def _cell(f: Field, name: str, lang: str, value: Any, *, cell: bool = False) -> Cell:
    kind = _kind(f, cell=cell)
    options = cascade_paths(f, lang) if kind == "cascade" else [(o.value, o.label(lang)) for o in f.options]
    if kind == "cascade" and isinstance(value, str) and value and value not in dict(options):
        options.append((value, value))  # a stored path the tree no longer has: kept unless another is chosen
    return Cell(f, kind, name, label_of(f, lang), value, options=options)


def widgets(
    form: Form,
    lang: str,
    entered: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    file_names: Mapping[str, str] | None = None,
) -> list[Widget]:
    """The inputs of ``form``, holding what was ``entered`` (``parse_submission``'s raw values) and ``errors``."""
    entered = entered or {}
    errors = errors or {}
    names = file_names or {}
    out = []
    for f in form.fields:
        base = _cell(f, f"f.{f.field_id}", lang, entered.get(f.field_id, ""))
        w = Widget(base.field, base.kind, base.name, base.label, base.value, errors.get(f.field_id), base.options)
        if w.kind == "association" and associated_form(f):
            w.suggest = f"/console/forms/{form.form_uuid}/associations/{f.field_id}"
        if w.kind in ("files", "signature"):
            w.files = [(file_id, names.get(file_id, file_id)) for file_id in (entered.get(f.field_id) or [])]
        if w.kind == "table":
            w.columns = [_cell(c, f"t.{f.field_id}.__ROW__.{c.field_id}", lang, "", cell=True) for c in f.children]
            rows = entered.get(f.field_id) or [{}]
            w.rows = [
                [
                    _cell(c, f"t.{f.field_id}.{i}.{c.field_id}", lang, row.get(c.field_id, ""), cell=True)
                    for c in f.children
                ]
                for i, row in enumerate(rows)
            ]
            w.error = errors.get(f.field_id) or next(
                (errors[k] for k in errors if k.startswith(f.field_id + ".")), None
            )
        out.append(w)
    return out


def day_of(ms: int, tz: str) -> str:
    """An epoch-ms instant as the day (``YYYY-MM-DD``) it falls on in ``tz``; a moment no calendar date holds there
    (before year 1 or past 9999, which a record may store) as its milliseconds."""
    try:
        return datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).date().isoformat()
    except (OverflowError, ValueError, OSError):
        return str(ms)


def _day_ms(text: str, tz: str) -> int:
    if not _DAY.match(text):
        raise ValueError(text)
    day = date.fromisoformat(text)
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


class _BadInput(Exception):
    """What the user typed cannot be read as the component's value (a message key)."""


def _value(f: Field, kind: str, raw: Any, tz: str) -> Any:
    """The core value of one input's raw text (None: nothing entered)."""
    if kind in ("checkbox", "departments"):
        values = [v for v in raw if v] if isinstance(raw, list) else ([raw] if raw else [])
        return values or None
    if kind == "files":
        return [{"fileUuid": v} for v in raw] if raw else None
    if kind == "people":
        users = [u for u in _PEOPLE_SPLIT.split(str(raw or "")) if u]
        return users or None
    if kind == "readonly":
        return None
    if kind == "signature":  # the last image chosen
        return str(raw[-1]) if isinstance(raw, list) and raw else None
    text = raw if isinstance(raw, str) else ""
    if kind == "address":
        return {"address": text.strip()} if text.strip() else None
    if kind == "country":
        codes = [c.upper() for c in _PEOPLE_SPLIT.split(text) if c]
        if any(not _COUNTRY.match(c) for c in codes):
            raise _BadInput("form.bad_country")
        return [{"value": c} for c in codes] or None
    if kind == "levels":
        levels = [level.strip() for level in text.split("/") if level.strip()]
        return levels or None
    if kind == "cascade":
        if not text:
            return None
        if text not in {v for v, _ in cascade_paths(f, "zh_CN")}:
            raise _BadInput("form.bad_choice")
        return list(orjson.loads(text))
    if kind == "association":
        ids = list(dict.fromkeys(i for i in _PEOPLE_SPLIT.split(text) if i))
        return [{"instanceId": i} for i in ids] or None
    if kind == "daterange":
        start, end = raw if isinstance(raw, list) else ("", "")
        if not start and not end:
            return None
        try:
            return [_day_ms(start, tz) if start else None, _day_ms(end, tz) if end else None]
        except ValueError:
            raise _BadInput("form.bad_date") from None
    text = raw if isinstance(raw, str) else ""
    if text == "":
        return None
    if kind == "date":
        try:
            return _day_ms(text.strip(), tz)
        except ValueError:
            raise _BadInput("form.bad_date") from None
    return text


def _raw_top(form_in: Any, f: Field, kind: str) -> Any:
    name = f"f.{f.field_id}"
    if kind in ("checkbox", "departments", "files", "signature"):
        return form_in.all(name)
    if kind == "daterange":
        return [form_in.get(name + ".start"), form_in.get(name + ".end")]
    if kind == "select" and f.multiple:
        return form_in.all(name)
    return form_in.get(name)


def _raw_rows(form_in: Any, f: Field) -> list[dict[str, Any]]:
    prefix = f"t.{f.field_id}."
    rows: dict[str, dict[str, Any]] = {}
    for name in form_in.names():
        if not name.startswith(prefix):
            continue
        index, _, child_id = name[len(prefix) :].partition(".")
        child = next((c for c in f.children if c.field_id == child_id), None)
        if child is None:
            continue
        kind = _kind(child, cell=True)
        rows.setdefault(index, {})[child_id] = form_in.all(name) if kind == "checkbox" else form_in.get(name)
    return list(rows.values())


def parse_submission(
    form: Form, form_in: Any, tz: str, lang: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(the values to save, what was entered as the inputs show it again, the fields that cannot be read)."""
    values: dict[str, Any] = {}
    entered: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in form.fields:
        kind = _kind(f)
        if kind == "unsupported":
            continue
        if kind == "table":
            rows = [r for r in _raw_rows(form_in, f) if any(not is_empty(v) for v in r.values())]
            entered[f.field_id] = rows
            parsed_rows = []
            for row in rows:
                parsed: dict[str, Any] = {}
                for child in f.children:
                    ckind = _kind(child, cell=True)
                    if ckind == "unsupported" or child.field_id not in row:
                        continue
                    try:
                        cell = _value(child, ckind, row[child.field_id], tz)
                    except _BadInput as exc:
                        errors[f"{f.field_id}.{child.field_id}"] = translate(str(exc.args[0]), lang)
                        continue
                    if cell is not None:
                        parsed[child.field_id] = cell
                parsed_rows.append(parsed)
            if parsed_rows:
                values[f.field_id] = parsed_rows
            continue
        raw = _raw_top(form_in, f, kind)
        entered[f.field_id] = raw
        try:
            value = _value(f, kind, raw, tz)
        except _BadInput as exc:
            errors[f.field_id] = translate(str(exc.args[0]), lang)
            continue
        if value is not None:
            values[f.field_id] = value
    return values, entered, errors


def _entered_cell(f: Field, kind: str, value: Any, tz: str) -> Any:
    """A stored value as its input holds it (what ``parse_submission`` reads back into the same value)."""
    if is_empty(value):
        return [] if kind in ("checkbox", "departments", "files", "signature") else ""
    if kind == "signature":
        return [value] if is_file_id(value) else []
    if kind in ("text", "textarea", "number", "select", "radio"):
        return str(value) if not isinstance(value, list) else [str(v) for v in value]
    if kind == "date":
        return day_of(int(value), tz) if isinstance(value, int | float) else ""
    if kind == "daterange":
        pair = value if isinstance(value, list) else []
        return [day_of(int(v), tz) if isinstance(v, int | float) else "" for v in [*pair, None, None][:2]]
    if kind in ("checkbox", "departments"):
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if kind == "files":
        items = value if isinstance(value, list) else []
        return [str(i["fileUuid"]) for i in items if isinstance(i, dict) and isinstance(i.get("fileUuid"), str)]
    if kind in ("people", "levels"):
        items = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return ("/" if kind == "levels" else ", ").join(items)
    if kind == "cascade":
        return orjson.dumps([str(v) for v in value]).decode() if isinstance(value, list) else ""
    if kind == "address":
        return str(value.get("address") or "") if isinstance(value, dict) else str(value)
    if kind == "country":
        items = value if isinstance(value, list) else []
        return ", ".join(str(i.get("value")) for i in items if isinstance(i, dict))
    if kind == "association":
        items = value if isinstance(value, list) else []
        return ", ".join(str(i.get("instanceId")) for i in items if isinstance(i, dict) and i.get("instanceId"))
    if kind == "readonly":
        return str(value)
    return ""


def entered_of(form: Form, data: Mapping[str, Any], tz: str) -> dict[str, Any]:
    """A record's stored values as the form's inputs hold them (to edit the record)."""
    entered: dict[str, Any] = {}
    for f in form.fields:
        kind = _kind(f)
        value = data.get(f.field_id)
        if kind == "table":
            rows = value if isinstance(value, list) else []
            entered[f.field_id] = [
                {c.field_id: _entered_cell(c, _kind(c, cell=True), r.get(c.field_id), tz) for c in f.children}
                for r in rows
                if isinstance(r, dict)
            ]
        elif kind != "unsupported":
            entered[f.field_id] = _entered_cell(f, kind, value, tz)
    return entered


def submitted_pairs(form: Form, entered: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (name, value) pairs a browser submits for inputs holding ``entered`` (``entered_of``'s shape)."""
    pairs: list[tuple[str, str]] = []

    def add(name: str, kind: str, value: Any) -> None:
        if kind == "daterange":
            start, end = value if isinstance(value, list) and len(value) == 2 else ("", "")
            pairs.extend(((name + ".start", start), (name + ".end", end)))
        elif isinstance(value, list):
            pairs.extend((name, str(v)) for v in value)
        else:
            pairs.append((name, str(value)))

    for f in form.fields:
        kind = _kind(f)
        value = entered.get(f.field_id)
        if kind == "table":
            for i, row in enumerate(value if isinstance(value, list) else []):
                for c in f.children:
                    ckind = _kind(c, cell=True)
                    if ckind != "unsupported" and c.field_id in row:
                        add(f"t.{f.field_id}.{i}.{c.field_id}", ckind, row[c.field_id])
        elif kind not in ("unsupported", "readonly") and value is not None:
            add(f"f.{f.field_id}", kind, value)
    return pairs


def changed_values(form: Form, values: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """The fields an edit changes: each input whose value differs from what the record's own values read back as
    (``before``: ``parse_submission`` of ``entered_of``), ``None`` for a field emptied. A field the console cannot
    enter (a signature) is never sent, so an edit keeps it."""
    out: dict[str, Any] = {}
    for f in form.fields:
        if _kind(f) in ("unsupported", "readonly"):
            continue
        new, old = values.get(f.field_id), before.get(f.field_id)
        if new != old:
            out[f.field_id] = new
    return out


_REASON_TEXTS = {"form_data.required": "form.is_required", "form_data.expect_number": "form.expect_number"}


def message_of(exc: InvalidArgument, f: Field | None, lang: str) -> str:
    """A core validation error as shown next to its field (without the field's name, in ``lang`` when known)."""
    key = _REASON_TEXTS.get(exc.reason)
    if key is not None:
        return translate(key, lang)
    text = exc.message
    if f is not None:
        text = text.removeprefix(f"{f.field_id} ({f.label_zh}): ")
    return text


def field_errors(form: Form, values: Mapping[str, Any], lang: str) -> dict[str, str]:
    """Each field's error by the core's rules, every field checked alone (module docstring)."""
    errors: dict[str, str] = {}
    for f in form.fields:
        if _kind(f) in ("unsupported", "readonly") and (not f.required or f.field_id not in values):
            continue
        given = {f.field_id: values[f.field_id]} if f.field_id in values else {}
        try:
            normalize_values((f,), given, partial=False)
        except InvalidArgument as exc:
            where = str(exc.details.get("field") or f.field_id)
            errors[where] = message_of(exc, f, lang)
    return errors


# ------------------------------------------------------------------------------------------------ display


@dataclass
class Display:
    """A stored value as shown: ``text``, or ``files`` (name, url), or a sub-table (``headers``, ``rows``)."""

    label: str
    kind: str
    text: str = ""
    files: list[tuple[str, str]] = _field(default_factory=list)
    headers: list[str] = _field(default_factory=list)
    rows: list[list[Display]] = _field(default_factory=list)


def referenced(fields: Iterable[Field], data: Mapping[str, Any]) -> tuple[set[str], set[int]]:
    """The user ids and department ids a record's values name (to show their names)."""
    users: set[str] = set()
    depts: set[int] = set()
    for f in fields:
        value = data.get(f.field_id)
        if f.component == "TableField" and isinstance(value, list):
            for row in value:
                if isinstance(row, dict):
                    more_users, more_depts = referenced(f.children, row)
                    users |= more_users
                    depts |= more_depts
        elif f.component == "EmployeeField" and isinstance(value, list):
            users.update(str(u) for u in value)
        elif f.component == "DepartmentSelectField" and isinstance(value, list):
            depts.update(int(d) for d in value if str(d).isdigit())
    return users, depts


def _text(f: Field, value: Any, lang: str, tz: str, people: Mapping[str, str], depts: Mapping[int, str]) -> str:
    if is_empty(value):
        return ""
    comp = f.component
    if comp == "DateField" and isinstance(value, int | float):
        return day_of(int(value), tz)
    if comp == "CascadeDateField" and isinstance(value, list):
        return " – ".join(day_of(int(v), tz) if isinstance(v, int | float) else "…" for v in value)
    if f.options:
        items = value if isinstance(value, list) else [value]
        shown = []
        for item in items:
            opt = f.option(str(item))
            shown.append(opt.label(lang) if opt else str(item))
        return ", ".join(shown)
    if comp == "EmployeeField" and isinstance(value, list):
        return ", ".join(people.get(str(u), str(u)) for u in value)
    if comp in ("CitySelectField", "CascadeSelectField") and isinstance(value, list):
        path = orjson.dumps([str(v) for v in value]).decode()
        return dict(cascade_paths(f, lang)).get(path) or " / ".join(str(v) for v in value)
    if comp == "DepartmentSelectField" and isinstance(value, list):
        return ", ".join(depts.get(int(d), str(d)) if str(d).isdigit() else str(d) for d in value)
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict) and isinstance(value.get("address"), str):
        return str(value["address"])
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return ", ".join(str(v.get("title") or v.get("value") or v.get("instanceId") or "") for v in value)
    return str(value)


def display_values(
    fields: Iterable[Field],
    data: Mapping[str, Any],
    lang: str,
    tz: str,
    people: Mapping[str, str],
    depts: Mapping[int, str],
    file_url: Any,
) -> list[Display]:
    """Each field's stored value as people read it (``file_url(file_id)``: where a file opens)."""
    out = []
    for f in fields:
        value = data.get(f.field_id)
        label = label_of(f, lang)
        if f.component == "DigitalSignatureField" and is_file_id(value):
            out.append(Display(label, "image", text=str(value), files=[(label, file_url(value))]))
        elif f.component in ("AttachmentField", "ImageField"):
            items = value if isinstance(value, list) else []
            files = []
            for item in items:
                if isinstance(item, dict):
                    file_id = item.get("fileUuid")
                    url = file_url(file_id) if isinstance(file_id, str) else _outside_link(item.get("downloadUrl"))
                    files.append((str(item.get("name") or file_id or ""), url))
            out.append(Display(label, "files", files=files))
        elif f.component == "TableField":
            rows = [r for r in (value if isinstance(value, list) else []) if isinstance(r, dict)]
            out.append(
                Display(
                    label,
                    "table",
                    headers=[label_of(c, lang) for c in f.children],
                    rows=[
                        display_values(
                            f.children, {k: v for k, v in r.items() if k != ROW_ID}, lang, tz, people, depts, file_url
                        )
                        for r in rows
                    ],
                )
            )
        else:
            out.append(Display(label, "text", _text(f, value, lang, tz, people, depts)))
    return out


def _outside_link(url: object) -> str:
    """A link an attachment item stored as sent (a file elsewhere): only an http(s) URL is shown as a link (a
    ``javascript:`` or other scheme a client stored is shown as the name alone)."""
    text = str(url or "").strip()
    return text if text.lower().startswith(("https://", "http://")) and len(text) <= 2048 else ""
