"""Event subscriptions: where a corp's events go, per app credential and kind of delivery.

A subscription belongs to an app credential (its client id is the DingTalk appKey / Stream clientId) and is one of
three kinds: ``callback`` (registered with DingTalk's ``register_call_back``: the legacy payloads, encrypted with
the corp id as owner key), ``http`` (an event-subscription HTTP push: the ``EventType, EventTime, CorpId, BizId,
eventId`` envelope, the appKey as owner key) and ``stream`` (Stream mode: events go to the credential's WebSocket
connections). A credential has at most one subscription of each kind.

``tags`` are the event types it receives, in the delivering dialect's words (``bpms_instance_change``…; ``*``: every
type that is not opt-in); the dialect checks them against its vocabulary before calling an action here.

``schedule`` is how failed pushes are retried (``zida.core.events.delivery``): ``dingtalk`` (a registration through
DingTalk's API: +10 s and +30 s, then the failed list, as DingTalk does) or ``persistent`` (bundle, admin API and
Stream: the subscription backs off and probes until its receiver answers, for up to the retry window).

A subscription receives the events committed after it was made (``start_event_id``: the outbox's last id then).
Token and aes_key are needed in clear to sign and encrypt every push, so they are stored encrypted with the server
key (``zida.crypto.SecretBox``), never hashed; audit rows and events show them only as ``{"changed": true}``.

Actions (register, update, remove; ``upsert_subscription`` inside ``zida load``'s transaction) are one transaction
each with their audit row and ``subscription.*`` event, except the topic changes of a Stream subscription that its
connections make (``audit_changes=False``: neither audit row nor event; its creation has both).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from zida.clock import now_ms
from zida.core.audit import SECRET_CHANGED, Outcome, changed_fields, created_fields, record_change, removed_fields
from zida.core.errors import Conflict, InvalidArgument, NotFound
from zida.core.org.models import CorpRef
from zida.crypto import SecretBox
from zida.db import Connection, Database, Row

__all__ = [
    "CALLBACK",
    "DINGTALK_SCHEDULE",
    "HTTP",
    "KINDS",
    "PERSISTENT_SCHEDULE",
    "STREAM",
    "Subscription",
    "SubscriptionSpec",
    "check_spec",
    "credential_subscription",
    "find_subscription",
    "get_subscription",
    "list_subscriptions",
    "load_subscriptions",
    "register_subscription",
    "remove_subscription",
    "upsert_subscription",
]

CALLBACK = "callback"
HTTP = "http"
STREAM = "stream"
KINDS = (CALLBACK, HTTP, STREAM)
DINGTALK_SCHEDULE = "dingtalk"
PERSISTENT_SCHEDULE = "persistent"
_SCHEDULES = (DINGTALK_SCHEDULE, PERSISTENT_SCHEDULE)

_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
_TOKEN = re.compile(r"[\x21-\x7e]{6,64}")  # printable ASCII without blanks
_TAG = re.compile(r"[A-Za-z0-9_*.:/-]{1,128}")
_MAX_URL = 2048
_MAX_TAGS = 200

_COLUMNS = (
    "s.id, s.corp_pk, s.credential_pk, s.kind, s.url, s.token_enc, s.aes_key_enc, s.tags, s.schedule,"
    " s.start_event_id, s.failing_since, s.failures, s.retry_at, s.last_error, s.last_delivered_at, s.created_at,"
    " s.updated_at, c.app_key, co.corp_id"
)
_FROM = " FROM event_subscription s JOIN credential c ON c.id = s.credential_pk JOIN corp co ON co.id = s.corp_pk"


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A subscription as an action writes it (``url``, ``token``, ``aes_key``: None for Stream)."""

    kind: str
    tags: tuple[str, ...]
    url: str | None = None
    token: str | None = None
    aes_key: str | None = None
    schedule: str = PERSISTENT_SCHEDULE


@dataclass(frozen=True, slots=True)
class Subscription:
    """A stored subscription, secrets decrypted, with its receiver's health."""

    pk: int
    corp_pk: int
    corp_id: str
    credential_pk: int
    client_id: str
    kind: str
    url: str | None
    token: str | None
    aes_key: str | None
    tags: tuple[str, ...]
    schedule: str
    start_event_id: int
    failing_since: int | None
    failures: int
    retry_at: int | None
    last_error: str | None
    last_delivered_at: int | None
    created_at: int
    updated_at: int

    def receives(self, tag: str, *, opt_in: bool = False) -> bool:
        """Whether events of ``tag`` go here (an opt-in tag only when named, never through ``*``)."""
        return tag in self.tags or (not opt_in and "*" in self.tags)


def _invalid(message: str, param: str, reason: str = "argument.invalid") -> InvalidArgument:
    return InvalidArgument(message, reason=reason, param=param)


# A host name: dot-separated labels of 1-63 letters, digits, hyphens and underscores (container service names have
# them), no hyphen at either end of a label.
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")


def check_url(url: str | None) -> str:
    """An absolute http(s) URL with a host, no credentials and no fragment."""
    if not isinstance(url, str) or not url:
        raise _invalid("{param} is required", "url", "argument.missing")
    if len(url) > _MAX_URL or not url.isprintable() or any(c.isspace() for c in url):
        raise _invalid(f"{{param}} must be a URL of at most {_MAX_URL} printable characters", "url", "event.bad_url")
    if not url.isascii():
        raise _invalid(
            "{param} must be ASCII: percent-encode its path and query, and give the host in its IDNA form (xn--…)",
            "url",
            "event.bad_url",
        )
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise _invalid("{param} has an invalid host", "url", "event.bad_url") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise _invalid("{param} must be an http:// or https:// URL with a host", "url", "event.bad_url")
    if not _HOST.fullmatch(hostname) and not _is_ip(hostname):
        raise _invalid(f"{{param}} has an invalid host {hostname!r}", "url", "event.bad_url")
    if parts.username or parts.password or parts.fragment:
        raise _invalid("{param} must not carry credentials or a #fragment", "url", "event.bad_url")
    try:
        port = parts.port  # raises on a port out of range
    except ValueError:
        port = 0
    if port == 0:
        raise _invalid("{param} has an invalid port", "url", "event.bad_url")
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_spec(spec: SubscriptionSpec) -> SubscriptionSpec:
    """Refuse a spec that cannot be delivered: kind, schedule, URL, token (6–64 printable characters), aes_key (43
    letters and digits) and tags (1 to 200 names)."""
    if spec.kind not in KINDS:
        raise _invalid(f"kind must be one of {', '.join(KINDS)}, got {spec.kind!r}", "kind")
    if spec.schedule not in _SCHEDULES:
        raise _invalid(f"schedule must be one of {', '.join(_SCHEDULES)}, got {spec.schedule!r}", "schedule")
    tags = tuple(dict.fromkeys(spec.tags))
    if not tags or len(tags) > _MAX_TAGS:
        raise _invalid(f"{{param}} must name 1 to {_MAX_TAGS} event types", "tags", "event.bad_tags")
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise _invalid(f"{{param}}: {tag!r} is not an event type name", "tags", "event.bad_tags")
    if spec.kind == STREAM:
        given = [name for name in ("url", "token", "aes_key") if getattr(spec, name) is not None]
        if given:  # the parameter at fault: the first one given
            raise _invalid("a Stream subscription has no url, token or aes_key", given[0])
        return SubscriptionSpec(kind=STREAM, tags=tags, schedule=PERSISTENT_SCHEDULE)
    url = check_url(spec.url)
    if not isinstance(spec.token, str) or not _TOKEN.fullmatch(spec.token):
        raise _invalid("{param} must be 6 to 64 printable characters without blanks", "token", "event.bad_token")
    if not isinstance(spec.aes_key, str) or not _AES_KEY.fullmatch(spec.aes_key):
        raise _invalid(
            f"{{param}} must be exactly 43 letters and digits, got {len(spec.aes_key or '')} characters",
            "aes_key",
            "event.bad_aes_key",
        )
    return SubscriptionSpec(
        kind=spec.kind, tags=tags, url=url, token=spec.token, aes_key=spec.aes_key, schedule=spec.schedule
    )


def _subscription(row: Row, box: SecretBox) -> Subscription:
    return Subscription(
        pk=int(row["id"]),
        corp_pk=int(row["corp_pk"]),
        corp_id=row["corp_id"],
        credential_pk=int(row["credential_pk"]),
        client_id=row["app_key"],
        kind=row["kind"],
        url=row["url"],
        token=box.decrypt(row["token_enc"]) if row["token_enc"] else None,
        aes_key=box.decrypt(row["aes_key_enc"]) if row["aes_key_enc"] else None,
        tags=tuple(orjson.loads(row["tags"])),
        schedule=row["schedule"],
        start_event_id=int(row["start_event_id"]),
        failing_since=row["failing_since"],
        failures=int(row["failures"]),
        retry_at=row["retry_at"],
        last_error=row["last_error"],
        last_delivered_at=row["last_delivered_at"],
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
    )


async def load_subscriptions(conn: Connection, box: SecretBox, corp_pk: int | None = None) -> list[Subscription]:
    """Every subscription (of one corp), oldest first."""
    where, params = ("", {}) if corp_pk is None else (" WHERE s.corp_pk = :c", {"c": corp_pk})
    rows = await conn.fetch(f"SELECT {_COLUMNS}{_FROM}{where} ORDER BY s.id", params)
    return [_subscription(r, box) for r in rows]


async def list_subscriptions(conn: Connection, box: SecretBox, corp_pk: int) -> list[Subscription]:
    """The corp's subscriptions, oldest first."""
    return await load_subscriptions(conn, box, corp_pk)


async def find_subscription(conn: Connection, box: SecretBox, corp_pk: int, pk: int) -> Subscription | None:
    """One subscription of the corp by id (None: unknown, or another corp's)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS}{_FROM} WHERE s.id = :id AND s.corp_pk = :c", {"id": pk, "c": corp_pk})
    return None if row is None else _subscription(row, box)


async def get_subscription(conn: Connection, box: SecretBox, corp_pk: int, pk: int) -> Subscription:
    """One subscription of the corp by id; ``NotFound`` when the corp has none of that id (another corp's too)."""
    found = await find_subscription(conn, box, corp_pk, pk)
    if found is None:
        raise NotFound(f"event subscription {pk} does not exist", reason="event.subscription_not_found")
    return found


async def credential_subscription(
    conn: Connection, box: SecretBox, corp_pk: int, client_id: str, kind: str
) -> Subscription | None:
    """The credential's subscription of ``kind`` (None when it has none)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}{_FROM} WHERE c.app_key = :k AND s.corp_pk = :c AND s.kind = :kind",
        {"k": client_id, "c": corp_pk, "kind": kind},
    )
    return None if row is None else _subscription(row, box)


async def _credential_pk(tx: Connection, corp: CorpRef, client_id: str) -> int:
    pk = await tx.fetchval(
        "SELECT id FROM credential WHERE app_key = :k AND corp_pk = :c", {"k": client_id, "c": corp.pk}
    )
    if pk is None:
        raise NotFound(f"credential {client_id} does not exist", reason="credential.not_found", param="client_id")
    return int(pk)


def _public(spec: SubscriptionSpec) -> dict[str, Any]:
    """What the audit log shows of a spec (the URL and tags; secrets only as changed)."""
    return {"kind": spec.kind, "url": spec.url, "tags": list(spec.tags), "schedule": spec.schedule}


async def _stored(tx: Connection, credential_pk: int, kind: str) -> Row | None:
    return await tx.fetchrow(
        "SELECT id, url, token_enc, aes_key_enc, tags, schedule FROM event_subscription"
        f" WHERE credential_pk = :cr AND kind = :kind{tx.sql.for_update}",
        {"cr": credential_pk, "kind": kind},
    )


async def _write(
    tx: Connection,
    box: SecretBox,
    corp: CorpRef,
    client_id: str,
    spec: SubscriptionSpec,
    *,
    replace: bool | None,
    actor: str | None,
    now: int,
    audit_changes: bool = True,
) -> tuple[int, Outcome]:
    """Insert or change the credential's subscription of ``spec.kind`` (``replace``: True only change, False only
    insert, None either; ``audit_changes`` False: a change writes neither audit row nor ``subscription.updated``
    event, a creation always does); returns its id and what happened."""
    credential_pk = await _credential_pk(tx, corp, client_id)
    row = await _stored(tx, credential_pk, spec.kind)
    object_id = f"{client_id}/{spec.kind}"
    token_enc = box.encrypt(spec.token) if spec.token else None
    aes_enc = box.encrypt(spec.aes_key) if spec.aes_key else None
    tags = orjson.dumps(list(spec.tags)).decode()
    if row is None:
        if replace is True:
            raise NotFound(f"{client_id} has no {spec.kind} subscription", reason="event.subscription_not_found")
        start = await tx.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox_event")
        pk = await tx.fetchval(
            "INSERT INTO event_subscription (corp_pk, credential_pk, kind, url, token_enc, aes_key_enc, tags,"
            " schedule, start_event_id, created_at, updated_at) VALUES (:c, :cr, :kind, :url, :t, :a,"
            f" {tx.sql.json_param('tags')}, :schedule, :start, :now, :now) RETURNING id",
            {
                "c": corp.pk,
                "cr": credential_pk,
                "kind": spec.kind,
                "url": spec.url,
                "t": token_enc,
                "a": aes_enc,
                "tags": tags,
                "schedule": spec.schedule,
                "start": int(start),
                "now": now,
            },
        )
        changes = created_fields(_public(spec))
        if spec.token:
            changes.update(token=SECRET_CHANGED, aes_key=SECRET_CHANGED)
        await record_change(
            tx, corp_pk=corp.pk, kind="subscription", object_id=object_id, action="created", changes=changes,
            actor=actor, at=now,
        )  # fmt: skip
        return int(pk), Outcome.CREATED
    if replace is False:
        raise Conflict(f"{client_id} already has a {spec.kind} subscription", reason="event.subscription_exists")
    old = {"kind": spec.kind, "url": row["url"], "tags": orjson.loads(row["tags"]), "schedule": row["schedule"]}
    changes = changed_fields(old, _public(spec))
    if spec.token and (not row["token_enc"] or box.decrypt(row["token_enc"]) != spec.token):
        changes["token"] = SECRET_CHANGED
    if spec.aes_key and (not row["aes_key_enc"] or box.decrypt(row["aes_key_enc"]) != spec.aes_key):
        changes["aes_key"] = SECRET_CHANGED
    if changes:
        await tx.execute(
            "UPDATE event_subscription SET url = :url, token_enc = :t, aes_key_enc = :a,"
            f" tags = {tx.sql.json_param('tags')}, schedule = :schedule, updated_at = :now WHERE id = :id",
            {"url": spec.url, "t": token_enc, "a": aes_enc, "tags": tags, "schedule": spec.schedule, "now": now,
             "id": row["id"]},
        )  # fmt: skip
    if changes and audit_changes:
        await record_change(
            tx, corp_pk=corp.pk, kind="subscription", object_id=object_id, action="updated", changes=changes,
            actor=actor, at=now,
        )  # fmt: skip
    return int(row["id"]), Outcome.UPDATED if changes else Outcome.UNCHANGED


async def register_subscription(
    db: Database,
    box: SecretBox,
    corp: CorpRef,
    client_id: str,
    spec: SubscriptionSpec,
    *,
    replace: bool | None,
    actor: str | None,
    audit_changes: bool = True,
) -> int:
    """Create (``replace`` False), change (True) or either (None) the credential's subscription of ``spec.kind``;
    the caller has checked the receiver (``check_url``) already. Returns its id. ``audit_changes`` False: a change
    is not audited (a Stream connection's topics: a creation is)."""
    spec = check_spec(spec)
    async with db.transaction() as tx:
        pk, _ = await _write(
            tx, box, corp, client_id, spec, replace=replace, actor=actor, now=now_ms(), audit_changes=audit_changes
        )
    return pk


async def upsert_subscription(
    tx: Connection,
    box: SecretBox,
    corp: CorpRef,
    client_id: str,
    spec: SubscriptionSpec,
    *,
    actor: str | None,
    now: int,
) -> Outcome:
    """Inside the caller's transaction (``zida load``): create or change the credential's subscription; a token or
    aes_key left out keeps the stored one (a dump holds neither)."""
    if spec.kind != STREAM and (spec.token is None or spec.aes_key is None):
        row = await _stored(tx, await _credential_pk(tx, corp, client_id), spec.kind)
        if row is not None and row["token_enc"] and row["aes_key_enc"]:
            spec = SubscriptionSpec(
                spec.kind,
                spec.tags,
                spec.url,
                spec.token or box.decrypt(row["token_enc"]),
                spec.aes_key or box.decrypt(row["aes_key_enc"]),
                spec.schedule,
            )
    _, outcome = await _write(tx, box, corp, client_id, check_spec(spec), replace=None, actor=actor, now=now)
    return outcome


async def remove_subscription(db: Database, corp: CorpRef, client_id: str, kind: str, *, actor: str | None) -> bool:
    """Delete the credential's subscription of ``kind`` and its deliveries (False: it had none)."""
    async with db.transaction() as tx:
        credential_pk = await _credential_pk(tx, corp, client_id)
        row = await _stored(tx, credential_pk, kind)
        if row is None:
            return False
        await tx.execute("DELETE FROM event_subscription WHERE id = :id", {"id": row["id"]})
        old = {"kind": kind, "url": row["url"], "tags": orjson.loads(row["tags"]), "schedule": row["schedule"]}
        await record_change(
            tx, corp_pk=corp.pk, kind="subscription", object_id=f"{client_id}/{kind}", action="deleted",
            changes=removed_fields(old), actor=actor, at=now_ms(),
        )  # fmt: skip
        return True


def subscription_specs(subs: Sequence[Subscription]) -> list[SubscriptionSpec]:
    """The specs that would write these subscriptions again (``zida dump``)."""
    return [SubscriptionSpec(s.kind, s.tags, s.url, s.token, s.aes_key, s.schedule) for s in subs]
