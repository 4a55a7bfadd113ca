"""Revoked agent tokens (logout): kept until the token would have expired anyway."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from kefu.storage.engine import Tx
from kefu.storage.tables import revoked_tokens


async def revoke(tx: Tx, jti: str, expires_at: dt.datetime, now: dt.datetime) -> None:
    """Refuse the token `jti` from now on; rows of tokens already expired are swept on the way."""
    await tx.execute(revoked_tokens.delete().where(revoked_tokens.c.expires_at < now))
    exists = (await tx.execute(sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti))).first()
    if exists is None:
        await tx.execute(revoked_tokens.insert().values(jti=jti, expires_at=expires_at))


async def is_revoked(tx: Tx, jti: str) -> bool:
    found = await tx.execute(sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti))
    return found.first() is not None
