"""Who pulled what, and telling them: pull events and daily aggregates, contacts,
advisories (every revision, the digests they cover), tag history, the persistent
outbox, inbox notices, webhooks and their delivery log, and once-only schedules.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# 64-bit ids; on SQLite the INTEGER PRIMARY KEY (the rowid) auto-increments.
_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TABLES = (
    "pull_events",
    "pull_daily",
    "schedules",
    "advisories",
    "advisory_revisions",
    "advisory_digests",
    "tag_history",
    "outbox",
    "notices",
    "webhooks",
    "webhook_deliveries",
    "webhook_changes",
)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(320)))
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("security_contact", sa.String(320)))
    op.create_table(
        "pull_events",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("identity", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("organization", sa.String(64)),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("tool_version", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
    )
    op.create_index("ix_pull_events_at", "pull_events", ["at"])
    op.create_index("ix_pull_events_digest_at", "pull_events", ["digest", "at"])
    op.create_index("ix_pull_events_identity_at", "pull_events", ["identity", "at"])
    op.create_index("ix_pull_events_repository_at", "pull_events", ["repository", "at"])
    op.create_table(
        "pull_daily",
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("identity", sa.String(200), primary_key=True),
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("organization", sa.String(64)),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
    )
    op.create_index("ix_pull_daily_digest", "pull_daily", ["digest", "last_at"])
    op.create_index("ix_pull_daily_identity", "pull_daily", ["identity", "last_at"])
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_run_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
    )
    op.create_table(
        "advisories",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "advisory_revisions",
        sa.Column("advisory", sa.String(64), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_table(
        "advisory_digests",
        sa.Column("advisory", sa.String(64), primary_key=True),
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("via_tag", sa.String(128)),
        sa.Column("added_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_advisory_digests_lookup", "advisory_digests", ["repository", "digest"]
    )
    op.create_table(
        "tag_history",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("from_digest", sa.String(200)),
        sa.Column("to_digest", sa.String(200)),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_tag_history_tag", "tag_history", ["repository", "tag", "at"])
    op.create_table(
        "outbox",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "notices",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("identity", sa.String(200), nullable=False),
        sa.Column("advisory", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("read_at", sa.Float),
        sa.UniqueConstraint("identity", "advisory", "revision", name="uq_notices_once"),
    )
    op.create_index("ix_notices_identity", "notices", ["identity", "created_at"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("organization", sa.String(64)),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("repositories", sa.Text, nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("previous_secret", sa.String(128)),
        sa.Column("previous_until", sa.Float),
        sa.Column("batch_pulls", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_webhooks_organization", "webhooks", ["organization"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("webhook", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook", "at"]
    )
    op.create_table(
        "webhook_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("security_contact")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
