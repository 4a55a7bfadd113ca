"""Service availability and liveness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from kefu.transport.http.deps import ServicesDep

router = APIRouter(tags=["service"])


@router.get("/status")
async def status(svc: ServicesDep, app_id: str = Query(min_length=1, max_length=64)) -> dict[str, Any]:
    """`online` = an online agent has a free slot; `busy` = agents are there but full; `offline` = nobody online."""
    await svc.admin.get_app(app_id)
    return await svc.routing.status(app_id)
