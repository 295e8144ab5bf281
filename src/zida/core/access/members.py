"""Members of apps: a corp user resolved to an ``AppActor`` (the subject of the access policy).

How a caller proves it may act as that user is the dialect's business (DingTalk: the app's secret with every
call); the core only says who the user is inside the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from zida.cache import TtlCache
from zida.core.errors import InvalidArgument, NotFound
from zida.core.principals import AppActor
from zida.crypto import SecretBox
from zida.db import Connection

__all__ = ["AppMembership", "app_actor", "app_secret_digest", "find_app_membership", "integration_actor"]


def app_secret_digest(box: SecretBox, secret: str) -> str:
    """What the database keeps to check an app's secret: an HMAC with the server key (a dump alone can't be
    brute-forced for low-entropy secrets)."""
    return box.derive("system-token", secret, 64)


@dataclass(frozen=True, slots=True)
class AppMembership:
    """An app of the corp, its secret's digest, and the user inside it (``actor`` None: no such user)."""

    app_pk: int
    app_type: str
    secret_digest: str
    actor: AppActor | None


async def find_app_membership(
    conn: Connection, corp_pk: int, *, app_type: str | None, app_pk: int | None, user_id: str
) -> AppMembership | None:
    """The corp's app named by its code or pk, with ``user_id`` as a member of it (one query); None: no such app."""
    where = "a.id = :app_pk" if app_pk is not None else "a.app_type = :app_type"
    row = await conn.fetchrow(
        "SELECT a.id, a.app_type, a.secret_digest, u.id AS user_pk, u.name AS user_name,"
        " (SELECT 1 FROM app_admin aa WHERE aa.app_pk = a.id AND aa.user_pk = u.id) AS is_admin"
        " FROM app a LEFT JOIN org_user u ON u.corp_pk = a.corp_pk AND u.user_id = :user_id AND u.active"
        f" WHERE {where} AND a.corp_pk = :corp_pk",
        {"app_pk": app_pk, "user_id": user_id, "corp_pk": corp_pk}
        if app_pk is not None
        else {"app_type": app_type, "user_id": user_id, "corp_pk": corp_pk},
    )
    if row is None or (app_type and app_pk is not None and row["app_type"] != app_type):
        return None
    actor = None
    if row["user_pk"] is not None:
        actor = AppActor(
            corp_pk=corp_pk,
            app_pk=row["id"],
            app_type=row["app_type"],
            user_pk=row["user_pk"],
            user_id=user_id,
            user_name=row["user_name"],
            is_app_admin=row["is_admin"] is not None,
        )
    return AppMembership(row["id"], row["app_type"], row["secret_digest"], actor)


# Actors of trusted callers by (corp, app, user) and integrations' actors by (corp, app): users and app admins
# change rarely, and every such change empties the ``apps`` scope.
_ACTORS: TtlCache[tuple[int, int, str], AppActor] = TtlCache(scope="apps")
_INTEGRATION_USERS: TtlCache[tuple[int, int], str] = TtlCache(scope="apps")


async def app_actor(conn: Connection, corp_pk: int, app_pk: int, user_id: str) -> AppActor:
    """A corp user inside one of the corp's apps, for callers the corp already trusts (the admin API, WeDa)."""
    if not user_id:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="user")
    key = (corp_pk, app_pk, user_id)
    cached = _ACTORS.get(key)
    if cached is not None:
        return cached
    found = await find_app_membership(conn, corp_pk, app_type=None, app_pk=app_pk, user_id=user_id)
    if found is None:
        raise NotFound(f"application {app_pk} does not exist", reason="app.not_found")
    if found.actor is None:
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")
    return _ACTORS.put(key, found.actor)


async def integration_actor(conn: Connection, corp_pk: int, app_pk: int) -> AppActor | None:
    """Who an integration's own calls act as inside an app when they name no user: the app's first active
    administrator (the one who joined the corp first); None when the app has none."""
    user_id = _INTEGRATION_USERS.get((corp_pk, app_pk))
    if user_id is None:
        row = await conn.fetchrow(
            "SELECT u.user_id FROM app_admin aa JOIN org_user u ON u.id = aa.user_pk"
            " WHERE aa.app_pk = :a AND u.corp_pk = :c AND u.active ORDER BY u.id LIMIT 1",
            {"a": app_pk, "c": corp_pk},
        )
        if row is None:
            return None
        user_id = _INTEGRATION_USERS.put((corp_pk, app_pk), str(row["user_id"]))
    try:
        return await app_actor(conn, corp_pk, app_pk, user_id)
    except NotFound:
        return None
