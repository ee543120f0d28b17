"""Online garbage collection: blob states, touch times, upload claims.

* ``blobs.state``: ``present`` (bytes durable), ``pending`` (an upload claimed the
  digest and is committing its bytes) or ``deleting`` (a tombstone: GC, or whoever took
  it over, is deleting the bytes; the row goes once they are gone).
* ``blobs.touched_at``, ``repository_blobs.touched_at``, ``manifests.touched_at``: when
  something last made the row live (upload, mount, manifest PUT); for a tombstone, the
  start of its owner's lease. GC takes only rows untouched for the grace period.
* ``uploads.claimed_digest``: the digest an upload is committing; GC never takes a blob
  an open session claims.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TOUCHED = ("blobs", "repository_blobs", "manifests")


def upgrade() -> None:
    for table in _TOUCHED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "touched_at", sa.Float, nullable=False, server_default=sa.text("0")
                )
            )
        op.execute(f"UPDATE {table} SET touched_at = created_at")  # noqa: S608
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(
            sa.Column("state", sa.String(16), nullable=False, server_default="present")
        )
    op.create_index("ix_blobs_state", "blobs", ["state"])
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("claimed_digest", sa.String(200)))
    op.create_index("ix_uploads_claimed_digest", "uploads", ["claimed_digest"])
    op.create_index("ix_repository_blobs_digest", "repository_blobs", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_repository_blobs_digest", "repository_blobs")
    op.drop_index("ix_uploads_claimed_digest", "uploads")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("claimed_digest")
    op.drop_index("ix_blobs_state", "blobs")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("state")
    for table in _TOUCHED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("touched_at")
