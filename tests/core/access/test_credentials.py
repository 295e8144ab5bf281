"""Credential actions at the core level: create (secret shown once, stored hashed), change scopes, rotate, revoke;
a rotated or revoked credential's tokens stop working at once and its old secret obtains none; bad input changes
nothing; another corp's credential does not exist."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.conftest import SECRET_KEY
from zida.clock import now_ms
from zida.core.access import credentials
from zida.core.access.tokens import TokenService
from zida.core.audit import list_audit
from zida.core.errors import Conflict, InvalidArgument, NotFound, Unauthenticated, ZidaError
from zida.core.org.actions import CorpSpec, upsert_corp
from zida.core.org.models import CorpRef
from zida.core.principals import Scope
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio

ACTOR = "credential:test-admin"


@pytest.fixture
async def corp(db: Database) -> AsyncIterator[CorpRef]:
    """A fresh corp with nothing in it."""
    async with db.transaction() as tx:
        ref, _ = await upsert_corp(
            tx, SecretBox(SECRET_KEY), CorpSpec("cred" + secrets.token_hex(4), "凭证"), actor=ACTOR, now=now_ms()
        )
    yield ref


async def marks(db: Database, corp: CorpRef) -> tuple[int, int]:
    audit = await db.fetchval("SELECT count(*) FROM audit_log WHERE corp_pk = :c", {"c": corp.pk})
    events = await db.fetchval("SELECT count(*) FROM outbox_event WHERE corp_pk = :c", {"c": corp.pk})
    return int(audit), int(events)


async def test_a_new_credential_shows_its_secret_once_and_stores_a_hash(db: Database, corp: CorpRef) -> None:
    issued = await credentials.create_credential(db, corp, ["records.read"], actor=ACTOR)
    assert issued.credential.client_id.startswith("ding") and len(issued.secret) >= 32
    assert issued.credential.scopes == ("records.read",)
    stored = await db.fetchval(
        "SELECT secret_hash FROM credential WHERE app_key = :k", {"k": issued.credential.client_id}
    )
    assert stored.startswith("scrypt$") and issued.secret not in stored
    tokens = TokenService(db, SecretBox(SECRET_KEY))
    principal = await tokens.authenticate((await tokens.issue(issued.credential.client_id, issued.secret)).token)
    assert (principal.corp_id, principal.scopes) == (corp.corp_id, frozenset({Scope.RECORDS_READ}))
    (entry,) = await list_audit(db, corp.pk, kind="credential")
    assert (entry.topic, entry.changes) == (
        "credential.created",
        {"scopes": {"new": ["records.read"]}, "secret": {"changed": True}},
    )
    assert issued.secret not in repr(entry.changes) and stored not in repr(entry.changes)
    assert await credentials.list_credentials(db, corp.pk) == [issued.credential]


async def test_rotating_stops_the_old_tokens_and_the_old_secret_at_once(db: Database, corp: CorpRef) -> None:
    issued = await credentials.create_credential(db, corp, ["*"], actor=ACTOR, client_id=f"rot-{corp.corp_id}")
    tokens = TokenService(db, SecretBox(SECRET_KEY), revalidate_seconds=3600)  # only an invalidation empties it
    old = (await tokens.issue(issued.credential.client_id, issued.secret)).token
    await tokens.authenticate(old)  # cached now
    rotated = await credentials.rotate_credential(
        db, corp, issued.credential.client_id, actor=ACTOR, secret="new-secret-01"
    )
    assert rotated.secret == "new-secret-01"
    with pytest.raises(Unauthenticated) as raised:
        await tokens.authenticate(old)
    assert raised.value.reason == "auth.token_invalid"
    with pytest.raises(Unauthenticated):
        await tokens.issue(issued.credential.client_id, issued.secret)
    fresh = await tokens.issue(issued.credential.client_id, "new-secret-01")
    assert fresh.token != old and (await tokens.authenticate(fresh.token)).client_id == issued.credential.client_id
    entries = await list_audit(db, corp.pk, kind="credential")
    assert [(e.action, e.changes) for e in entries][-1] == ("rotated", {"secret": {"changed": True}})


async def test_revoking_stops_its_tokens_and_frees_the_client_id(db: Database, corp: CorpRef) -> None:
    issued = await credentials.create_credential(db, corp, ["admin"], actor=ACTOR)
    client_id = issued.credential.client_id
    tokens = TokenService(db, SecretBox(SECRET_KEY), revalidate_seconds=3600)
    token = (await tokens.issue(client_id, issued.secret)).token
    await tokens.authenticate(token)
    pk = await db.fetchval("SELECT id FROM credential WHERE app_key = :k", {"k": client_id})
    await credentials.revoke_credential(db, corp, client_id, actor=ACTOR)
    with pytest.raises(Unauthenticated):
        await tokens.authenticate(token)
    with pytest.raises(Unauthenticated):
        await tokens.issue(client_id, issued.secret)
    assert await db.fetchval("SELECT count(*) FROM access_token WHERE credential_pk = :c", {"c": pk}) == 0
    assert await credentials.get_credential(db, corp.pk, client_id) is None
    again = await credentials.create_credential(db, corp, ["admin"], actor=ACTOR, client_id=client_id)
    assert again.credential.client_id == client_id
    topics = [e.topic for e in await list_audit(db, corp.pk, kind="credential", object_id=client_id)]
    assert topics == ["credential.created", "credential.revoked", "credential.created"]


async def test_new_scopes_apply_to_existing_tokens(db: Database, corp: CorpRef) -> None:
    issued = await credentials.create_credential(db, corp, ["records.read"], actor=ACTOR)
    tokens = TokenService(db, SecretBox(SECRET_KEY), revalidate_seconds=3600)
    token = (await tokens.issue(issued.credential.client_id, issued.secret)).token
    assert not (await tokens.authenticate(token)).allows(Scope.ADMIN)
    before = await marks(db, corp)
    same = await credentials.update_credential(
        db, corp, issued.credential.client_id, scopes=["records.read"], actor=ACTOR
    )
    assert same.scopes == ("records.read",) and await marks(db, corp) == before
    updated = await credentials.update_credential(
        db, corp, issued.credential.client_id, scopes=["admin", "records.read"], actor=ACTOR
    )
    assert updated.scopes == ("admin", "records.read")
    assert (await tokens.authenticate(token)).allows(Scope.ADMIN)
    (entry,) = [e for e in await list_audit(db, corp.pk, kind="credential") if e.action == "updated"]
    assert entry.changes == {"scopes": {"old": ["records.read"], "new": ["admin", "records.read"]}}


@pytest.mark.parametrize(
    ("call", "error", "reason"),
    [
        (
            lambda db, c: credentials.create_credential(db, c, ["Yida.Form.Read"], actor=ACTOR),
            InvalidArgument,
            "credential.unknown_scope",
        ),
        (lambda db, c: credentials.create_credential(db, c, [], actor=ACTOR), InvalidArgument, "argument.invalid"),
        (
            lambda db, c: credentials.create_credential(db, c, ["*"], actor=ACTOR, secret="short"),
            InvalidArgument,
            "argument.invalid",
        ),
        (
            lambda db, c: credentials.create_credential(db, c, ["*"], actor=ACTOR, client_id=" x"),
            InvalidArgument,
            "argument.invalid",
        ),
        (
            lambda db, c: credentials.create_credential(db, c, ["*"], actor=ACTOR, client_id="keyA-all"),
            Conflict,
            "credential.exists",
        ),
        (  # a / splits the admin API's path (/admin/v1/credentials/{appKey}): nothing could reach it
            lambda db, c: credentials.create_credential(db, c, ["*"], actor=ACTOR, client_id="a/b"),
            InvalidArgument,
            "argument.invalid",
        ),
        (lambda db, c: credentials.rotate_credential(db, c, "keyA-all", actor=ACTOR), NotFound, "credential.not_found"),
        (lambda db, c: credentials.revoke_credential(db, c, "keyA-all", actor=ACTOR), NotFound, "credential.not_found"),
        (
            lambda db, c: credentials.update_credential(db, c, "keyA-all", scopes=["*"], actor=ACTOR),
            NotFound,
            "credential.not_found",
        ),
        (
            lambda db, c: credentials.revoke_credential(db, c, "no-such-key", actor=ACTOR),
            NotFound,
            "credential.not_found",
        ),
    ],
)
async def test_bad_credential_input_changes_nothing(
    db: Database, corp: CorpRef, call: object, error: type[ZidaError], reason: str
) -> None:
    before = await marks(db, corp)
    owner = await db.fetchrow("SELECT corp_pk, secret_hash, scopes FROM credential WHERE app_key = 'keyA-all'")
    with pytest.raises(error) as raised:
        await call(db, corp)  # type: ignore[operator]
    assert raised.value.reason == reason, raised.value.message
    assert await marks(db, corp) == before
    assert await db.fetchrow("SELECT corp_pk, secret_hash, scopes FROM credential WHERE app_key = 'keyA-all'") == owner


async def test_zida_s_own_sender_name_is_not_a_client_id(db: Database, corp: CorpRef) -> None:
    with pytest.raises(InvalidArgument, match="reserved"):
        await credentials.create_credential(db, corp, ["records.read"], actor=ACTOR, client_id="approval")


async def test_a_rate_limit_is_kept_changed_audited_and_reaches_the_token(db: Database, corp: CorpRef) -> None:
    issued = await credentials.create_credential(db, corp, ["records.read"], actor=ACTOR, rate_limit=7)
    client_id = issued.credential.client_id
    assert issued.credential.rate_limit == 7
    tokens = TokenService(db, SecretBox(SECRET_KEY))
    token = (await tokens.issue(client_id, issued.secret)).token
    assert (await tokens.authenticate(token)).rate_limit == 7
    kept = await credentials.update_credential(db, corp, client_id, scopes=["records.write"], actor=ACTOR)
    assert (kept.scopes, kept.rate_limit) == (("records.write",), 7)  # a rate limit left out stays
    before = await marks(db, corp)
    for bad in (-1, 1_000_001, True, "5"):
        with pytest.raises(InvalidArgument):
            await credentials.update_credential(db, corp, client_id, rate_limit=bad, actor=ACTOR)
    assert await marks(db, corp) == before  # refused: nothing written
    cleared = await credentials.update_credential(db, corp, client_id, rate_limit=None, actor=ACTOR)
    assert (cleared.scopes, cleared.rate_limit) == (("records.write",), None)  # back to the server's default
    entries = await list_audit(db, corp.pk, kind="credential")  # oldest first
    assert [e.changes for e in entries][-1] == {"rate_limit": {"old": 7, "new": None}}


async def test_each_token_keeps_the_lifetime_it_was_issued_with(db: Database, corp: CorpRef) -> None:
    """DingTalk's requests (here 60 s) and WeDa's (3600 s) of one credential get a token each: neither renews or
    shortens the other, and each is renewed by its own kind of request."""
    issued = await credentials.create_credential(db, corp, ["*"], actor=ACTOR)
    client_id, secret = issued.credential.client_id, issued.secret
    tokens = TokenService(db, SecretBox(SECRET_KEY))

    async def expiry(token: str) -> int:
        return int((await tokens.authenticate(token)).expires_at)

    short = await tokens.issue(client_id, secret, ttl_seconds=60)
    long = await tokens.issue(client_id, secret, ttl_seconds=3600)
    assert (short.expires_in, long.expires_in) == (60, 3600) and short.token != long.token
    assert await expiry(short.token) <= now_ms() + 60_000 < await expiry(long.token)
    again = await tokens.issue(client_id, secret, ttl_seconds=60)
    assert again.token == short.token  # renewed, not handed the 3600 s token
    assert await expiry(short.token) <= now_ms() + 60_000 and await expiry(long.token) > now_ms() + 3_000_000
    assert (await tokens.issue(client_id, secret, ttl_seconds=3600)).token == long.token


class _RacedTokens(TokenService):
    """Token requests whose secret check is followed, before they write, by another worker's change."""

    meanwhile: object = None

    async def _checked(self, app_key: str, app_secret: str):  # type: ignore[no-untyped-def]
        row = await super()._checked(app_key, app_secret)
        await self.meanwhile()  # type: ignore[operator]
        return row


@pytest.mark.parametrize("change", ["revoke", "rotate"])
async def test_a_token_request_racing_a_revocation_or_rotation_is_refused_and_writes_nothing(
    db: Database, corp: CorpRef, change: str
) -> None:
    issued = await credentials.create_credential(db, corp, ["*"], actor=ACTOR)
    client_id = issued.credential.client_id
    pk = await db.fetchval("SELECT id FROM credential WHERE app_key = :k", {"k": client_id})
    tokens = _RacedTokens(db, SecretBox(SECRET_KEY))

    async def meanwhile() -> None:
        if change == "revoke":
            await credentials.revoke_credential(db, corp, client_id, actor=ACTOR)
        else:
            await credentials.rotate_credential(db, corp, client_id, actor=ACTOR, secret="rotated-secret-01")

    tokens.meanwhile = meanwhile
    with pytest.raises(Unauthenticated) as raised:  # was: a foreign-key violation (500), or a token of the old secret
        await tokens.issue(client_id, issued.secret)
    assert raised.value.reason == "auth.bad_credentials"
    assert await db.fetchval("SELECT count(*) FROM access_token WHERE credential_pk = :c", {"c": pk}) == 0
