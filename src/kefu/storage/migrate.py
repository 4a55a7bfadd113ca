"""Applying the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from kefu import errors
from kefu.storage import apps as app_store
from kefu.storage.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def migrate(db: Database) -> None:
    """Bring the schema to the newest revision (idempotent; safe to run on every start)."""

    def upgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with db.transaction() as tx:
        if not db.is_sqlite:  # two nodes starting at once must not both create the tables
            await tx.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        await tx.run_sync(upgrade)


async def open_app_database(url: str, app_id: str) -> Database:
    """A migrated database holding app `app_id` (raises AppNotFound otherwise); the caller disposes of it."""
    db = Database(url)
    try:
        await migrate(db)
        async with db.read() as tx:
            if await app_store.get_app(tx, app_id) is None:
                raise errors.AppNotFound(f"No app '{app_id}'.")
    except BaseException:
        await db.dispose()
        raise
    return db
