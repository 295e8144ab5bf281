"""Read, validate and load a bundle in one transaction (idempotent upsert by id).

A load writes through the core's actions (``zida.core.org.actions``, ``zida.core.access.credentials``,
``zida.core.apps.actions``) inside one transaction, so each changed object gets its audit row and domain event
(actor ``bundle:<file>``) and loading the same bundle again writes nothing at all. The bundle is checked as a whole
first (every reference inside it, no cycles), which is what lets objects name others loaded after them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from zida.bundle.schema import (
    AppIn,
    BundleIn,
    CredentialIn,
    FieldIn,
    FormIn,
    I18nText,
    KeyProblem,
    OptionIn,
    QueryTemplateIn,
)
from zida.cache import invalidate
from zida.clock import now_ms
from zida.core.access.credentials import CredentialSpec, upsert_credential
from zida.core.access.tokens import CREDENTIALS_CACHE_SCOPE, check_server_key
from zida.core.apps.actions import (
    AppSpec,
    FormSpec,
    FormWrite,
    check_form,
    named_people,
    upsert_app,
    upsert_form,
)
from zida.core.apps.models import Field, Option
from zida.core.apps.queries import APPS_CACHE_SCOPE
from zida.core.apps.templates import QueryParameter, QueryTemplate, put_query_template
from zida.core.audit import Outcome
from zida.core.errors import InvalidArgument, ZidaError
from zida.core.events.subscriptions import SubscriptionSpec, upsert_subscription
from zida.core.org.actions import (
    BULK_DIRECTORY_ROWS,
    CorpSpec,
    DepartmentSpec,
    RoleSpec,
    UserSpec,
    find_cycle,
    read_user_batch,
    refresh_directory_statistics,
    upsert_corp,
    upsert_department,
    upsert_role,
    upsert_user,
)
from zida.core.org.models import CorpRef
from zida.core.org.repository import ORG_CACHE_SCOPE
from zida.core.records.filters.indexes import ensure_field_indexes
from zida.crypto import SecretBox
from zida.db import Connection, Database
from zida.dialects import granted_scopes
from zida.dialects.dingtalk.callbacks import check_tags
from zida.dialects.weda.templates import check_against_model, check_stored_templates

__all__ = ["BundleError", "LoadReport", "form_spec", "load_bundle", "parse_bundle", "read_bundle", "to_fields"]

T = TypeVar("T")


class BundleError(InvalidArgument):
    """A bundle that cannot be loaded: names the file, the path inside it and what is wrong."""

    default_reason = "bundle.invalid"

    def __init__(self, path: str, problem: str, source: str = "<bundle>") -> None:
        super().__init__(f"{source}: {path}: {problem}" if path else f"{source}: {problem}", path=path)
        self.path = path
        self.problem = problem
        self.source = source


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that names a key twice (the later one would win without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice in this mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key named twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in an object")
        out[key] = value
    return out


def _decoded(text: str, kind: str) -> Any:
    if kind == "JSON":
        return json.loads(text, object_pairs_hook=_unique_keys)
    return yaml.load(text, _UniqueKeyLoader)  # noqa: S506 (a safe loader)


# A bundle's YAML aliases (``*name``) may repeat what an anchor names, not multiply it: nine lists of nine aliases
# of the list before ("billion laughs") parse into a few hundred objects that stand for 387 million values, which
# checking the bundle then visited one by one (minutes of CPU, then memory); an anchor holding an alias of itself
# was a RecursionError traceback.
_MAX_EXPANSION = 4
_MAX_EXPANDED_FLOOR = 1_000_000


def _check_aliases(raw: Any, source: str) -> None:
    """Refuse a bundle whose aliases refer to the value holding them or expand it past
    max(``_MAX_EXPANDED_FLOOR``, ``_MAX_EXPANSION`` × the values it holds)."""
    sizes: dict[int, int] = {}  # id of a list or mapping → its values once expanded
    open_: set[int] = set()

    def size(value: Any) -> tuple[int, int]:
        """(values once expanded, values held that were not seen before)."""
        if not isinstance(value, dict | list):
            return 1, 1
        key = id(value)
        if key in sizes:
            return sizes[key], 0  # seen already: an alias, holding nothing new
        if key in open_:
            raise BundleError("", "an alias (*name) refers to the value that holds it: a bundle cannot", source)
        open_.add(key)
        expanded = held = 1
        for item in value.values() if isinstance(value, dict) else value:
            item_expanded, item_held = size(item)
            expanded += item_expanded
            held += item_held
        open_.discard(key)
        sizes[key] = expanded
        return expanded, held

    try:
        expanded, held = size(raw)
    except RecursionError:
        raise BundleError("", "nested too deeply", source) from None
    limit = max(_MAX_EXPANDED_FLOOR, _MAX_EXPANSION * held)
    if expanded > limit:
        raise BundleError(
            "",
            f"its aliases (*name) expand its {held:,} values to {expanded:,} (at most {limit:,}):"
            " write the repeated parts out, or use fewer aliases",
            source,
        )


def read_bundle(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or JSON bundle file into plain data (refusing YAML aliases that loop or multiply its size)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise BundleError("", f"cannot read file: {exc.strerror}", str(p)) from exc
    except UnicodeDecodeError as exc:
        raise BundleError("", f"not UTF-8 text (byte {exc.start}: {exc.reason})", str(p)) from None
    kind = "JSON" if p.suffix.lower() == ".json" else "YAML"
    try:
        raw = _decoded(text, kind)
    except (yaml.YAMLError, ValueError) as exc:
        raise BundleError("", f"not valid {kind}: {exc}", str(p)) from exc
    except RecursionError:
        raise BundleError("", f"not valid {kind}: nested too deeply", str(p)) from None
    if not isinstance(raw, dict):
        raise BundleError("", "the top level must be a mapping with a corp key", str(p))
    if kind == "YAML":  # JSON has no aliases
        _check_aliases(raw, str(p))
    return raw


def _branch(part: int | str) -> bool:
    """Whether a part of a pydantic error's location is a union-branch marker (not a key of the bundle)."""
    return isinstance(part, str) and (
        part in ("str", "I18nText", "OptionIn") or "[" in part or part.startswith("constrained-")
    )


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _branch(part):
            out += ("." if out else "") + str(part)
    return out


def _reported(errors: list[ErrorDetails]) -> ErrorDetails:
    """The error to report: the first one, unless it is about a value of a union (a text or a mapping: ``label``),
    whose every alternative has its errors: then the deepest of them, in the alternative the value was written as
    (``label.zh_CN: Field required`` rather than ``label: Input should be a valid string``)."""
    first = errors[0]
    loc = tuple(first["loc"])
    branch = next((n for n, part in enumerate(loc) if _branch(part)), None)
    if branch is None:
        return first
    alternatives = [e for e in errors if tuple(e["loc"])[:branch] == loc[:branch]]
    return max(alternatives, key=lambda e: sum(not _branch(part) for part in e["loc"]))


def parse_bundle(raw: dict[str, Any], source: str = "<bundle>") -> BundleIn:
    """Validate structure and cross-references; the first problem raises ``BundleError``."""
    nul = _nul_at(raw, "")
    if nul is not None:  # PostgreSQL cannot store it, and no name or id should hold one
        raise BundleError(nul, "contains a NUL character", source)
    try:
        bundle = BundleIn.model_validate(raw)
    except ValidationError as exc:
        err = _reported(exc.errors())
        path = _loc(tuple(err["loc"]))
        problem = err.get("ctx", {}).get("error")
        if isinstance(problem, KeyProblem):  # a model's check about one of its keys
            path = f"{path}.{problem.key}"
        raise BundleError(path, err["msg"], source) from None
    _check_references(bundle, source)
    return bundle


def _nul_at(value: Any, path: str) -> str | None:
    """The path of the first key or text holding a NUL character (None: there is none)."""
    if isinstance(value, str):
        return path or "(top level)" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return here
            found = _nul_at(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _dupes(values: list[Any]) -> list[Any]:
    return [v for v, n in Counter(values).items() if n > 1]


def _repeat(values: list[Any]) -> int | None:
    """The index of the first entry of ``values`` that repeats one before it (None: none does)."""
    seen: set[Any] = set()
    for j, value in enumerate(values):
        if value in seen:
            return j
        seen.add(value)
    return None


def _check_references(b: BundleIn, source: str) -> None:
    def fail(path: str, problem: str) -> BundleError:
        return BundleError(path, problem, source)

    for key, items, attr in (
        ("departments", b.departments, "deptId"),
        ("users", b.users, "userId"),
        ("roles", b.roles, "roleId"),
        ("credentials", b.credentials, "client_id"),
        ("apps", b.apps, "appType"),
    ):
        values = [getattr(i, attr) for i in items]
        for dup in _dupes(values):
            first = values.index(dup)
            name = (
                attr if attr != "client_id" else ("appKey" if b.credentials[first].appKey is not None else "secretId")
            )
            raise fail(f"{key}[{first}].{name}", f"duplicate {name} {dup!r}")
    template_names = [t.name for t in (b.weda.queryTemplates if b.weda else [])]
    for dup in _dupes(template_names):
        raise fail(f"weda.queryTemplates[{template_names.index(dup)}].name", f"duplicate name {dup!r}")
    models = {
        f"apps[{i}].forms[{k}].modelName": f.modelName
        for i, a in enumerate(b.apps)
        for k, f in enumerate(a.forms)
        if f.modelName is not None
    }
    for model in _dupes(list(models.values())):
        raise fail(next(at for at, name in models.items() if name == model), f"two forms are the data model {model!r}")
    sign_in = [u.username or u.userId for u in b.users]
    for name in _dupes(sign_in):
        # The user who names it as his username (of two users, one at most signs in by his userId).
        named = next(i for i, u in enumerate(b.users) if u.username is not None and u.username == name)
        raise fail(f"users[{named}].username", f"two users sign in as {name!r}")
    dept_ids = {d.deptId for d in b.departments}
    user_ids = {u.userId for u in b.users}
    for i, d in enumerate(b.departments):
        if d.parentId is not None and d.parentId not in dept_ids:
            raise fail(f"departments[{i}].parentId", f"unknown department {d.parentId}")
        for j, m in enumerate(d.managers):
            if m not in user_ids:
                raise fail(f"departments[{i}].managers[{j}]", f"unknown user {m!r}")
    # Every reference stays inside the bundle, so a loop through the database must run through the bundle too:
    # checking the bundle's own links finds every cycle a load could make.
    parents = {d.deptId: d.parentId for d in b.departments}
    for i, d in enumerate(b.departments):
        if find_cycle(parents, d.deptId) is not None:
            raise fail(f"departments[{i}].parentId", "the department tree has a cycle")
    managers = {u.userId: u.manager for u in b.users}
    for i, u in enumerate(b.users):
        for j, dept in enumerate(u.departments):
            if dept not in dept_ids:
                raise fail(f"users[{i}].departments[{j}]", f"unknown department {dept}")
        if u.manager is not None and u.manager not in user_ids:
            raise fail(f"users[{i}].manager", f"unknown user {u.manager!r}")
        if find_cycle(managers, u.userId) is not None:
            raise fail(f"users[{i}].manager", "the manager chain has a cycle")
    for i, r in enumerate(b.roles):
        for j, m in enumerate(r.members):
            if m not in user_ids:
                raise fail(f"roles[{i}].members[{j}]", f"unknown user {m!r}")
    # A list of ids naming one twice (the core refuses it too): its repeat, found here, where the bundle shows it.
    lists: list[tuple[str, list[Any]]] = [
        *((f"departments[{i}].managers", d.managers) for i, d in enumerate(b.departments)),
        *((f"users[{i}].departments", u.departments) for i, u in enumerate(b.users)),
        *((f"roles[{i}].members", r.members) for i, r in enumerate(b.roles)),
        *((f"apps[{i}].admins", a.admins) for i, a in enumerate(b.apps)),
    ]
    for at, ids in lists:
        again = _repeat(ids)
        if again is not None:
            raise fail(f"{at}[{again}]", f"{at.rpartition('.')[2]} names {ids[again]!r} twice")
    client_ids = {c.client_id for c in b.credentials}
    kinds = [(c.appKey, c.kind) for c in b.callbacks]
    for dup in _dupes(kinds):
        raise fail(f"callbacks[{kinds.index(dup)}].kind", f"two {dup[1]} callbacks of credential {dup[0]!r}")
    for i, cb in enumerate(b.callbacks):
        if cb.appKey not in client_ids:
            raise fail(f"callbacks[{i}].appKey", f"unknown credential {cb.appKey!r} (list it under credentials)")
        for j, tag in enumerate(cb.tags):
            try:
                check_tags([tag])
            except ZidaError as exc:
                raise fail(f"callbacks[{i}].tags[{j}]", exc.message) from None
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
            _check_form(form, path, source)
            if form.process is not None:
                code = form.process["processCode"]
                if code in process_codes:
                    raise fail(
                        f"{path}.process.processCode",
                        f"processCode {code!r} is already the process of {process_codes[code]} in this app",
                    )
                process_codes[code] = f"{path} ({form.formUuid})"
                for at, kind, value in named_people(form.process, f"{path}.process"):
                    if kind == "user" and value not in user_ids:
                        raise fail(at, f"unknown user {value!r}")
                    if kind == "role" and int(value) not in role_ids:
                        raise fail(at, f"unknown role {value!r}")


# Semantic parameter names of core errors → the bundle's keys.
_KEYS = {
    "user": "userId",
    "department": "deptId",
    "parent": "parentId",
    "role": "roleId",
    "client_id": "appKey",
    "client_secret": "appSecret",
    "app": "appType",
    "app_secret": "systemToken",
    "form": "formUuid",
    "form_type": "type",
    "name_en": "nameEn",
    "union_id": "unionId",
    "hand_over_to": "active",
    "corp": "corpId",
    "org_secret": "taskApiCode",
    "env_id": "weda.envId",
    "env_type": "weda.envType",
    "model_name": "modelName",
    "aes_key": "aesKey",
}
# Parameters of the corp's action that the bundle writes at its top level (``weda``), not under ``corp``.
_TOP_LEVEL = frozenset({"env_id", "env_type"})
# Errors whose reason names their key more exactly than their parameter.
_REASON_KEYS = {"form.process_key_taken": "process.processKey"}

# The core's errors name the item and parameter they concern, or the path inside the item (``details["path"]``):
# the helpers below make that the bundle's path, looking only at what the bundle wrote there (a text written as
# ``{zh_CN, en_US}``: its ``zh_CN``), never at the message.


def _keys(item: object) -> Mapping[str, str]:
    """The bundle's keys of an item's core parameters: a WeDa credential's pair has WeDa's names."""
    if isinstance(item, CredentialIn) and item.secretId is not None:
        return {**_KEYS, "client_id": "secretId", "client_secret": "secretKey"}
    return _KEYS


def _bundle_error(path: str, exc: ZidaError, source: str, item: object = None) -> BundleError:
    """A core action's error as the error of the bundle item at ``path`` (``item``: what the bundle wrote there)."""
    inner = exc.details.get("path")
    if isinstance(inner, str):
        problem = str(exc.details.get("problem") or exc.message)
        if isinstance(item, FormIn):
            inner = _in_form(item, inner)
        return BundleError(f"{path}.{inner}", problem, source)
    keys = _keys(item)
    message = exc.render(keys)
    if exc.reason == "user.holds_tasks":  # a bundle names no successor: say how to hand the tasks over
        instances = ", ".join(str(i) for i in exc.details.get("instances", ()))
        message = (
            f"cannot deactivate a user who holds {exc.details.get('tasks')} open task(s) (in {instances}): hand them"
            " over first (POST /admin/v1/users/{userId}/deactivate with handOverTo)"
        )
    if exc.param in _TOP_LEVEL:
        return BundleError(keys[exc.param], message, source)
    key = _REASON_KEYS.get(exc.reason) or keys.get(exc.param or "", exc.param)
    if key and isinstance(getattr(item, key, None), I18nText):  # an empty text: the Chinese one (the one required)
        key = f"{key}.zh_CN"
    return BundleError(f"{path}.{key}" if key else path, message, source)


async def _at(path: str, action: Awaitable[T], source: str, item: object = None) -> T:
    try:
        return await action
    except BundleError:
        raise
    except ZidaError as exc:
        raise _bundle_error(path, exc, source, item) from None


_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _value_at(data: Any, path: str) -> Any:
    """The value at ``path`` (``fields[2].label``) inside plain data; None: there is none."""
    for step in _STEP.finditer(path):
        key, index = step.groups()
        if key is not None and isinstance(data, Mapping):
            data = data.get(key)
        elif index is not None and isinstance(data, list) and int(index) < len(data):
            data = data[int(index)]
        else:
            return None
    return data


def _in_form(form: FormIn, inner: str) -> str:
    """``inner``, the path inside ``form`` its check names, made the path of the value the bundle wrote: of an empty
    label written as ``{zh_CN, en_US}``, its ``zh_CN``."""
    if inner.endswith(".label") and isinstance(_value_at(form.model_dump(), inner), dict):
        return f"{inner}.zh_CN"
    return inner


def query_template(t: QueryTemplateIn) -> QueryTemplate:
    """A bundle query template as the core's."""
    return QueryTemplate(
        t.name,
        t.model,
        t.where,
        tuple(t.orderBy),
        t.limit,
        tuple(QueryParameter(p.key, p.type, p.default, p.default is None) for p in t.parameters),
    )


def form_spec(form: FormIn, creator: str | None = None) -> FormSpec:
    """A bundle form as the core's ``FormSpec`` (``creator``: when the form names none)."""
    title, title_en = _text(form.title)
    return FormSpec(
        form_uuid=form.formUuid,
        title=title,
        title_en=title_en,
        form_type=form.type,
        fields=to_fields(form.fields),
        process=form.process,
        creator=form.creator or creator,
        model_name=form.modelName,
        search_indexes=tuple(tuple(c) for c in form.searchIndexes),
    )


def _check_form(form: FormIn, path: str, source: str) -> None:
    try:
        check_form(form_spec(form))
    except InvalidArgument as exc:
        raise _bundle_error(path, exc, source, form) from None


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
    to_index: list[FormWrite] = field(default_factory=list)
    # The cache scopes (``zida.cache``) whose data the load changed; emptied once it committed.
    scopes: set[str] = field(default_factory=set)

    def count(self, kind: str, outcome: str) -> None:
        """Record one entity's outcome (``created``/``updated``/``unchanged``)."""
        getattr(self, outcome)[kind] += 1

    def summary(self) -> str:
        """One line per kind."""
        kinds = sorted(set(self.created) | set(self.updated) | set(self.unchanged))
        return "\n".join(
            f"{k}: {self.created[k]} created, {self.updated[k]} updated, {self.unchanged[k]} unchanged" for k in kinds
        )

    def outcome(self, kind: str, outcome: Outcome, *scopes: str) -> None:
        """Count an action's outcome; a change marks the cache scopes it makes stale."""
        self.count(kind, outcome.value)
        if outcome is not Outcome.UNCHANGED:
            self.scopes.update(scopes)


# How far a load got: (section, objects written, objects in the section), at most every PROGRESS_STEP objects.
LoadProgress = Callable[[str, int, int], None]
PROGRESS_STEP = 1000


def _tick(progress: LoadProgress | None, section: str, done: int, total: int) -> None:
    if progress is not None and (done % PROGRESS_STEP == 0 or done == total):
        progress(section, done, total)


async def load_bundle(
    db: Database,
    box: SecretBox,
    bundle: BundleIn,
    source: str = "<bundle>",
    progress: LoadProgress | None = None,
) -> LoadReport:
    """Write a validated bundle as one transaction; loading the same bundle again changes nothing. ``progress``
    hears how far the departments, users and roles got (the big sections of a generated org)."""
    await check_server_key(db, box)
    report = LoadReport()
    now = now_ms()
    actor = f"bundle:{source}"
    org = (ORG_CACHE_SCOPE, APPS_CACHE_SCOPE)  # app members are directory facts too (who is active)
    async with db.transaction() as tx:
        c = bundle.corp
        env_id, env_type = (bundle.weda.envId, bundle.weda.envType) if bundle.weda else (None, None)
        corp, outcome = await _at(
            "corp",
            upsert_corp(
                tx,
                box,
                CorpSpec(c.corpId, c.name, c.taskApiCode, env_id, env_type),
                actor=actor,
                now=now,
            ),
            source,
        )
        report.outcome("corp", outcome, ORG_CACHE_SCOPE)
        for i, d in enumerate(bundle.departments):
            spec = DepartmentSpec(d.deptId, d.name, d.nameEn, d.parentId, tuple(d.managers), d.order)
            outcome = await _at(
                f"departments[{i}]",
                upsert_department(tx, corp, spec, actor=actor, now=now, references_checked=True),
                source,
                d,
            )
            report.outcome("departments", outcome, ORG_CACHE_SCOPE)
            _tick(progress, "departments", i + 1, len(bundle.departments))
        users = (
            await read_user_batch(
                tx, corp, (u.userId for u in bundle.users), (d for u in bundle.users for d in u.departments)
            )
            if bundle.users
            else None
        )
        for i, u in enumerate(bundle.users):
            user = UserSpec(
                user_id=u.userId,
                name=u.name,
                name_en=u.nameEn,
                departments=tuple(u.departments),
                manager=u.manager,
                title=u.title,
                mobile=u.mobile,
                email=u.email,
                union_id=u.unionId,
                password=u.password,
                active=u.active,
                username=u.username,
            )
            outcome = await _at(
                f"users[{i}]",
                upsert_user(
                    tx, corp, user, actor=actor, now=now, references_checked=True, batch=users, corp_locked=True
                ),
                source,
                u,
            )
            report.outcome("users", outcome, *org)
            _tick(progress, "users", i + 1, len(bundle.users))
        for i, r in enumerate(bundle.roles):
            role = RoleSpec(r.roleId, r.name, r.group, tuple(r.members))
            outcome = await _at(
                f"roles[{i}]", upsert_role(tx, corp, role, actor=actor, now=now, references_checked=True), source, r
            )
            report.outcome("roles", outcome, ORG_CACHE_SCOPE)
            _tick(progress, "roles", i + 1, len(bundle.roles))
        for i, cr in enumerate(bundle.credentials):
            credential = CredentialSpec(cr.client_id, tuple(granted_scopes(cr.scopes)), cr.secret, cr.rateLimit)
            outcome = await _at(
                f"credentials[{i}]", upsert_credential(tx, corp, credential, actor=actor, now=now), source, cr
            )
            report.outcome("credentials", outcome, CREDENTIALS_CACHE_SCOPE)
        for i, a in enumerate(bundle.apps):
            await _load_app(tx, box, corp, f"apps[{i}]", a, report, source, actor, now)
        for i, cb in enumerate(bundle.callbacks):
            # No check_url here: the receiver need not run while a bundle is loaded (the admin API checks it).
            callback = SubscriptionSpec(cb.kind, tuple(cb.tags), cb.url, cb.token, cb.aesKey, cb.schedule)
            outcome = await _at(
                f"callbacks[{i}]",
                upsert_subscription(tx, box, corp, cb.appKey, callback, actor=actor, now=now),
                source,
                cb,
            )
            report.outcome("callbacks", outcome)
        loaded = []
        for i, t in enumerate(bundle.weda.queryTemplates if bundle.weda else []):
            template = query_template(t)
            path = f"weda.queryTemplates[{i}]"
            await _at(path, check_against_model(tx, corp.pk, template), source)
            outcome = await _at(path, put_query_template(tx, corp.pk, template, actor=actor, now=now), source)
            report.outcome("query templates", outcome)
            loaded.append(template.name)
        # The stored templates the bundle does not name still fit the models its forms changed.
        await _at("weda.queryTemplates", check_stored_templates(tx, corp.pk, checked=loaded), source)
    # This process sees the changes at once, the other workers through the cache sync (or ZIDA_CACHE_SECONDS).
    if report.scopes:
        invalidate(*sorted(report.scopes))
    # Indexes are derived state, built after the commit (concurrently on PostgreSQL, so a big form keeps
    # taking writes meanwhile); the queries work without them, only slower. (SQLite's element rows, which
    # searches read directly, were written inside the transaction.)
    for written in report.to_index:
        report.indexes.extend(await ensure_field_indexes(db, written.form_pk, written.fields, written.search_indexes))
    directory = ("departments", "users", "roles")
    if sum(report.created[k] + report.updated[k] for k in directory) >= BULK_DIRECTORY_ROWS:
        await refresh_directory_statistics(db)
    return report


async def _load_app(
    tx: Connection,
    box: SecretBox,
    corp: CorpRef,
    path: str,
    a: AppIn,
    report: LoadReport,
    source: str,
    actor: str,
    now: int,
) -> None:
    name, name_en = _text(a.name)
    first_admin = a.admins[0] if a.admins else None
    spec = AppSpec(
        app_type=a.appType,
        name=name,
        name_en=name_en,
        description=a.description,
        icon=a.icon,
        status=a.status,
        secret=a.systemToken,
        admins=tuple(a.admins),
        creator=a.creator or first_admin,
    )
    outcome, _ = await _at(path, upsert_app(tx, box, corp, spec, actor=actor, now=now), source, a)
    report.outcome("apps", outcome, APPS_CACHE_SCOPE)
    for k, form in enumerate(a.forms):
        written = await _at(
            f"{path}.forms[{k}]",
            upsert_form(
                tx, corp, a.appType, form_spec(form, first_admin), actor=actor, now=now, references_checked=True
            ),
            source,
            form,
        )
        report.outcome("forms", written.outcome, APPS_CACHE_SCOPE)
        if written.new_version:
            report.count("form versions", "created")
        report.indexes.extend(written.indexes)
        report.to_index.append(written)
