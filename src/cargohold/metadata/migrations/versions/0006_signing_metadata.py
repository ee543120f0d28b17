"""Signed images and what is inside them: signatures stored through the registry
signature API extension, image descriptions and their packages (SBOM rows), an
imported OSV feed and its matches in images.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TABLES = (
    "image_signatures",
    "image_descriptions",
    "image_packages",
    "vulnerabilities",
    "vulnerability_packages",
    "image_vulnerabilities",
)


def upgrade() -> None:
    op.create_table(
        "image_signatures",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("content_digest", sa.String(71), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint(
            "repository", "digest", "content_digest", name="uq_image_signatures_once"
        ),
    )
    op.create_index(
        "ix_image_signatures_manifest", "image_signatures", ["repository", "digest"]
    )
    op.create_table(
        "image_descriptions",
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("package_count", sa.Integer, nullable=False),
        sa.Column("facts", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("described_at", sa.Float, nullable=False),
    )
    op.create_table(
        "image_packages",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("ecosystem", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("purl", sa.String(1024), nullable=False),
        sa.Column("license", sa.String(255)),
        sa.Column("path", sa.String(1024), nullable=False),
    )
    op.create_index("ix_image_packages_digest", "image_packages", ["digest"])
    op.create_index("ix_image_packages_name", "image_packages", ["ecosystem", "name"])
    op.create_table(
        "vulnerabilities",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("modified", sa.Float, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("aliases", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("imported_at", sa.Float, nullable=False),
    )
    op.create_table(
        "vulnerability_packages",
        sa.Column("vulnerability", sa.String(64), primary_key=True),
        sa.Column("ecosystem", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
    )
    op.create_index(
        "ix_vulnerability_packages_name",
        "vulnerability_packages",
        ["ecosystem", "name"],
    )
    op.create_table(
        "image_vulnerabilities",
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("vulnerability", sa.String(64), primary_key=True),
        sa.Column("ecosystem", sa.String(32), primary_key=True),
        sa.Column("package", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), primary_key=True),
        sa.Column("fixed", sa.String(255)),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("matched_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_image_vulnerabilities_vulnerability",
        "image_vulnerabilities",
        ["vulnerability"],
    )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
