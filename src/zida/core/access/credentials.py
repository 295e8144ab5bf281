"""App credentials: a client id and secret that obtain access tokens, and the neutral scopes those tokens grant.

Actions: create, change scopes, rotate the secret, revoke — each one transaction with its audit row and domain event
(``credential.created`` / ``updated`` / ``rotated`` / ``revoked``; ``zida.core.audit``); ``upsert_credential``
works inside the caller's transaction (``zida load``).

* **Secrets** are stored only as a slow salted hash (``zida.crypto.hash_secret``); a secret not given is generated
  (``secrets.token_urlsafe``) and returned exactly once, by the action that made it. No audit row, event, log or
  dump holds a secret or its hash (a change shows as ``{"changed": true}``).
* **Rotating or revoking** deletes the credential's access tokens in the same transaction and, once committed,
  empties the token caches (``zida.cache.invalidate("credentials")``): its tokens stop working at once on this
  worker and within the cache-sync interval on the others; the old secret no longer obtains tokens. Changing
  scopes keeps the tokens, which grant the new scopes as soon as the caches are emptied.
* **Rate limit**: a credential may have its own limit of calls per second and API (``rate_limit``; None: the
  server's ``ZIDA_RATE_LIMIT_QPS``, 0: none; ``zida.core.access.limits``), changed like its scopes.
* **Client ids** are unique across corps: creating one that exists is a ``Conflict``; another corp's credential
  does not exist for the caller (``NotFound``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from zida.cache import invalidate
from zida.clock import now_ms
from zida.core.access.tokens import CREDENTIALS_CACHE_SCOPE
from zida.core.audit import SECRET_CHANGED, Outcome, changed_fields, created_fields, record_change, removed_fields
from zida.core.errors import Conflict, InvalidArgument, NotFound
from zida.core.messages.models import APPROVAL_SENDER
from zida.core.org.models import CorpRef
from zida.core.principals import WILDCARD, Scope
from zida.core.todos.models import APPROVAL_SOURCE
from zida.crypto import hash_secret, verify_secret
from zida.db import Connection, Database, Row

__all__ = [
    "KEEP",
    "MAX_RATE_LIMIT",
    "MIN_SECRET_LENGTH",
    "Credential",
    "CredentialSpec",
    "IssuedSecret",
    "check_rate_limit",
    "check_scopes",
    "create_credential",
    "get_credential",
    "list_credentials",
    "new_client_id",
    "new_client_secret",
    "revoke_credential",
    "rotate_credential",
    "update_credential",
    "upsert_credential",
]

MIN_SECRET_LENGTH = 8
_MAX_CLIENT_ID = 128
MAX_RATE_LIMIT = 1_000_000  # calls per second and API: beyond this a limit means nothing
# ``update_credential``'s rate limit when it is not to change.
KEEP = object()


@dataclass(frozen=True, slots=True)
class Credential:
    """An app credential as the corp's admins see it (never its secret)."""

    client_id: str
    scopes: tuple[str, ...]
    created_at: int
    updated_at: int
    rate_limit: int | None = None


@dataclass(frozen=True, slots=True)
class CredentialSpec:
    """A credential as an action writes it (``secret`` None: keep the current one; a new credential needs one)."""

    client_id: str
    scopes: tuple[str, ...]
    secret: str | None = None
    rate_limit: int | None = None  # calls per second and API (None: the server's default; 0: none)


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A credential and its new secret, returned this once."""

    credential: Credential
    secret: str


def new_client_id() -> str:
    """A generated client id (``ding`` and 16 hex digits, like DingTalk's appKeys)."""
    return "ding" + secrets.token_hex(8)


def new_client_secret() -> str:
    """A generated client secret."""
    return secrets.token_urlsafe(32)


def check_scopes(names: Iterable[str]) -> list[str]:
    """The stored form of neutral scope names (``["*"]`` or the sorted names); anything else is refused."""
    out: set[str] = set()
    for name in names:
        if name == WILDCARD:
            return [WILDCARD]
        if not isinstance(name, str) or name not in Scope._value2member_map_:
            raise InvalidArgument(f"unknown scope {name!r}", reason="credential.unknown_scope", param="scopes")
        out.add(name)
    if not out:
        raise InvalidArgument("{param} must grant at least one scope", reason="argument.invalid", param="scopes")
    return sorted(out)


# Client ids that name Zida itself where a credential's id would be (the sender of approval notifications, the
# source of approval tasks' to-dos): no credential may take them.
RESERVED_CLIENT_IDS = frozenset({APPROVAL_SENDER, APPROVAL_SOURCE})


def _check_client_id(client_id: str) -> str:
    if client_id in RESERVED_CLIENT_IDS:
        raise InvalidArgument(
            f"the client id {client_id!r} is reserved (Zida's own notifications and to-dos use it)",
            reason="argument.invalid",
            param="client_id",
        )
    if (
        not isinstance(client_id, str)
        or not client_id
        or client_id != client_id.strip()
        or len(client_id) > _MAX_CLIENT_ID
        or not client_id.isprintable()
        or "/" in client_id  # a path segment of the admin API (/admin/v1/credentials/{appKey})
    ):
        raise InvalidArgument(
            f"a client id must be 1 to {_MAX_CLIENT_ID} printable characters without surrounding spaces or /",
            reason="argument.invalid",
            param="client_id",
        )
    return client_id


def _check_secret(secret: str | None) -> None:
    if secret is not None and (not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH):
        raise InvalidArgument(
            f"{{param}} must be at least {MIN_SECRET_LENGTH} characters",
            reason="argument.invalid",
            param="client_secret",
        )


def check_rate_limit(value: object) -> int | None:
    """A credential's rate limit: None (the server's default) or 0 (none) to ``MAX_RATE_LIMIT`` calls per second."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RATE_LIMIT
    ):
        raise InvalidArgument(
            f"{{param}} must be a whole number of calls per second from 0 (no limit) to {MAX_RATE_LIMIT}, or null"
            " (the server's default)",
            reason="argument.invalid",
            param="rate_limit",
        )
    return value


def _credential(row: Row) -> Credential:
    return Credential(
        client_id=row["app_key"],
        scopes=tuple(orjson.loads(row["scopes"])),
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
        rate_limit=row["rate_limit"],
    )


async def get_credential(conn: Connection, corp_pk: int, client_id: str) -> Credential | None:
    """One credential of the corp; None for an unknown one or another corp's."""
    row = await conn.fetchrow(
        "SELECT app_key, scopes, created_at, updated_at, rate_limit FROM credential"
        " WHERE app_key = :k AND corp_pk = :c",
        {"k": client_id, "c": corp_pk},
    )
    return None if row is None else _credential(row)


async def list_credentials(conn: Connection, corp_pk: int) -> list[Credential]:
    """The corp's credentials, oldest first."""
    rows = await conn.fetch(
        "SELECT app_key, scopes, created_at, updated_at, rate_limit FROM credential WHERE corp_pk = :c ORDER BY id",
        {"c": corp_pk},
    )
    return [_credential(r) for r in rows]


async def _stored(tx: Connection, client_id: str) -> Row | None:
    return await tx.fetchrow(
        f"SELECT id, corp_pk, secret_hash, scopes, rate_limit FROM credential WHERE app_key = :k{tx.sql.for_update}",
        {"k": client_id},
    )


async def _own(tx: Connection, corp: CorpRef, client_id: str) -> Row:
    row = await _stored(tx, client_id)
    if row is None or row["corp_pk"] != corp.pk:
        raise NotFound(f"credential {client_id} does not exist", reason="credential.not_found", param="client_id")
    return row


async def _write(
    tx: Connection,
    corp: CorpRef,
    client_id: str,
    scopes: list[str],
    secret_hash: str | None,
    row: Row | None,
    *,
    rate_limit: int | None,
    actor: str | None,
    now: int,
) -> Outcome:
    """Write a credential: ``secret_hash`` None keeps the stored secret (a new credential must have one)."""
    if row is None:
        assert secret_hash is not None
        pk = await tx.fetchval(
            "INSERT INTO credential (corp_pk, app_key, secret_hash, scopes, rate_limit, created_at, updated_at)"
            f" VALUES (:c, :k, :h, {tx.sql.json_param('scopes')}, :rl, :now, :now) ON CONFLICT (app_key) DO NOTHING"
            " RETURNING id",
            {
                "c": corp.pk,
                "k": client_id,
                "h": secret_hash,
                "scopes": orjson.dumps(scopes).decode(),
                "rl": rate_limit,
                "now": now,
            },
        )
        if pk is None:
            raise Conflict(f"credential {client_id} already exists", reason="credential.exists", param="client_id")
        created = {"scopes": scopes} if rate_limit is None else {"scopes": scopes, "rate_limit": rate_limit}
        changes = {**created_fields(created), "secret": SECRET_CHANGED}
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="credential",
            object_id=client_id,
            action="created",
            changes=changes,
            actor=actor,
            at=now,
        )
        return Outcome.CREATED
    changes = changed_fields(
        {"scopes": orjson.loads(row["scopes"]), "rate_limit": row["rate_limit"]},
        {"scopes": scopes, "rate_limit": rate_limit},
    )
    if secret_hash is not None:
        changes["secret"] = SECRET_CHANGED
    if not changes:
        return Outcome.UNCHANGED
    await tx.execute(
        f"UPDATE credential SET scopes = {tx.sql.json_param('scopes')}, secret_hash = :h, rate_limit = :rl,"
        " updated_at = :now WHERE id = :pk",
        {
            "scopes": orjson.dumps(scopes).decode(),
            "h": secret_hash or row["secret_hash"],
            "rl": rate_limit,
            "now": now,
            "pk": row["id"],
        },
    )
    if secret_hash is not None:  # tokens obtained with the old secret stop working with it
        await tx.execute("DELETE FROM access_token WHERE credential_pk = :pk", {"pk": row["id"]})
    action = "rotated" if list(changes) == ["secret"] else "updated"
    await record_change(
        tx, corp_pk=corp.pk, kind="credential", object_id=client_id, action=action, changes=changes, actor=actor, at=now
    )
    return Outcome.UPDATED


async def upsert_credential(
    tx: Connection, corp: CorpRef, spec: CredentialSpec, *, actor: str | None, now: int
) -> Outcome:
    """Inside the caller's transaction: create a credential or update its scopes and secret (the same secret again
    changes nothing)."""
    client_id = _check_client_id(spec.client_id)
    scopes = check_scopes(spec.scopes)
    _check_secret(spec.secret)
    rate_limit = check_rate_limit(spec.rate_limit)
    row = await _stored(tx, client_id)
    if row is not None and row["corp_pk"] != corp.pk:
        raise Conflict(f"credential {client_id} belongs to another corp", reason="credential.taken", param="client_id")
    secret_hash: str | None = None
    if spec.secret is None:
        if row is None:
            raise InvalidArgument(
                "a new credential needs a secret ({param})", reason="argument.missing", param="client_secret"
            )
    elif row is None or not await asyncio.to_thread(verify_secret, spec.secret, row["secret_hash"]):
        secret_hash = await asyncio.to_thread(hash_secret, spec.secret)
    return await _write(tx, corp, client_id, scopes, secret_hash, row, rate_limit=rate_limit, actor=actor, now=now)


async def create_credential(
    db: Database,
    corp: CorpRef,
    scopes: Iterable[str],
    *,
    actor: str | None,
    client_id: str | None = None,
    secret: str | None = None,
    rate_limit: int | None = None,
) -> IssuedSecret:
    """Create a credential granting neutral ``scopes`` (a generated client id and secret unless given)."""
    client_id = _check_client_id(client_id or new_client_id())
    stored_scopes = check_scopes(scopes)
    _check_secret(secret)
    check_rate_limit(rate_limit)
    secret = secret or new_client_secret()
    secret_hash = await asyncio.to_thread(hash_secret, secret)  # ~50 ms of scrypt, outside the transaction
    async with db.transaction() as tx:
        if await _stored(tx, client_id) is not None:
            raise Conflict(f"credential {client_id} already exists", reason="credential.exists", param="client_id")
        await _write(
            tx, corp, client_id, stored_scopes, secret_hash, None, rate_limit=rate_limit, actor=actor, now=now_ms()
        )
    credential = await get_credential(db, corp.pk, client_id)
    assert credential is not None
    return IssuedSecret(credential, secret)


async def update_credential(
    db: Database,
    corp: CorpRef,
    client_id: str,
    *,
    scopes: Iterable[str] | None = None,
    rate_limit: int | object | None = KEEP,
    actor: str | None,
) -> Credential:
    """Replace the scopes a credential grants and its rate limit (None, ``KEEP``: unchanged); its tokens follow
    once the caches are emptied."""
    stored_scopes = check_scopes(scopes) if scopes is not None else None
    new_limit = check_rate_limit(rate_limit) if rate_limit is not KEEP else None
    async with db.transaction() as tx:
        row = await _own(tx, corp, client_id)
        outcome = await _write(
            tx,
            corp,
            client_id,
            stored_scopes if stored_scopes is not None else orjson.loads(row["scopes"]),
            None,
            row,
            rate_limit=row["rate_limit"] if rate_limit is KEEP else new_limit,
            actor=actor,
            now=now_ms(),
        )
    if outcome is not Outcome.UNCHANGED:
        invalidate(CREDENTIALS_CACHE_SCOPE)
    credential = await get_credential(db, corp.pk, client_id)
    assert credential is not None
    return credential


async def rotate_credential(
    db: Database, corp: CorpRef, client_id: str, *, actor: str | None, secret: str | None = None
) -> IssuedSecret:
    """Give a credential a new secret (generated unless given): its tokens and its old secret stop working."""
    _check_secret(secret)
    secret = secret or new_client_secret()
    secret_hash = await asyncio.to_thread(hash_secret, secret)
    async with db.transaction() as tx:
        row = await _own(tx, corp, client_id)
        scopes = orjson.loads(row["scopes"])
        await _write(
            tx, corp, client_id, scopes, secret_hash, row, rate_limit=row["rate_limit"], actor=actor, now=now_ms()
        )
    invalidate(CREDENTIALS_CACHE_SCOPE)
    credential = await get_credential(db, corp.pk, client_id)
    assert credential is not None
    return IssuedSecret(credential, secret)


async def revoke_credential(db: Database, corp: CorpRef, client_id: str, *, actor: str | None) -> None:
    """Delete a credential and its tokens: they stop working, and the client id may be created anew."""
    async with db.transaction() as tx:
        row = await _own(tx, corp, client_id)
        await tx.execute("DELETE FROM access_token WHERE credential_pk = :pk", {"pk": row["id"]})
        await tx.execute("DELETE FROM credential WHERE id = :pk", {"pk": row["id"]})
        await record_change(
            tx,
            corp_pk=corp.pk,
            kind="credential",
            object_id=client_id,
            action="revoked",
            changes=removed_fields({"scopes": orjson.loads(row["scopes"])}),
            actor=actor,
            at=now_ms(),
        )
    invalidate(CREDENTIALS_CACHE_SCOPE)
