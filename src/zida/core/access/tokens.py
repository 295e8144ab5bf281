"""Access tokens of app credentials: issue, renew within validity, authenticate (to a ``Principal``).

A dialect's own secrets on top of a token (DingTalk's app secret and org-level token) are checked by that dialect.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import orjson

from zida.cache import DEFAULT_CACHE_SECONDS, TtlCache
from zida.clock import now_ms
from zida.core.access.failures import limit_failures
from zida.core.access.sessions import load_session
from zida.core.errors import InvalidArgument, Misconfigured, Unauthenticated
from zida.core.principals import IssuedToken, Principal, parse_scopes
from zida.crypto import DUMMY_HASH, SecretBox, digest, verify_secret
from zida.db import Database, Row
from zida.observability.context import note_caller
from zida.observability.metrics import token_cache_lookup
from zida.stores import Store

__all__ = ["CREDENTIALS_CACHE_SCOPE", "TokenService", "check_server_key", "secret_mark", "server_key_recorded"]

CREDENTIALS_CACHE_SCOPE = "credentials"  # what ``zida.cache.invalidate`` names after a credential changed


@dataclass
class TokenService:
    """Issues and checks access tokens.

    A token is ``HMAC(server key, token_key)``: the database keeps only the random ``token_key`` and the
    token's SHA-256, so asking again within validity can hand back the same token (DingTalk semantics:
    same token, validity renewed) without storing it. Checks of app tokens are served from an in-process cache of
    scope ``credentials`` whose entries are re-validated against the database after ``revalidate_seconds`` (the
    server gives ``ZIDA_CACHE_SECONDS``) and on expiry; the hot path makes no database round trip. Rotating,
    revoking or re-scoping a credential (``zida.core.access.credentials``) empties that cache on every worker
    (``zida.cache.invalidate``), at once on the worker that made the change; ``revalidate_seconds`` bounds what
    another worker without Redis, or another program, takes to see it. A signed-in user's token is read from the
    database on every check, never cached: a sign-out or a renewal ends the old token on every worker at once.
    """

    db: Database
    box: SecretBox
    ttl_seconds: int = 7200
    revalidate_seconds: float = DEFAULT_CACHE_SECONDS
    cache_size: int = 10_000
    # Failed token requests per client id and minute before the next ones are refused without a check (the count
    # lives in the shared store: every worker counts together when Redis is configured). 0: no limit.
    failures: Store | None = None
    max_failures_per_minute: int = 10
    # An app token's digest → its principal; None marks an entry dropped (the cache has no delete): a renewed token's
    # next check reads its new expiry from the database.
    _cache: TtlCache[str, Principal | None] = field(init=False, repr=False)
    _verified_secrets: dict[int, bytes] = field(default_factory=dict)
    _pepper: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        self._cache = TtlCache(ttl=self.revalidate_seconds, size=self.cache_size, scope=CREDENTIALS_CACHE_SCOPE)

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

    def _attempt(self, app_key: str, app_secret: str) -> AbstractAsyncContextManager[None]:
        """A check of a client id and secret: both required, and failures counted per client id (the limit)."""
        if not app_key or not app_secret:
            raise InvalidArgument("the client id and secret are required", reason="auth.credentials_missing")
        return limit_failures(
            self.failures,
            self.max_failures_per_minute,
            "auth-failures:" + digest(app_key)[:32],
            "too many failed token requests for this client id: try again in a minute",
        )

    async def issue(
        self, app_key: str, app_secret: str, corp_id: str | None = None, *, ttl_seconds: int | None = None
    ) -> IssuedToken:
        """Token for an app credential; within validity the same token comes back with renewed validity
        (``ttl_seconds``: the validity a dialect gives its tokens, default ``self.ttl_seconds``)."""
        async with self._attempt(app_key, app_secret):
            return await self._issue(app_key, app_secret, corp_id, ttl_seconds or self.ttl_seconds)

    async def verify(self, app_key: str, app_secret: str) -> Principal:
        """The credential's principal when the secret is right, without issuing a token (Stream mode's gateway);
        failures count towards the same per-client-id limit as token requests."""
        async with self._attempt(app_key, app_secret):
            row = await self._checked(app_key, app_secret)
            return Principal(
                kind="credential",
                corp_pk=row["corp_pk"],
                corp_id=row["corp_id"],
                scopes=parse_scopes(orjson.loads(row["scopes"])),
                client_id=row["app_key"],
                credential_pk=row["id"],
            )

    async def _checked(self, app_key: str, app_secret: str) -> Row:
        """The credential row of ``app_key`` when ``app_secret`` is its secret, else ``Unauthenticated``."""
        row = await self.db.fetchrow(
            "SELECT c.id, c.app_key, c.scopes, c.corp_pk, c.secret_hash, co.corp_id FROM credential c"
            " JOIN corp co ON co.id = c.corp_pk WHERE c.app_key = :app_key",
            {"app_key": app_key},
        )
        if row is None:
            # Spend comparable time whether or not the key exists (off the event loop: scrypt takes ~50 ms).
            await asyncio.to_thread(verify_secret, app_secret, DUMMY_HASH)
            raise Unauthenticated("invalid client id or secret", reason="auth.bad_credentials")
        if not await self._secret_ok(row["id"], app_secret, row["secret_hash"]):
            raise Unauthenticated("invalid client id or secret", reason="auth.bad_credentials")
        return row

    async def _issue(self, app_key: str, app_secret: str, corp_id: str | None, ttl_seconds: int) -> IssuedToken:
        """The credential's live token of this lifetime, renewed, or a new one.

        Each token keeps the lifetime it was issued with (``access_token.lifetime_s``): DingTalk's and WeDa's token
        requests of one credential get two tokens, neither renewing nor shortening the other. The credential's row
        is locked first and its secret read again: a request racing a revocation or a rotation is refused as a
        wrong secret (nothing issued), and two first requests of one credential get one token."""
        row = await self._checked(app_key, app_secret)
        note_caller(row["corp_id"], app_key)
        if corp_id is not None and corp_id != row["corp_id"]:
            raise Unauthenticated("the credential does not belong to this corp", reason="auth.bad_credentials")
        async with self.db.transaction() as tx:
            still = await tx.fetchval(
                f"SELECT secret_hash FROM credential WHERE id = :c{tx.sql.for_no_key_update}", {"c": row["id"]}
            )
            if still != row["secret_hash"]:  # revoked or rotated since the secret was checked
                raise Unauthenticated("invalid client id or secret", reason="auth.bad_credentials")
            now = now_ms()
            expires_at = now + ttl_seconds * 1000
            current = await tx.fetchrow(
                "SELECT id, token_key, token_digest FROM access_token"
                " WHERE credential_pk = :c AND expires_at > :now AND lifetime_s = :ttl"
                " ORDER BY expires_at DESC LIMIT 1",
                {"c": row["id"], "now": now, "ttl": ttl_seconds},
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
                    "INSERT INTO access_token (credential_pk, token_key, token_digest, expires_at, created_at,"
                    " lifetime_s) VALUES (:c, :k, :d, :e, :now, :ttl)",
                    {
                        "c": row["id"],
                        "k": token_key,
                        "d": digest(self._token(token_key)),
                        "e": expires_at,
                        "now": now,
                        "ttl": ttl_seconds,
                    },
                )
        token = self._token(token_key)
        self._cache.put(digest(token), None)  # its next check reads the renewed expiry from the database
        return IssuedToken(token=token, expires_in=ttl_seconds)

    def _token(self, token_key: str) -> str:
        return self.box.derive("access-token", token_key)

    async def authenticate(self, token: str | None) -> Principal:
        """The principal behind ``token``; raises ``Unauthenticated`` for a missing, unknown or expired token."""
        if not token:
            raise Unauthenticated("missing access token", reason="auth.token_missing")
        key = digest(token)
        cached = self._cache.get(key)
        if cached is not None and cached.expires_at > now_ms():
            token_cache_lookup(True)
            note_caller(cached.corp_id, cached.client_id)
            return cached
        principal = await self._load(key)
        if principal is None or principal.kind != "session":  # a session's token is never cached: not a miss
            token_cache_lookup(False)
        if principal is None:
            raise Unauthenticated("invalid access token", reason="auth.token_invalid")
        if principal.expires_at <= now_ms():
            raise Unauthenticated("access token expired", reason="auth.token_expired")
        if principal.kind != "session":  # a session's end must count on every worker at once (class docstring)
            self._cache.put(key, principal)
        note_caller(principal.corp_id, principal.client_id)
        return principal

    async def _load(self, token_digest: str) -> Principal | None:
        row = await self.db.fetchrow(
            "SELECT c.id, c.app_key, c.scopes, c.corp_pk, co.corp_id, t.expires_at, c.rate_limit"
            " FROM access_token t JOIN credential c ON c.id = t.credential_pk JOIN corp co ON co.id = c.corp_pk"
            " WHERE t.token_digest = :d",
            {"d": token_digest},
        )
        if row is None:
            return await load_session(self.db, token_digest)  # a signed-in user's token (zida.core.access.sessions)
        return Principal(
            kind="credential",
            corp_pk=row["corp_pk"],
            corp_id=row["corp_id"],
            scopes=parse_scopes(orjson.loads(row["scopes"])),
            client_id=row["app_key"],
            credential_pk=row["id"],
            expires_at=row["expires_at"],
            rate_limit=row["rate_limit"],
        )


async def secret_mark(db: Database, credential_pk: int) -> str | None:
    """A fingerprint of the credential's current secret (None: the credential was revoked). Something granted on the
    strength of a secret (a Stream ticket) holds only while the mark is the same: a rotation or revocation ends it."""
    stored = await db.fetchval("SELECT secret_hash FROM credential WHERE id = :c", {"c": credential_pk})
    return None if stored is None else hashlib.sha256(str(stored).encode()).hexdigest()[:32]


async def server_key_recorded(db: Database, box: SecretBox) -> bool | None:
    """Whether ``box``'s key is the one the database recorded on first use (None: it recorded none), read only."""
    stored = await db.fetchval("SELECT value FROM server_meta WHERE name = 'server_key_fingerprint'")
    if stored is None:
        return None
    return hmac.compare_digest(str(stored), box.derive("server-key-fingerprint", "zida"))


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
