"""API keys per app: created (the secret shown once), listed without the secret, revoked. Stored hashed."""

from __future__ import annotations

from typing import Any

from kefu import errors
from kefu.domain.clock import Clock, iso
from kefu.domain.ids import new_id
from kefu.domain.models import Actor
from kefu.services.auth import hash_api_key, new_api_key
from kefu.storage import Database
from kefu.storage import api_keys as key_store
from kefu.storage import apps as app_store
from kefu.storage.api_keys import ApiKeyInfo

PREFIX_CHARS = 12


def key_record(info: ApiKeyInfo) -> dict[str, Any]:
    return {
        "id": info.key_id,
        "prefix": info.prefix,
        "name": info.name,
        "created_at": iso(info.created_at),
        "revoked_at": iso(info.revoked_at),
    }


def require_key_admin(actor: Actor) -> None:
    # An admin agent only: a leaked API key must not be able to mint itself successors.
    if actor.kind != "agent" or not actor.is_admin:
        raise errors.Forbidden("Only an admin agent of the app manages its API keys.")


class ApiKeyService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    async def create(self, actor: Actor, name: str) -> dict[str, Any]:
        """A new key of the actor's app: the record plus `key`, the secret, which is never shown again."""
        require_key_admin(actor)
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise errors.BadRequest("An API key needs a name of 1 to 200 characters.")
        secret = new_api_key()
        key_id = new_id("key")
        async with self.db.transaction() as tx:
            await app_store.insert_api_key(
                tx, key_id, actor.app_id, hash_api_key(secret), secret[:PREFIX_CHARS], name, self.clock.now()
            )
            info = await key_store.get_api_key(tx, actor.app_id, key_id)
        assert info is not None
        return key_record(info) | {"key": secret}

    async def list(self, actor: Actor) -> dict[str, Any]:
        require_key_admin(actor)
        async with self.db.read() as tx:
            keys = await key_store.list_api_keys(tx, actor.app_id)
        return {"items": [key_record(k) for k in keys]}

    async def revoke(self, actor: Actor, key_id: str) -> dict[str, Any]:
        """Revoke a key of the actor's app (at once, on every node); revoking again changes nothing."""
        require_key_admin(actor)
        async with self.db.transaction() as tx:
            if await key_store.get_api_key(tx, actor.app_id, key_id) is None:
                raise errors.NotFound(f"No API key '{key_id}'.")
            await key_store.revoke_api_key(tx, actor.app_id, key_id, self.clock.now())
            info = await key_store.get_api_key(tx, actor.app_id, key_id)
        assert info is not None
        return key_record(info)
