"""Room for a whole subject in ``pull_tokens.created_by``.

It holds the creator's subject ("user:" and a name of up to 64 characters), as wide as
``grants.principal``. SQLite ignores declared widths; PostgreSQL refused such a token.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # widths are not enforced there; nothing to alter
    op.alter_column(
        "pull_tokens",
        "created_by",
        type_=sa.String(200),
        existing_type=sa.String(64),
        existing_nullable=False,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "pull_tokens",
        "created_by",
        type_=sa.String(64),
        existing_type=sa.String(200),
        existing_nullable=False,
    )
