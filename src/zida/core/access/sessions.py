"""Users' own sessions: sign in with a sign-in name and password, renew with a refresh token, sign out.

A session is a row of ``user_session`` holding the SHA-256 of its access token and of its refresh token (the
tokens themselves are never stored) and their expiry. The access token authenticates as a ``Principal`` of kind
``session`` (``zida.core.access.tokens.TokenService.authenticate`` finds it). Renewing rotates both tokens: the old
refresh token is spent. Passwords are checked with scrypt off the event loop; an unknown name costs the same time
as a wrong password, and failed sign-ins per name and minute are counted in the shared store. A user keeps at most
``MAX_SESSIONS`` sessions per client (the WeDa environment, the console): signing in once more signs the oldest out.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from zida.clock import now_ms
from zida.core.access.failures import limit_failures
from zida.core.errors import InvalidArgument, Unauthenticated
from zida.core.principals import Principal, Scope
from zida.crypto import DUMMY_HASH, digest, verify_secret
from zida.db import Database, Row
from zida.observability.context import note_caller
from zida.stores import Store

__all__ = ["MAX_SESSIONS", "SESSION_SCOPES", "SessionService", "SignedIn", "load_session"]

MAX_SESSIONS = 20  # per user and client: browsers and devices signed in at once

# What a signed-in user may do through the API: everything a user does, within the access policy (not admin).
SESSION_SCOPES: frozenset[Scope] = frozenset(Scope) - {Scope.ADMIN}


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The tokens a sign-in or a renewal hands out, and who signed in."""

    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str


@dataclass
class SessionService:
    """Signs users of a corp in and out (``ttl_seconds``: access tokens; ``refresh_ttl_seconds``: refresh tokens)."""

    db: Database
    ttl_seconds: int = 7200
    refresh_ttl_seconds: int = 31 * 86400
    failures: Store | None = None
    max_failures_per_minute: int = 10

    async def sign_in(self, corp_pk: int, name: str, password: str, client_id: str) -> SignedIn:
        """A new session for the active user whose sign-in name (username, else userId) is ``name``."""
        if not name or not password:
            raise InvalidArgument("the username and password are required", reason="auth.credentials_missing")
        async with limit_failures(
            self.failures,
            self.max_failures_per_minute,
            f"signin-failures:{corp_pk}:" + digest(name)[:32],
            "too many failed sign-ins for this name: try again in a minute",
        ):
            user_pk, user_id = await self._check_password(corp_pk, name, password)
        note_caller(None, client_id)  # once signed in: the environment or "console" (never what was typed)
        return await self._open(corp_pk, user_pk, user_id, client_id)

    async def _check_password(self, corp_pk: int, name: str, password: str) -> tuple[int, str]:
        row = await self.db.fetchrow(
            "SELECT id, user_id, password_hash, active FROM org_user WHERE corp_pk = :c"
            " AND (username = :n OR (username IS NULL AND user_id = :n)) ORDER BY username IS NULL LIMIT 1",
            {"c": corp_pk, "n": name},
        )
        stored = row["password_hash"] if row is not None and row["password_hash"] else DUMMY_HASH
        ok = await asyncio.to_thread(verify_secret, password, stored)
        if row is None or not row["password_hash"] or not ok or not row["active"]:
            raise Unauthenticated("invalid username or password", reason="auth.bad_password")
        return int(row["id"]), str(row["user_id"])

    async def _open(self, corp_pk: int, user_pk: int, user_id: str, client_id: str) -> SignedIn:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = now_ms()
        async with self.db.transaction() as tx:
            # His expired sessions go, and past MAX_SESSIONS of this client the oldest are signed out: a client that
            # signs in before every call must not leave a row each for the refresh lifetime (31 days).
            await tx.execute(
                "DELETE FROM user_session WHERE user_pk = :u AND (refresh_expires_at <= :now OR (client_id = :client"
                " AND id NOT IN (SELECT id FROM user_session WHERE user_pk = :u AND client_id = :client"
                " ORDER BY id DESC LIMIT :keep)))",
                {"u": user_pk, "now": now, "client": client_id, "keep": MAX_SESSIONS - 1},
            )
            await tx.execute(
                "INSERT INTO user_session (corp_pk, user_pk, client_id, access_digest, access_expires_at,"
                " refresh_digest, refresh_expires_at, created_at) VALUES (:c, :u, :client, :a, :ae, :r, :re, :now)",
                {
                    "c": corp_pk,
                    "u": user_pk,
                    "client": client_id,
                    "a": digest(access),
                    "ae": now + self.ttl_seconds * 1000,
                    "r": digest(refresh),
                    "re": now + self.refresh_ttl_seconds * 1000,
                    "now": now,
                },
            )
        return SignedIn(access, refresh, self.ttl_seconds, user_id)

    async def renew(self, corp_pk: int, refresh_token: str) -> SignedIn:
        """New access and refresh tokens for the session of ``refresh_token`` (which is spent)."""
        if not refresh_token:
            raise InvalidArgument("the refresh_token is required", reason="auth.credentials_missing")
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = now_ms()
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT s.id, s.refresh_expires_at, u.user_id, u.active FROM user_session s"
                " JOIN org_user u ON u.id = s.user_pk"
                f" WHERE s.refresh_digest = :r AND s.corp_pk = :c{tx.sql.for_update}",
                {"r": digest(refresh_token), "c": corp_pk},
            )
            if row is None or row["refresh_expires_at"] <= now or not row["active"]:
                raise Unauthenticated("invalid or expired refresh token", reason="auth.bad_refresh_token")
            await tx.execute(
                "UPDATE user_session SET access_digest = :a, access_expires_at = :ae, refresh_digest = :r"
                " WHERE id = :id",
                {"a": digest(access), "ae": now + self.ttl_seconds * 1000, "r": digest(refresh), "id": row["id"]},
            )
        return SignedIn(access, refresh, self.ttl_seconds, str(row["user_id"]))

    async def sign_out(self, access_token: str) -> bool:
        """End the session of ``access_token``; False: there was none."""
        return (
            await self.db.execute("DELETE FROM user_session WHERE access_digest = :a", {"a": digest(access_token)}) > 0
        )


async def load_session(db: Database, token_digest: str) -> Principal | None:
    """The principal of the session whose access token has this digest (None: no such session; an expired one
    comes back with its past ``expires_at``; a deactivated user's: None)."""
    row: Row | None = await db.fetchrow(
        "SELECT s.corp_pk, s.client_id, s.access_expires_at, u.user_id, u.active, co.corp_id FROM user_session s"
        " JOIN org_user u ON u.id = s.user_pk JOIN corp co ON co.id = s.corp_pk WHERE s.access_digest = :d",
        {"d": token_digest},
    )
    if row is None or not row["active"]:
        return None
    return Principal(
        kind="session",
        corp_pk=int(row["corp_pk"]),
        corp_id=str(row["corp_id"]),
        scopes=SESSION_SCOPES,
        client_id=str(row["client_id"]),
        user_id=str(row["user_id"]),
        expires_at=int(row["access_expires_at"]),
    )
