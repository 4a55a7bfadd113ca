"""Table definitions (SQLAlchemy Core). Alembic migrations under `migrations/` create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("app_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False, index=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS, nullable=True),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("max_concurrent", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("idle_since", TS, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    # Raised on a password change: every token issued before (they carry the epoch) stops working.
    sa.Column("token_epoch", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("app_id", "email", name="uq_agents_app_email"),
)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), primary_key=True),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("description", sa.String(500), nullable=False, server_default=""),
    sa.Column("created_at", TS, nullable=False),
)

agent_groups = sa.Table(
    "agent_groups",
    metadata,
    sa.Column("agent_id", sa.String(64), sa.ForeignKey("agents.agent_id"), primary_key=True),
    sa.Column("group_name", sa.String(100), primary_key=True),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Index("ix_agent_groups_app_group", "app_id", "group_name"),
)

visitors = sa.Table(
    "visitors",
    metadata,
    sa.Column("visitor_id", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False),
    sa.Column("user_id", sa.String(200), nullable=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("client_tags", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("app_id", "user_id", name="uq_visitors_app_user"),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("session_id", sa.String(32), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False),
    sa.Column("visitor_id", sa.String(64), sa.ForeignKey("visitors.visitor_id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("group_name", sa.String(100), nullable=False),
    sa.Column("agent_id", sa.String(64), nullable=True),
    sa.Column("min_level", sa.Integer, nullable=False, server_default="0"),
    sa.Column("queue_priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("context", sa.Text, nullable=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("queued_at", TS, nullable=True),
    sa.Column("assigned_at", TS, nullable=True),
    sa.Column("closed_at", TS, nullable=True),
    sa.Column("resolution", sa.String(32), nullable=True),
    sa.Column("handoff_reason", sa.String(32), nullable=True),
    sa.Column("transfer_note", sa.Text, nullable=True),
    sa.Column("transferred_from", sa.String(64), nullable=True),
    # Reporting (protocol §5), each written once, in the transaction of the event it records:
    sa.Column("first_queued_at", TS, nullable=True),
    sa.Column("first_assigned_at", TS, nullable=True),
    sa.Column("first_response_at", TS, nullable=True),
    sa.Column("bot_answered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_conversations_app_created", "app_id", "created_at"),
    sa.Index("ix_conversations_visitor", "visitor_id", "status"),
    sa.Index("ix_conversations_agent", "agent_id", "status"),
    sa.Index("ix_conversations_queue", "app_id", "status", "group_name", "queue_priority", "queued_at"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("conversations.session_id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("client_msg_id", sa.String(128), nullable=True),
    sa.Column("sender", sa.String(16), nullable=False),
    sa.Column("sender_id", sa.String(64), nullable=True),
    sa.Column("msg_type", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("attachment_id", sa.String(64), nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("article_id", sa.String(200), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("session_id", "seq", name="uq_messages_session_seq"),
    sa.UniqueConstraint("session_id", "sender_id", "client_msg_id", name="uq_messages_client_msg"),
)

day_counters = sa.Table(
    "day_counters",
    metadata,
    sa.Column("day", sa.String(8), primary_key=True),
    sa.Column("last", sa.Integer, nullable=False),
)

server_keys = sa.Table(
    "server_keys",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

routing_rules = sa.Table(
    "routing_rules",
    metadata,
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("match", sa.JSON, nullable=False),
    sa.Column("group_name", sa.String(100), nullable=False),
    sa.Column("min_level", sa.Integer, nullable=False),
    sa.Column("queue_priority", sa.Integer, nullable=False),
)

# --- archive: full-text search progress and uploads (migration 0004) ---------------------------------
# The search documents themselves live in dialect-specific tables the migration makes (SQLite: the FTS5
# table `search_fts`; PostgreSQL: `search_docs` with a GIN index, and `search_txid` columns on `messages`
# and `conversations`); storage/search.py is the only code that touches them.

search_progress = sa.Table(
    "search_progress",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("mark_major", sa.BigInteger, nullable=False),
    sa.Column("mark_minor", sa.String(64), nullable=False, server_default=""),
)

attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("attachment_id", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False, index=True),
    sa.Column("uploader_kind", sa.String(16), nullable=False),
    sa.Column("uploader_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("storage_key", sa.String(200), nullable=False),
    sa.Column("thumbnail_key", sa.String(200), nullable=True),
    sa.Column("created_at", TS, nullable=False),
)

# --- knowledge base (migration 0003) ----------------------------------------------------------------
# `kb_versions.version` moves with every change to an app's articles: each bot answer compares it with
# the version its index was built from, so every node sees a change on its next answer.

kb_articles = sa.Table(
    "kb_articles",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), primary_key=True),
    sa.Column("article_id", sa.String(200), primary_key=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("similar", sa.JSON, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("category", sa.String(100), nullable=False, server_default=""),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

kb_versions = sa.Table(
    "kb_versions",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# The bot's sentence vectors of an app's texts (phrasings, answers, answer sentences), keyed by the text's hash,
# so a node that starts, or another node, reuses them instead of encoding the whole knowledge base again.
kb_vectors = sa.Table(
    "kb_vectors",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), primary_key=True),
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("text_key", sa.String(40), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)

# --- webhooks: registrations and the transactional outbox of deliveries (migration 0005) -----------------

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("webhook_id", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False, index=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("deleted_at", TS, nullable=True),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(64), nullable=False, unique=True),
    sa.Column("webhook_id", sa.String(64), sa.ForeignKey("webhooks.webhook_id"), nullable=False),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("ordering_key", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("locked_until", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("delivered_at", TS, nullable=True),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_order", "webhook_id", "ordering_key", "id"),
)

# --- canned responses (migration 0006) -------------------------------------------------------------------

canned_responses = sa.Table(
    "canned_responses",
    metadata,
    sa.Column("response_id", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False),
    sa.Column("agent_id", sa.String(64), nullable=True),  # None: the whole app's
    sa.Column("shortcut", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_canned_responses_app", "app_id", "agent_id"),
)

# --- internal notes and revoked tokens (migration 0007) ----------------------------------------------------

conversation_notes = sa.Table(
    "conversation_notes",
    metadata,
    sa.Column("note_id", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False),
    sa.Column("session_id", sa.String(32), nullable=False),
    sa.Column("agent_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "note" or "transfer"
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_conversation_notes_session", "session_id", "created_at"),
)

revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("expires_at", TS, nullable=False),  # after this the token is refused anyway: the row may go
    sa.Index("ix_revoked_tokens_expires", "expires_at"),
)

# --- the bot's learning loop (migration 0008) -------------------------------------------------------------
# `kb_gaps`: per conversation at most one visitor question the bot could not serve (protocol §11), written in the
# transaction of the handoff or the 👎 it records. `bot_feedback`: every 👍/👎 on a bot answer (the last one a
# visitor gave counts), with the question it answered: labels for the app's own calibration.

kb_gaps = sa.Table(
    "kb_gaps",
    metadata,
    sa.Column("session_id", sa.String(32), primary_key=True),
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # the question's message
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),  # the handoff reason, or negative_feedback for a 👎
    sa.Column("asked_at", TS, nullable=False),  # the question's own time
    sa.Index("ix_kb_gaps_app_asked", "app_id", "asked_at"),
)

bot_feedback = sa.Table(
    "bot_feedback",
    metadata,
    sa.Column("session_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),  # the bot answer's
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.app_id"), nullable=False),
    sa.Column("article_id", sa.String(200), nullable=False),
    sa.Column("question", sa.Text, nullable=True),  # None when no visitor question precedes the answer
    sa.Column("helpful", sa.Boolean, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_bot_feedback_app_at", "app_id", "at"),
)
