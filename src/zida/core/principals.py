"""Who is calling: one ``Principal`` for every kind of caller, neutral scopes, and the actor inside an app.

A dialect authenticates its own way (an access token of an app credential, a signed-in user's session, an org-level
token) and hands the core a ``Principal``; where a call acts as a user inside an app, the dialect resolves an
``AppActor`` (``zida.core.access.members``), the subject of the one access policy (``zida.core.access.policy``).

Scopes are Zida's own vocabulary. Each dialect maps its permission names to them (DingTalk's in
``zida.dialects.dingtalk.scopes``); credentials store the neutral names, ``*`` granting every scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = ["ALL_SCOPES", "AppActor", "IssuedToken", "Principal", "Scope", "parse_scopes", "scope_names"]


class Scope(StrEnum):
    """What a principal may do, whatever the dialect it calls through."""

    RECORDS_READ = "records.read"
    RECORDS_WRITE = "records.write"
    PROCESSES_READ = "processes.read"
    PROCESSES_WRITE = "processes.write"
    TASKS_READ = "tasks.read"
    TASKS_WRITE = "tasks.write"
    COMMENTS_WRITE = "comments.write"
    APPS_READ = "apps.read"
    FILES_READ = "files.read"
    DIRECTORY_READ = "directory.read"
    DIRECTORY_WRITE = "directory.write"  # create, change and delete users and departments
    TODOS_READ = "todos.read"
    TODOS_WRITE = "todos.write"
    MESSAGES_SEND = "messages.send"  # work notifications: send, read their results, recall
    EVENTS = "events"  # register event callbacks, read failed deliveries, receive events over Stream mode
    ADMIN = "admin"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)
WILDCARD = "*"


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """The scopes stored names grant (``*``: all; unknown names grant nothing)."""
    out: set[Scope] = set()
    for name in names:
        if name == WILDCARD:
            return ALL_SCOPES
        if name in Scope._value2member_map_:
            out.add(Scope(name))
    return frozenset(out)


def scope_names(scopes: Iterable[Scope]) -> list[str]:
    """Stored form of a set of scopes: ``["*"]`` for all of them, else the sorted names."""
    granted = frozenset(scopes)
    if granted >= ALL_SCOPES:
        return [WILDCARD]
    return sorted(s.value for s in granted)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``kind`` is ``credential`` (an access token of an app credential: the integration itself), ``session`` (a user
    who signed in; ``user_id`` is that user) or ``org_user`` (a credential's call that also proved, with an
    org-level secret, that it speaks for ``user_id``). ``client_id`` is the credential's public key.
    """

    kind: str
    corp_pk: int
    corp_id: str
    scopes: frozenset[Scope]
    client_id: str
    credential_pk: int | None = None
    user_id: str | None = None
    expires_at: int = 0
    rate_limit: int | None = None  # the credential's calls per second and API (None: the server's default)

    def allows(self, scope: Scope) -> bool:
        """Whether the principal holds ``scope``."""
        return scope in self.scopes

    def speaking_for(self, user_id: str) -> Principal:
        """This principal, vouched (by a check the dialect made) to speak for ``user_id`` of its corp."""
        return replace(self, kind="org_user", user_id=user_id)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token handed to a client."""

    token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class AppActor:
    """A corp user acting inside one app: the subject of every access decision on the app's data."""

    corp_pk: int
    app_pk: int
    app_type: str
    user_pk: int
    user_id: str
    user_name: str
    is_app_admin: bool
