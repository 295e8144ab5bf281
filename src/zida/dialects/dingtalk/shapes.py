"""Core records → Yida response shapes (spec yida-openapi §5.2 and the §7 response models)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from zida.core.apps.models import Field, Option
from zida.core.org.models import Department, User
from zida.core.records.models import FormInstance
from zida.core.records.values import ROW_ID
from zida.ids import is_decimal

__all__ = ["Directory", "form_data", "gmt", "instance_value", "person", "referenced_ids", "referenced_in"]


def gmt(ms: int) -> str:
    """UTC at minute precision, as api.dingtalk.com writes ``*TimeGMT``: ``2025-11-18T16:25Z``."""
    # Every record of a page is written with two of these, at minutes that rarely repeat: the date part is made
    # once per day (a dictionary), the time part is one of the day's 1,440 minutes (a tuple): ~10× cheaper than
    # a datetime per call.
    day, rest = divmod(int(ms), 86_400_000)
    date = _DAYS.get(day)
    if date is None:
        if len(_DAYS) >= 65_536:
            _DAYS.clear()
        d = datetime.fromtimestamp(day * 86_400, UTC)
        date = _DAYS[day] = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    return date + _MINUTES[rest // 60_000]


_DAYS: dict[int, str] = {}
_MINUTES = tuple(f"T{h:02d}:{m:02d}Z" for h in range(24) for m in range(60))


class Directory:
    """Users and departments needed to render a set of records (loaded in one query each)."""

    def __init__(self, users: dict[str, User], depts: dict[int, Department]) -> None:
        self.users = users
        self.depts = depts
        # The person objects already made, by (userId, name key, department key, with type): a page names the
        # same few people over and over. Shared by the items of one reply, which are only ever serialised.
        self.persons: dict[tuple[str, str, str | None, bool], dict[str, Any]] = {}

    def user_name(self, user_id: str, language: str = "zh_CN") -> str:
        """Display name of a user (the id itself when unknown)."""
        u = self.users.get(user_id)
        if u is None:
            return user_id
        return u.name_en if language == "en_US" and u.name_en else u.name

    def dept_name(self, dept_id: str) -> str:
        """Display name of a department (the id itself when unknown)."""
        d = self.depts.get(int(dept_id)) if is_decimal(dept_id, 18) else None
        return d.name if d else dept_id


def person(
    directory: Directory,
    user_id: str,
    *,
    name_key: str = "name",
    dept_key: str | None = "deptName",
    with_type: bool = True,
) -> dict[str, Any]:
    """A person object: ``{userId, name{nameInChinese, nameInEnglish, type}, deptName, email}`` (made once per
    directory: do not change it)."""
    key = (user_id, name_key, dept_key, with_type)
    made = directory.persons.get(key)
    if made is not None:
        return made
    u = directory.users.get(user_id)
    name: dict[str, Any] = {
        "nameInChinese": u.name if u else user_id,
        "nameInEnglish": (u.name_en or u.name) if u else user_id,
    }
    if with_type:
        name["type"] = "i18n"
    out: dict[str, Any] = {"userId": user_id, name_key: name}
    if dept_key is not None:
        out[dept_key] = (u.main_dept_name or "") if u else ""
        out["email"] = (u.email or "") if u else ""
    directory.persons[key] = out
    return out


# How one field's stored value is shown in formData: writes the display value and its companions into ``out``.
_Render = Callable[[Any, dict[str, Any], Directory, str, bool], None]


class _Plan:
    """How to render one schema's values: each field with its renderer (``None``: shown as stored), and the fields
    that name people or departments (found once per schema, not per record)."""

    __slots__ = ("fields", "fill", "referring", "rendered")

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.fields = fields
        self.rendered = tuple((f.field_id, _renderer(f)) for f in fields)
        self.referring = tuple(f for f in fields if f.component in _REFERRING)
        self.fill = _compiled(fields, self.rendered)


_REFERRING = frozenset({"EmployeeField", "DepartmentSelectField", "TableField"})
_PLANS: dict[int, _Plan] = {}


def _plan(fields: tuple[Field, ...]) -> _Plan:
    """The plan of a schema (by identity: parsed schemas are cached objects; a recycled id is detected)."""
    plan = _PLANS.get(id(fields))
    if plan is None or plan.fields is not fields:
        if len(_PLANS) >= 4096:
            _PLANS.clear()
        plan = _PLANS[id(fields)] = _Plan(fields)
    return plan


def referenced_in(fields: tuple[Field, ...], data: dict[str, Any], users: set[str], depts: set[int]) -> None:
    """Add the user ids and department ids that ``data`` (values of ``fields``) mentions."""
    _referenced(_plan(fields).referring, data, users, depts)


def _referenced(referring: tuple[Field, ...], data: dict[str, Any], users: set[str], depts: set[int]) -> None:
    for f in referring:
        value = data.get(f.field_id)
        if value is None:
            continue
        if f.component == "EmployeeField":
            users.update(value)
        elif f.component == "DepartmentSelectField":
            depts.update(int(d) for d in value if is_decimal(str(d), 18))
        elif f.component == "TableField":
            for row in value:
                referenced_in(f.children, row, users, depts)


def referenced_ids(
    instances: list[FormInstance], fields_of: dict[tuple[int, int], tuple[Field, ...]]
) -> tuple[set[str], set[int]]:
    """User ids and department ids a set of records mentions (people fields, originators, modifiers)."""
    users: set[str] = set()
    depts: set[int] = set()
    referring: dict[tuple[int, int], tuple[Field, ...]] = {}  # per schema version, found once per call
    for inst in instances:
        users.add(inst.originator_user_id)
        users.add(inst.modifier_user_id)
        key = (inst.form_pk, inst.form_version)
        fields = referring.get(key)
        if fields is None:
            fields = referring[key] = _plan(fields_of.get(key, ())).referring
        if fields:
            _referenced(fields, inst.data, users, depts)
    return users, depts


def _option_finder(f: Field) -> Callable[[Any], Option | None]:
    """``f.option`` as one dictionary lookup: the first option whose value or either label is the value."""
    index: dict[str, Option] = {}
    for opt in f.options:
        for key in (opt.value, opt.label_zh, opt.label_en):
            if key is not None:
                index.setdefault(key, opt)

    def find(value: Any) -> Option | None:
        try:
            return index.get(value)
        except TypeError:  # not a string (an unhashable value stored by an older version): no option is it
            return f.option(value)

    return find


def _renderer(f: Field) -> _Render | None:
    """The renderer of a field's values in formData, or ``None`` for a value shown as stored (text, dates, serial
    numbers…: most fields of a form)."""
    fid, comp = f.field_id, f.component
    companion = f"{fid}_id"
    if comp in ("RadioField", "SelectField"):
        find = _option_finder(f)

        def choice(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            opt = find(value)
            out[fid] = opt.label(language) if opt else value
            out[companion] = value

        return choice
    if comp in ("CheckboxField", "MultiSelectField"):
        find = _option_finder(f)

        def choices(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            labels = []
            for v in value:
                opt = find(v)
                labels.append(opt.label(language) if opt else v)
            out[fid] = labels
            out[companion] = list(value)

        return choices
    if comp in ("NumberField", "RateField"):
        as_text = f"{fid}_value"

        def number(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            out[fid] = value
            out[as_text] = str(value)

        return number
    if comp == "CascadeDateField":

        def dates(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            out[fid] = ["" if v is None else str(v) for v in value]

        return dates
    if comp == "EmployeeField":

        def people(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            out[fid] = [directory.user_name(u, language) for u in value]
            out[companion] = list(value)

        return people
    if comp == "DepartmentSelectField":

        def departments(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            out[fid] = ",".join(directory.dept_name(d) for d in value)
            out[companion] = list(value)

        return departments
    if comp == "CountrySelectField":

        def countries(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            out[fid] = value
            out[companion] = [c.get("value") for c in value]

        return countries
    if comp in ("CitySelectField", "CascadeSelectField"):

        def path(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            out[fid] = list(value)
            out[companion] = list(value)

        return path
    if comp == "AddressField":

        def address(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            text = orjson.dumps(value).decode()
            out[fid] = text
            out[companion] = orjson.dumps(text).decode()

        return address
    if comp in ("AttachmentField", "ImageField"):

        def files(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            out[fid] = orjson.dumps(value).decode()

        return files
    if comp == "AssociationFormField":

        def association(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            out[fid] = value
            out[companion] = orjson.dumps(orjson.dumps(value).decode()).decode()

        return association
    if comp == "TableField":
        children = f.children

        def table(value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
            fill = _plan(children).fill
            rows = []
            for row in value:
                shaped: dict[str, Any] = {}
                if row_ids and ROW_ID in row:
                    shaped["rowId"] = row[ROW_ID]
                fill(row, shaped, directory, language, row_ids)
                rows.append(shaped)
            out[fid] = rows

        return table
    return None


# ``fill(data, out, directory, language, row_ids)``: a schema's values rendered into ``out``.
_Fill = Callable[[dict[str, Any], dict[str, Any], Directory, str, bool], None]


def _compiled(fields: tuple[Field, ...], rendered: tuple[tuple[str, _Render | None], ...]) -> _Fill:
    """The schema's renderer as one function, its fields unrolled in schema order: a value shown as stored, a
    number and a choice written in line, any other shaped value through its field's renderer. Field ids and
    renderers are bound as names of the function's namespace, never written into its source."""
    namespace: dict[str, Any] = {}
    lines = ["def fill(data, out, directory, language, row_ids):", "    get = data.get"]
    for n, (f, (field_id, render)) in enumerate(zip(fields, rendered, strict=True)):
        namespace[f"k{n}"] = field_id
        lines += [f"    v = get(k{n})", "    if v is not None:"]
        if render is None:
            lines.append(f"        out[k{n}] = v")
        elif f.component in ("NumberField", "RateField"):
            namespace[f"c{n}"] = f"{field_id}_value"
            lines += [f"        out[k{n}] = v", f"        out[c{n}] = str(v)"]
        elif f.component in ("RadioField", "SelectField"):
            namespace[f"c{n}"], namespace[f"find{n}"] = f"{field_id}_id", _option_finder(f)
            lines += [
                f"        o = find{n}(v)",
                f"        out[k{n}] = v if o is None else o.label(language)",
                f"        out[c{n}] = v",
            ]
        else:
            namespace[f"r{n}"] = render
            lines.append(f"        r{n}(v, out, directory, language, row_ids)")
    exec("\n".join(lines), namespace)  # noqa: S102  (source made above from fixed text; values bound by name)
    fill: _Fill = namespace["fill"]
    return fill


def form_data(
    fields: tuple[Field, ...],
    data: dict[str, Any],
    directory: Directory,
    language: str = "zh_CN",
    *,
    row_ids: bool = False,
) -> dict[str, Any]:
    """``formData`` of a record: display values plus ``_id``/``_value`` companion keys."""
    out: dict[str, Any] = {}
    _plan(fields).fill(data, out, directory, language, row_ids)
    return out


def _component(f: Field, value: Any, display: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "componentName": f.component,
        "fieldId": f.field_id,
        "fieldData": {"value": display.get(f.field_id)},
    }
    if f.options:
        item["options"] = [{"label": o.label_zh, "value": o.value} for o in f.options]
    return item


def instance_value(
    fields: tuple[Field, ...], data: dict[str, Any], directory: Directory, language: str = "zh_CN"
) -> str:
    """``instanceValue``: JSON text of the record's components ``[{componentName, fieldId, fieldData{value}}]``;
    a TableField's ``fieldData`` is ``{totalCount, value: [[cell, …], …]}`` with each cell carrying its ``rowId``."""
    display = form_data(fields, data, directory, language)
    out = []
    for f in fields:
        if f.field_id not in data:
            continue
        if f.component == "TableField":
            rows = data[f.field_id] or []
            value = []
            for row in rows:
                shown = form_data(f.children, row, directory, language)
                value.append(
                    [{**_component(c, row.get(c.field_id), shown), "rowId": row.get(ROW_ID)} for c in f.children]
                )
            out.append(
                {
                    "componentName": f.component,
                    "fieldId": f.field_id,
                    "fieldData": {"totalCount": len(rows), "value": value},
                }
            )
        else:
            out.append(_component(f, data[f.field_id], display))
    return orjson.dumps(out).decode()
