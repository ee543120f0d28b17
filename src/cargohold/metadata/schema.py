"""The relational schema, as SQLAlchemy Core tables (migrations create the same)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Content known to the registry: the bytes are durable in the blob store.
blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Which repository may serve which blob (a blob is stored once, linked many times).
repository_blobs = sa.Table(
    "repository_blobs",
    metadata,
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("artifact_type", sa.String(255)),
    sa.Column("subject", sa.String(200)),
    sa.Column("annotations", sa.Text),  # JSON object or NULL
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_manifests_subject", "repository", "subject"),
)

# Blobs and child manifests a manifest refers to (for GC, fsck and delete rules).
manifest_references = sa.Table(
    "manifest_references",
    metadata,
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("manifest", sa.String(200), primary_key=True),
    sa.Column("target", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "blob" or "manifest"
    sa.Index("ix_manifest_references_target", "target"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("digest", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("repository", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
