"""Read, validate and load a bundle in one transaction (idempotent upsert by id)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from zida.bundle.schema import BundleIn, FieldIn, FormIn, I18nText, OptionIn
from zida.bundle.scopes import granted_scopes
from zida.cache import clear_all
from zida.clock import now_ms
from zida.core.access.members import app_secret_digest
from zida.core.access.tokens import check_server_key
from zida.core.apps.models import COMPONENTS, OPTION_COMPONENTS, Field, Option
from zida.core.errors import InvalidArgument
from zida.core.records.filters.indexes import ensure_field_indexes, sync_element_table
from zida.crypto import SecretBox, hash_secret, verify_secret
from zida.db import Connection, Database
from zida.ids import new_token

__all__ = ["BundleError", "LoadReport", "load_bundle", "parse_bundle", "read_bundle", "to_fields"]


class BundleError(InvalidArgument):
    """A bundle that cannot be loaded: names the file, the path inside it and what is wrong."""

    default_reason = "bundle.invalid"

    def __init__(self, path: str, problem: str, source: str = "<bundle>") -> None:
        super().__init__(f"{source}: {path}: {problem}" if path else f"{source}: {problem}", path=path)
        self.path = path
        self.problem = problem
        self.source = source


def read_bundle(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or JSON bundle file into plain data."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise BundleError("", f"cannot read file: {exc.strerror}", str(p)) from exc
    try:
        raw = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise BundleError("", f"not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {exc}", str(p)) from exc
    if not isinstance(raw, dict):
        raise BundleError("", "the top level must be a mapping with a corp key", str(p))
    return raw


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "I18nText", "OptionIn") or "[" in str(part):
            continue  # pydantic's union-branch markers
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_bundle(raw: dict[str, Any], source: str = "<bundle>") -> BundleIn:
    """Validate structure and cross-references; the first problem raises ``BundleError``."""
    try:
        bundle = BundleIn.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BundleError(_loc(tuple(err["loc"])), err["msg"], source) from None
    _check_references(bundle, source)
    return bundle


def _dupes(values: list[Any]) -> list[Any]:
    return [v for v, n in Counter(values).items() if n > 1]


def _check_references(b: BundleIn, source: str) -> None:
    def fail(path: str, problem: str) -> BundleError:
        return BundleError(path, problem, source)

    for key, items, attr in (
        ("departments", b.departments, "deptId"),
        ("users", b.users, "userId"),
        ("roles", b.roles, "roleId"),
        ("credentials", b.credentials, "appKey"),
        ("apps", b.apps, "appType"),
    ):
        values = [getattr(i, attr) for i in items]
        for dup in _dupes(values):
            raise fail(f"{key}[{values.index(dup)}].{attr}", f"duplicate {attr} {dup!r}")
    dept_ids = {d.deptId for d in b.departments}
    user_ids = {u.userId for u in b.users}
    for i, d in enumerate(b.departments):
        if d.parentId is not None and d.parentId not in dept_ids:
            raise fail(f"departments[{i}].parentId", f"unknown department {d.parentId}")
        for j, m in enumerate(d.managers):
            if m not in user_ids:
                raise fail(f"departments[{i}].managers[{j}]", f"unknown user {m!r}")
    parents = {d.deptId: d.parentId for d in b.departments}
    for i, d in enumerate(b.departments):
        seen: set[int] = set()
        cur: int | None = d.deptId
        while cur is not None:
            if cur in seen:
                raise fail(f"departments[{i}].parentId", "the department tree has a cycle")
            seen.add(cur)
            cur = parents.get(cur)
    managers = {u.userId: u.manager for u in b.users}
    for i, u in enumerate(b.users):
        for j, dept in enumerate(u.departments):
            if dept not in dept_ids:
                raise fail(f"users[{i}].departments[{j}]", f"unknown department {dept}")
        if u.manager is not None and u.manager not in user_ids:
            raise fail(f"users[{i}].manager", f"unknown user {u.manager!r}")
        seen_users: set[str] = set()
        cur_user: str | None = u.userId
        while cur_user is not None:
            if cur_user in seen_users:
                raise fail(f"users[{i}].manager", "the manager chain has a cycle")
            seen_users.add(cur_user)
            cur_user = managers.get(cur_user)
    for i, r in enumerate(b.roles):
        for j, m in enumerate(r.members):
            if m not in user_ids:
                raise fail(f"roles[{i}].members[{j}]", f"unknown user {m!r}")
    for i, c in enumerate(b.credentials):
        for j, s in enumerate(c.scopes):
            try:
                granted_scopes([s])
            except ValueError:
                raise fail(f"credentials[{i}].scopes[{j}]", f"unknown scope {s!r}") from None
    form_uuids: list[str] = []
    role_ids = {r.roleId for r in b.roles}
    for i, a in enumerate(b.apps):
        for j, m in enumerate(a.admins):
            if m not in user_ids:
                raise fail(f"apps[{i}].admins[{j}]", f"unknown user {m!r}")
        process_codes: dict[str, str] = {}
        for k, form in enumerate(a.forms):
            path = f"apps[{i}].forms[{k}]"
            if form.formUuid in form_uuids:
                raise fail(f"{path}.formUuid", f"duplicate formUuid {form.formUuid!r}")
            form_uuids.append(form.formUuid)
            _check_form(form, path, fail)
            if form.process is not None:
                code = form.process["processCode"]
                if code in process_codes:
                    raise fail(
                        f"{path}.process.processCode",
                        f"processCode {code!r} is already the process of {process_codes[code]} in this app",
                    )
                process_codes[code] = f"{path} ({form.formUuid})"
                _check_people(form.process.get("nodes", []), f"{path}.process.nodes", user_ids, role_ids, fail)


def _check_people(nodes: list[Any], path: str, user_ids: set[str], role_ids: set[int], fail: Any) -> None:
    """Approver and CC nodes name users and roles of the bundle (the block's shape is already validated)."""
    for n, raw in enumerate(nodes):
        ((kind, body),) = raw.items()
        at = f"{path}[{n}].{kind}"
        if kind in ("approver", "cc"):
            who = body["who"]
            for j, user in enumerate(who.get("users") or []):
                if user not in user_ids:
                    raise fail(f"{at}.who.users[{j}]", f"unknown user {user!r}")
            if "role" in who and int(who["role"]) not in role_ids:
                raise fail(f"{at}.who.role", f"unknown role {who['role']!r}")
        elif kind == "route":
            for j, branch in enumerate(body["branches"]):
                _check_people(branch["nodes"], f"{at}.branches[{j}].nodes", user_ids, role_ids, fail)
        else:
            for j, branch_nodes in enumerate(body["branches"]):
                _check_people(branch_nodes, f"{at}.branches[{j}]", user_ids, role_ids, fail)


def _check_form(form: FormIn, path: str, fail: Any) -> None:
    if form.type == "process" and form.process is None:
        raise fail(f"{path}.process", "a process form needs a process block")
    if form.type == "receipt" and form.process is not None:
        raise fail(f"{path}.process", "only process forms (type: process) have a process block")
    seen: set[str] = set()
    aliases: set[str] = set()

    def check(fields: list[FieldIn], base: str, in_table: bool) -> None:
        for n, f in enumerate(fields):
            fpath = f"{base}[{n}]"
            if f.fieldId in seen:
                raise fail(f"{fpath}.fieldId", f"duplicate fieldId {f.fieldId!r}")
            seen.add(f.fieldId)
            if f.alias:
                if f.alias in aliases:
                    raise fail(f"{fpath}.alias", f"duplicate alias {f.alias!r}")
                aliases.add(f.alias)
            if f.component not in COMPONENTS:
                raise fail(f"{fpath}.component", f"unknown component {f.component!r}")
            if f.component == "TableField":
                if in_table:
                    raise fail(f"{fpath}.component", "a TableField cannot be nested in a TableField")
                if not f.fields:
                    raise fail(f"{fpath}.fields", "a TableField needs at least one child field")
                check(f.fields, f"{fpath}.fields", True)
            elif f.fields:
                raise fail(f"{fpath}.fields", "only a TableField has child fields")
            if f.options and f.component not in OPTION_COMPONENTS:
                raise fail(f"{fpath}.options", f"{f.component} has no options")
            values = [o if isinstance(o, str) else o.value for o in f.options]
            for dup in _dupes(values):
                raise fail(f"{fpath}.options[{values.index(dup)}]", f"duplicate option {dup!r}")

    check(form.fields, f"{path}.fields", False)
    if form.process is not None:
        from zida.core.workflow.definition import parse_process

        parse_process(form.process, path=f"{path}.process", fields=to_fields(form.fields))


def _text(value: str | I18nText | None, fallback: str = "") -> tuple[str, str | None]:
    if value is None:
        return fallback, None
    if isinstance(value, str):
        return value, None
    return value.zh_CN, value.en_US


def _option(o: str | OptionIn) -> Option:
    if isinstance(o, str):
        return Option(o, o)
    zh, en = _text(o.label, o.value)
    return Option(o.value, zh, en)


def to_fields(fields: list[FieldIn]) -> tuple[Field, ...]:
    """Bundle fields as core fields."""
    out = []
    for f in fields:
        zh, en = _text(f.label)
        out.append(
            Field(
                field_id=f.fieldId,
                component=f.component,
                label_zh=zh,
                label_en=en,
                required=f.required,
                searchable=f.searchable,
                multiple=f.multiple,
                alias=f.alias,
                options=tuple(_option(o) for o in f.options),
                children=to_fields(f.fields),
                props=dict(f.props),
            )
        )
    return tuple(out)


@dataclass
class LoadReport:
    """What a load changed, per kind of entity."""

    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    indexes: list[str] = field(default_factory=list)
    # Forms whose searchable fields need their indexes checked once the load has committed.
    to_index: list[tuple[int, tuple[Field, ...]]] = field(default_factory=list)

    def count(self, kind: str, outcome: str) -> None:
        """Record one entity's outcome (``created``/``updated``/``unchanged``)."""
        getattr(self, outcome)[kind] += 1

    def summary(self) -> str:
        """One line per kind."""
        kinds = sorted(set(self.created) | set(self.updated) | set(self.unchanged))
        return "\n".join(
            f"{k}: {self.created[k]} created, {self.updated[k]} updated, {self.unchanged[k]} unchanged" for k in kinds
        )


async def _upsert(
    tx: Connection,
    table: str,
    key: dict[str, Any],
    values: dict[str, Any],
    report: LoadReport,
    kind: str,
    json_columns: tuple[str, ...] = (),
    now: int = 0,
) -> int:
    """Insert or update one row found by ``key``; only differing columns are written."""
    cols = list(values)
    where = " AND ".join(f"{k} = :{k}" for k in key)
    row = await tx.fetchrow(f"SELECT id, {', '.join(cols)} FROM {table} WHERE {where}", key)

    def param(c: str) -> str:
        return tx.sql.json_param(c) if c in json_columns else f":{c}"

    if row is None:
        all_values = {**key, **values}
        if now:
            all_values.update(created_at=now, updated_at=now)
        names = list(all_values)
        pk = await tx.fetchval(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(param(n) for n in names)}) RETURNING id",
            all_values,
        )
        report.count(kind, "created")
        return int(pk)
    changed = {}
    for c in cols:
        current = row[c]
        if c in json_columns and current is not None:
            current = orjson.dumps(orjson.loads(current)).decode()
        if current != values[c]:
            changed[c] = values[c]
    if not changed:
        report.count(kind, "unchanged")
        return int(row["id"])
    if now:
        changed["updated_at"] = now
    sets = ", ".join(f"{c} = {param(c)}" for c in changed)
    await tx.execute(f"UPDATE {table} SET {sets} WHERE id = :pk", {**changed, "pk": row["id"]})
    report.count(kind, "updated")
    return int(row["id"])


async def _replace_links(tx: Connection, table: str, owner_col: str, owner: int, rows: list[dict[str, Any]]) -> None:
    existing = await tx.fetch(f"SELECT * FROM {table} WHERE {owner_col} = :o", {"o": owner})
    # sqlite3.Row iterates values, so keys() is needed.
    current = sorted(tuple(sorted((k, r[k]) for k in r.keys())) for r in existing)  # noqa: SIM118
    wanted = sorted(tuple(sorted({owner_col: owner, **r}.items())) for r in rows)
    if current == wanted:
        return
    await tx.execute(f"DELETE FROM {table} WHERE {owner_col} = :o", {"o": owner})
    for r in rows:
        values = {owner_col: owner, **r}
        await tx.execute(
            f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})", values
        )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _secret_hash(
    tx: Connection, table: str, key_col: str, key: str, secret: str | None, path: str, source: str
) -> str | None:
    """The stored hash to keep (unchanged secret) or a new one; None when the row exists and no secret given."""
    current = await tx.fetchval(f"SELECT secret_hash FROM {table} WHERE {key_col} = :k", {"k": key})
    if secret is None:
        if current is None:
            raise BundleError(path, "a new credential needs an appSecret", source)
        return str(current)
    if current is not None and verify_secret(secret, current):
        return str(current)
    return hash_secret(secret)


async def load_bundle(db: Database, box: SecretBox, bundle: BundleIn, source: str = "<bundle>") -> LoadReport:
    """Write a validated bundle as one transaction; loading the same bundle again changes nothing."""
    await check_server_key(db, box)
    report = LoadReport()
    now = now_ms()
    async with db.transaction() as tx:
        corp = bundle.corp
        existing_code = await tx.fetchval("SELECT org_secret_enc FROM corp WHERE corp_id = :c", {"c": corp.corpId})
        code_enc = existing_code
        if corp.taskApiCode is not None and (existing_code is None or box.decrypt(existing_code) != corp.taskApiCode):
            code_enc = box.encrypt(corp.taskApiCode)
        corp_pk = await _upsert(
            tx,
            "corp",
            {"corp_id": corp.corpId},
            {"name": corp.name, "org_secret_enc": code_enc},
            report,
            "corp",
            now=now,
        )
        dept_pks: dict[int, int] = {}
        for d in bundle.departments:
            dept_pks[d.deptId] = await _upsert(
                tx,
                "department",
                {"corp_pk": corp_pk, "dept_id": d.deptId},
                {
                    "name": d.name,
                    "name_en": d.nameEn,
                    "parent_dept_id": d.parentId,
                    "manager_user_ids": _json(d.managers),
                    "sort_order": d.order,
                },
                report,
                "departments",
                json_columns=("manager_user_ids",),
            )
        user_pks: dict[str, int] = {}
        for u in bundle.users:
            existing = await tx.fetchrow(
                "SELECT union_id, password_hash FROM org_user WHERE corp_pk = :c AND user_id = :u",
                {"c": corp_pk, "u": u.userId},
            )
            union_id = u.unionId or (existing["union_id"] if existing else new_token())
            password_hash = existing["password_hash"] if existing else None
            if u.password is not None and not (password_hash and verify_secret(u.password, password_hash)):
                password_hash = hash_secret(u.password)
            user_pks[u.userId] = await _upsert(
                tx,
                "org_user",
                {"corp_pk": corp_pk, "user_id": u.userId},
                {
                    "name": u.name,
                    "name_en": u.nameEn,
                    "title": u.title,
                    "mobile": u.mobile,
                    "email": u.email,
                    "union_id": union_id,
                    "manager_user_id": u.manager,
                    "password_hash": password_hash,
                },
                report,
                "users",
                now=now,
            )
            await _replace_links(
                tx,
                "user_department",
                "user_pk",
                user_pks[u.userId],
                [{"dept_pk": dept_pks[d], "position": n} for n, d in enumerate(u.departments)],
            )
        for r in bundle.roles:
            role_pk = await _upsert(
                tx,
                "role",
                {"corp_pk": corp_pk, "role_id": r.roleId},
                {"name": r.name, "group_name": r.group},
                report,
                "roles",
            )
            await _replace_links(tx, "role_member", "role_pk", role_pk, [{"user_pk": user_pks[m]} for m in r.members])
        for i, c in enumerate(bundle.credentials):
            owner = await tx.fetchval(
                "SELECT co.corp_id FROM credential cr JOIN corp co ON co.id = cr.corp_pk WHERE cr.app_key = :k",
                {"k": c.appKey},
            )
            if owner is not None and owner != corp.corpId:
                raise BundleError(f"credentials[{i}].appKey", f"appKey {c.appKey!r} belongs to another corp", source)
            secret_hash = await _secret_hash(
                tx, "credential", "app_key", c.appKey, c.appSecret, f"credentials[{i}].appSecret", source
            )
            await _upsert(
                tx,
                "credential",
                {"app_key": c.appKey},
                {"corp_pk": corp_pk, "secret_hash": secret_hash, "scopes": _json(granted_scopes(c.scopes))},
                report,
                "credentials",
                json_columns=("scopes",),
                now=now,
            )
        for i, a in enumerate(bundle.apps):
            await _load_app(tx, box, corp_pk, corp.corpId, i, a, user_pks, report, source, now)
    clear_all()  # this process sees the new bundle at once; other processes within ZIDA_CACHE_SECONDS
    # Indexes are derived state, built after the commit (concurrently on PostgreSQL, so a big form keeps
    # taking writes meanwhile); the queries work without them, only slower. (SQLite's element rows, which
    # searches read directly, were written inside the transaction.)
    for form_pk, fields in report.to_index:
        report.indexes.extend(await ensure_field_indexes(db, form_pk, fields))
    return report


async def _load_app(
    tx: Connection,
    box: SecretBox,
    corp_pk: int,
    corp_id: str,
    i: int,
    a: Any,
    user_pks: dict[str, int],
    report: LoadReport,
    source: str,
    now: int,
) -> None:
    path = f"apps[{i}]"
    existing = await tx.fetchrow(
        "SELECT a.corp_pk, a.secret_digest, a.secret_enc FROM app a WHERE a.app_type = :t",
        {"t": a.appType},
    )
    if existing is not None and existing["corp_pk"] != corp_pk:
        raise BundleError(f"{path}.appType", f"appType {a.appType!r} belongs to another corp", source)
    if a.systemToken is None:
        if existing is None:
            raise BundleError(f"{path}.systemToken", "a new app needs a systemToken", source)
        token_digest, token_enc = existing["secret_digest"], existing["secret_enc"]
    elif existing is not None and existing["secret_digest"] == app_secret_digest(box, a.systemToken):
        token_digest, token_enc = existing["secret_digest"], existing["secret_enc"]
    else:
        token_digest, token_enc = app_secret_digest(box, a.systemToken), box.encrypt(a.systemToken)
    name_zh, name_en = _text(a.name)
    app_pk = await _upsert(
        tx,
        "app",
        {"app_type": a.appType},
        {
            "corp_pk": corp_pk,
            "name": name_zh,
            "name_en": name_en,
            "description": a.description,
            "icon": a.icon,
            "status": a.status,
            "secret_digest": token_digest,
            "secret_enc": token_enc,
            "creator_user_id": a.creator or (a.admins[0] if a.admins else None),
        },
        report,
        "apps",
        now=now,
    )
    await _replace_links(tx, "app_admin", "app_pk", app_pk, [{"user_pk": user_pks[m]} for m in a.admins])
    for k, form in enumerate(a.forms):
        fpath = f"{path}.forms[{k}]"
        owner = await tx.fetchval("SELECT app_pk FROM form WHERE form_uuid = :f", {"f": form.formUuid})
        if owner is not None and owner != app_pk:
            raise BundleError(f"{fpath}.formUuid", f"formUuid {form.formUuid!r} belongs to another app", source)
        fields = to_fields(form.fields)
        fields_json = _json([f.to_dict() for f in fields])
        process_json = _json(form.process) if form.process is not None else None
        title_zh, title_en = _text(form.title)
        row = await tx.fetchrow(
            "SELECT f.id, f.form_type, f.current_version, v.fields, v.process FROM form f"
            " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version WHERE f.form_uuid = :u",
            {"u": form.formUuid},
        )
        version = 1
        if row is not None and row["form_type"] != form.type:
            # Records of a process form carry an approval (and searches, tasks rely on it); plain records do not.
            has_records = await tx.fetchval("SELECT 1 FROM form_instance WHERE form_pk = :f LIMIT 1", {"f": row["id"]})
            if has_records is not None:
                raise BundleError(
                    f"{fpath}.type",
                    f"{form.formUuid} is a {row['form_type']} form that has records: its type cannot change"
                    f" to {form.type} (create a new form instead)",
                    source,
                )
        if row is not None:
            same_fields = orjson.loads(row["fields"]) == orjson.loads(fields_json)
            same_process = (orjson.loads(row["process"]) if row["process"] else None) == form.process
            version = row["current_version"] if same_fields and same_process else row["current_version"] + 1
        form_pk = await _upsert(
            tx,
            "form",
            {"form_uuid": form.formUuid},
            {
                "app_pk": app_pk,
                "title_zh": title_zh,
                "title_en": title_en,
                "form_type": form.type,
                "current_version": version,
                "creator_user_id": form.creator or (a.admins[0] if a.admins else None),
            },
            report,
            "forms",
            now=now,
        )
        if row is None or version != row["current_version"]:
            await tx.execute(
                "INSERT INTO form_version (form_pk, version, fields, process, created_at)"
                f" VALUES (:f, :v, {tx.sql.json_param('fields')}, {tx.sql.json_param('process')}, :now)",
                {"f": form_pk, "v": version, "fields": fields_json, "process": process_json, "now": now},
            )
            report.count("form versions", "created")
        report.indexes.extend(await sync_element_table(tx, form_pk, fields))
        report.to_index.append((form_pk, fields))
