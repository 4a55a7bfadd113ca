"""Node settings, read from `KEFU_*` environment variables and CLI flags."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a node needs to know; one instance is built per process and passed down."""

    model_config = SettingsConfigDict(env_prefix="KEFU_", extra="ignore")

    db: str = Field(default="sqlite:///kefu.db", description="sqlite:///file.db or postgresql://user:pass@host/db")
    db_pool_size: int = Field(default=5, ge=1, le=100, description="PostgreSQL connections kept per node (x3 at peak)")
    redis: str | None = Field(default=None, description="redis://host:6379/0 for several nodes")
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str | None = Field(
        default=None, description="signs tokens; when unset a key is generated once and kept in the database"
    )
    agent_token_ttl_s: int = 12 * 3600
    visitor_token_ttl_s: int = 7 * 24 * 3600
    max_frame_bytes: int = 64 * 1024
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="the largest request body, bytes (uploads and imports have their own)",
    )
    max_message_chars: int = 5000
    max_context_chars: int = 20000
    presence_grace_s: float = 30.0
    outbox_max_frames: int = 5000
    ws_idle_timeout_s: float = Field(
        default=120.0, gt=0, description="a socket that sends no frame (not even a ping) this long is closed, 4408"
    )
    upload_dir: str = Field(default="./uploads", description="where uploaded files are kept (local disk)")
    search_index_interval_s: float = Field(
        default=0.5, description="the search indexer's safety-net pass interval; commits also wake it"
    )
    search_index_min_interval_s: float = Field(
        default=1.0,
        ge=0,
        description="the least time between two starts of the search indexer's passes: under load one pass indexes"
        " a whole interval's messages (the search lag stays about this long)",
    )
    bot_first_answer_wait_s: float = Field(
        default=0.8,
        ge=0,
        description="how long a question waits for an app's first index on this node before the bot hands off",
    )
    bot_edit_wait_s: float = Field(
        default=5.0,
        ge=0,
        description="how long an article edit waits for this node's new index (the next question is answered from it)",
    )
    webhook_max_backoff: float = Field(default=300.0, description="longest wait between two delivery attempts, s")
    webhook_allow_private: bool = Field(default=False, description="allow webhook URLs on loopback/private nets")
    webhook_timeout_s: float = 10.0
    rate_limits: str = "on"
    metrics_token: str | None = Field(
        default=None, description="the bearer token /metrics requires; unset: /metrics is off (404)"
    )
    api_docs: str = Field(default="off", description="`on` serves /docs and /redoc (from local files)")
    log_level: str = "info"

    @field_validator("db")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:", "sqlite+aiosqlite:")):
            raise ValueError(f"KEFU_DB '{value}' is not a sqlite:/// or postgresql:// URL")
        return value

    @property
    def api_docs_enabled(self) -> bool:
        return self.api_docs.lower() in {"on", "true", "1", "yes"}

    @property
    def rate_limits_enabled(self) -> bool:
        return self.rate_limits.lower() not in {"off", "false", "0", "no"}
