"""Access tokens (issue, renew, check), app credentials, systemToken and org-token checks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from zida.cache import TtlCache
from zida.clock import now_ms
from zida.core.errors import InvalidArgument, Misconfigured, NotFound, PermissionDenied, Unauthenticated
from zida.core.principals import AppActor, Grant, IssuedToken, has_scope
from zida.crypto import SecretBox, digest, verify_secret
from zida.db import Connection, Database

__all__ = [
    "TokenService",
    "app_actor",
    "check_org_token",
    "check_server_key",
    "org_token",
    "require_scope",
    "resolve_app_actor",
    "system_token_digest",
]


# Successful systemToken + userId checks (only successes are cached; see zida.cache).
_ACTORS: TtlCache[tuple[object, ...], AppActor] = TtlCache()


def require_scope(grant: Grant, scope: str) -> None:
    """Raise ``PermissionDenied('auth.scope_missing')`` unless the grant holds ``scope``."""
    if not has_scope(grant.scopes, scope):
        raise PermissionDenied(
            f"the app credential {grant.app_key} lacks the scope {scope}",
            reason="auth.scope_missing",
            required_scopes=[scope],
        )


@dataclass
class _CachedGrant:
    grant: Grant
    checked_at: float


@dataclass
class TokenService:
    """Issues and checks access tokens.

    A token is ``HMAC(server key, token_key)``: the database keeps only the random ``token_key`` and the
    token's SHA-256, so asking again within validity can hand back the same token (DingTalk semantics:
    same token, validity renewed) without storing it. Checks are served from an in-process cache that is
    re-validated against the database every ``revalidate_seconds`` (so a renewal or a revoked credential
    done by another worker is seen) and on expiry; the hot path makes no database round trip.
    """

    db: Database
    box: SecretBox
    ttl_seconds: int = 7200
    revalidate_seconds: float = 30.0
    cache_size: int = 10_000
    _cache: OrderedDict[str, _CachedGrant] = field(default_factory=OrderedDict)
    _verified_secrets: dict[int, bytes] = field(default_factory=dict)
    _pepper: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    async def _secret_ok(self, credential_pk: int, secret: str, stored_hash: str) -> bool:
        # scrypt costs ~50 ms (run off the event loop); remember a keyed digest of the last verified secret.
        mark = hmac.new(self._pepper, f"{credential_pk}:{stored_hash}:{secret}".encode(), hashlib.sha256).digest()
        known = self._verified_secrets.get(credential_pk)
        if known is not None and hmac.compare_digest(known, mark):
            return True
        if await asyncio.to_thread(verify_secret, secret, stored_hash):
            self._verified_secrets[credential_pk] = mark
            return True
        return False

    async def issue(self, app_key: str, app_secret: str, corp_id: str | None = None) -> IssuedToken:
        """Token for an app credential; within validity the same token comes back with renewed validity."""
        if not app_key or not app_secret:
            raise InvalidArgument("appKey and appSecret are required", reason="auth.credentials_missing")
        row = await self.db.fetchrow(
            "SELECT c.id, c.secret_hash, co.corp_id FROM credential c JOIN corp co ON co.id = c.corp_pk"
            " WHERE c.app_key = :app_key",
            {"app_key": app_key},
        )
        if row is None:
            # Spend comparable time whether or not the key exists (off the event loop: scrypt takes ~50 ms).
            await asyncio.to_thread(verify_secret, app_secret, _DUMMY_HASH)
            raise Unauthenticated("invalid appKey or appSecret", reason="auth.bad_credentials")
        if not await self._secret_ok(row["id"], app_secret, row["secret_hash"]):
            raise Unauthenticated("invalid appKey or appSecret", reason="auth.bad_credentials")
        if corp_id is not None and corp_id != row["corp_id"]:
            raise Unauthenticated("the credential does not belong to this corp", reason="auth.bad_credentials")
        now = now_ms()
        expires_at = now + self.ttl_seconds * 1000
        async with self.db.transaction() as tx:
            current = await tx.fetchrow(
                "SELECT id, token_key, token_digest FROM access_token WHERE credential_pk = :c AND expires_at > :now"
                " ORDER BY expires_at DESC LIMIT 1",
                {"c": row["id"], "now": now},
            )
            if current is not None and not hmac.compare_digest(
                current["token_digest"], digest(self._token(current["token_key"]))
            ):
                # Derived with another server key: that token can never authenticate again, so replace it.
                await tx.execute("DELETE FROM access_token WHERE id = :id", {"id": current["id"]})
                current = None
            if current is not None:
                token_key = current["token_key"]
                await tx.execute(
                    "UPDATE access_token SET expires_at = :e WHERE id = :id",
                    {"e": expires_at, "id": current["id"]},
                )
            else:
                token_key = secrets.token_hex(16)
                await tx.execute(
                    "DELETE FROM access_token WHERE credential_pk = :c AND expires_at <= :now",
                    {"c": row["id"], "now": now},
                )
                await tx.execute(
                    "INSERT INTO access_token (credential_pk, token_key, token_digest, expires_at, created_at)"
                    " VALUES (:c, :k, :d, :e, :now)",
                    {
                        "c": row["id"],
                        "k": token_key,
                        "d": digest(self._token(token_key)),
                        "e": expires_at,
                        "now": now,
                    },
                )
        token = self._token(token_key)
        self._cache.pop(digest(token), None)
        return IssuedToken(token=token, expires_in=self.ttl_seconds)

    def _token(self, token_key: str) -> str:
        return self.box.derive("access-token", token_key)

    async def authenticate(self, token: str | None) -> Grant:
        """The grant behind ``token``; raises ``Unauthenticated`` for a missing, unknown or expired token."""
        if not token:
            raise Unauthenticated("missing access token", reason="auth.token_missing")
        key = digest(token)
        now = time.monotonic()
        cached = self._cache.get(key)
        fresh = cached is not None and now - cached.checked_at < self.revalidate_seconds
        if cached is not None and fresh and cached.grant.expires_at > now_ms():
            return cached.grant
        grant = await self._load(key)
        if grant is None:
            self._cache.pop(key, None)
            raise Unauthenticated("invalid access token", reason="auth.token_invalid")
        if grant.expires_at <= now_ms():
            self._cache.pop(key, None)
            raise Unauthenticated("access token expired", reason="auth.token_expired")
        self._cache[key] = _CachedGrant(grant, now)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return grant

    async def _load(self, token_digest: str) -> Grant | None:
        row = await self.db.fetchrow(
            "SELECT c.id, c.app_key, c.scopes, c.corp_pk, co.corp_id, t.expires_at"
            " FROM access_token t JOIN credential c ON c.id = t.credential_pk JOIN corp co ON co.id = c.corp_pk"
            " WHERE t.token_digest = :d",
            {"d": token_digest},
        )
        if row is None:
            return None
        return Grant(
            credential_pk=row["id"],
            app_key=row["app_key"],
            corp_pk=row["corp_pk"],
            corp_id=row["corp_id"],
            scopes=tuple(orjson.loads(row["scopes"])),
            expires_at=row["expires_at"],
        )


async def check_server_key(db: Database, box: SecretBox) -> None:
    """Refuse a server key other than the one this database was first used with (recorded on first use).

    Secrets the API gives back are encrypted with the key and access tokens derived from it, so a second key
    would make them unreadable; better to stop with a clear message than to answer 500s or lock clients out.
    """
    fingerprint = box.derive("server-key-fingerprint", "zida")
    async with db.transaction() as tx:
        # Several workers may start at once on a new database: the first writes, the others read its value.
        await tx.execute(
            "INSERT INTO server_meta (name, value) VALUES ('server_key_fingerprint', :v) ON CONFLICT (name) DO NOTHING",
            {"v": fingerprint},
        )
        stored = await tx.fetchval("SELECT value FROM server_meta WHERE name = 'server_key_fingerprint'")
    if not hmac.compare_digest(str(stored), fingerprint):
        raise Misconfigured(
            "ZIDA_SECRET_KEY is not the key this database was set up with: use the original key (for the embedded"
            " SQLite database, the var/secret.key file beside it)",
            reason="server.wrong_secret_key",
        )


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def org_token(corp_id: str, user_id: str, task_api_code: str) -> str:
    """The org-level token: ``upper(md5(corpId + userId + taskApiCode))``."""
    return hashlib.md5((corp_id + user_id + task_api_code).encode(), usedforsecurity=False).hexdigest().upper()


async def check_org_token(
    conn: Connection, box: SecretBox, grant: Grant, corp_id: str, user_id: str, token: str
) -> None:
    """Verify an org-level ``token`` for ``user_id`` in the grant's corp (constant-time)."""
    if not corp_id or not user_id or not token:
        raise InvalidArgument("corpId, userId and token are required", reason="argument.missing")
    if corp_id != grant.corp_id:
        raise PermissionDenied("corpId does not match the access token's corp", reason="auth.bad_org_token")
    enc = await conn.fetchval("SELECT task_api_code_enc FROM corp WHERE id = :c", {"c": grant.corp_pk})
    if not enc:
        raise PermissionDenied("this corp has no taskApiCode configured", reason="auth.bad_org_token")
    expected = org_token(corp_id, user_id, box.decrypt(enc))
    if not hmac.compare_digest(expected.encode(), token.strip().upper().encode()):
        raise PermissionDenied("invalid org token for this userId", reason="auth.bad_org_token")


def system_token_digest(box: SecretBox, system_token: str) -> str:
    """What the database keeps to check a systemToken: an HMAC with the server key (a dump alone can't be
    brute-forced for low-entropy tokens)."""
    return box.derive("system-token", system_token, 64)


async def resolve_app_actor(
    conn: Connection,
    box: SecretBox,
    grant: Grant,
    *,
    app_type: str | None,
    app_pk: int | None = None,
    system_token: str | None,
    user_id: str | None,
) -> AppActor:
    """Check ``systemToken`` against the app (of the grant's corp) and ``userId`` against the corp."""
    if not system_token:
        raise InvalidArgument("systemToken is required", reason="argument.missing", param="systemToken")
    if not user_id:
        raise InvalidArgument("userId is required", reason="argument.missing", param="userId")
    if app_pk is None and not app_type:
        raise InvalidArgument("appType is required", reason="argument.missing", param="appType")
    token_digest = system_token_digest(box, system_token)
    cache_key = (grant.corp_pk, app_type, app_pk, user_id, token_digest)
    cached = _ACTORS.get(cache_key)
    if cached is not None:
        return cached
    where = "a.id = :app_pk" if app_pk is not None else "a.app_type = :app_type"
    row = await conn.fetchrow(
        "SELECT a.id, a.app_type, a.system_token_digest, u.id AS user_pk, u.name AS user_name,"
        " (SELECT 1 FROM app_admin aa WHERE aa.app_pk = a.id AND aa.user_pk = u.id) AS is_admin"
        " FROM app a LEFT JOIN org_user u ON u.corp_pk = a.corp_pk AND u.user_id = :user_id"
        f" WHERE {where} AND a.corp_pk = :corp_pk",
        {"app_pk": app_pk, "app_type": app_type, "user_id": user_id, "corp_pk": grant.corp_pk}
        if app_pk is not None
        else {"app_type": app_type, "user_id": user_id, "corp_pk": grant.corp_pk},
    )
    if row is None or (app_type and app_pk is not None and row["app_type"] != app_type):
        raise NotFound(f"application {app_type or app_pk} does not exist", reason="app.not_found")
    if not hmac.compare_digest(row["system_token_digest"].encode(), token_digest.encode()):
        raise PermissionDenied("systemToken does not match the application", reason="app.bad_system_token")
    if row["user_pk"] is None:
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")
    return _ACTORS.put(
        cache_key,
        AppActor(
            corp_pk=grant.corp_pk,
            app_pk=row["id"],
            app_type=row["app_type"],
            user_pk=row["user_pk"],
            user_id=user_id,
            user_name=row["user_name"],
            is_app_admin=row["is_admin"] is not None,
        ),
    )


async def app_actor(conn: Connection, corp_pk: int, app_pk: int, user_id: str) -> AppActor:
    """A corp user inside one of the corp's apps, for callers already trusted by the corp (the admin API)."""
    if not user_id:
        raise InvalidArgument("userId is required", reason="argument.missing", param="userId")
    row = await conn.fetchrow(
        "SELECT a.app_type, u.id AS user_pk, u.name AS user_name,"
        " (SELECT 1 FROM app_admin aa WHERE aa.app_pk = a.id AND aa.user_pk = u.id) AS is_admin"
        " FROM app a LEFT JOIN org_user u ON u.corp_pk = a.corp_pk AND u.user_id = :user_id"
        " WHERE a.id = :app_pk AND a.corp_pk = :corp_pk",
        {"app_pk": app_pk, "user_id": user_id, "corp_pk": corp_pk},
    )
    if row is None:
        raise NotFound(f"application {app_pk} does not exist", reason="app.not_found")
    if row["user_pk"] is None:
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")
    return AppActor(
        corp_pk=corp_pk,
        app_pk=app_pk,
        app_type=row["app_type"],
        user_pk=row["user_pk"],
        user_id=user_id,
        user_name=row["user_name"],
        is_app_admin=row["is_admin"] is not None,
    )
