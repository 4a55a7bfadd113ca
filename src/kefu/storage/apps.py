"""Apps (tenants), their API keys, and the node-wide signing key."""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kefu.domain.models import App
from kefu.storage.engine import Tx
from kefu.storage.rows import app_from
from kefu.storage.tables import api_keys, apps, server_keys


async def insert_app(
    tx: Tx, app_id: str, name: str, secret: str, settings: dict[str, object], now: dt.datetime
) -> None:
    await tx.execute(apps.insert().values(app_id=app_id, name=name, secret=secret, settings=settings, created_at=now))


async def get_app(tx: Tx, app_id: str) -> App | None:
    row = (await tx.execute(sa.select(apps).where(apps.c.app_id == app_id))).first()
    return app_from(row) if row else None


async def update_app_settings(tx: Tx, app_id: str, settings: dict[str, object]) -> None:
    await tx.execute(apps.update().where(apps.c.app_id == app_id).values(settings=settings))


async def insert_api_key(
    tx: Tx, key_id: str, app_id: str, key_hash: str, prefix: str, name: str, now: dt.datetime
) -> None:
    await tx.execute(
        api_keys.insert().values(
            key_id=key_id, app_id=app_id, key_hash=key_hash, prefix=prefix, name=name, created_at=now
        )
    )


async def app_of_api_key(tx: Tx, key_hash: str) -> str | None:
    """The app a live (not revoked) API key belongs to."""
    query = sa.select(api_keys.c.app_id).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    return (await tx.execute(query)).scalar_one_or_none()


async def signing_key(tx: Tx, name: str = "tokens") -> str:
    """The deployment's token signing key, made once and shared by every node through the database."""
    found = (await tx.execute(sa.select(server_keys.c.value).where(server_keys.c.name == name))).scalar_one_or_none()
    if found:
        return str(found)
    candidate = secrets.token_urlsafe(48)
    dialect = tx.dialect.name
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    await tx.execute(insert(server_keys).values(name=name, value=candidate).on_conflict_do_nothing())
    return str((await tx.execute(sa.select(server_keys.c.value).where(server_keys.c.name == name))).scalar_one())


async def get_marker(tx: Tx, name: str) -> str | None:
    """A small named value kept for the deployment (e.g. which app is the demo)."""
    query = sa.select(server_keys.c.value).where(server_keys.c.name == name)
    value = (await tx.execute(query)).scalar_one_or_none()
    return None if value is None else str(value)


async def set_marker(tx: Tx, name: str, value: str) -> None:
    await tx.execute(server_keys.delete().where(server_keys.c.name == name))
    await tx.execute(server_keys.insert().values(name=name, value=value))
