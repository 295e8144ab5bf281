"""Query templates: named, parameterised record searches an environment defines in its bundle (WeDa's SQL
templates). A client names a template and gives typed parameter values; it never sends query text.

A template searches one data model (a form's ``modelName``) with a ``where`` tree in the data-model DSL whose
values may be placeholders: a string that is exactly ``{{key}}`` stands for the parameter ``key`` (a placeholder
inside a longer string is refused, so a value is always a whole value, never spliced text). Parameters have a type
(``STRING``, ``NUMBER``, ``BOOLEAN``, ``ARRAY``) and an optional default; one without a default is required.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from zida.core.audit import Outcome, changed_fields, created_fields, record_change
from zida.core.errors import InvalidArgument
from zida.core.records.values import NotANumber, brief, number_value
from zida.db import Connection

__all__ = [
    "MAX_LIMIT",
    "PARAMETER_TYPES",
    "QueryParameter",
    "QueryTemplate",
    "bind",
    "check_template",
    "find_query_template",
    "list_query_templates",
    "put_query_template",
]

PARAMETER_TYPES = ("STRING", "NUMBER", "BOOLEAN", "ARRAY")
MAX_LIMIT = 100  # records one run returns at most
MAX_PARAMETERS = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PLACEHOLDER = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


@dataclass(frozen=True, slots=True)
class QueryParameter:
    """One typed parameter; ``default`` absent (``required``) means the caller must give it."""

    key: str
    type: str
    default: Any = None
    required: bool = True


@dataclass(frozen=True, slots=True)
class QueryTemplate:
    """A named search of one data model."""

    name: str
    model_name: str
    where: Mapping[str, Any] = field(default_factory=dict)
    order_by: tuple[Mapping[str, str], ...] = ()
    limit: int = MAX_LIMIT
    parameters: tuple[QueryParameter, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The bundle form (``name``, ``model``, ``where``, ``orderBy``, ``limit``, ``parameters``)."""
        params = [
            {"key": p.key, "type": p.type, **({} if p.required else {"default": p.default})} for p in self.parameters
        ]
        out: dict[str, Any] = {"name": self.name, "model": self.model_name, "where": dict(self.where)}
        if self.order_by:
            out["orderBy"] = [dict(o) for o in self.order_by]
        return {**out, "limit": self.limit, "parameters": params}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> QueryTemplate:
        """Read the bundle form back."""
        params = tuple(
            QueryParameter(p["key"], p["type"], p.get("default"), "default" not in p) for p in raw.get("parameters", ())
        )
        return cls(
            str(raw["name"]),
            str(raw["model"]),
            dict(raw.get("where") or {}),
            tuple(dict(o) for o in raw.get("orderBy") or ()),
            int(raw.get("limit", MAX_LIMIT)),
            params,
        )


def _bad(message: str, param: str = "template", **at: Any) -> InvalidArgument:
    """A template refused; ``at``: the ``path`` of the value at fault inside the template (in its bundle keys) and
    the ``problem`` there."""
    return InvalidArgument(message, reason="template.invalid", param=param, **at)


def _placeholders(value: Any, found: dict[str, str], path: str) -> None:
    """Collect the parameters the placeholders in ``value`` stand for, each with the path of its first one."""
    if isinstance(value, str):
        match = _PLACEHOLDER.match(value)
        if match:
            found.setdefault(match.group(1), path)
        elif "{{" in value:
            problem = f"a placeholder must be the whole value ({{{{key}}}}), not part of {brief(value)}"
            raise _bad(f"{path}: {problem}", path=path, problem=problem)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _placeholders(v, found, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _placeholders(v, found, f"{path}[{i}]")


def check_template(template: QueryTemplate) -> None:
    """Validate a template on its own: its name, limit, parameters and placeholders (the dialect checks the
    where tree against the model)."""
    if not _NAME.match(template.name):
        raise _bad(f"template name {brief(template.name)}: 1-64 letters, digits, '_' or '-'", "name")
    if not 1 <= template.limit <= MAX_LIMIT:
        raise _bad(f"limit must be between 1 and {MAX_LIMIT}, got {template.limit}", "limit")
    if len(template.parameters) > MAX_PARAMETERS:
        raise _bad(f"at most {MAX_PARAMETERS} parameters", "parameters")
    keys: set[str] = set()
    for n, p in enumerate(template.parameters):
        at = f"parameters[{n}]"
        if not _KEY.match(p.key) or p.key in keys:
            problem = f"parameter key {brief(p.key)} must be a unique identifier"
            raise _bad(problem, "parameters", path=f"{at}.key", problem=problem)
        if p.type not in PARAMETER_TYPES:
            problem = f"parameter {p.key}: type must be one of {', '.join(PARAMETER_TYPES)}"
            raise _bad(problem, "parameters", path=f"{at}.type", problem=problem)
        if not p.required:
            try:
                coerce(p, p.default)
            except InvalidArgument as exc:
                raise InvalidArgument(
                    exc.message, reason=exc.reason, path=f"{at}.default", problem=exc.message
                ) from None
        keys.add(p.key)
    used: dict[str, str] = {}
    _placeholders(template.where, used, "where")
    undeclared = [key for key in used if key not in keys]  # in the order of the where tree
    if undeclared:
        problem = f"where uses undeclared parameters: {', '.join(sorted(undeclared))}"
        raise _bad(problem, "where", path=used[undeclared[0]], problem=problem)
    unused = [n for n, p in enumerate(template.parameters) if p.key not in used]
    if unused:
        names = sorted(template.parameters[n].key for n in unused)
        problem = f"parameters not used in where: {', '.join(names)}"
        raise _bad(problem, "parameters", path=f"parameters[{unused[0]}]", problem=problem)


def coerce(parameter: QueryParameter, value: Any) -> Any:
    """A given value as the parameter's type (numbers, booleans and arrays may come as their JSON text, as
    WeDa's SDK sends them)."""
    what = f"parameter {parameter.key} ({parameter.type})"
    if parameter.type == "STRING":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif parameter.type == "NUMBER":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and len(value) <= 40:
            with contextlib.suppress(NotANumber):
                return number_value(value)  # as a stored value reads it: the search compares with what was stored
    elif parameter.type == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
    elif parameter.type == "ARRAY":
        if isinstance(value, str):
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(value)
        if isinstance(value, list) and len(value) <= 1000:
            return value
    raise InvalidArgument(f"{what}: {brief(value)} is not a value of that type", reason="argument.invalid")


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        match = _PLACEHOLDER.match(value)
        return values[match.group(1)] if match else value
    if isinstance(value, Mapping):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def bind(template: QueryTemplate, given: Sequence[Any]) -> dict[str, Any]:
    """The template's where tree with the given parameters (``[{key, type?, value}]``) in place of its
    placeholders; an unknown, repeated, mistyped or missing parameter is refused."""
    if not isinstance(given, list):
        raise InvalidArgument(f"parameter must be a list of {{key, type, value}}, got {brief(given)}")
    declared = {p.key: p for p in template.parameters}
    values: dict[str, Any] = {}
    for i, item in enumerate(given):
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
            raise InvalidArgument(f"parameter[{i}] must be {{key, type, value}}, got {brief(item)}")
        key = item["key"]
        p = declared.get(key)
        if p is None:
            raise InvalidArgument(f"template {template.name} has no parameter {brief(key)}", reason="argument.invalid")
        if key in values:
            raise InvalidArgument(f"parameter {key} is given twice", reason="argument.invalid")
        kind = item.get("type")
        if kind is not None and kind != p.type and not (p.type == "STRING" and kind == "NUMBER"):
            raise InvalidArgument(f"parameter {key} is a {p.type}, not a {brief(kind)}", reason="argument.invalid")
        values[key] = coerce(p, item.get("value"))
    for p in template.parameters:
        if p.key not in values:
            if p.required:
                raise InvalidArgument(f"parameter {p.key} is required", reason="argument.missing")
            values[p.key] = coerce(p, p.default)
    return dict(_fill(template.where, values))


async def put_query_template(
    tx: Connection, corp_pk: int, template: QueryTemplate, *, actor: str | None, now: int
) -> Outcome:
    """Inside the caller's transaction: create or replace the corp's template of that name."""
    check_template(template)
    definition = template.to_dict()
    row = await tx.fetchrow(
        f"SELECT id, definition FROM query_template WHERE corp_pk = :c AND name = :n{tx.sql.for_update}",
        {"c": corp_pk, "n": template.name},
    )
    text = orjson.dumps(definition).decode()
    if row is None:
        await tx.execute(
            "INSERT INTO query_template (corp_pk, name, model_name, definition, created_at, updated_at)"
            f" VALUES (:c, :n, :m, {tx.sql.json_param('d')}, :now, :now)",
            {"c": corp_pk, "n": template.name, "m": template.model_name, "d": text, "now": now},
        )
        changes = created_fields({"model": template.model_name})
        await record_change(
            tx,
            corp_pk=corp_pk,
            kind="query_template",
            object_id=template.name,
            action="created",
            changes=changes,
            actor=actor,
            at=now,
        )
        return Outcome.CREATED
    stored = row["definition"]
    current = orjson.loads(stored)
    changes = changed_fields({"definition": current}, {"definition": definition})
    if not changes:
        return Outcome.UNCHANGED
    await tx.execute(
        f"UPDATE query_template SET model_name = :m, definition = {tx.sql.json_param('d')}, updated_at = :now"
        " WHERE id = :id",
        {"m": template.model_name, "d": text, "now": now, "id": row["id"]},
    )
    await record_change(
        tx,
        corp_pk=corp_pk,
        kind="query_template",
        object_id=template.name,
        action="updated",
        changes={"model": template.model_name},
        actor=actor,
        at=now,
    )
    return Outcome.UPDATED


async def find_query_template(conn: Connection, corp_pk: int, name: str) -> QueryTemplate | None:
    """The corp's template of that name."""
    stored = await conn.fetchval(
        "SELECT definition FROM query_template WHERE corp_pk = :c AND name = :n", {"c": corp_pk, "n": name}
    )
    if stored is None:
        return None
    return QueryTemplate.from_dict(orjson.loads(stored))


async def list_query_templates(conn: Connection, corp_pk: int) -> list[QueryTemplate]:
    """The corp's templates by name."""
    rows = await conn.fetch("SELECT definition FROM query_template WHERE corp_pk = :c ORDER BY name", {"c": corp_pk})
    return [QueryTemplate.from_dict(orjson.loads(r["definition"])) for r in rows]
