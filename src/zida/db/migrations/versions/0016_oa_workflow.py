"""OA workflow (v1.0): no schema change. An instance started with its own approvers keeps its flow in its state
(``InstanceState.flow``), comments are the records' remarks; the revision stays empty so that 0017 follows 0016.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
