"""Org directory entities."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Corp", "Department", "User"]


@dataclass(frozen=True, slots=True)
class Corp:
    """An organisation: the unit of tenancy."""

    pk: int
    corp_id: str
    name: str


@dataclass(frozen=True, slots=True)
class User:
    """A member of a corp, with the main department first in ``dept_ids``."""

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


@dataclass(frozen=True, slots=True)
class Department:
    """A node of the department tree."""

    pk: int
    dept_id: int
    name: str
    name_en: str | None
    parent_dept_id: int | None
    manager_user_ids: tuple[str, ...]
