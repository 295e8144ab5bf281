"""Form instances (records) and search results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FormInstance", "SearchResult"]


@dataclass(slots=True)
class FormInstance:
    """One record of a form: system fields plus the normalised component values in ``data``."""

    pk: int
    instance_id: str
    corp_pk: int
    app_pk: int
    form_pk: int
    form_uuid: str
    form_version: int
    title: str
    originator_user_id: str
    modifier_user_id: str
    created_at: int
    modified_at: int
    data: dict[str, Any]
    data_version: int
    serial_no: str | None = None
    process_instance_id: str | None = None
    instance_status: str | None = None
    approved_result: str | None = None


@dataclass(slots=True)
class SearchResult:
    """A page of instances and the total number of matches (``None`` when not counted)."""

    total: int | None
    items: list[FormInstance] = field(default_factory=list)
