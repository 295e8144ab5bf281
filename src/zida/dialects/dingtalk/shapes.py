"""Core records → Yida response shapes (spec yida-openapi §5.2 and the §7 response models)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from zida.core.apps.models import Field
from zida.core.org.models import Department, User
from zida.core.records.models import FormInstance
from zida.core.records.values import ROW_ID
from zida.ids import is_decimal

__all__ = ["Directory", "form_data", "gmt", "instance_value", "person", "referenced_ids", "referenced_in"]


def gmt(ms: int) -> str:
    """UTC at minute precision, as api.dingtalk.com writes ``*TimeGMT``: ``2025-11-18T16:25Z``."""
    return _gmt_minute(ms // 60_000)


@lru_cache(maxsize=8192)
def _gmt_minute(minute: int) -> str:
    # Every record of a page is rendered with two of these; the cache and the f-string make them ~20× cheaper.
    d = datetime.fromtimestamp(minute * 60, UTC)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}Z"


class Directory:
    """Users and departments needed to render a set of records (loaded in one query each)."""

    def __init__(self, users: dict[str, User], depts: dict[int, Department]) -> None:
        self.users = users
        self.depts = depts

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
    """A person object: ``{userId, name{nameInChinese, nameInEnglish, type}, deptName, email}``."""
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
    return out


class _Plan:
    """How to render one schema's values: each field with its component shaped or not, and the fields that name
    people or departments (found once per schema, not per record)."""

    __slots__ = ("fields", "referring", "rendered")

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.fields = fields
        self.rendered = tuple((f.field_id, f if f.component in _SHAPED else None) for f in fields)
        self.referring = tuple(f for f in fields if f.component in _REFERRING)


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
    for f in _plan(fields).referring:
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
    for inst in instances:
        users.add(inst.originator_user_id)
        users.add(inst.modifier_user_id)
        referenced_in(fields_of.get((inst.form_pk, inst.form_version), ()), inst.data, users, depts)
    return users, depts


# Components whose formData value is shaped (labels, companions, JSON text); any other is shown as stored.
_SHAPED = frozenset(
    {
        "RadioField",
        "SelectField",
        "CheckboxField",
        "MultiSelectField",
        "NumberField",
        "RateField",
        "CascadeDateField",
        "EmployeeField",
        "DepartmentSelectField",
        "CountrySelectField",
        "CitySelectField",
        "CascadeSelectField",
        "AddressField",
        "AttachmentField",
        "ImageField",
        "AssociationFormField",
        "TableField",
    }
)


def _value(f: Field, value: Any, out: dict[str, Any], directory: Directory, language: str, row_ids: bool) -> None:
    fid = f.field_id
    comp = f.component
    if comp not in _SHAPED:  # text, dates, serial numbers…: the stored value as it is (most fields of a form)
        out[fid] = value
        return
    if comp in ("RadioField", "SelectField"):
        opt = f.option(value)
        out[fid] = opt.label(language) if opt else value
        out[f"{fid}_id"] = value
    elif comp in ("CheckboxField", "MultiSelectField"):
        labels = []
        for v in value:
            opt = f.option(v)
            labels.append(opt.label(language) if opt else v)
        out[fid] = labels
        out[f"{fid}_id"] = list(value)
    elif comp in ("NumberField", "RateField"):
        out[fid] = value
        out[f"{fid}_value"] = str(value)
    elif comp == "CascadeDateField":
        out[fid] = ["" if v is None else str(v) for v in value]
    elif comp == "EmployeeField":
        out[fid] = [directory.user_name(u, language) for u in value]
        out[f"{fid}_id"] = list(value)
    elif comp == "DepartmentSelectField":
        out[fid] = ",".join(directory.dept_name(d) for d in value)
        out[f"{fid}_id"] = list(value)
    elif comp == "CountrySelectField":
        out[fid] = value
        out[f"{fid}_id"] = [c.get("value") for c in value]
    elif comp in ("CitySelectField", "CascadeSelectField"):
        out[fid] = list(value)
        out[f"{fid}_id"] = list(value)
    elif comp == "AddressField":
        text = orjson.dumps(value).decode()
        out[fid] = text
        out[f"{fid}_id"] = orjson.dumps(text).decode()
    elif comp in ("AttachmentField", "ImageField"):
        out[fid] = orjson.dumps(value).decode()
    elif comp == "AssociationFormField":
        out[fid] = value
        out[f"{fid}_id"] = orjson.dumps(orjson.dumps(value).decode()).decode()
    elif comp == "TableField":
        rows = []
        for row in value:
            shaped: dict[str, Any] = {}
            if row_ids and ROW_ID in row:
                shaped["rowId"] = row[ROW_ID]
            for child in f.children:
                if row.get(child.field_id) is not None:
                    _value(child, row[child.field_id], shaped, directory, language, row_ids)
            rows.append(shaped)
        out[fid] = rows
    else:
        out[fid] = value


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
    for field_id, shaped in _plan(fields).rendered:
        value = data.get(field_id)
        if value is None:
            continue
        if shaped is None:
            out[field_id] = value
        else:
            _value(shaped, value, out, directory, language, row_ids)
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
