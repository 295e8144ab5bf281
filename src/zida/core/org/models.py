"""Org directory entities."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Corp", "CorpRef", "Department", "Role", "User"]


@dataclass(frozen=True, slots=True)
class Corp:
    """An organisation: the unit of tenancy."""

    pk: int
    corp_id: str
    name: str


@dataclass(frozen=True, slots=True)
class CorpRef:
    """The corp an action works in (what a principal knows of its corp)."""

    pk: int
    corp_id: str


@dataclass(frozen=True, slots=True)
class User:
    """A member of a corp, with the main department first in ``dept_ids``.

    A deactivated user (``active`` false) keeps his history, is still found for rendering the records and approvals
    that name him, but cannot act, cannot be named anew in a record and is never resolved as a new approver.
    """

    pk: int
    user_id: str
    name: str
    name_en: str | None
    email: str | None
    title: str | None
    manager_user_id: str | None
    union_id: str
    dept_ids: tuple[int, ...]
    main_dept_name: str | None
    mobile: str | None = None
    active: bool = True
    username: str | None = None  # the sign-in name (None: the userId)


@dataclass(frozen=True, slots=True)
class Department:
    """A node of the department tree."""

    pk: int
    dept_id: int
    name: str
    name_en: str | None
    parent_dept_id: int | None
    manager_user_ids: tuple[str, ...]
    order: int = 0


@dataclass(frozen=True, slots=True)
class Role:
    """A named group of users (approvers by role), with its members in join order."""

    pk: int
    role_id: int
    name: str
    group: str | None
    members: tuple[str, ...]
