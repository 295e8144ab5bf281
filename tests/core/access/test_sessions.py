"""Users' sessions at the core level: how many one user keeps."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import SECRET_KEY
from zida.core.access.sessions import MAX_SESSIONS, SessionService, load_session
from zida.core.access.tokens import TokenService
from zida.core.errors import Unauthenticated
from zida.core.org import actions
from zida.core.org.actions import UserSpec
from zida.core.org.models import CorpRef
from zida.crypto import SecretBox, digest
from zida.db import Database
from zida.observability import metrics

pytestmark = pytest.mark.anyio


async def test_signing_in_past_the_bound_signs_the_oldest_session_of_that_client_out(db: Database) -> None:
    """A client signing in before every call left a row per sign-in for the refresh lifetime (31 days)."""
    corp = CorpRef(int(await db.fetchval("SELECT id FROM corp WHERE corp_id = 'corpA'")), "corpA")
    user_id = "sess-" + secrets.token_hex(4)
    await actions.create_user(db, corp, UserSpec(user_id, "会话", password="pass-word-123"), actor="test")
    sessions = SessionService(db)
    other = await sessions.sign_in(corp.pk, user_id, "pass-word-123", "console")
    made = [await sessions.sign_in(corp.pk, user_id, "pass-word-123", "env-x") for _ in range(MAX_SESSIONS + 3)]
    rows = await db.fetch(
        "SELECT s.client_id FROM user_session s JOIN org_user u ON u.id = s.user_pk"
        " WHERE u.corp_pk = :c AND u.user_id = :u",
        {"c": corp.pk, "u": user_id},
    )
    assert sorted(r["client_id"] for r in rows) == ["console"] + ["env-x"] * MAX_SESSIONS
    signed_out = [await load_session(db, digest(s.access_token)) is None for s in made]
    assert signed_out == [True] * 3 + [False] * MAX_SESSIONS
    assert await load_session(db, digest(other.access_token)) is not None  # another client's session stays


async def test_a_session_ended_on_one_worker_is_refused_by_every_other_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signed-in user's token is read from the database on every check: signed out, or replaced by a renewal, on
    one worker, it was accepted by the others until their token cache looked again (30 s, Redis or not)."""
    corp = CorpRef(int(await db.fetchval("SELECT id FROM corp WHERE corp_id = 'corpA'")), "corpA")
    user_id = "sess-" + secrets.token_hex(4)
    await actions.create_user(db, corp, UserSpec(user_id, "会话", password="pass-word-123"), actor="test")
    here, there = SessionService(db), TokenService(db, SecretBox(SECRET_KEY), revalidate_seconds=3600)
    signed = await here.sign_in(corp.pk, user_id, "pass-word-123", "console")
    monkeypatch.setattr(metrics, "_enabled", True)
    misses = metrics._TOKEN_LOOKUPS[False].count
    assert (await there.authenticate(signed.access_token)).kind == "session"
    assert metrics._TOKEN_LOOKUPS[False].count == misses  # never cached: not a cache miss either
    renewed = await here.renew(corp.pk, signed.refresh_token)
    with pytest.raises(Unauthenticated):
        await there.authenticate(signed.access_token)
    assert (await there.authenticate(renewed.access_token)).kind == "session"
    assert await here.sign_out(renewed.access_token)
    with pytest.raises(Unauthenticated):
        await there.authenticate(renewed.access_token)


async def test_a_new_password_ends_every_session_of_the_user_and_nothing_else_does(db: Database) -> None:
    """Someone who signed in with a leaked password kept his session (and renewed it) after the password was
    changed; a change of another kind leaves sessions alone."""
    corp = CorpRef(int(await db.fetchval("SELECT id FROM corp WHERE corp_id = 'corpA'")), "corpA")
    user_id = "sess-" + secrets.token_hex(4)
    await actions.create_user(db, corp, UserSpec(user_id, "会话", password="pass-word-123"), actor="test")
    sessions = SessionService(db)
    opened = [await sessions.sign_in(corp.pk, user_id, "pass-word-123", client) for client in ("console", "env-x")]
    await actions.update_user(db, corp, user_id, {"name": "会话改名", "password": "pass-word-123"}, actor="test")
    assert all([await load_session(db, digest(s.access_token)) is not None for s in opened])  # same password
    await actions.update_user(db, corp, user_id, {"password": "pass-word-456"}, actor="test")
    assert [await load_session(db, digest(s.access_token)) for s in opened] == [None, None]
    with pytest.raises(Unauthenticated):
        await sessions.renew(corp.pk, opened[0].refresh_token)
    with pytest.raises(Unauthenticated):
        await sessions.sign_in(corp.pk, user_id, "pass-word-123", "console")
    assert await sessions.sign_in(corp.pk, user_id, "pass-word-456", "console")
