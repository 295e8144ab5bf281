"""Serial numbers: one counter per form, SerialNumberField and period (``zida.core.records.serials``).

``period`` is '' for a counter that never starts again, else the day, week, month or year it counts in.
``last_value`` is the last number given. A record saved before this revision with a value in its form's first
SerialNumberField (an import, an API client) gets it as its own serial number (``serial_no``), as records saved
after it do; the counters start empty (at each rule's ``initialValue``).

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "serial_counter",
        sa.Column("form_pk", BIGPK, sa.ForeignKey("form.id", ondelete="CASCADE"), nullable=False),
        sa.Column("field_id", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("last_value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("form_pk", "field_id", "period"),
    )
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    value = "data ->> :field" if postgres else "json_extract(data, '$.\"' || :field || '\"')"
    versions = bind.execute(sa.text("SELECT form_pk, version, fields FROM form_version")).fetchall()
    for form_pk, version, fields in versions:
        schema = json.loads(fields) if isinstance(fields, str) else fields
        first = next((f["fieldId"] for f in schema if f.get("component") == "SerialNumberField"), None)
        if first is None:
            continue
        bind.execute(
            sa.text(
                f"UPDATE form_instance SET serial_no = {value} WHERE form_pk = :form AND form_version = :version"
                f" AND serial_no IS NULL AND {value} <> ''"
            ),
            {"form": form_pk, "version": version, "field": first},
        )


def downgrade() -> None:
    op.drop_table("serial_counter")
