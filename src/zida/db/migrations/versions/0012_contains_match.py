"""Contains-match search: PostgreSQL's pg_trgm extension, whose GIN indexes serve ``ILIKE '%…%'``.

The indexes themselves are per form and field (``zida.core.records.filters.indexes``): ``zida migrate`` builds them
for the existing forms after this revision, concurrently, reporting progress. SQLite needs nothing here (its FTS5
trigram tables are built per form the same way).

pg_trgm ships with PostgreSQL's contrib modules and is a trusted extension: the database's owner may create it. It
goes into the ``public`` schema when it can (so that dropping a Zida schema never drops it, nor another schema's
indexes with it), else into Zida's own schema. When it is not available (no contrib package, no privilege) the
migration goes on with a warning and contains-match searches scan the form, as before.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

log = logging.getLogger("zida.migrate")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar():
        return
    if not bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar():
        log.warning("pg_trgm is not available (install PostgreSQL's contrib modules): contains-match searches scan")
        return
    create = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
    for statement in (f"{create} WITH SCHEMA public", create):
        try:
            with bind.begin_nested():
                bind.execute(sa.text(statement))
            return
        except sa.exc.DBAPIError as exc:  # no privilege, no public schema, or created meanwhile by another migration
            reason = str(exc.orig).strip()
    log.warning("could not create pg_trgm (%s): contains-match searches scan", reason)


def downgrade() -> None:
    """The extension stays: other schemas of the database may use it."""
