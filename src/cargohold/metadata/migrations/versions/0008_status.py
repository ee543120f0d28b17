"""The status page: stored checks, their daily counts, incidents and maintenances.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "status_checks",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("checked_at", sa.Float, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("detail", sa.String(255), nullable=False),
        sa.Column("checked_by", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_status_checks_component", "status_checks", ["component", "checked_at"]
    )
    op.create_index("ix_status_checks_at", "status_checks", ["checked_at"])
    op.create_table(
        "status_daily",
        sa.Column("component", sa.String(64), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("operational", sa.Integer, nullable=False),
        sa.Column("degraded", sa.Integer, nullable=False),
        sa.Column("partial", sa.Integer, nullable=False),
        sa.Column("major", sa.Integer, nullable=False),
        sa.Column("maintenance", sa.Integer, nullable=False),
    )
    op.create_table(
        "status_incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("impact", sa.String(16), nullable=False),
        sa.Column("components", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("monitoring_at", sa.Float),
        sa.Column("resolved_at", sa.Float),
        sa.Column("scheduled_for", sa.Float),
        sa.Column("scheduled_until", sa.Float),
    )
    op.create_index(
        "ix_status_incidents_kind", "status_incidents", ["kind", "created_at"]
    )
    op.create_table(
        "status_incident_updates",
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
    )
    op.create_index(
        "ix_status_updates_incident",
        "status_incident_updates",
        ["incident_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("status_incident_updates")
    op.drop_table("status_incidents")
    op.drop_table("status_daily")
    op.drop_table("status_checks")
