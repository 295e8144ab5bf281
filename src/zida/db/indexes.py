"""Per-form partial expression indexes for searchable fields, on both databases.

Each searchable text/number field gets ``(<typed expr>, created_at, id) WHERE form_pk = N``; on
PostgreSQL array fields (employee, checkbox, …) get a GIN ``jsonb_path_ops`` index for containment.
The expressions are exactly those ``zida.db.filters`` emits, and queries name the form as the same literal.
"""

from __future__ import annotations

import hashlib
import re

from zida.core.apps.models import Field
from zida.db.database import Connection
from zida.db.filters import field_expression

__all__ = ["ensure_field_indexes", "index_name"]


def index_name(form_pk: int, field_id: str) -> str:
    """Deterministic index name, within PostgreSQL's 63-character limit."""
    safe = re.sub(r"[^a-z0-9_]", "_", field_id.lower())
    name = f"ix_fi_{form_pk}_{safe}"
    if len(name) > 60:
        name = f"ix_fi_{form_pk}_{hashlib.sha1(field_id.encode(), usedforsecurity=False).hexdigest()[:16]}"
    return name


async def ensure_field_indexes(conn: Connection, form_pk: int, fields: tuple[Field, ...]) -> list[str]:
    """Create the missing indexes for the searchable fields of a form; returns the names it ensured."""
    pk = int(form_pk)
    names = []
    for f in fields:
        if not f.searchable:
            continue
        name = index_name(pk, f.field_id)
        if f.kind in ("text", "number"):
            expr = field_expression(conn.sql, f)
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON form_instance ({expr}, created_at, id) WHERE form_pk = {pk}"
            )
        elif f.kind == "array" and conn.sql.name == "postgresql":
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON form_instance USING gin ((data->'{f.field_id}') jsonb_path_ops)"
                f" WHERE form_pk = {pk}"
            )
        else:
            continue
        names.append(name)
    return names
