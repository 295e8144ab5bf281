"""Actions on apps and forms: create and update an app (its secret, administrators), create a form or give it a new
version (its fields, its process).

As in ``zida.core.org.actions``: ``upsert_*`` work inside the caller's transaction (``zida load``), the others open
their own and afterwards empty the app and form caches of every worker (``zida.cache.invalidate``); each change
writes its rows, its audit row and its domain event (``app.*``, ``form.*``; ``zida.core.audit``) together, and input
that changes nothing writes nothing.

Rules (each tested):

* **An app's secret** is kept encrypted with the server key (so it can be shown to the app's admins) and as a keyed
  digest (``zida.core.access.members.app_secret_digest``) to check it; it never appears in an audit row or an event
  (a change shows as ``{"changed": true}``). A new app needs one (the admin API generates it when none is given).
* **Administrators** are users of the corp (deactivated ones may stay: they cannot act while deactivated).
* **A form's schema** is validated as a whole (field ids, aliases, components, sub-tables, options; a process form
  needs a process block, whose approver and CC nodes may name only users and roles the corp has). Changing the
  fields or the process makes a new version (records and running approvals keep the version they were made with);
  changing only the title or creator does not. A form that has records keeps its type. A process code names one
  form of an app.
* **Search indexes** follow the schema: SQLite's element rows inside the transaction, the B-tree and GIN indexes
  after the commit (``zida.core.records.filters.indexes``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import orjson

from zida.cache import invalidate
from zida.clock import now_ms
from zida.core.access.members import app_secret_digest
from zida.core.apps.models import COMPONENTS, OPTION_COMPONENTS, Field
from zida.core.apps.queries import APPS_CACHE_SCOPE, AppDetails, find_app, parse_search_indexes
from zida.core.audit import SECRET_CHANGED, Outcome, changed_fields, created_fields, record_change
from zida.core.errors import Conflict, InvalidArgument, NotFound
from zida.core.org.models import CorpRef
from zida.core.org.repository import find_roles, user_pks
from zida.core.records.filters.indexes import ensure_field_indexes, sync_element_table
from zida.crypto import SecretBox
from zida.db import Connection, Database, Row
from zida.ids import new_app_type

__all__ = [
    "APP_STATUSES",
    "FORM_TYPES",
    "AppSpec",
    "CreatedApp",
    "FormSpec",
    "FormWrite",
    "check_form",
    "create_app",
    "named_people",
    "new_app_secret",
    "put_form",
    "update_app",
    "upsert_app",
    "upsert_form",
]

APP_STATUSES = ("ONLINE", "OFFLINE")
FORM_TYPES = ("receipt", "process")
_APP_TYPE = re.compile(r"^APP_[A-Za-z0-9_]{1,64}$")
_FORM_UUID = re.compile(r"^FORM-[A-Za-z0-9-]{1,64}$")
_FIELD_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MODEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# A data model record's system fields (WeDa's names): no field alias may take one.
_MODEL_SYSTEM_FIELDS = frozenset({"_id", "_openid", "createdAt", "updatedAt", "owner", "createBy", "updateBy"})
_MIN_SECRET = 8


@dataclass(frozen=True, slots=True)
class AppSpec:
    """An app as an action writes it. ``app_type`` None on create: a generated one; ``secret`` None: keep the current
    one (on create: a generated one); ``creator`` None: keep (a new app: its first admin)."""

    app_type: str | None
    name: str
    name_en: str | None = None
    description: str | None = None
    icon: str | None = None
    status: str = "ONLINE"
    secret: str | None = None
    admins: tuple[str, ...] = ()
    creator: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedApp:
    """A new app and its secret (returned this once)."""

    details: AppDetails
    secret: str


@dataclass(frozen=True, slots=True)
class FormSpec:
    """A form as an action writes it (``creator`` None: keep; a new form: the app's creator)."""

    form_uuid: str
    title: str
    title_en: str | None = None
    form_type: str = "receipt"
    fields: tuple[Field, ...] = ()
    process: Mapping[str, Any] | None = None
    creator: str | None = None
    model_name: str | None = None  # the WeDa data model this form is (every top-level field then needs an alias)
    # Fields searched together, each combination with a composite index (bundle ``searchIndexes``).
    search_indexes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class FormWrite:
    """What writing a form did: its outcome, row, current version (``new_version``: made by this write) and fields,
    and the element tables it filled."""

    outcome: Outcome
    form_pk: int
    version: int
    fields: tuple[Field, ...]
    new_version: bool = False
    indexes: tuple[str, ...] = ()
    search_indexes: tuple[tuple[str, ...], ...] = ()  # the declared combinations (composite indexes to build)


# ------------------------------------------------------------------------------------------------ checks


def _invalid(message: str, param: str, reason: str = "argument.invalid", **details: Any) -> InvalidArgument:
    return InvalidArgument(message, reason=reason, param=param, **details)


def _schema_error(path: str, problem: str) -> InvalidArgument:
    """A problem of a form's schema at ``path`` inside it (``fields[2].component``)."""
    return InvalidArgument(
        f"{path}: {problem}", reason="form.invalid_schema", param="fields", path=path, problem=problem
    )


def named_people(process: Mapping[str, Any], path: str = "process") -> Iterator[tuple[str, str, Any]]:
    """``(path, "user" | "role", id)`` for every user and role a stored or validated process block names."""

    def walk(nodes: Any, at: str) -> Iterator[tuple[str, str, Any]]:
        for n, raw in enumerate(nodes or []):
            if not isinstance(raw, Mapping) or len(raw) != 1:
                continue
            ((kind, body),) = raw.items()
            here = f"{at}[{n}].{kind}"
            if not isinstance(body, Mapping):
                continue
            if kind in ("approver", "cc"):
                who = body.get("who") or {}
                for j, user in enumerate(who.get("users") or []):
                    yield f"{here}.who.users[{j}]", "user", user
                if "role" in who:
                    yield f"{here}.who.role", "role", who["role"]
            elif kind == "route":
                for j, branch in enumerate(body.get("branches") or []):
                    yield from walk(
                        branch.get("nodes") if isinstance(branch, Mapping) else None, f"{here}.branches[{j}].nodes"
                    )
            elif kind == "parallel":
                for j, branch_nodes in enumerate(body.get("branches") or []):
                    yield from walk(branch_nodes, f"{here}.branches[{j}]")

    yield from walk(process.get("nodes"), f"{path}.nodes")


MAX_SEARCH_INDEXES = 8  # composite indexes of one form: each one costs every write of its records
MAX_SEARCH_INDEX_FIELDS = 4


def _check_search_indexes(spec: FormSpec) -> None:
    """Each declared combination: 2–4 distinct top-level text or number fields of the form (at most 8 of them)."""
    kinds = {f.field_id: f.kind for f in spec.fields}
    if len(spec.search_indexes) > MAX_SEARCH_INDEXES:
        raise _schema_error("searchIndexes", f"at most {MAX_SEARCH_INDEXES} combinations")
    for n, combo in enumerate(spec.search_indexes):
        at = f"searchIndexes[{n}]"
        if not 2 <= len(combo) <= MAX_SEARCH_INDEX_FIELDS or len(set(combo)) != len(combo):
            raise _schema_error(at, f"a combination is 2 to {MAX_SEARCH_INDEX_FIELDS} different fields")
        for j, field_id in enumerate(combo):
            if kinds.get(field_id) not in ("text", "number"):
                raise _schema_error(
                    f"{at}[{j}]",
                    f"{field_id!r} is not a top-level field with one text or number value (text, number, date…)",
                )


def _check_fields(fields: Sequence[Field], base: str, in_table: bool, seen: set[str], aliases: set[str]) -> None:
    for n, f in enumerate(fields):
        at = f"{base}[{n}]"
        if not _FIELD_ID.match(f.field_id):
            raise _schema_error(
                f"{at}.fieldId", f"{f.field_id!r} is not a field id (a letter, then letters, digits, _)"
            )
        if f.field_id in seen:
            raise _schema_error(f"{at}.fieldId", f"duplicate fieldId {f.field_id!r}")
        seen.add(f.field_id)
        if f.alias:
            if not _ALIAS.match(f.alias):
                raise _schema_error(f"{at}.alias", f"{f.alias!r} is not an alias (letters, digits, _)")
            if f.alias in aliases:
                raise _schema_error(f"{at}.alias", f"duplicate alias {f.alias!r}")
            aliases.add(f.alias)
        if not f.label_zh.strip():
            raise _schema_error(f"{at}.label", "a field needs a label")
        if f.component not in COMPONENTS:
            raise _schema_error(f"{at}.component", f"unknown component {f.component!r}")
        if f.component == "TableField":
            if in_table:
                raise _schema_error(f"{at}.component", "a TableField cannot be nested in a TableField")
            if not f.children:
                raise _schema_error(f"{at}.fields", "a TableField needs at least one child field")
            _check_fields(f.children, f"{at}.fields", True, seen, aliases)
        elif f.children:
            raise _schema_error(f"{at}.fields", "only a TableField has child fields")
        if f.component == "SerialNumberField" and not in_table:
            from zida.core.records.serials import RuleError, rule_of  # records build on apps, not the reverse

            try:
                rule_of(f, fields)
            except RuleError as exc:  # the part at fault and its key, when the rule's check knows them
                part = "" if exc.part is None else f"[{exc.part}]" + ("" if exc.key is None else f".{exc.key}")
                raise _schema_error(f"{at}.props.serialNumberRule{part}", str(exc)) from None
        if f.options and f.component not in OPTION_COMPONENTS:
            raise _schema_error(f"{at}.options", f"{f.component} has no options")
        values: set[str] = set()
        for k, option in enumerate(f.options):
            if option.value in values:
                raise _schema_error(f"{at}.options[{k}]", f"duplicate option {option.value!r}")
            values.add(option.value)


def check_form(spec: FormSpec) -> None:
    """Validate a form on its own (no database): its id, title, type, schema and process block. Problems of the
    schema or process raise ``InvalidArgument`` with ``path`` (inside the form, in the bundle's keys) and
    ``problem`` in its details."""
    if not isinstance(spec.form_uuid, str) or not _FORM_UUID.match(spec.form_uuid):
        raise _invalid(f"{spec.form_uuid!r} is not a form id like FORM-XXXXXXXX", "form")
    if not isinstance(spec.title, str) or not spec.title.strip():
        raise _invalid("{param} must be a non-empty text", "title")
    if spec.form_type not in FORM_TYPES:
        raise _invalid(f"{{param}} must be one of {', '.join(FORM_TYPES)}, not {spec.form_type!r}", "form_type")
    if spec.form_type == "process" and spec.process is None:
        raise _invalid("a process form needs a process block", "process", "form.invalid_schema", path="process")
    if spec.form_type == "receipt" and spec.process is not None:
        raise _invalid(
            "only process forms (type: process) have a process block", "process", "form.invalid_schema", path="process"
        )
    _check_fields(spec.fields, "fields", False, set(), set())
    _check_search_indexes(spec)
    if spec.model_name is not None:
        _check_model_name(spec)
    if spec.process is not None:
        from zida.core.workflow.definition import parse_process  # the workflow builds on apps, not the reverse

        try:
            parse_process(spec.process, path="process", fields=spec.fields)
        except InvalidArgument as exc:
            path = str(exc.details.get("path") or "process")
            problem = exc.message[len(path) + 2 :] if exc.message.startswith(f"{path}: ") else exc.message
            raise InvalidArgument(
                exc.message, reason="form.invalid_process", param="process", path=path, problem=problem
            ) from None


def _check_model_name(spec: FormSpec) -> None:
    if not isinstance(spec.model_name, str) or not _MODEL_NAME.fullmatch(spec.model_name):
        raise _invalid(
            f"{{param}} {spec.model_name!r} must be a letter or _ followed by up to 63 letters, digits or _",
            "model_name",
        )
    for i, f in enumerate(spec.fields):
        if not f.alias:
            raise _invalid(
                f"fields[{i}]: {f.field_id} needs an alias: a data model's field names are the fields' aliases",
                "fields",
                "form.invalid_schema",
                path=f"fields[{i}].alias",
            )
        if f.alias in _MODEL_SYSTEM_FIELDS:
            raise _invalid(
                f"fields[{i}]: the alias {f.alias} is a data model's system field",
                "fields",
                "form.invalid_schema",
                path=f"fields[{i}].alias",
            )


async def _model_name_free(tx: Connection, corp: CorpRef, model_name: str, form_uuid: str) -> None:
    other = await tx.fetchval(
        "SELECT f.form_uuid FROM form f JOIN app a ON a.id = f.app_pk"
        " WHERE a.corp_pk = :c AND f.model_name = :m AND f.form_uuid <> :u LIMIT 1",
        {"c": corp.pk, "m": model_name, "u": form_uuid},
    )
    if other is not None:
        raise Conflict(
            f"the data model name {model_name} is already form {other}'s", reason="form.model_taken", param="model_name"
        )


async def _process_key_free(tx: Connection, corp: CorpRef, process_key: str, form_uuid: str) -> None:
    key = tx.sql.json_text("v.process", "processKey")
    other = await tx.fetchval(
        "SELECT f.form_uuid FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        f" WHERE a.corp_pk = :c AND f.form_uuid <> :u AND v.process IS NOT NULL AND {key} = :k LIMIT 1",
        {"c": corp.pk, "u": form_uuid, "k": process_key},
    )
    if other is not None:
        raise Conflict(
            f"process key {process_key} is already the process of {other}",
            reason="form.process_key_taken",
            param="process",
        )


async def _check_people(tx: Connection, corp: CorpRef, process: Mapping[str, Any]) -> None:
    named = list(named_people(process))
    users = await user_pks(tx, corp.pk, [str(v) for _, kind, v in named if kind == "user"])
    roles = await find_roles(tx, corp.pk, [int(v) for _, kind, v in named if kind == "role"])
    for path, kind, value in named:
        if kind == "user" and value not in users:
            raise InvalidArgument(
                f"{path}: user {value} does not exist in this corp",
                reason="form.unknown_user",
                param="process",
                path=path,
                problem=f"unknown user {value!r}",
            )
        if kind == "role" and int(value) not in roles:
            raise InvalidArgument(
                f"{path}: role {value} does not exist in this corp",
                reason="form.unknown_role",
                param="process",
                path=path,
                problem=f"unknown role {value!r}",
            )


def _check_app(spec: AppSpec) -> str:
    if not isinstance(spec.app_type, str) or not _APP_TYPE.match(spec.app_type):
        raise _invalid(f"{spec.app_type!r} is not an app code like APP_XXXXXXXX", "app")
    if not isinstance(spec.name, str) or not spec.name.strip():
        raise _invalid("{param} must be a non-empty text", "name")
    if spec.status not in APP_STATUSES:
        raise _invalid(f"{{param}} must be one of {', '.join(APP_STATUSES)}, not {spec.status!r}", "status")
    if spec.secret is not None and (not isinstance(spec.secret, str) or len(spec.secret) < _MIN_SECRET):
        raise _invalid(f"{{param}} must be a text of at least {_MIN_SECRET} characters", "app_secret")
    seen: set[str] = set()
    for user in spec.admins:
        if not isinstance(user, str) or not user:
            raise _invalid("{param} must be a list of userIds", "admins")
        if user in seen:
            raise _invalid(f"{{param}} names {user!r} twice", "admins")
        seen.add(user)
    return spec.app_type


# -------------------------------------------------------------------------------------------------- apps


async def _stored_app(tx: Connection, app_type: str) -> Row | None:
    return await tx.fetchrow(
        "SELECT id, corp_pk, name, name_en, description, icon, status, secret_digest, secret_enc, creator_user_id"
        f" FROM app WHERE app_type = :t{tx.sql.for_update}",
        {"t": app_type},
    )


async def _stored_admins(tx: Connection, app_pk: int) -> list[str]:
    rows = await tx.fetch(
        "SELECT u.user_id FROM app_admin aa JOIN org_user u ON u.id = aa.user_pk WHERE aa.app_pk = :a"
        " ORDER BY u.user_id",
        {"a": app_pk},
    )
    return [r["user_id"] for r in rows]


def _trimmed_app(spec: AppSpec) -> AppSpec:
    """``spec`` with its texts stored without surrounding blanks (what a bundle does to them), whichever way the change
    came: a dump then loads back as it was."""
    texts = ("name", "name_en", "description", "icon")
    changes = {n: getattr(spec, n).strip() for n in texts if isinstance(getattr(spec, n), str)}
    return replace(spec, **changes) if changes else spec


def _app_values(spec: AppSpec, creator: str | None) -> dict[str, Any]:
    return {
        "name": spec.name,
        "name_en": spec.name_en,
        "description": spec.description,
        "icon": spec.icon,
        "status": spec.status,
        "creator": creator,
        "admins": sorted(spec.admins),
    }


async def _write_app(
    tx: Connection,
    box: SecretBox,
    corp: CorpRef,
    spec: AppSpec,
    row: Row | None,
    *,
    actor: str | None,
    now: int,
) -> tuple[Outcome, int]:
    spec = _trimmed_app(spec)
    app_type = _check_app(spec)
    if row is not None and row["corp_pk"] != corp.pk:
        raise Conflict(f"app {app_type} belongs to another corp", reason="app.taken", param="app")
    admins = await user_pks(tx, corp.pk, spec.admins)
    for user in spec.admins:
        if user not in admins:
            raise InvalidArgument(
                f"{{param}}: user {user} does not exist in this corp", reason="user.unknown", param="admins"
            )
    creator = spec.creator or (row["creator_user_id"] if row is not None else (spec.admins[0] if spec.admins else None))
    new = _app_values(spec, creator)
    columns: dict[str, Any] = {
        "name": spec.name,
        "name_en": spec.name_en,
        "description": spec.description,
        "icon": spec.icon,
        "status": spec.status,
        "creator_user_id": creator,
    }
    secret_changed = False
    if spec.secret is not None:
        digest = app_secret_digest(box, spec.secret)
        if row is None or row["secret_digest"] != digest:
            columns.update(secret_digest=digest, secret_enc=box.encrypt(spec.secret))
            secret_changed = True
    elif row is None:
        raise _invalid("a new app needs a secret ({param})", "app_secret", "argument.missing")
    if row is None:
        pk = await tx.fetchval(
            "INSERT INTO app (corp_pk, app_type, name, name_en, description, icon, status, secret_digest, secret_enc,"
            " creator_user_id, created_at, updated_at) VALUES (:c, :t, :name, :name_en, :description, :icon, :status,"
            " :secret_digest, :secret_enc, :creator_user_id, :now, :now)"
            " ON CONFLICT (app_type) DO NOTHING RETURNING id",
            {"c": corp.pk, "t": app_type, **columns, "now": now},
        )
        if pk is None:
            raise Conflict(f"app {app_type} already exists", reason="app.exists", param="app")
        app_pk = int(pk)
        await _link_admins(tx, app_pk, [admins[u] for u in spec.admins])
        changes: dict[str, Any] = created_fields(new)
        changes["secret"] = SECRET_CHANGED
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="app",
            object_id=app_type,
            action="created",
            changes=changes,
            actor=actor,
            at=now,
            app=app_type,
        )
        return Outcome.CREATED, app_pk
    app_pk = int(row["id"])
    current = {
        "name": row["name"],
        "name_en": row["name_en"],
        "description": row["description"],
        "icon": row["icon"],
        "status": row["status"],
        "creator": row["creator_user_id"],
        "admins": await _stored_admins(tx, app_pk),
    }
    changes = changed_fields(current, new)
    if secret_changed:
        changes["secret"] = SECRET_CHANGED
    if not changes:
        return Outcome.UNCHANGED, app_pk
    await tx.execute(
        f"UPDATE app SET {', '.join(f'{c} = :{c}' for c in columns)}, updated_at = :now WHERE id = :pk",
        {**columns, "now": now, "pk": app_pk},
    )
    if "admins" in changes:
        await tx.execute("DELETE FROM app_admin WHERE app_pk = :a", {"a": app_pk})
        await _link_admins(tx, app_pk, [admins[u] for u in spec.admins])
    await record_change(
        tx,
        corp_pk=corp.pk,
        kind="app",
        object_id=app_type,
        action="updated",
        changes=changes,
        actor=actor,
        at=now,
        app=app_type,
    )
    return Outcome.UPDATED, app_pk


async def _link_admins(tx: Connection, app_pk: int, pks: Sequence[int]) -> None:
    if pks:
        await tx.executemany(
            "INSERT INTO app_admin (app_pk, user_pk) VALUES (:a, :u)", [{"a": app_pk, "u": u} for u in pks]
        )


async def upsert_app(
    tx: Connection, box: SecretBox, corp: CorpRef, spec: AppSpec, *, actor: str | None, now: int
) -> tuple[Outcome, int]:
    """Inside the caller's transaction: create or update an app and its administrators; (outcome, app row id)."""
    app_type = _check_app(spec)
    return await _write_app(tx, box, corp, spec, await _stored_app(tx, app_type), actor=actor, now=now)


async def _current_app(db: Database, corp: CorpRef, app_type: str) -> AppDetails:
    found = await find_app(db, corp.pk, app_type)
    if found is None:  # cannot happen: the action just wrote it
        raise NotFound(f"application {app_type} does not exist", reason="app.not_found", param="app")
    return found


def new_app_secret() -> str:
    """A generated app secret (what a Yida call sends as its systemToken)."""
    return secrets.token_urlsafe(24)


async def create_app(db: Database, box: SecretBox, corp: CorpRef, spec: AppSpec, *, actor: str | None) -> CreatedApp:
    """Create an app (a generated code and secret unless given); an app code already used is a ``Conflict``."""
    spec = replace(spec, app_type=spec.app_type or new_app_type(), secret=spec.secret or new_app_secret())
    assert spec.secret is not None and spec.app_type is not None
    _check_app(spec)
    async with db.transaction() as tx:
        row = await _stored_app(tx, spec.app_type)
        if row is not None:
            raise Conflict(f"app {spec.app_type} already exists", reason="app.exists", param="app")
        await _write_app(tx, box, corp, spec, None, actor=actor, now=now_ms())
    invalidate(APPS_CACHE_SCOPE)
    return CreatedApp(await _current_app(db, corp, spec.app_type), spec.secret)


async def update_app(
    db: Database, box: SecretBox, corp: CorpRef, app_type: str, changes: Mapping[str, Any], *, actor: str | None
) -> AppDetails:
    """Change some fields of an app (``AppSpec`` names; ``secret`` replaces its secret, ``admins`` its admins)."""
    async with db.transaction() as tx:
        row = await _stored_app(tx, app_type)
        if row is None or row["corp_pk"] != corp.pk:
            raise NotFound(f"application {app_type} does not exist", reason="app.not_found", param="app")
        current = AppSpec(
            app_type=app_type,
            name=row["name"],
            name_en=row["name_en"],
            description=row["description"],
            icon=row["icon"],
            status=row["status"],
            admins=tuple(await _stored_admins(tx, int(row["id"]))),
            creator=row["creator_user_id"],
        )
        allowed = {f.name for f in fields(AppSpec)} - {"app_type"}
        for name in changes:
            if name not in allowed:
                raise InvalidArgument(f"{name} cannot be changed", reason="argument.invalid", param=name)
        outcome, _ = await _write_app(tx, box, corp, replace(current, **changes), row, actor=actor, now=now_ms())
    if outcome is not Outcome.UNCHANGED:
        invalidate(APPS_CACHE_SCOPE)
    return await _current_app(db, corp, app_type)


# ------------------------------------------------------------------------------------------------- forms


def _form_values(spec: FormSpec, creator: str | None, version: int) -> dict[str, Any]:
    return {
        "title": spec.title,
        "title_en": spec.title_en,
        "form_type": spec.form_type,
        "creator": creator,
        "version": version,
        "fields": [f.to_dict() for f in spec.fields],
        "process": dict(spec.process) if spec.process is not None else None,
        "model_name": spec.model_name,
        "search_indexes": [list(c) for c in spec.search_indexes],
    }


async def _other_process_form(tx: Connection, app_pk: int, form_uuid: str, process_code: str) -> str | None:
    code = tx.sql.json_text("v.process", "processCode")
    return await tx.fetchval(  # type: ignore[no-any-return]
        "SELECT f.form_uuid FROM form f JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        f" WHERE f.app_pk = :a AND f.form_uuid <> :u AND v.process IS NOT NULL AND {code} = :code LIMIT 1",
        {"a": app_pk, "u": form_uuid, "code": process_code},
    )


async def upsert_form(
    tx: Connection,
    corp: CorpRef,
    app_type: str,
    spec: FormSpec,
    *,
    actor: str | None,
    now: int,
    references_checked: bool = False,
) -> FormWrite:
    """Inside the caller's transaction: create a form of an app or give it a new version (or just a new title).

    Call ``ensure_field_indexes`` for the result once the transaction committed (``put_form`` does).
    """
    check_form(spec)
    app = await tx.fetchrow("SELECT id, corp_pk, creator_user_id FROM app WHERE app_type = :t", {"t": app_type})
    if app is None or app["corp_pk"] != corp.pk:
        raise NotFound(f"application {app_type} does not exist", reason="app.not_found", param="app")
    app_pk = int(app["id"])
    row = await tx.fetchrow(
        "SELECT f.id, f.app_pk, f.title_zh, f.title_en, f.form_type, f.current_version, f.creator_user_id, v.fields,"
        " v.process, f.model_name, f.search_indexes FROM form f"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        f" WHERE f.form_uuid = :u{tx.sql.for_update}",
        {"u": spec.form_uuid},
    )
    if row is not None and row["app_pk"] != app_pk:
        raise Conflict(f"form {spec.form_uuid} belongs to another app", reason="form.taken", param="form")
    if not references_checked and spec.process is not None:
        await _check_people(tx, corp, spec.process)
        other = await _other_process_form(tx, app_pk, spec.form_uuid, str(spec.process["processCode"]))
        if other is not None:
            raise Conflict(
                f"process code {spec.process['processCode']} is already the process of {other} in this app",
                reason="form.process_code_taken",
                param="process",
            )
    if spec.model_name is not None:
        await _model_name_free(tx, corp, spec.model_name, spec.form_uuid)
    if spec.process is not None and spec.process.get("processKey"):
        await _process_key_free(tx, corp, str(spec.process["processKey"]), spec.form_uuid)
    fields_json = [f.to_dict() for f in spec.fields]
    process = dict(spec.process) if spec.process is not None else None
    if row is None:
        creator = spec.creator or app["creator_user_id"]
        version = 1
        pk = await tx.fetchval(
            "INSERT INTO form (app_pk, form_uuid, title_zh, title_en, form_type, current_version, creator_user_id,"
            f" model_name, search_indexes, created_at, updated_at) VALUES (:a, :u, :title, :title_en, :type, 1,"
            f" :creator, :model, {tx.sql.json_param('search')}, :now, :now) ON CONFLICT (form_uuid) DO NOTHING"
            " RETURNING id",
            {
                "model": spec.model_name,
                "search": _search_indexes_json(spec),
                "a": app_pk,
                "u": spec.form_uuid,
                "title": spec.title,
                "title_en": spec.title_en,
                "type": spec.form_type,
                "creator": creator,
                "now": now,
            },
        )
        if pk is None:
            raise Conflict(f"form {spec.form_uuid} already exists", reason="form.exists", param="form")
        form_pk = int(pk)
        await _insert_version(tx, form_pk, version, fields_json, process, now)
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="form",
            object_id=spec.form_uuid,
            action="created",
            changes=created_fields(_form_values(spec, creator, version)),
            actor=actor,
            at=now,
            app=app_type,
        )
        indexes = await sync_element_table(tx, form_pk, spec.fields)
        return FormWrite(Outcome.CREATED, form_pk, version, spec.fields, True, tuple(indexes), spec.search_indexes)
    form_pk = int(row["id"])
    if row["form_type"] != spec.form_type:
        # Records of a process form carry an approval (searches and tasks rely on it); plain records do not.
        has_records = await tx.fetchval("SELECT 1 FROM form_instance WHERE form_pk = :f LIMIT 1", {"f": form_pk})
        if has_records is not None:
            raise Conflict(
                f"{spec.form_uuid} is a {row['form_type']} form that has records: its type cannot change to"
                f" {spec.form_type} (create a new form instead)",
                reason="form.type_locked",
                param="form_type",
            )
    stored_process = orjson.loads(row["process"]) if row["process"] else None
    same_schema = orjson.loads(row["fields"]) == fields_json and stored_process == process
    version = int(row["current_version"]) if same_schema else int(row["current_version"]) + 1
    creator = spec.creator or row["creator_user_id"]
    current = {
        "title": row["title_zh"],
        "title_en": row["title_en"],
        "form_type": row["form_type"],
        "creator": row["creator_user_id"],
        "version": int(row["current_version"]),
        "fields": orjson.loads(row["fields"]),
        "process": stored_process,
        "model_name": row["model_name"],
        "search_indexes": [list(c) for c in parse_search_indexes(row["search_indexes"])],
    }
    changes = changed_fields(current, _form_values(spec, creator, version))
    indexes = await sync_element_table(tx, form_pk, spec.fields)
    if not changes:
        return FormWrite(Outcome.UNCHANGED, form_pk, version, spec.fields, False, tuple(indexes), spec.search_indexes)
    await tx.execute(
        "UPDATE form SET title_zh = :title, title_en = :title_en, form_type = :type, current_version = :v,"
        f" creator_user_id = :creator, model_name = :model, search_indexes = {tx.sql.json_param('search')},"
        " updated_at = :now WHERE id = :pk",
        {
            "model": spec.model_name,
            "search": _search_indexes_json(spec),
            "title": spec.title,
            "title_en": spec.title_en,
            "type": spec.form_type,
            "v": version,
            "creator": creator,
            "now": now,
            "pk": form_pk,
        },
    )
    if not same_schema:
        await _insert_version(tx, form_pk, version, fields_json, process, now)
    await record_change(
        tx,
        corp_pk=corp.pk,
        kind="form",
        object_id=spec.form_uuid,
        action="updated",
        changes=changes,
        actor=actor,
        at=now,
        app=app_type,
    )
    return FormWrite(
        Outcome.UPDATED, form_pk, version, spec.fields, not same_schema, tuple(indexes), spec.search_indexes
    )


def _search_indexes_json(spec: FormSpec) -> str | None:
    return orjson.dumps([list(c) for c in spec.search_indexes]).decode() if spec.search_indexes else None


async def _insert_version(
    tx: Connection, form_pk: int, version: int, fields_json: list[dict[str, Any]], process: Any, now: int
) -> None:
    await tx.execute(
        "INSERT INTO form_version (form_pk, version, fields, process, created_at)"
        f" VALUES (:f, :v, {tx.sql.json_param('fields')}, {tx.sql.json_param('process')}, :now)",
        {
            "f": form_pk,
            "v": version,
            "fields": orjson.dumps(fields_json).decode(),
            "process": orjson.dumps(process).decode() if process is not None else None,
            "now": now,
        },
    )


async def put_form(
    db: Database,
    corp: CorpRef,
    app_type: str,
    spec: FormSpec,
    *,
    actor: str | None,
    check: Callable[[Connection], Awaitable[None]] | None = None,
) -> FormWrite:
    """Create a form of an app or give it a new version, then bring its search indexes in line (``check``: run in
    the transaction after the write, e.g. that the dialects' stored queries still fit; its error undoes it)."""
    async with db.transaction() as tx:
        written = await upsert_form(tx, corp, app_type, spec, actor=actor, now=now_ms())
        if check is not None and written.outcome is not Outcome.UNCHANGED:
            await check(tx)
    if written.outcome is not Outcome.UNCHANGED:
        invalidate(APPS_CACHE_SCOPE)
    built = await ensure_field_indexes(db, written.form_pk, written.fields, written.search_indexes)
    return replace(written, indexes=(*written.indexes, *built))
