"""Queries over apps and forms: a form at a version (schemas cached), an app's forms, a corp's apps; index upkeep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from zida.cache import TtlCache
from zida.core.apps.models import App, Field, Form
from zida.core.errors import InvalidArgument, NotFound
from zida.core.principals import AppActor
from zida.core.records.filters.indexes import Progress, ensure_field_indexes
from zida.crypto import SecretBox
from zida.db import Connection, Database, Row

__all__ = [
    "APPS_CACHE_SCOPE",
    "AppDetails",
    "AppListing",
    "FormDefinition",
    "corp_apps",
    "find_app",
    "find_form_definition",
    "get_form",
    "list_apps",
    "list_forms",
    "parse_fields",
    "reindex_forms",
]

# The scope of the caches of apps, their members and their forms: ``zida.cache.invalidate`` names it after an app or
# a form changed.
APPS_CACHE_SCOPE = "apps"

_FIELDS_CACHE: dict[tuple[int, int, str | bytes], tuple[Field, ...]] = {}
_FORMS: TtlCache[tuple[object, ...], Form] = TtlCache(scope=APPS_CACHE_SCOPE)


def parse_fields(form_pk: int, version: int, raw: str | bytes) -> tuple[Field, ...]:
    """Parse a stored schema version; versions never change, so parsed schemas are cached for good (by their text
    too: a process that opens another database, as tests and benchmarks do, never gets another form's schema)."""
    key = (form_pk, version, raw)
    cached = _FIELDS_CACHE.get(key)
    if cached is None:
        cached = tuple(Field.from_dict(f) for f in orjson.loads(raw))
        if len(_FIELDS_CACHE) > 10_000:
            _FIELDS_CACHE.clear()
        _FIELDS_CACHE[key] = cached
    return cached


def _form(row: Row, version: int) -> Form:
    return Form(
        pk=row["id"],
        app_pk=row["app_pk"],
        app_type=row["app_type"],
        form_uuid=row["form_uuid"],
        title_zh=row["title_zh"],
        title_en=row["title_en"],
        form_type=row["form_type"],
        version=version,
        fields=parse_fields(row["id"], version, row["fields"]),
        creator_user_id=row["creator_user_id"],
        created_at=row["created_at"],
        model_name=row["model_name"],
        search_indexes=parse_search_indexes(row["search_indexes"]),
    )


def parse_search_indexes(raw: str | bytes | None) -> tuple[tuple[str, ...], ...]:
    """A form's stored ``search_indexes`` (JSON lists of field ids; NULL: none)."""
    return tuple(tuple(str(k) for k in combo) for combo in orjson.loads(raw)) if raw else ()


async def get_form(
    conn: Connection,
    actor: AppActor,
    form_uuid: str | None,
    *,
    version: int | None = None,
    form_pk: int | None = None,
) -> Form:
    """The form of the actor's app at ``version`` (default: current); NotFound for other apps' forms."""
    if form_pk is None and not form_uuid:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="form")
    cache_key = (actor.app_pk, form_pk, form_uuid, version)
    cached = _FORMS.get(cache_key)
    if cached is not None:
        return cached
    where = "f.id = :key" if form_pk is not None else "f.form_uuid = :key"
    row = await conn.fetchrow(
        "SELECT f.id, f.app_pk, a.app_type, f.form_uuid, f.title_zh, f.title_en, f.form_type, f.current_version,"
        " f.creator_user_id, f.created_at, f.model_name, f.search_indexes, v.version, v.fields"
        " FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = COALESCE(:version, f.current_version)"
        f" WHERE {where} AND f.app_pk = :app_pk",
        {"key": form_pk if form_pk is not None else form_uuid, "version": version, "app_pk": actor.app_pk},
    )
    if row is None:
        if version is not None:
            raise NotFound(f"form {form_uuid} has no version {version}", reason="form.not_found")
        raise NotFound(f"form {form_uuid or form_pk} does not exist in this application", reason="form.not_found")
    return _FORMS.put(cache_key, _form(row, row["version"]))


async def find_model_form(conn: Connection, corp_pk: int, model_name: str, *, cached: bool = True) -> Form | None:
    """The corp's form that is the data model ``model_name``, at its current version; None: no such model.

    ``cached=False`` reads and keeps nothing from the cache (inside a transaction that may not commit)."""
    cache_key = ("model", corp_pk, model_name, None)
    hit = _FORMS.get(cache_key) if cached else None
    if hit is not None:
        return hit
    row = await conn.fetchrow(
        "SELECT f.id, f.app_pk, a.app_type, f.form_uuid, f.title_zh, f.title_en, f.form_type, f.current_version,"
        " f.creator_user_id, f.created_at, f.model_name, f.search_indexes, v.version, v.fields"
        " FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        " WHERE f.model_name = :m AND a.corp_pk = :c",
        {"m": model_name, "c": corp_pk},
    )
    if row is None:
        return None
    form = _form(row, row["version"])
    return _FORMS.put(cache_key, form) if cached else form


async def related_model_form(conn: Connection, corp_pk: int, form_uuid: str) -> Form | None:
    """The data model (current version) that the corp's form ``form_uuid`` is; None: no such form, or no model."""
    name = await conn.fetchval(
        "SELECT f.model_name FROM form f JOIN app a ON a.id = f.app_pk WHERE f.form_uuid = :u AND a.corp_pk = :c",
        {"u": form_uuid, "c": corp_pk},
    )
    return await find_model_form(conn, corp_pk, str(name)) if name else None


async def list_forms(
    conn: Connection, actor: AppActor, form_types: list[str], page: int, size: int
) -> tuple[int, list[Form]]:
    """Forms of the actor's app, oldest first, optionally only some types."""
    for t in form_types:
        if t not in ("receipt", "process"):
            raise InvalidArgument(f"unknown form type {t!r}", reason="argument.invalid", param="form_types")
    types_sql = ""
    params: dict[str, object] = {"app_pk": actor.app_pk, "limit": size, "offset": (page - 1) * size}
    if form_types:
        types_sql = " AND f.form_type IN (" + ", ".join(f":t{i}" for i in range(len(form_types))) + ")"
        params.update({f"t{i}": t for i, t in enumerate(form_types)})
    total = await conn.fetchval(f"SELECT count(*) FROM form f WHERE f.app_pk = :app_pk{types_sql}", params)
    rows = await conn.fetch(
        "SELECT f.id, f.app_pk, a.app_type, f.form_uuid, f.title_zh, f.title_en, f.form_type, f.creator_user_id,"
        " f.model_name, f.search_indexes, f.created_at, v.version, v.fields"
        " FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        f" WHERE f.app_pk = :app_pk{types_sql} ORDER BY f.id LIMIT :limit OFFSET :offset",
        params,
    )
    return int(total), [_form(r, r["version"]) for r in rows]


@dataclass(frozen=True, slots=True)
class AppListing:
    """An app as the org-level app list shows it; ``secret`` only for the app's admins."""

    app: App
    corp_id: str
    secret: str | None


async def list_apps(
    conn: Connection,
    box: SecretBox,
    corp_pk: int,
    user_id: str,
    *,
    keyword: str | None,
    created_by_me: bool,
    page: int,
    size: int,
) -> tuple[int, list[AppListing]]:
    """Apps of a corp, newest first; the app secret is decrypted only for apps the user administers."""
    user_pk = await conn.fetchval(
        "SELECT id FROM org_user WHERE corp_pk = :c AND user_id = :u AND active", {"c": corp_pk, "u": user_id}
    )
    if user_pk is None:
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")
    where = "a.corp_pk = :c"
    params: dict[str, object] = {"c": corp_pk, "user_pk": user_pk, "limit": size, "offset": (page - 1) * size}
    if keyword:
        where += f" AND a.name {conn.sql.like} :kw"  # ignoring case, on both databases
        params["kw"] = "%" + keyword.replace("%", "").replace("_", "") + "%"
    if created_by_me:
        where += " AND a.creator_user_id = :u"
        params["u"] = user_id
    total = await conn.fetchval(f"SELECT count(*) FROM app a WHERE {where}", params)
    rows = await conn.fetch(
        "SELECT a.id, a.corp_pk, a.app_type, a.name, a.name_en, a.description, a.icon, a.status,"
        " a.creator_user_id, a.secret_enc, co.corp_id,"
        " (SELECT 1 FROM app_admin aa WHERE aa.app_pk = a.id AND aa.user_pk = :user_pk) AS is_admin"
        f" FROM app a JOIN corp co ON co.id = a.corp_pk WHERE {where} ORDER BY a.id LIMIT :limit OFFSET :offset",
        params,
    )
    listings = [
        AppListing(
            app=App(
                pk=r["id"],
                corp_pk=r["corp_pk"],
                app_type=r["app_type"],
                name=r["name"],
                name_en=r["name_en"],
                description=r["description"],
                icon=r["icon"],
                status=r["status"],
                creator_user_id=r["creator_user_id"],
            ),
            corp_id=r["corp_id"],
            secret=box.decrypt(r["secret_enc"]) if r["is_admin"] is not None else None,
        )
        for r in rows
    ]
    return int(total), listings


async def reindex_forms(db: Database, progress: Progress | None = None) -> list[str]:
    """Bring every form's search indexes in line with its current schema (after an upgrade changed them);
    ``progress`` hears how far each build got."""
    rows = await db.fetch(
        "SELECT f.id, f.current_version, f.search_indexes, v.fields FROM form f"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version ORDER BY f.id"
    )
    built: list[str] = []
    for row in rows:
        fields = parse_fields(int(row["id"]), int(row["current_version"]), row["fields"])
        combinations = parse_search_indexes(row["search_indexes"])
        built.extend(await ensure_field_indexes(db, int(row["id"]), fields, combinations, progress))
    return built


@dataclass(frozen=True, slots=True)
class AppDetails:
    """An app with its administrators and its forms (at their current version)."""

    app: App
    admins: tuple[str, ...]
    forms: tuple[Form, ...]


def _app(row: Row) -> App:
    return App(
        pk=row["id"],
        corp_pk=row["corp_pk"],
        app_type=row["app_type"],
        name=row["name"],
        name_en=row["name_en"],
        description=row["description"],
        icon=row["icon"],
        status=row["status"],
        creator_user_id=row["creator_user_id"],
    )


async def _details(conn: Connection, rows: list[Row]) -> list[AppDetails]:
    if not rows:
        return []
    names = {f"a{i}": r["id"] for i, r in enumerate(rows)}
    placeholders = ", ".join(":" + n for n in names)
    admins = await conn.fetch(
        "SELECT aa.app_pk, u.user_id FROM app_admin aa JOIN org_user u ON u.id = aa.user_pk"
        f" WHERE aa.app_pk IN ({placeholders}) ORDER BY u.user_id",
        names,
    )
    forms = await conn.fetch(
        "SELECT f.id, f.app_pk, a.app_type, f.form_uuid, f.title_zh, f.title_en, f.form_type, f.creator_user_id,"
        " f.model_name, f.search_indexes, f.created_at, v.version, v.fields FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        f" WHERE f.app_pk IN ({placeholders}) ORDER BY f.id",
        names,
    )
    return [
        AppDetails(
            app=_app(r),
            admins=tuple(a["user_id"] for a in admins if a["app_pk"] == r["id"]),
            forms=tuple(_form(f, f["version"]) for f in forms if f["app_pk"] == r["id"]),
        )
        for r in rows
    ]


_APP_COLUMNS = "a.id, a.corp_pk, a.app_type, a.name, a.name_en, a.description, a.icon, a.status, a.creator_user_id"


async def find_app(conn: Connection, corp_pk: int, app_type: str) -> AppDetails | None:
    """One app of the corp with its administrators and forms (uncached); None for another corp's app."""
    rows = await conn.fetch(
        f"SELECT {_APP_COLUMNS} FROM app a WHERE a.app_type = :t AND a.corp_pk = :c", {"t": app_type, "c": corp_pk}
    )
    found = await _details(conn, list(rows))
    return found[0] if found else None


async def corp_apps(conn: Connection, corp_pk: int) -> list[AppDetails]:
    """Every app of the corp, oldest first, with its administrators and forms."""
    rows = await conn.fetch(f"SELECT {_APP_COLUMNS} FROM app a WHERE a.corp_pk = :c ORDER BY a.id", {"c": corp_pk})
    return await _details(conn, list(rows))


@dataclass(frozen=True, slots=True)
class FormDefinition:
    """A form at its current version with its process block as stored (None for a plain form)."""

    form: Form
    process: dict[str, Any] | None


async def find_form_definition(conn: Connection, corp_pk: int, form_uuid: str) -> FormDefinition | None:
    """A form of one of the corp's apps at its current version (uncached); None for another corp's form."""
    row = await conn.fetchrow(
        "SELECT f.id, f.app_pk, a.app_type, f.form_uuid, f.title_zh, f.title_en, f.form_type, f.creator_user_id,"
        " f.model_name, f.search_indexes, f.created_at, v.version, v.fields, v.process FROM form f"
        " JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        " WHERE f.form_uuid = :u AND a.corp_pk = :c",
        {"u": form_uuid, "c": corp_pk},
    )
    if row is None:
        return None
    return FormDefinition(_form(row, row["version"]), orjson.loads(row["process"]) if row["process"] else None)
