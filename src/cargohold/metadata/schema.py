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


def _touched_at() -> sa.Column[float]:
    """When something last made the row live (migration 0003); GC's grace clock."""
    return sa.Column(
        "touched_at", sa.Float, nullable=False, server_default=sa.text("0")
    )


# Content known to the registry. ``state`` (migration 0003): ``present`` (the bytes
# are durable in the blob store), ``pending`` (an upload claimed the digest and is
# committing its bytes) or ``deleting`` (a GC tombstone: the bytes are being deleted,
# and the row goes after them; ``touched_at`` is then the start of the deleter's lease).
blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    _touched_at(),
    sa.Column("state", sa.String(16), nullable=False, server_default="present"),
    sa.Index("ix_blobs_state", "state"),
)

# Which repository may serve which blob (a blob is stored once, linked many times).
repository_blobs = sa.Table(
    "repository_blobs",
    metadata,
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    _touched_at(),
    sa.Index("ix_repository_blobs_digest", "digest"),
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
    _touched_at(),
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
    # The digest the session is committing (set before its bytes move): GC spares it.
    sa.Column("claimed_digest", sa.String(200)),
    sa.Index("ix_uploads_claimed_digest", "claimed_digest"),
)

# --- identities, entitlements and audit (migration 0002) ---------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Who may do what where. A membership is a grant on repository "*"; a per-repository
# override names one repository (a glob within the organization); ``tags`` (JSON list of
# globs, or NULL for all) limits which tags and the content they reach may be pulled.
grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "principal", sa.String(200), nullable=False
    ),  # "user:alice", "token:<id>"
    sa.Column("organization", sa.String(64), nullable=False),
    sa.Column("repository", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("tags", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_grants_principal", "principal"),
)

pull_tokens = sa.Table(
    "pull_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organization", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),  # a subject
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)

oidc_identities = sa.Table(
    "oidc_identities",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("issuer", sa.String(255), nullable=False),
    sa.Column("audience", sa.String(255), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("claims", sa.Text, nullable=False),  # JSON object claim -> glob
    sa.Column("created_at", sa.Float, nullable=False),
)

repository_settings = sa.Table(
    "repository_settings",
    metadata,
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("starter_tags", sa.Text),  # JSON list of globs, NULL = the default
    sa.Column("updated_at", sa.Float, nullable=False),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("private_pem", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("retired_at", sa.Float),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("principal", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Index("ix_audit_events_at", "at"),
)
