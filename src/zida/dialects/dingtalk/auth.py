"""DingTalk's access tokens and the secrets on top of them: an app's ``systemToken`` and the org-level ``token``.

DingTalk's routes take an app credential's token only (``app_principal``): the acting user a call names is the
app's word, never vouched for by a user's session (WeDa's sign-in, the console), whose token they refuse.

Every Yida call names an app (``appType``) and a user (``userId``) and proves it may act in the app with the app's
``systemToken``; the org-level lists prove they speak for ``userId`` with ``upper(md5(corpId + userId +
taskApiCode))``. Both are compared in constant time; only successful systemToken checks are cached (for
``ZIDA_CACHE_SECONDS``, and dropped whenever the org or its apps change).
"""

from __future__ import annotations

import hashlib
import hmac

from zida.cache import TtlCache
from zida.core.access.members import app_secret_digest, find_app_membership
from zida.core.access.tokens import TokenService
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from zida.core.org.repository import corp_org_secret
from zida.core.principals import AppActor, Principal
from zida.crypto import SecretBox
from zida.db import Connection

__all__ = ["app_principal", "check_org_token", "org_token", "resolve_app_actor"]

# Successful systemToken + userId checks.
_ACTORS: TtlCache[tuple[object, ...], AppActor] = TtlCache(scope="apps")


async def app_principal(tokens: TokenService, token: str | None) -> Principal:
    """The principal behind an app credential's ``token``; a signed-in user's token is refused (module docstring)."""
    principal = await tokens.authenticate(token)
    if principal.kind == "session":
        raise Unauthenticated(
            "this is a signed-in user's token, not an app's access token: request one with the app credential"
            " (POST /v1.0/oauth2/accessToken or GET /gettoken)",
            reason="auth.user_token",
        )
    return principal


def org_token(corp_id: str, user_id: str, task_api_code: str) -> str:
    """The org-level token: ``upper(md5(corpId + userId + taskApiCode))``."""
    return hashlib.md5((corp_id + user_id + task_api_code).encode(), usedforsecurity=False).hexdigest().upper()


async def check_org_token(
    conn: Connection, box: SecretBox, principal: Principal, corp_id: str, user_id: str, token: str
) -> Principal:
    """Verify an org-level ``token`` for ``user_id`` in the principal's corp; the principal speaking for him."""
    if not corp_id or not user_id or not token:
        raise InvalidArgument("corpId, userId and token are required", reason="argument.missing")
    if corp_id != principal.corp_id:
        raise PermissionDenied("corpId does not match the access token's corp", reason="auth.bad_org_token")
    code = await corp_org_secret(conn, box, principal.corp_pk)
    if not code:
        raise PermissionDenied("this corp has no taskApiCode configured", reason="auth.bad_org_token")
    expected = org_token(corp_id, user_id, code)
    if not hmac.compare_digest(expected.encode(), token.strip().upper().encode()):
        raise PermissionDenied("invalid org token for this userId", reason="auth.bad_org_token")
    return principal.speaking_for(user_id)


async def resolve_app_actor(
    conn: Connection,
    box: SecretBox,
    principal: Principal,
    *,
    app_type: str | None,
    app_pk: int | None = None,
    system_token: str | None,
    user_id: str | None,
) -> AppActor:
    """Check ``systemToken`` against the app (of the principal's corp) and ``userId`` against the corp."""
    if not system_token:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="app_secret")
    if not user_id:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="user")
    if app_pk is None and not app_type:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="app")
    token_digest = app_secret_digest(box, system_token)
    cache_key = (principal.corp_pk, app_type, app_pk, user_id, token_digest)
    cached = _ACTORS.get(cache_key)
    if cached is not None:
        return cached
    found = await find_app_membership(conn, principal.corp_pk, app_type=app_type, app_pk=app_pk, user_id=user_id)
    if found is None:
        raise NotFound(f"application {app_type or app_pk} does not exist", reason="app.not_found")
    if not hmac.compare_digest(found.secret_digest.encode(), token_digest.encode()):
        raise PermissionDenied("systemToken does not match the application", reason="app.bad_system_token")
    if found.actor is None:
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")
    return _ACTORS.put(cache_key, found.actor)
