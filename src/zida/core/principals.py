"""Who is calling: a token's grant, and the resolved actor inside an app."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL_SCOPES", "AppActor", "Grant", "IssuedToken", "has_scope"]

ALL_SCOPES = (
    "Yida.Form.Read",
    "Yida.Form.Write",
    "Yida.Process.Read",
    "Yida.Process.Write",
    "Yida.Task.Read",
    "Yida.Task.Write",
    "Yida.Comment.Write",
    "Yida.App.Read",
    "Yida.Attachment.Read",
    "Contact.User.Read",
)


def has_scope(granted: tuple[str, ...], required: str) -> bool:
    """``*`` grants everything, ``Yida.*`` every scope under ``Yida.``, otherwise exact names."""
    for scope in granted:
        if scope == "*" or scope == required:
            return True
        if scope.endswith(".*") and required.startswith(scope[:-1]):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid access token allows: one app credential of one corp, with its scopes."""

    credential_pk: int
    app_key: str
    corp_pk: int
    corp_id: str
    scopes: tuple[str, ...]
    expires_at: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token handed to a client."""

    token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class AppActor:
    """A corp user acting inside an app, authenticated by the app's systemToken."""

    corp_pk: int
    app_pk: int
    app_type: str
    user_pk: int
    user_id: str
    user_name: str
    is_app_admin: bool
