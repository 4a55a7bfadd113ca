"""API keys over HTTP: create (the secret shown once), list (without it), revoke — admin agents only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from kefu.transport.http.deps import Caller, ServicesDep

router = APIRouter(tags=["api-keys"])


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@router.post("/api-keys", status_code=201)
async def create_api_key(body: ApiKeyIn, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """`{id, key, prefix, name, created_at, revoked_at}`: `key` is the secret, shown only in this answer."""
    return await svc.api_keys.create(actor, body.name)


@router.get("/api-keys")
async def list_api_keys(actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """`{items: [{id, prefix, name, created_at, revoked_at}]}`, oldest first; never a secret."""
    return await svc.api_keys.list(actor)


@router.delete("/api-keys/{key_id}")
async def revoke_api_key(key_id: str, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """Revoke a key at once (it answers 401 from then on); the key's record with `revoked_at`."""
    return await svc.api_keys.revoke(actor, key_id)
