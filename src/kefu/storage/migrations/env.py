"""Alembic environment: runs on the connection kefu hands it (kefu.storage.migrate), or opens its own."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from kefu.storage.engine import async_url
from kefu.storage.tables import metadata

config = context.config


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)  # type: ignore[arg-type]
    with context.begin_transaction():
        context.run_migrations()


async def _run_own() -> None:
    engine = create_async_engine(async_url(str(config.get_main_option("sqlalchemy.url"))))
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_own())
