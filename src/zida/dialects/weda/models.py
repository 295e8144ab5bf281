"""WeDa data models (``/v1/model/{envType}/{modelName}/…``) over the form records of the same core.

A model is a form with a ``modelName``; its field names are the fields' aliases. A record is
``{_id, createdAt, updatedAt, owner, createBy, updateBy, <alias>: value…}``: ``_id`` is the record's instance id
(the same record the Yida API calls ``formInstanceId``), ``owner``/``createBy`` its originator's userId,
``updateBy`` who changed it last. Values are Zida's stored values (text, numbers, option values, lists, dates as
epoch milliseconds); a sub-table's rows are ``{"rowId", <child name>: cell…}``, a child named by its alias, else by
its field id (as the Yida v2 routes' ``useAlias`` name them), and ``rowId`` the row's id, which a write naming it
keeps: a record read can be written back unchanged. System fields in written data are ignored; an unknown field
name is an error.

Where: a field is compared as the Yida search compares it (``zida.dialects.search_values``): an option by its value
or either label; countries by their codes in any shape they are written or read in (``$eq``: has every one named,
``$in``: one of them); a relation by the related records' ids or ``{"instanceId"}`` links (the same); a date range
by its ``[start, end]`` pair (``$eq``, ``$neq``). Another comparison of such a field, or any of an address,
attachment or sub-table, is ``UNSUPPORTED_OPERATION`` naming what the field takes.

Who acts: a signed-in user acts as himself; a client-credential token acts as the model's app's first active
administrator (``zida.core.access.members.integration_actor``). Reads and writes follow the one access policy, as
the Yida routes do.

Choices where WeDa is silent: ``update`` and ``delete`` change the newest record the filter matches
(``count`` 0 or 1); ``updateMany``/``deleteMany`` every match, at most 100 (more is ``LIMIT_EXCEEDED`` and
nothing changes); a page holds at most 200 records (as on WeDa); ``createMany`` takes at most 1,000 records, all or
nothing; ``upsert`` updates the one matching record or creates one (a filter matching several is
``FAILED_OPERATION``, as the Yida upsert); ``get`` of a filter with no match answers ``{"record": null}``;
``$search`` is a case-sensitive contains-match (Zida's ``substring``) and ``$search_ci`` a case-insensitive one
(``like``), ``$nsearch`` and ``$nsearch_ci`` their negations (a record without the field matches them); ``%`` and
``_`` are literal characters, and a text field's contains-match index serves them all.

Relations: a model's AssociationFormField whose ``props.associationForm.formUuid`` names a form that is a model is
a relation to that model (WeDa's "关联关系"). ``filter.relateWhere: {relation: {where}}`` keeps the records related
to at least one record the where matches (at most 200 such records, more is ``LIMIT_EXCEEDED``); ``select:
{relation: {field: true}}`` (or ``{"$master": true}``) shows a relation as the related records the caller may read,
with those fields, instead of their ids. Related records are read as the caller in their own model's app.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.core import forms
from zida.core.access.members import find_app_membership, integration_actor
from zida.core.apps.models import Field, Form
from zida.core.apps.queries import find_model_form, related_model_form
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied, TooExpensive, Unsupported
from zida.core.principals import AppActor, Scope
from zida.core.records import queries as record_queries
from zida.core.records.filters import And, Condition, Filter, Or, Page, RecordQuery, Sort
from zida.core.records.models import FormInstance
from zida.core.records.values import ROW_ID, brief
from zida.dialects.search_values import country_condition, option_value
from zida.dialects.weda.http import MAX_PAGE_NO, WedaCall, model_endpoint
from zida.ids import is_decimal

__all__ = [
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "model_actor",
    "model_values",
    "order_of",
    "parse_where",
    "render_record",
    "routes",
    "values_in",
]

MAX_PAGE_SIZE = 200  # records a page holds at most, as on WeDa
MAX_BATCH = 1000  # records one createMany may create
MAX_MATCHES = 100  # records one updateMany/deleteMany may change
MAX_ORDER_BY = 3
MAX_RELATED = 200  # related records one relateWhere may match

# A model record's system fields → the core's system fields.
SYSTEM = {
    "_id": "instance_id",
    "createdAt": "created_at",
    "updatedAt": "modified_at",
    "owner": "originator",
    "createBy": "originator",
    "updateBy": "modifier",
}
_SCALAR_OPS = {"$eq": "eq", "$neq": "ne", "$gt": "gt", "$gte": "ge", "$lt": "lt", "$lte": "le"}


def _bad(message: str, reason: str = "argument.invalid") -> InvalidArgument:
    return InvalidArgument(message, reason=reason)


# ------------------------------------------------------------------------------------------------ model and actor


async def _model(call: WedaCall) -> Form:
    name = str(call.path["model"])
    form = await find_model_form(call.zida.db, call.principal.corp_pk, name)
    if form is None:
        raise NotFound(f"data model {name} does not exist", reason="model.not_found")
    call.named_like(form)
    return form


async def model_actor(call: WedaCall, form: Form) -> AppActor:
    """Who a data-model call acts as (see the module's docstring)."""
    principal = call.principal
    if principal.kind == "session" and principal.user_id is not None:
        found = await find_app_membership(
            call.zida.db, principal.corp_pk, app_type=None, app_pk=form.app_pk, user_id=principal.user_id
        )
        if found is None or found.actor is None:
            raise PermissionDenied(f"user {principal.user_id} cannot use this model", reason="auth.not_member")
        return found.actor
    actor = await integration_actor(call.zida.db, principal.corp_pk, form.app_pk)
    if actor is None:
        raise PermissionDenied(
            f"the model's app has no active administrator for {principal.client_id}'s calls to act as",
            reason="app.no_admin",
        )
    return actor


# ------------------------------------------------------------------------------------------------ values


def _field(form: Form, name: str) -> Field:
    f = form.field_by_alias(name)
    if f is None:
        raise _bad(f"the model has no field {brief(name)}", "model.unknown_field")
    return f


def _child_names(table: Field) -> dict[str, Field]:
    """A sub-table's fields by their names in a model: each one's alias, or its field id where it has none."""
    names: dict[str, Field] = {}
    for child in table.children:
        names.setdefault(child.alias or child.field_id, child)
    return names


def _rows_in(table: Field, name: str, rows: Any) -> Any:
    """Written sub-table rows (child names → cells, ``rowId`` naming a row kept) as the core's rows."""
    if not isinstance(rows, list):
        return rows  # the core refuses what is not a list of rows
    children = _child_names(table)
    out: list[Any] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            out.append(row)
            continue
        cells: dict[str, Any] = {}
        for key, cell in row.items():
            if key in ("rowId", ROW_ID):
                cells[key] = cell  # the core keeps a known rowId and refuses its own key
                continue
            child = children.get(key)
            if child is None:
                raise _bad(f"{name}[{index}]: the sub-table has no field {brief(key)}", "model.unknown_field")
            cells[child.field_id] = cell
        out.append(cells)
    return out


def values_in(form: Form, data: Any, where: str = "data") -> dict[str, Any]:
    """Written model data (alias → value) as the core's values (field id → value); system fields are ignored.
    Sub-table rows name their fields as ``render_record`` shows them (see ``model_values``)."""
    if not isinstance(data, dict):
        raise _bad(f"{where} must be an object of field values, got {brief(data)}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in SYSTEM or key == "_openid":
            continue
        f = _field(form, key)
        out[f.field_id] = _rows_in(f, key, value) if f.component == "TableField" else value
    return out


def _rows_out(table: Field, rows: Any) -> Any:
    if not isinstance(rows, list):
        return rows
    names = {child.field_id: name for name, child in _child_names(table).items()}
    out: list[Any] = []
    for row in rows:
        if not isinstance(row, dict):
            out.append(row)
            continue
        shown: dict[str, Any] = {"rowId": row[ROW_ID]} if ROW_ID in row else {}
        for key, cell in row.items():
            if key != ROW_ID:
                shown[names[key] if key in names else str(key)] = cell
        out.append(shown)
    return out


def model_values(form: Form, data: dict[str, Any], select: set[str] | None = None) -> dict[str, Any]:
    """Stored values (field id → value) as a model names them (alias → value; ``select``: the names asked for).
    A sub-table's rows are ``{"rowId", <child name>: cell…}``: a child is named by its alias, else by its field
    id, and ``rowId`` is the row's id, which a write naming it keeps (what a read shows can be written back)."""
    out: dict[str, Any] = {}
    for f in form.fields:
        if f.alias and (select is None or f.alias in select) and f.field_id in data:
            value = data[f.field_id]
            out[f.alias] = _rows_out(f, value) if f.component == "TableField" else value
    return out


def render_record(form: Form, inst: FormInstance, select: set[str] | None = None) -> dict[str, Any]:
    """A record as WeDa shows it (``select``: the field names asked for, None: all)."""
    out: dict[str, Any] = {
        "_id": inst.instance_id,
        "createdAt": inst.created_at,
        "updatedAt": inst.modified_at,
        "owner": inst.originator_user_id,
        "createBy": inst.originator_user_id,
        "updateBy": inst.modifier_user_id,
    }
    if select is not None:
        out = {k: v for k, v in out.items() if k == "_id" or k in select}
    out.update(model_values(form, inst.data, select))
    return out


Selection = tuple[set[str] | None, dict[str, set[str] | None]]


def _select(form: Form, value: Any) -> Selection:
    """``select``: the model's own fields (``{"$master": true}`` or absent: every one; else the names set to true)
    and, for each relation named with an object (``{"trip": {"city": true}}``), the related model's fields."""
    if value is None:
        return None, {}
    if not isinstance(value, dict):
        raise _bad(f"select must be an object, got {brief(value)}")
    names: set[str] | None = None if value.get("$master") is True else set()
    related: dict[str, set[str] | None] = {}
    for key, wanted in value.items():
        if key == "$master":
            continue
        if isinstance(wanted, dict):
            related[key] = None if wanted.get("$master") is True else {k for k, v in wanted.items() if v is True}
            continue
        if wanted is True and names is not None:
            if key not in SYSTEM:
                _field(form, key)
            names.add(key)
    if names is not None:
        names |= set(related)
    return names, related


def _cond_field(form: Form, name: str) -> tuple[str, Field | None]:
    if name in SYSTEM:
        return SYSTEM[name], None
    f = _field(form, name)
    return f.field_id, f


def _conditions(form: Form, name: str, spec: Any) -> list[Filter]:
    field_id, f = _cond_field(form, name)
    if not isinstance(spec, dict):
        spec = {"$eq": spec}  # a bare value: equal to it
    out: list[Filter] = []
    for op, value in spec.items():
        if op in _SCALAR_OPS or op in ("$in", "$nin"):
            if op in ("$in", "$nin") and not isinstance(value, list):
                raise _bad(f"{name}: {op} takes a list, got {brief(value)}")
            if value is None and op in ("$eq", "$neq"):
                out.append(Condition(field_id, "empty" if op == "$eq" else "not_empty"))
            elif f is None:
                out.append(_scalar(field_id, op, value))
            else:
                out.append(_compare(f, name, op, value))
        elif op in _CONTAINS:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise _bad(f"{name}: {op} takes a text, got {brief(value)}")
            out.append(Condition(field_id, _CONTAINS[op], str(value)))
        elif op in ("$empty", "$nempty"):
            if not isinstance(value, bool):
                raise _bad(f"{name}: {op} takes true or false, got {brief(value)}")
            out.append(Condition(field_id, "empty" if (op == "$empty") == value else "not_empty"))
        else:
            raise _bad(f"{name}: unknown operator {brief(op)}", "model.unknown_operator")
    return out


def _scalar(field_id: str, op: str, value: Any) -> Filter:
    """A comparison of a text or number (a system field's too)."""
    if op == "$in":
        return Condition(field_id, "in", value)
    if op == "$nin":
        return And(tuple(Condition(field_id, "ne", v) for v in value))
    return Condition(field_id, _SCALAR_OPS[op], value)


# The comparisons (besides the contains-matches, $empty and $nempty, which every field takes) each kind of field
# takes: texts and numbers all; multi-value fields, countries and relations (AssociationFormFields) equality (has
# every value named) and $in (has one of them); date ranges equality to a [start, end] pair.
_COMPARISONS: dict[str, tuple[str, ...]] = {
    "text": (*_SCALAR_OPS, "$in", "$nin"),
    "number": (*_SCALAR_OPS, "$in", "$nin"),
    "array": ("$eq", "$neq", "$in"),
    "objects": ("$eq", "$in"),
    "association": ("$eq", "$in"),
    "range": ("$eq", "$neq"),
}


def _compare(f: Field, name: str, op: str, value: Any) -> Filter:
    """``op`` (a comparison, ``$in`` or ``$nin``) of a model's field. Options are named by their value or either
    label, countries by their codes (in any shape they are written or read in), relations by the related records'
    ids (or ``{"instanceId"}`` links), as the Yida search names them (``zida.dialects.search_values``)."""
    kind = "association" if f.component == "AssociationFormField" else f.kind
    allowed = _COMPARISONS.get(kind, ())
    if op not in allowed:
        takes = ", ".join((*allowed, *_CONTAINS, "$empty", "$nempty"))
        raise Unsupported(
            f"{name}: {op} is not supported on a {f.component} (it takes {takes})", reason="model.operator"
        )
    fid = f.field_id
    if op == "$in" and not value:
        return Or(())  # one of no values: nothing matches
    if f.options:
        value = [option_value(f, v) for v in value] if isinstance(value, list) else option_value(f, value)
    if kind == "objects":
        return country_condition(f, "in" if op == "$in" else "eq", value)
    if kind == "association":
        ids = _link_ids(name, op, value)
        if op == "$in" or len(ids) == 1:
            return Condition(fid, "has_any", ids)
        return And(tuple(Condition(fid, "has_any", [i]) for i in dict.fromkeys(ids)))
    if kind == "range":
        start, end = _range(name, op, value)
        if op == "$eq":
            return And((_end(f"{fid}[0]", "eq", start), _end(f"{fid}[1]", "eq", end)))
        return Or((_end(f"{fid}[0]", "ne", start), _end(f"{fid}[1]", "ne", end)))
    if kind == "array":
        if op == "$in":
            return Condition(fid, "has_any", value)
        if op == "$eq":
            return Condition(fid, "seq_eq" if isinstance(value, list) else "has_all", _listed(value))
        return Condition(fid, "ne", value)
    return _scalar(fid, op, value)


def _link_ids(name: str, op: str, value: Any) -> list[str]:
    """The record ids a relation's condition names: ``"FINST-…"``, ``{"instanceId": "FINST-…"}`` or a list of
    them."""
    items = value if isinstance(value, list) else [value]
    ids = [item.get("instanceId") if isinstance(item, dict) else item for item in items]
    if not ids or not all(isinstance(i, str) and i for i in ids):
        shapes = '"FINST-…", ["FINST-…"] or [{"instanceId": "FINST-…"}]'
        raise _bad(f"{name}: {op} takes record ids ({shapes}), got {brief(value)}")
    return [str(i) for i in ids]


def _range(name: str, op: str, value: Any) -> tuple[Any, Any]:
    """A date range's ``[start, end]`` (epoch milliseconds, null: an open end)."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in value)
    ):
        return value[0], value[1]
    raise _bad(f"{name}: {op} takes [start, end] in epoch milliseconds (null: an open end), got {brief(value)}")


def _end(element: str, op: str, value: Any) -> Condition:
    """One end of a date range equal (``eq``) or not (``ne``) to ``value`` (None: no end)."""
    if value is None:
        return Condition(element, "empty" if op == "eq" else "not_empty")
    return Condition(element, op, value)


# WeDa's contains-matches (``$search``: case-sensitive, ``_ci``: not) and their negations → the core's operators.
_CONTAINS = {"$search": "substring", "$search_ci": "like", "$nsearch": "not_substring", "$nsearch_ci": "not_like"}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def parse_where(form: Form, where: Any) -> Filter | None:
    """A ``where`` tree (field conditions joined by AND, ``$and``/``$or`` lists of trees) as the core's filter."""
    if where is None:
        return None
    if not isinstance(where, dict):
        raise _bad(f"where must be an object, got {brief(where)}")
    items: list[Filter] = []
    for key, value in where.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list):
                raise _bad(f"{key} takes a list of conditions, got {brief(value)}")
            parts = [p for p in (parse_where(form, item) for item in value if item not in ({}, None)) if p is not None]
            if parts:
                items.append(And(tuple(parts)) if key == "$and" else Or(tuple(parts)))
        else:
            items.extend(_conditions(form, key, value))
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items))


async def _filter(call: WedaCall, form: Form, body: dict[str, Any], *, required: bool = False) -> Filter | None:
    spec = body.get("filter")
    if spec is None:
        if required:
            raise InvalidArgument("filter is required", reason="argument.missing")
        return None
    if not isinstance(spec, dict):
        raise _bad(f"filter must be an object, got {brief(spec)}")
    where = parse_where(form, spec.get("where"))
    related = spec.get("relateWhere")
    if not related:
        return where
    if not isinstance(related, dict):
        raise _bad(f"relateWhere must be an object of {{relation: {{where}}}}, got {brief(related)}")
    parts = [where] if where is not None else []
    for name, sub in related.items():
        if not isinstance(sub, dict):
            raise _bad(f"relateWhere.{brief(name)} must be an object with a where, got {brief(sub)}")
        relation, target = await _relation(call, form, name)
        condition = parse_where(target, sub.get("where"))
        if condition is None:
            continue
        actor = await model_actor(call, target)
        ids = await _all_ids(call, target, actor, condition, f"relateWhere.{name}")
        parts.append(Condition(relation.field_id, "has_any", ids))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


async def _relation(call: WedaCall, form: Form, name: str) -> tuple[Field, Form]:
    """The relation field ``name`` (an AssociationFormField) and the data model it relates to."""
    f = form.field_by_alias(name)
    if f is None or f.component != "AssociationFormField":
        raise _bad(f"{brief(name)} is not a relation (an AssociationFormField) of the model", "model.unknown_field")
    linked = f.props.get("associationForm")
    form_uuid = linked.get("formUuid") if isinstance(linked, dict) else None
    target = await related_model_form(call.zida.db, call.principal.corp_pk, form_uuid) if form_uuid else None
    if target is None:
        raise Unsupported(
            f"relation {name}: its field names no related data model (props.associationForm.formUuid of a form"
            " with a modelName)",
            reason="model.related",
        )
    return f, target


async def _all_ids(call: WedaCall, form: Form, actor: AppActor, condition: Filter, what: str) -> list[str]:
    """Ids of every record the condition matches, at most ``MAX_RELATED`` (more: ``TooExpensive``)."""
    db = call.zida.db
    _, ids = await forms.search_record_ids(db, actor, form, _ids_query(condition, Page(1, MAX_RELATED)))
    if len(ids) == MAX_RELATED:
        _, more = await forms.search_record_ids(db, actor, form, _ids_query(condition, Page(MAX_RELATED + 1, 1)))
        if more:
            raise TooExpensive(f"{what} matches more than {MAX_RELATED} records: narrow it", reason="request.too_many")
    return ids


async def _rendered(
    call: WedaCall, form: Form, items: list[FormInstance], selection: Selection
) -> list[dict[str, Any]]:
    """Records as WeDa shows them; a relation named in ``select`` with an object lists the related records (those
    the caller may read) with the fields asked for, instead of their ids."""
    names, related = selection
    out = [render_record(form, inst, names) for inst in items]
    for name, wanted in related.items():
        relation, target = await _relation(call, form, name)
        ids = [
            str(link.get("instanceId"))
            for inst in items
            for link in inst.data.get(relation.field_id) or []
            if isinstance(link, dict) and link.get("instanceId")
        ]
        actor = await model_actor(call, target)
        found = {
            r.instance_id: r
            for r in await record_queries.get_form_instances(call.zida.db, actor, target, list(dict.fromkeys(ids)))
        }
        for inst, shown in zip(items, out, strict=True):
            links = inst.data.get(relation.field_id) or []
            shown[name] = [
                render_record(target, found[str(link.get("instanceId"))], wanted)
                for link in links
                if isinstance(link, dict) and str(link.get("instanceId")) in found
            ]
    return out


def order_of(form: Form, value: Any) -> tuple[Sort, ...]:
    """An ``orderBy`` list (at most three ``{field: asc|desc}``) as sorts; none: newest first."""
    if value is None:
        return (Sort("created_at", descending=True),)
    if not isinstance(value, list) or len(value) > MAX_ORDER_BY:
        raise _bad(f"orderBy must be a list of at most {MAX_ORDER_BY} {{field: asc|desc}} objects")
    out: list[Sort] = []
    for item in value:
        if not isinstance(item, dict) or len(item) != 1:
            raise _bad(f"orderBy items are {{field: asc|desc}}, got {brief(item)}")
        ((name, direction),) = item.items()
        if direction not in ("asc", "desc"):
            raise _bad(f"orderBy {brief(name)}: asc or desc, got {brief(direction)}")
        field_id, _ = _cond_field(form, name)
        out.append(Sort(field_id, descending=direction == "desc"))
    return tuple(out) or (Sort("created_at", descending=True),)


def _int(value: Any, name: str, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    whole_float = isinstance(value, float) and value.is_integer() and abs(value) <= 2**53  # 2.0 is 2; 1.5 is not
    if whole_float or (isinstance(value, str) and is_decimal(value)):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise _bad(f"{name} must be a whole number from 1 to {maximum}, got {brief(value)}")
    return value


def _flag(value: Any, name: str) -> bool:
    if value in (None, "", "false", False):
        return False
    if value in (True, "true"):
        return True
    raise _bad(f"{name} must be true or false, got {brief(value)}")


# ------------------------------------------------------------------------------------------------ reads


def _ids_query(condition: Filter | None, page: Page) -> RecordQuery:
    return RecordQuery(filter=condition, sort=(Sort("created_at", descending=True),), page=page, with_total=False)


async def _matches(call: WedaCall, *, many: bool) -> tuple[Form, AppActor, list[str], Filter | None]:
    """The model, the actor, the records ``filter`` names (the newest one, or (``many``) every one up to
    ``MAX_MATCHES``; more: ``TooExpensive``) and the filter (the change checks it again once they are locked)."""
    form = await _model(call)
    actor = await model_actor(call, form)
    condition = await _filter(call, form, call.body, required=True)
    db = call.zida.db
    _, ids = await forms.search_record_ids(db, actor, form, _ids_query(condition, Page(1, MAX_MATCHES if many else 1)))
    if many and len(ids) == MAX_MATCHES:
        _, more = await forms.search_record_ids(db, actor, form, _ids_query(condition, Page(MAX_MATCHES + 1, 1)))
        if more:
            raise TooExpensive(
                f"the filter matches more than {MAX_MATCHES} records: narrow it", reason="request.too_many"
            )
    return form, actor, ids, condition


async def _list(call: WedaCall, params: dict[str, Any]) -> dict[str, Any]:
    form = await _model(call)
    actor = await model_actor(call, form)
    size = _int(params.get("pageSize"), "pageSize", 10, MAX_PAGE_SIZE)
    number = _int(params.get("pageNumber"), "pageNumber", 1, MAX_PAGE_NO)
    query = RecordQuery(
        filter=await _filter(call, form, params),
        sort=order_of(form, params.get("orderBy")),
        page=Page(number, size),
        with_total=_flag(params.get("getCount"), "getCount"),
    )
    selection = _select(form, params.get("select"))
    result = await forms.search_records(call.zida.db, actor, form, query)
    out: dict[str, Any] = {"records": await _rendered(call, form, result.items, selection)}
    if query.with_total:
        out["total"] = result.total
    return out


@model_endpoint(Scope.RECORDS_READ)
async def list_records(call: WedaCall) -> dict[str, Any]:
    """POST …/list: a page of records (``total`` with ``getCount``)."""
    return await _list(call, call.body)


@model_endpoint(Scope.RECORDS_READ)
async def list_records_get(call: WedaCall) -> dict[str, Any]:
    """GET …/list?pageSize=&pageNumber=&getCount=: a page of all records, newest first."""
    params = {k: call.query(k) for k in ("pageSize", "pageNumber", "getCount")}
    return await _list(call, params)


@model_endpoint(Scope.RECORDS_READ)
async def get_record(call: WedaCall) -> dict[str, Any]:
    """POST …/get: the newest record the filter matches (``{"record": null}``: none)."""
    form = await _model(call)
    actor = await model_actor(call, form)
    condition = await _filter(call, form, call.body)
    selection = _select(form, call.body.get("select"))
    result = await forms.search_records(call.zida.db, actor, form, _ids_query(condition, Page(1, 1)))
    return {"record": (await _rendered(call, form, result.items, selection))[0] if result.items else None}


async def _readable(call: WedaCall, form: Form, actor: AppActor, record_id: str) -> FormInstance:
    inst, of = await record_queries.get_form_instance(call.zida.db, actor, record_id)
    if of.pk != form.pk:
        raise NotFound(f"record {record_id} does not exist in this model", reason="record.not_found")
    return inst


@model_endpoint(Scope.RECORDS_READ)
async def get_record_by_id(call: WedaCall) -> dict[str, Any]:
    """GET …/{id}/get."""
    form = await _model(call)
    actor = await model_actor(call, form)
    return {"record": render_record(form, await _readable(call, form, actor, str(call.path["record"])))}


# ------------------------------------------------------------------------------------------------ writes


@model_endpoint(Scope.RECORDS_WRITE)
async def create_record(call: WedaCall) -> dict[str, Any]:
    """POST …/create: ``{"data": {...}}`` → ``{"id"}``."""
    form = await _model(call)
    actor = await model_actor(call, form)
    inst = await forms.save_record(call.zida.db, actor, form.form_uuid, values_in(form, call.body.get("data")))
    return {"id": inst.instance_id}


@model_endpoint(Scope.RECORDS_WRITE)
async def create_records(call: WedaCall) -> dict[str, Any]:
    """POST …/createMany: ``{"data": [{...}, ...]}`` → ``{"idList"}`` (all or nothing)."""
    form = await _model(call)
    actor = await model_actor(call, form)
    items = call.body.get("data")
    if not isinstance(items, list) or not items:
        raise _bad("data must be a non-empty list of records")
    if len(items) > MAX_BATCH:
        raise TooExpensive(f"createMany takes at most {MAX_BATCH} records", reason="request.batch_too_large")
    values = [values_in(form, item, f"data[{i}]") for i, item in enumerate(items)]
    result = await forms.save_records(call.zida.db, actor, form.form_uuid, values)
    return {"idList": result.ids}


async def _update(call: WedaCall, *, many: bool) -> dict[str, Any]:
    form, actor, ids, condition = await _matches(call, many=many)
    values = values_in(form, call.body.get("data"))
    changed = (
        await forms.update_records(call.zida.db, actor, form, [(i, values) for i in ids], still_matching=condition)
        if ids
        else []
    )
    if not many:
        return {"count": len(changed)}
    return {"count": len(changed), "legalIdList": changed, "illegalIdList": []}


@model_endpoint(Scope.RECORDS_WRITE)
async def update_record(call: WedaCall) -> dict[str, Any]:
    """PUT …/update: the newest matching record → ``{"count"}``."""
    return await _update(call, many=False)


@model_endpoint(Scope.RECORDS_WRITE)
async def update_records(call: WedaCall) -> dict[str, Any]:
    """PUT …/updateMany: every matching record → ``{"count", "legalIdList", "illegalIdList"}``."""
    return await _update(call, many=True)


@model_endpoint(Scope.RECORDS_WRITE)
async def upsert_record(call: WedaCall) -> dict[str, Any]:
    """POST …/upsert: ``{filter, create, update}`` → ``{"count": 1, "id": ""}`` updated, ``{"count": 0, "id"}``
    created."""
    form = await _model(call)
    actor = await model_actor(call, form)
    condition = await _filter(call, form, call.body, required=True)
    create = values_in(form, call.body.get("create"), "create")
    update = values_in(form, call.body.get("update", call.body.get("create")), "update")
    record_id, created = await forms.upsert_record_split(call.zida.db, actor, form, condition, update, create)
    return {"count": 0, "id": record_id} if created else {"count": 1, "id": ""}


async def _delete(call: WedaCall, *, many: bool) -> dict[str, Any]:
    form, actor, ids, condition = await _matches(call, many=many)
    deleted = await forms.delete_records(call.zida.db, actor, form, ids, still_matching=condition) if ids else []
    if not many:
        return {"count": len(deleted)}
    return {"count": len(deleted), "legalIdList": deleted, "illegalIdList": [i for i in ids if i not in deleted]}


@model_endpoint(Scope.RECORDS_WRITE)
async def delete_record(call: WedaCall) -> dict[str, Any]:
    """POST …/delete: the newest matching record → ``{"count"}``."""
    return await _delete(call, many=False)


@model_endpoint(Scope.RECORDS_WRITE)
async def delete_records(call: WedaCall) -> dict[str, Any]:
    """POST …/deleteMany: every matching record."""
    return await _delete(call, many=True)


@model_endpoint(Scope.RECORDS_WRITE)
async def delete_record_by_id(call: WedaCall) -> dict[str, Any]:
    """DELETE …/{id}/delete → ``{"count": 1}`` (``0``: no such record of this model)."""
    form = await _model(call)
    actor = await model_actor(call, form)
    record_id = str(call.path["record"])
    try:
        await _readable(call, form, actor, record_id)
    except NotFound:
        return {"count": 0}
    await forms.delete_record(call.zida.db, actor, record_id)
    return {"count": 1}


def routes() -> list[Route]:
    """The data-model routes."""
    base = "/v1/model/{env}/{model}"
    return [
        Route(f"{base}/create", create_record, methods=["POST"]),
        Route(f"{base}/createMany", create_records, methods=["POST"]),
        Route(f"{base}/update", update_record, methods=["PUT"]),
        Route(f"{base}/updateMany", update_records, methods=["PUT"]),
        Route(f"{base}/upsert", upsert_record, methods=["POST"]),
        Route(f"{base}/delete", delete_record, methods=["POST"]),
        Route(f"{base}/deleteMany", delete_records, methods=["POST"]),
        Route(f"{base}/get", get_record, methods=["POST"]),
        Route(f"{base}/list", list_records, methods=["POST"]),
        Route(f"{base}/list", list_records_get, methods=["GET"]),
        Route(f"{base}/{{record}}/get", get_record_by_id, methods=["GET"]),
        Route(f"{base}/{{record}}/delete", delete_record_by_id, methods=["DELETE"]),
    ]
