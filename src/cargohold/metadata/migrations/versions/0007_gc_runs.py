"""Garbage collection runs, so every server process can report them in ``/metrics``
(``cargohold gc`` runs in its own process).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "gc_runs",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("finished_at", sa.Float, nullable=False),
        sa.Column("blobs_deleted", sa.BigInteger, nullable=False),
        sa.Column("bytes_freed", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gc_runs")
