"""An app's API keys: listed and revoked (creation and lookup by hash are in storage/apps.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from kefu.storage.engine import Tx
from kefu.storage.rows import utc, utc_required
from kefu.storage.tables import api_keys


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A key as admins see it: never the secret, nor its hash."""

    key_id: str
    app_id: str
    prefix: str
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def _info(row: Any) -> ApiKeyInfo:
    return ApiKeyInfo(row.key_id, row.app_id, row.prefix, row.name, utc_required(row.created_at), utc(row.revoked_at))


async def list_api_keys(tx: Tx, app_id: str) -> list[ApiKeyInfo]:
    query = sa.select(api_keys).where(api_keys.c.app_id == app_id).order_by(api_keys.c.created_at, api_keys.c.key_id)
    return [_info(r) for r in await tx.execute(query)]


async def get_api_key(tx: Tx, app_id: str, key_id: str) -> ApiKeyInfo | None:
    query = sa.select(api_keys).where(api_keys.c.app_id == app_id, api_keys.c.key_id == key_id)
    row = (await tx.execute(query)).first()
    return _info(row) if row else None


async def revoke_api_key(tx: Tx, app_id: str, key_id: str, now: dt.datetime) -> None:
    """Mark a live key revoked; a key revoked before keeps its first revocation time."""
    await tx.execute(
        api_keys.update()
        .where(api_keys.c.app_id == app_id, api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
