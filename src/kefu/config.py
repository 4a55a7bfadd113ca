"""Node settings, read from `KEFU_*` environment variables and CLI flags."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a node needs to know; one instance is built per process and passed down."""

    model_config = SettingsConfigDict(env_prefix="KEFU_", extra="ignore")

    db: str = Field(default="sqlite:///kefu.db", description="sqlite:///file.db or postgresql://user:pass@host/db")
    redis: str | None = Field(default=None, description="redis://host:6379/0 for several nodes")
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str | None = Field(
        default=None, description="signs tokens; when unset a key is generated once and kept in the database"
    )
    agent_token_ttl_s: int = 12 * 3600
    visitor_token_ttl_s: int = 7 * 24 * 3600
    max_frame_bytes: int = 64 * 1024
    max_message_chars: int = 5000
    max_context_chars: int = 20000
    presence_grace_s: float = 30.0
    gap_fill_delay_s: float = 0.2
    outbox_max_frames: int = 5000
    rate_limits: str = "on"
    log_level: str = "info"

    @field_validator("db")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:", "sqlite+aiosqlite:")):
            raise ValueError(f"KEFU_DB '{value}' is not a sqlite:/// or postgresql:// URL")
        return value

    @property
    def rate_limits_enabled(self) -> bool:
        return self.rate_limits.lower() not in {"off", "false", "0", "no"}
