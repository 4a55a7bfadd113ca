"""archive: full-text search index (SQLite FTS5 / PostgreSQL tsvector + GIN), uploads

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_progress",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("mark_major", sa.BigInteger(), nullable=False),
        sa.Column("mark_minor", sa.String(length=64), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "attachments",
        sa.Column("attachment_id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("uploader_kind", sa.String(length=16), nullable=False),
        sa.Column("uploader_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.app_id"]),
        sa.PrimaryKeyConstraint("attachment_id"),
    )
    op.create_index("ix_attachments_app_id", "attachments", ["app_id"])
    # Who may fetch an upload is a join on the messages that reference it; only those rows are indexed.
    op.create_index(
        "ix_messages_attachment",
        "messages",
        ["attachment_id"],
        sqlite_where=sa.text("attachment_id IS NOT NULL"),
        postgresql_where=sa.text("attachment_id IS NOT NULL"),
    )
    if op.get_bind().dialect.name == "sqlite":
        # Contentless (the texts stay in messages/conversations) and without positions: the smallest index
        # that answers AND/OR of terms. Tokenizer `ascii`: each space-separated term is one token.
        op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='', detail=none, tokenize='ascii')")
        return
    # The inserting transaction's id: the indexer reads rows only below the oldest running transaction, so
    # one that commits after a later one is still indexed. (Adding it rewrites both tables once.)
    op.execute("ALTER TABLE messages ADD COLUMN search_txid BIGINT NOT NULL DEFAULT txid_current()")
    op.execute('CREATE INDEX ix_messages_search_txid ON messages (search_txid, message_id COLLATE "C")')
    op.execute("ALTER TABLE conversations ADD COLUMN search_txid BIGINT NOT NULL DEFAULT txid_current()")
    op.execute('CREATE INDEX ix_conversations_search_txid ON conversations (search_txid, session_id COLLATE "C")')
    op.execute(
        "CREATE TABLE search_docs (session_id VARCHAR(32) NOT NULL, seq INTEGER NOT NULL,"
        " terms TSVECTOR NOT NULL, PRIMARY KEY (session_id, seq))"
    )
    op.execute("CREATE INDEX ix_search_docs_terms ON search_docs USING gin (terms)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")
    else:
        op.execute("DROP TABLE search_docs")
        op.execute("DROP INDEX ix_conversations_search_txid")
        op.execute("ALTER TABLE conversations DROP COLUMN search_txid")
        op.execute("DROP INDEX ix_messages_search_txid")
        op.execute("ALTER TABLE messages DROP COLUMN search_txid")
    op.drop_index("ix_messages_attachment", table_name="messages")
    op.drop_index("ix_attachments_app_id", table_name="attachments")
    op.drop_table("attachments")
    op.drop_table("search_progress")
