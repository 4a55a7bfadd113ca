"""knowledge-base gaps (protocol §11) and visitors' 👍/👎 on bot answers

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


def upgrade() -> None:
    op.create_table(
        "kb_gaps",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.app_id"]),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index("ix_kb_gaps_app_asked", "kb_gaps", ["app_id", "asked_at"])
    op.create_table(
        "bot_feedback",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("article_id", sa.String(length=200), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.app_id"]),
        sa.PrimaryKeyConstraint("session_id", "seq"),
    )
    op.create_index("ix_bot_feedback_app_at", "bot_feedback", ["app_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_bot_feedback_app_at", table_name="bot_feedback")
    op.drop_table("bot_feedback")
    op.drop_index("ix_kb_gaps_app_asked", table_name="kb_gaps")
    op.drop_table("kb_gaps")
