"""reporting figures on conversations; canned responses

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


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("first_queued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("first_assigned_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bot_answered", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "canned_responses",
        sa.Column("response_id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("shortcut", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.app_id"]),
        sa.PrimaryKeyConstraint("response_id"),
    )
    op.create_index("ix_canned_responses_app", "canned_responses", ["app_id", "agent_id"])


def downgrade() -> None:
    op.drop_index("ix_canned_responses_app", table_name="canned_responses")
    op.drop_table("canned_responses")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("bot_answered")
        batch.drop_column("first_response_at")
        batch.drop_column("first_assigned_at")
        batch.drop_column("first_queued_at")
