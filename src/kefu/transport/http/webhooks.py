"""Webhooks: registration and the delivery log (admin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from kefu.transport.http.deps import Admin, ServicesDep
from kefu.transport.http.errors import error_responses

router = APIRouter(tags=["webhooks"], responses=error_responses(400, 401, 403, 422))


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=20)
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: str
    secret: str | None = None


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    delivery_id: str
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    created_at: str
    delivered_at: str | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


@router.post("/webhooks", response_model=WebhookOut, response_model_exclude_none=True, status_code=201)
async def create_webhook(body: WebhookIn, actor: Admin, svc: ServicesDep) -> dict[str, Any]:
    """Register a URL for some events; the answer shows the signing secret (generated when none is given)."""
    return await svc.webhooks.create(actor, body.url, body.events, body.secret)


@router.get("/webhooks", response_model=WebhookList, response_model_exclude_none=True)
async def list_webhooks(actor: Admin, svc: ServicesDep) -> dict[str, Any]:
    return {"items": await svc.webhooks.list_for(actor)}


@router.get(
    "/webhooks/{webhook_id}",
    response_model=WebhookOut,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
async def get_webhook(webhook_id: str, actor: Admin, svc: ServicesDep) -> dict[str, Any]:
    return await svc.webhooks.get(actor, webhook_id)


@router.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response, responses=error_responses(404))
async def delete_webhook(webhook_id: str, actor: Admin, svc: ServicesDep) -> Response:
    """Stop deliveries; pending ones are marked failed."""
    await svc.webhooks.delete(actor, webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage, responses=error_responses(404))
async def list_deliveries(
    webhook_id: str,
    actor: Admin,
    svc: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, Any]:
    """The delivery log, newest first."""
    return await svc.webhooks.deliveries(actor, webhook_id, limit, cursor)
