"""Access tokens: issue, renew within validity, expire, revalidate; org tokens; scopes."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import SECRET_KEY
from zida.core.access.tokens import TokenService
from zida.core.errors import RateLimited, Unauthenticated
from zida.core.principals import ALL_SCOPES, Scope, parse_scopes
from zida.crypto import SecretBox, digest
from zida.db import Database
from zida.dialects import granted_scopes
from zida.dialects.dingtalk.auth import org_token
from zida.stores import MemoryStore

pytestmark = pytest.mark.anyio


async def test_same_token_within_validity_and_renewed(db: Database) -> None:
    tokens = TokenService(db, SecretBox(SECRET_KEY), ttl_seconds=60)
    first = await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    before = await db.fetchval(
        "SELECT expires_at FROM access_token WHERE token_digest = :d", {"d": digest(first.token)}
    )
    await asyncio.sleep(0.01)
    second = await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    after = await db.fetchval("SELECT expires_at FROM access_token WHERE token_digest = :d", {"d": digest(first.token)})
    assert second.token == first.token and second.expires_in == 60
    assert after > before
    principal = await tokens.authenticate(first.token)
    assert principal.corp_id == "corpA" and principal.scopes == frozenset({Scope.RECORDS_READ})
    # Stored: only a digest of the token, never the token itself.
    assert await db.fetchval("SELECT count(*) FROM access_token WHERE token_key = :t", {"t": first.token}) == 0


async def test_token_expires_and_a_new_one_is_issued(db: Database) -> None:
    tokens = TokenService(db, SecretBox(SECRET_KEY), ttl_seconds=1)
    issued = await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    assert (await tokens.authenticate(issued.token)).client_id == "keyA-tokens"
    await asyncio.sleep(1.1)
    with pytest.raises(Unauthenticated) as err:
        await tokens.authenticate(issued.token)
    assert err.value.reason == "auth.token_expired"
    fresh = await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    assert fresh.token != issued.token
    assert (await tokens.authenticate(fresh.token)).client_id == "keyA-tokens"


async def test_cache_revalidates_against_the_database(db: Database) -> None:
    tokens = TokenService(db, SecretBox(SECRET_KEY), revalidate_seconds=0)
    issued = await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    await tokens.authenticate(issued.token)
    other_worker = TokenService(db, SecretBox(SECRET_KEY))
    async with db.transaction() as tx:
        await tx.execute("UPDATE access_token SET expires_at = 1 WHERE token_digest = :d", {"d": digest(issued.token)})
    with pytest.raises(Unauthenticated):
        await tokens.authenticate(issued.token)
    with pytest.raises(Unauthenticated):
        await other_worker.authenticate(issued.token)


@pytest.mark.parametrize(
    ("key", "secret", "reason"),
    [
        ("keyA-all", "wrong-secret", "auth.bad_credentials"),
        ("no-such-key", "secret-a-all-0001", "auth.bad_credentials"),
    ],
)
async def test_bad_credentials(db: Database, key: str, secret: str, reason: str) -> None:
    tokens = TokenService(db, SecretBox(SECRET_KEY))
    with pytest.raises(Unauthenticated) as err:
        await tokens.issue(key, secret)
    assert err.value.reason == reason


async def test_unknown_and_missing_tokens(db: Database) -> None:
    tokens = TokenService(db, SecretBox(SECRET_KEY))
    for token, reason in (("", "auth.token_missing"), ("not-a-token", "auth.token_invalid")):
        with pytest.raises(Unauthenticated) as err:
            await tokens.authenticate(token)
        assert err.value.reason == reason


def test_org_token_and_scopes() -> None:
    assert org_token("corpA", "admin1", "code-of-corp-a") == org_token("corpA", "admin1", "code-of-corp-a").upper()
    assert len(org_token("c", "u", "k")) == 32
    assert granted_scopes(["*"]) == ["*"]
    assert parse_scopes(granted_scopes(["Yida.*"])) >= {Scope.RECORDS_WRITE, Scope.PROCESSES_READ}
    assert Scope.ADMIN not in parse_scopes(granted_scopes(["Yida.*"]))
    assert granted_scopes(["Yida.Form.Read"]) == ["records.read"]
    assert granted_scopes(["Yida.Form.*"]) == ["records.read", "records.write"]
    assert granted_scopes(["Zida.Admin", "records.write"]) == ["admin", "records.write"]
    assert parse_scopes(["*"]) == ALL_SCOPES and parse_scopes(["nonsense"]) == frozenset()
    with pytest.raises(ValueError, match="unknown scope"):
        granted_scopes(["Yida.Nothing"])


async def test_a_token_derived_with_another_key_is_replaced_not_handed_back(db: Database) -> None:
    tokens = TokenService(db, SecretBox(SECRET_KEY), ttl_seconds=60)
    first = await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    # As if the row had been written under another server key: its token can never authenticate.
    await db.execute(
        "UPDATE access_token SET token_digest = :bad WHERE token_digest = :d",
        {"bad": digest("derived-elsewhere"), "d": digest(first.token)},
    )
    second = await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    assert second.token != first.token
    assert (await tokens.authenticate(second.token)).client_id == "keyA-tokens"


class _CountingDb:
    """The session database, counting the statements sent through it."""

    def __init__(self, inner: Database) -> None:
        self._inner = inner
        self.sql = inner.sql
        self.statements = 0

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._inner, name)
        if name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):

            async def counted(*args: object, **kwargs: object) -> object:
                self.statements += 1
                return await attr(*args, **kwargs)

            return counted
        return attr


async def test_a_known_token_is_checked_without_the_database(db: Database) -> None:
    counting = _CountingDb(db)
    tokens = TokenService(counting, SecretBox(SECRET_KEY), ttl_seconds=60)  # type: ignore[arg-type]
    issued = await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    await tokens.authenticate(issued.token)  # first sight: one lookup
    before = counting.statements
    for _ in range(100):
        assert (await tokens.authenticate(issued.token)).client_id == "keyA-tokens"
    assert counting.statements == before


async def test_repeated_failed_token_requests_are_refused_for_a_minute(db: Database) -> None:
    store = MemoryStore()
    tokens = TokenService(db, SecretBox(SECRET_KEY), ttl_seconds=60, failures=store, max_failures_per_minute=3)
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await tokens.issue("keyA-tokens", "wrong-secret")
    # Now even the right secret is refused without a check (the scrypt work is not done either)…
    with pytest.raises(RateLimited) as err:
        await tokens.issue("keyA-tokens", "secret-a-tokens-01")
    assert err.value.reason == "auth.too_many_failures"
    assert err.value.details["retry_after"] == 60  # the answer's Retry-After: the count lapses within the minute
    # …for this client id only.
    assert (await tokens.issue("keyA-all", "secret-a-all-0001")).token
