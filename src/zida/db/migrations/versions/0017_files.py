"""Files: stored objects, their references from records and approvals, temporary URLs (filled by the files work).

* ``stored_file``: one uploaded file of a corp — its public id (``FILE-…``, the ``fileUuid``/``media_id``), the name
  shown to people (never used as a path), extension, sniffed content type, size, SHA-256, where its bytes are
  (``backend`` ``local``/``s3`` and ``storage_key``, derived from the corp and the id), who uploaded it, the WeDa
  object path it was uploaded under (``object_path``, unique in the corp, NULL for other uploads), its ``state``
  (``pending``: a WeDa upload slot whose bytes have not arrived; ``stored``), when it was created and when a record
  or an approval first referenced it (``attached_at``; NULL: unattached, expires after ZIDA_FILES_UNATTACHED_HOURS).

Temporary URLs are signed with the server key and need no row.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stored_file",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("file_id", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("ext", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("storage_key", sa.Text, nullable=False),
        sa.Column("uploader", sa.Text, nullable=False),
        sa.Column("object_path", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("attached_at", sa.BigInteger),
    )
    op.create_index("ix_stored_file_corp", "stored_file", ["corp_pk", "created_at"])
    op.create_index("ux_stored_file_object_path", "stored_file", ["corp_pk", "object_path"], unique=True)
    op.create_index("ix_stored_file_unattached", "stored_file", ["attached_at", "created_at"])


def downgrade() -> None:
    op.drop_table("stored_file")
