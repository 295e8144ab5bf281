"""Admin API for app credentials (what obtains access tokens, and the scopes they grant).

Scopes are given as in a bundle: Zida's neutral names (``records.read``…), any dialect's permission names
(``Yida.Form.Read``, ``Zida.Admin``…), their prefix wildcards (``Yida.*``) or ``*``; they are shown as the neutral
names stored. A secret is returned only by the call that made it (create, rotate), never again; another corp's
credential does not exist (404).

====== ======================================== ============================================================
method path                                     body → effect
====== ======================================== ============================================================
GET    /admin/v1/credentials                    → ``{credentials: [{appKey, scopes, rateLimit, createdAt,
                                                updatedAt}]}``
POST   /admin/v1/credentials                    ``{scopes, appKey?, appSecret?, rateLimit?}`` (generated when
                                                absent) → 201, ``{appKey, appSecret, scopes, …}``
GET    /admin/v1/credentials/{appKey}           → the credential
PATCH  /admin/v1/credentials/{appKey}           ``{scopes?, rateLimit?}``: what its tokens grant from now on, its
                                                calls per second and API (null: the server's default, 0: none)
POST   /admin/v1/credentials/{appKey}/rotate    ``{appSecret?}``: a new secret (generated when absent); its tokens
                                                and the old secret stop working → ``{appKey, appSecret, …}``
DELETE /admin/v1/credentials/{appKey}           revoke: the credential and its tokens stop working
                                                → ``{appKey, revoked: true}``
====== ======================================== ============================================================
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route

from zida.core.access import credentials
from zida.core.access.credentials import Credential
from zida.core.errors import InvalidArgument, NotFound
from zida.dialects import granted_scopes
from zida.dialects.admin.errors import parse_body
from zida.dialects.admin.http import AdminCall, admin_endpoint, respond
from zida.dialects.admin.org import actor_of, corp_of

__all__ = ["routes"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Create(_Body):
    scopes: list[str] = Field(min_length=1)
    appKey: str | None = None
    appSecret: str | None = None
    rateLimit: int | None = None


class _Change(_Body):
    scopes: list[str] | None = Field(default=None, min_length=1)
    rateLimit: int | None = None


class _Rotate(_Body):
    appSecret: str | None = None


def _scopes(names: list[str]) -> list[str]:
    try:
        return granted_scopes(names)
    except ValueError as exc:
        raise InvalidArgument(f"scopes: {exc}", reason="credential.unknown_scope", param="scopes") from None


def _credential_view(credential: Credential) -> dict[str, Any]:
    """A credential as the admin API shows it (never its secret)."""
    return {
        "appKey": credential.client_id,
        "scopes": list(credential.scopes),
        "rateLimit": credential.rate_limit,
        "createdAt": credential.created_at,
        "updatedAt": credential.updated_at,
    }


@admin_endpoint
async def list_credentials(call: AdminCall) -> dict[str, Any]:
    """The corp's credentials."""
    found = await credentials.list_credentials(call.zida.db, call.principal.corp_pk)
    return {"credentials": [_credential_view(c) for c in found]}


@admin_endpoint
async def create_credential(call: AdminCall) -> Any:
    """Create a credential; its secret is in this answer only."""
    body = parse_body(_Create, call.body)
    issued = await credentials.create_credential(
        call.zida.db,
        corp_of(call),
        _scopes(body.scopes),
        actor=actor_of(call),
        client_id=body.appKey or None,
        secret=body.appSecret or None,
        rate_limit=body.rateLimit,
    )
    return respond({**_credential_view(issued.credential), "appSecret": issued.secret}, 201)


@admin_endpoint
async def get_credential(call: AdminCall) -> dict[str, Any]:
    """One credential."""
    found = await credentials.get_credential(call.zida.db, call.principal.corp_pk, call.path["appKey"])
    if found is None:
        raise NotFound(f"credential {call.path['appKey']} does not exist", reason="credential.not_found")
    return _credential_view(found)


@admin_endpoint
async def update_credential(call: AdminCall) -> dict[str, Any]:
    """Replace a credential's scopes or rate limit (a key left out stays as it is)."""
    body = parse_body(_Change, call.body)
    updated = await credentials.update_credential(
        call.zida.db,
        corp_of(call),
        call.path["appKey"],
        scopes=_scopes(body.scopes) if body.scopes is not None else None,
        rate_limit=body.rateLimit if "rateLimit" in body.model_fields_set else credentials.KEEP,
        actor=actor_of(call),
    )
    return _credential_view(updated)


@admin_endpoint
async def rotate_credential(call: AdminCall) -> dict[str, Any]:
    """Give a credential a new secret; it is in this answer only."""
    body = parse_body(_Rotate, call.body)
    issued = await credentials.rotate_credential(
        call.zida.db, corp_of(call), call.path["appKey"], actor=actor_of(call), secret=body.appSecret or None
    )
    return {**_credential_view(issued.credential), "appSecret": issued.secret}


@admin_endpoint
async def revoke_credential(call: AdminCall) -> dict[str, Any]:
    """Revoke a credential and its tokens."""
    await credentials.revoke_credential(call.zida.db, corp_of(call), call.path["appKey"], actor=actor_of(call))
    return {"appKey": call.path["appKey"], "revoked": True}


def routes() -> list[Route]:
    """Admin routes for credentials."""
    base = "/admin/v1/credentials"
    return [
        Route(base, list_credentials, methods=["GET"]),
        Route(base, create_credential, methods=["POST"]),
        Route(f"{base}/{{appKey}}", get_credential, methods=["GET"]),
        Route(f"{base}/{{appKey}}", update_credential, methods=["PATCH"]),
        Route(f"{base}/{{appKey}}", revoke_credential, methods=["DELETE"]),
        Route(f"{base}/{{appKey}}/rotate", rotate_credential, methods=["POST"]),
    ]
