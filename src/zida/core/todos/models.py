"""To-do entities: a to-do with its executors and participants, what creating and changing one takes, a query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ANY_ROLE",
    "APPROVAL_SOURCE",
    "EXECUTOR",
    "PARTICIPANT",
    "ROLES",
    "Executor",
    "Todo",
    "TodoChanges",
    "TodoPage",
    "TodoQuery",
    "TodoSpec",
]

EXECUTOR = "executor"
PARTICIPANT = "participant"
CREATOR = "creator"
ROLES = (EXECUTOR, CREATOR, PARTICIPANT)
ANY_ROLE: tuple[tuple[str, ...], ...] = ((EXECUTOR,), (CREATOR,), (PARTICIPANT,))
# The ``source`` of the to-dos the workflow engine keeps for approval tasks.
APPROVAL_SOURCE = "approval"


@dataclass(frozen=True, slots=True)
class Executor:
    """One executor of a to-do and his own status."""

    user_id: str
    done: bool = False


@dataclass(frozen=True, slots=True)
class Todo:
    """A to-do of a corp (people are userIds; times epoch ms).

    ``source`` is who created it (an app credential's client id, or ``approval`` for an approval task's to-do, then
    ``approval_task_id`` names the task); ``source_id`` the creator's own key for it. ``details`` keeps the rest of
    what the creator sent: ``content_fields`` (``[{"key", "value"}]``), ``only_executors_see``, ``kind``,
    ``category``, ``notify``, ``reminders``, ``reminder_at``, ``actions``, ``extension`` (opaque values).
    """

    pk: int
    todo_id: str
    corp_pk: int
    creator_user_id: str
    modifier_user_id: str | None
    subject: str
    description: str | None
    due_time: int | None
    priority: int | None
    done: bool
    finished_at: int | None
    app_url: str | None
    pc_url: str | None
    source: str
    source_id: str | None
    approval_task_id: int | None
    details: Mapping[str, Any]
    executors: tuple[Executor, ...]
    participants: tuple[str, ...]
    created_at: int
    modified_at: int

    def role_of(self, user_id: str) -> set[str]:
        """The roles ``user_id`` holds on this to-do (empty: he may not see it)."""
        roles = set()
        if self.creator_user_id == user_id:
            roles.add(CREATOR)
        if any(e.user_id == user_id for e in self.executors):
            roles.add(EXECUTOR)
        if user_id in self.participants:
            roles.add(PARTICIPANT)
        return roles


@dataclass(frozen=True, slots=True)
class TodoSpec:
    """What creating a to-do takes (``details``: see ``Todo``)."""

    subject: str
    creator_user_id: str
    description: str | None = None
    due_time: int | None = None
    priority: int | None = None
    executors: Sequence[str] = ()
    participants: Sequence[str] = ()
    app_url: str | None = None
    pc_url: str | None = None
    source_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TodoChanges:
    """The fields an update names (None: unchanged). ``done`` true marks every executor done, false reopens all."""

    subject: str | None = None
    description: str | None = None
    due_time: int | None = None
    done: bool | None = None
    executors: Sequence[str] | None = None
    participants: Sequence[str] | None = None
    content_fields: Sequence[Mapping[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class TodoQuery:
    """A user's to-dos: ``roles`` is a list of role sets (any set matches; in a set, every role must hold), ``done``
    None for both, due between ``due_from`` and ``due_to``, ``subject`` contained in the subject, of one ``kind``
    (``details.kind``; a to-do without one is of kind ``todo``), ordered by
    ``order_by`` (``created``, ``modified``, ``due``) from ``after`` (a cursor of a previous page)."""

    roles: tuple[tuple[str, ...], ...] = ANY_ROLE
    done: bool | None = None
    due_from: int | None = None
    due_to: int | None = None
    subject: str | None = None
    kind: str | None = None
    order_by: str = "created"
    descending: bool = True
    limit: int = 50
    after: str | None = None


@dataclass(frozen=True, slots=True)
class TodoPage:
    """One page of to-dos and the cursor of the next (None: this was the last)."""

    todos: list[Todo]
    next_cursor: str | None
