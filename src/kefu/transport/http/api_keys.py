"""API keys over HTTP: create (the secret shown once), list (without it), revoke — admin agents only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from kefu.transport.http.deps import AgentCaller, ServicesDep
from kefu.transport.http.errors import error_responses

router = APIRouter(tags=["api-keys"], responses=error_responses(400, 401, 403, 422))


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ApiKeyOut(BaseModel):
    id: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    name: str
    created_at: str
    revoked_at: str | None


class NewApiKeyOut(ApiKeyOut):
    key: str = Field(description="the secret: shown only in this answer")


class ApiKeyListOut(BaseModel):
    items: list[ApiKeyOut]


@router.post("/api-keys", status_code=201, response_model=NewApiKeyOut)
async def create_api_key(body: ApiKeyIn, actor: AgentCaller, svc: ServicesDep) -> dict[str, Any]:
    """`{id, key, prefix, name, created_at, revoked_at}`: `key` is the secret, shown only in this answer."""
    return await svc.api_keys.create(actor, body.name)


@router.get("/api-keys", response_model=ApiKeyListOut)
async def list_api_keys(actor: AgentCaller, svc: ServicesDep) -> dict[str, Any]:
    """`{items: [{id, prefix, name, created_at, revoked_at}]}`, oldest first; never a secret."""
    return await svc.api_keys.list(actor)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut, responses=error_responses(404))
async def revoke_api_key(
    key_id: Annotated[str, Path(max_length=64)], actor: AgentCaller, svc: ServicesDep
) -> dict[str, Any]:
    """Revoke a key at once (it answers 401 from then on); the key's record with `revoked_at`."""
    return await svc.api_keys.revoke(actor, key_id)
