"""Work notifications: a message as sent, what a send takes, its result, and a message in a user's inbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "APPROVAL_SENDER",
    "KINDS",
    "MAX_BODY_BYTES",
    "InboxItem",
    "Message",
    "MessageSpec",
    "SendResult",
]

# The kinds of message a sender may send; each kind's body is the fields of that kind (a text's ``content``…).
KINDS = ("text", "image", "voice", "file", "link", "oa", "markdown", "action_card")
MAX_BODY_BYTES = 2048
# The sender of the notifications an approval sends its assignees and originator.
APPROVAL_SENDER = "approval"


@dataclass(frozen=True, slots=True)
class Message:
    """A work notification as sent: ``pk`` is its public number, ``sender`` the app credential's client id (or
    ``approval``); ``invalid_*`` the receivers it named that the corp does not have; ``source_id`` what it is about
    (an approval's process instance id)."""

    pk: int
    message_key: str
    corp_pk: int
    sender: str
    agent_id: int | None
    kind: str
    body: Mapping[str, Any]
    to_all: bool
    invalid_user_ids: tuple[str, ...]
    invalid_dept_ids: tuple[int, ...]
    source_id: str | None
    created_at: int
    recalled_at: int | None = None


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """What a send takes: the message (``kind`` and ``body``) and its receivers — users, departments (with their
    sub-departments) or everyone."""

    kind: str
    body: Mapping[str, Any]
    user_ids: Sequence[str] = ()
    dept_ids: Sequence[int] = ()
    to_all: bool = False
    agent_id: int | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """Who received a message and who read it."""

    message: Message
    read: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A message in one user's inbox."""

    inbox_id: int
    user_id: str
    message: Message
    read_at: int | None
