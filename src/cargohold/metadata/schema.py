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
    sa.Column("email", sa.String(320)),  # migration 0005: where advisories reach them
)

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # Migration 0005: reaches the people behind the organization's pull tokens and CI
    # identities (and its members, besides their own addresses).
    sa.Column("security_contact", sa.String(320)),
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

# --- who pulled what, and telling them (migration 0005) ----------------------------


def _serial() -> sa.Column[int]:
    """An auto-increment 64-bit id (SQLite: its INTEGER PRIMARY KEY, the rowid)."""
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


# One row per recorded manifest pull (GET; HEAD too if configured). ``identity`` is a
# principal's subject ("user:alice", "token:<id>", "oidc:<name>") or, for anonymous
# pulls, "anonymous:<address or network prefix>". Kept for ``pulls.retention_days``.
pull_events = sa.Table(
    "pull_events",
    metadata,
    _serial(),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("identity", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # user|token|oidc|anonymous|open
    sa.Column("organization", sa.String(64)),
    sa.Column("repository", sa.String(255), nullable=False),
    sa.Column("reference", sa.String(200), nullable=False),  # the tag or digest asked
    sa.Column("digest", sa.String(200), nullable=False),  # what it resolved to
    sa.Column("method", sa.String(8), nullable=False),  # GET | HEAD
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("user_agent", sa.String(512), nullable=False),
    sa.Column("tool", sa.String(64), nullable=False),
    sa.Column("tool_version", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(64), nullable=False),
    sa.Index("ix_pull_events_digest_at", "digest", "at"),
    sa.Index("ix_pull_events_repository_at", "repository", "at"),
    sa.Index("ix_pull_events_identity_at", "identity", "at"),
    sa.Index("ix_pull_events_at", "at"),
)

# Daily aggregates (identity x repository x digest x UTC day), kept longer than the
# events (``pulls.aggregate_retention_days``); advisories find affected identities here.
pull_daily = sa.Table(
    "pull_daily",
    metadata,
    sa.Column("day", sa.Integer, primary_key=True),  # days since 1970-01-01 (UTC)
    sa.Column("identity", sa.String(200), primary_key=True),
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("organization", sa.String(64)),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
    sa.Index("ix_pull_daily_digest", "digest", "last_at"),
    sa.Index("ix_pull_daily_identity", "identity", "last_at"),
)

# Jobs that must run once across every process (retention, outbox sweeps): whoever
# holds the lease (``holder`` until ``lease_until``) runs it, then sets ``next_run_at``.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("next_run_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("holder", sa.String(64), nullable=False),
)

advisories = sa.Table(
    "advisories",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),  # the current one
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    # draft|upcoming|current|resolved (a draft is not published: issue #8)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("document", sa.Text, nullable=False),  # JSON: the advisory as published
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Every revision kept, as published (JSON), with who published it.
advisory_revisions = sa.Table(
    "advisory_revisions",
    metadata,
    sa.Column("advisory", sa.String(64), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
)

# The digests an advisory covers: named, or resolved from its tag globs (``via_tag``),
# again whenever such a tag moves. The Warning header looks up (repository, digest).
advisory_digests = sa.Table(
    "advisory_digests",
    metadata,
    sa.Column("advisory", sa.String(64), primary_key=True),
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("via_tag", sa.String(128)),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.Index("ix_advisory_digests_lookup", "repository", "digest"),
)

# Every move of a tag: from (NULL: created) and to (NULL: deleted), when, by whom.
tag_history = sa.Table(
    "tag_history",
    metadata,
    _serial(),
    sa.Column("repository", sa.String(255), nullable=False),
    sa.Column("tag", sa.String(128), nullable=False),
    sa.Column("from_digest", sa.String(200)),
    sa.Column("to_digest", sa.String(200)),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Index("ix_tag_history_tag", "repository", "tag", "at"),
)

# The persistent outbox: every message to deliver (an advisory's fan-out, an inbox
# notice, an email, a webhook call). ``key`` is unique: enqueuing twice is a no-op, so
# a message exists once per (revision, identity, channel). A worker leases a row
# (``lease_until``), delivers, then marks it ``done``; a failure sets
# ``next_attempt_at`` by exponential backoff, and after ``max_attempts`` the row is
# ``dead`` (visible in the API). A worker killed mid-delivery loses its lease; the row
# is taken again.
outbox = sa.Table(
    "outbox",
    metadata,
    _serial(),
    sa.Column("key", sa.String(255), nullable=False, unique=True),
    sa.Column("channel", sa.String(16), nullable=False),  # fanout|inbox|email|webhook
    sa.Column("payload", sa.Text, nullable=False),  # JSON
    sa.Column("state", sa.String(16), nullable=False),  # pending|done|dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_outbox_due", "state", "next_attempt_at"),
)

# The inbox: one notice per (identity, advisory, revision).
notices = sa.Table(
    "notices",
    metadata,
    _serial(),
    sa.Column("identity", sa.String(200), nullable=False),
    sa.Column("advisory", sa.String(64), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("document", sa.Text, nullable=False),  # JSON: what the notice shows
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("read_at", sa.Float),
    sa.UniqueConstraint("identity", "advisory", "revision", name="uq_notices_once"),
    sa.Index("ix_notices_identity", "identity", "created_at"),
)

# Webhooks of an organization (``organization`` NULL: registry-wide, admins only).
# ``secret`` signs deliveries (Standard Webhooks, HMAC-SHA256): it must be kept to sign,
# so it cannot be hashed; ``previous_secret`` also signs until ``previous_until`` after
# a rotation, so receivers can switch without losing deliveries.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organization", sa.String(64)),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", sa.Text, nullable=False),  # JSON list of event types
    sa.Column("repositories", sa.Text, nullable=False),  # JSON list of globs
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("previous_secret", sa.String(128)),
    sa.Column("previous_until", sa.Float),
    sa.Column("batch_pulls", sa.Boolean, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_webhooks_organization", "organization"),
)

# Every attempt to deliver to a webhook: the delivery log.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    _serial(),
    sa.Column("webhook", sa.String(32), nullable=False),
    sa.Column("message_id", sa.String(64), nullable=False),  # the webhook-id header
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Index("ix_webhook_deliveries_webhook", "webhook", "at"),
)

# One row (id 1) whose ``version`` grows with every change to ``webhooks``: each
# process caches the webhook list and reloads it when this number moved (checked at
# most once a second), so a webhook added through another process is heard within ~1 s.
webhook_changes = sa.Table(
    "webhook_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# Signatures stored through the registry signature API extension (containers/image's
# "atomic" simple signatures, OpenPGP): the registry's own, and those clients with push
# rights put (``skopeo copy --sign-by``). ``content`` is the signature as the client
# reads it back; ``content_digest`` (sha256 of it) makes a second PUT of the same
# signature a no-op. ``key_id`` is the signing key's fingerprint when the registry made
# it, None for a client's. Listed in ``id`` order (the extension's ``@N`` index).
image_signatures = sa.Table(
    "image_signatures",
    metadata,
    _serial(),
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
    sa.Index("ix_image_signatures_manifest", "repository", "digest"),
)

# What the registry found in an image manifest (one row per manifest digest; the same
# content in several repositories is read once). ``state``: done | failed | skipped
# (not an image: an index, an artifact). ``facts``: JSON (platform, created, labels,
# config and layer sizes) for the metadata API and the catalog.
image_descriptions = sa.Table(
    "image_descriptions",
    metadata,
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("repository", sa.String(255), nullable=False),  # read from
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("package_count", sa.Integer, nullable=False),
    sa.Column("facts", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("described_at", sa.Float, nullable=False),
)

# The packages in an image manifest (its SBOM's rows). ``ecosystem`` is OSV's name
# (Debian, Alpine, PyPI, npm, Go, ...); ``path`` is where it was found in the image.
image_packages = sa.Table(
    "image_packages",
    metadata,
    _serial(),
    sa.Column("digest", sa.String(200), nullable=False),
    sa.Column("ecosystem", sa.String(32), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("version", sa.String(255), nullable=False),
    sa.Column("purl", sa.String(1024), nullable=False),
    sa.Column("license", sa.String(255)),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Index("ix_image_packages_digest", "digest"),
    sa.Index("ix_image_packages_name", "ecosystem", "name"),
)

# An imported OSV feed: one row per vulnerability (its OSV document kept whole), and
# the (ecosystem, package) pairs it affects, for matching against image_packages.
vulnerabilities = sa.Table(
    "vulnerabilities",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("modified", sa.Float, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),  # critical..low|unknown
    sa.Column("summary", sa.Text),
    sa.Column("aliases", sa.Text, nullable=False),  # JSON list
    sa.Column("document", sa.Text, nullable=False),  # the OSV JSON
    sa.Column("imported_at", sa.Float, nullable=False),
)

vulnerability_packages = sa.Table(
    "vulnerability_packages",
    metadata,
    sa.Column("vulnerability", sa.String(64), primary_key=True),
    sa.Column("ecosystem", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Index("ix_vulnerability_packages_name", "ecosystem", "name"),
)

# A vulnerability matched in an image manifest's package, with the version that fixes
# it (None: no fix known). Recomputed when the feed or the image's packages change.
image_vulnerabilities = sa.Table(
    "image_vulnerabilities",
    metadata,
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("vulnerability", sa.String(64), primary_key=True),
    sa.Column("ecosystem", sa.String(32), primary_key=True),
    sa.Column("package", sa.String(255), primary_key=True),
    sa.Column("version", sa.String(255), primary_key=True),
    sa.Column("fixed", sa.String(255)),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("matched_at", sa.Float, nullable=False),
    sa.Index("ix_image_vulnerabilities_vulnerability", "vulnerability"),
)

# --- operator's instruments (migration 0007) ---------------------------------------

# One row per finished ``cargohold gc`` (not dry runs): /metrics sums them at scrape.
gc_runs = sa.Table(
    "gc_runs",
    metadata,
    _serial(),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("blobs_deleted", sa.BigInteger, nullable=False),
    sa.Column("bytes_freed", sa.BigInteger, nullable=False),
)

# The status page (issue #9, migration 0008). One row per component per check round
# (``checked_by``: the process that held the ``status.checks`` lease), kept for days.
status_checks = sa.Table(
    "status_checks",
    metadata,
    _serial(),
    sa.Column("component", sa.String(64), nullable=False),
    sa.Column("checked_at", sa.Float, nullable=False),
    # operational|degraded_performance|partial_outage|major_outage
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("detail", sa.String(255), nullable=False),
    sa.Column("checked_by", sa.String(64), nullable=False),
    sa.Index("ix_status_checks_component", "component", "checked_at"),
    sa.Index("ix_status_checks_at", "checked_at"),
)

# Checks counted per component and UTC day (``day``: days since the epoch), so the
# 90-day uptime bars read at most 90 rows per component.
status_daily = sa.Table(
    "status_daily",
    metadata,
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True),
    sa.Column("checks", sa.Integer, nullable=False),
    sa.Column("operational", sa.Integer, nullable=False),
    sa.Column("degraded", sa.Integer, nullable=False),
    sa.Column("partial", sa.Integer, nullable=False),
    sa.Column("major", sa.Integer, nullable=False),
    sa.Column("maintenance", sa.Integer, nullable=False),
)

# Incidents and scheduled maintenances (``kind``), as Statuspage models them.
status_incidents = sa.Table(
    "status_incidents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # incident|maintenance
    sa.Column("name", sa.String(255), nullable=False),
    # investigating|identified|monitoring|resolved; scheduled|in_progress|verifying|
    # completed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("impact", sa.String(16), nullable=False),  # none|minor|major|critical
    sa.Column("components", sa.Text, nullable=False),  # JSON list of component ids
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("monitoring_at", sa.Float),
    sa.Column("resolved_at", sa.Float),
    sa.Column("scheduled_for", sa.Float),
    sa.Column("scheduled_until", sa.Float),
    sa.Index("ix_status_incidents_kind", "kind", "created_at"),
)

status_incident_updates = sa.Table(
    "status_incident_updates",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "incident_id",
        sa.String(32),
        sa.ForeignKey("status_incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_status_updates_incident", "incident_id", "created_at"),
)


# --- web catalog (migration 0009) ---------------------------------------------------

# Signed-in browser sessions: only the SHA-256 of the cookie's random id is kept, so a
# copy of the database signs nobody in. ``csrf``: the session's form token;
# ``credential``: the SHA-256 of the user's password hash at sign-in (a new password
# ends the session).
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(64), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("credential", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index("ix_web_sessions_user_name", "user_name"),
    sa.Index("ix_web_sessions_expires_at", "expires_at"),
)
