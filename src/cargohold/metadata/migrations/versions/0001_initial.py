"""Initial schema: repositories, blobs, links, manifests, references, tags, uploads.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "repository_blobs",
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "manifests",
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("artifact_type", sa.String(255)),
        sa.Column("subject", sa.String(200)),
        sa.Column("annotations", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_manifests_subject", "manifests", ["repository", "subject"])
    op.create_table(
        "manifest_references",
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("manifest", sa.String(200), primary_key=True),
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_index("ix_manifest_references_target", "manifest_references", ["target"])
    op.create_table(
        "tags",
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "uploads",
        "tags",
        "manifest_references",
        "manifests",
        "repository_blobs",
        "blobs",
        "repositories",
    ):
        op.drop_table(table)
