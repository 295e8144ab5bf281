"""Record search: the one filter tree every search syntax parses into, its SQL compiler and the index planner."""

from zida.core.records.filters.tree import (
    OPERATORS,
    SYSTEM_FIELDS,
    And,
    Condition,
    Filter,
    Or,
    Page,
    RecordQuery,
    Sort,
)

__all__ = ["OPERATORS", "SYSTEM_FIELDS", "And", "Condition", "Filter", "Or", "Page", "RecordQuery", "Sort"]
