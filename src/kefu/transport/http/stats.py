"""`GET /stats`: the metrics of protocol §5."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kefu import errors
from kefu.domain.clock import iso, parse_iso
from kefu.domain.metrics import report
from kefu.storage import stats as stats_store
from kefu.transport.http.deps import Caller, ServicesDep

router = APIRouter(tags=["metrics"])


@router.get("/stats")
async def stats(
    actor: Caller,
    svc: ServicesDep,
    start: Annotated[str | None, Query(alias="from", description="ISO-8601, inclusive")] = None,
    to: Annotated[str | None, Query(description="ISO-8601, exclusive")] = None,
    group: str | None = None,
    agent_id: str | None = None,
    bucket: str | None = Query(default=None, pattern="^(hour|day)$"),
) -> dict[str, Any]:
    """Over the conversations created in [from, to): volume, bot resolution, handoffs, waits, handle times."""
    try:
        start_at = parse_iso(start) if start else None
        end_at = parse_iso(to) if to else None
    except ValueError as exc:
        raise errors.BadRequest("from and to are ISO-8601 times, e.g. 2023-08-01T14:30:00.000Z.") from exc
    async with svc.db.read() as tx:
        rows = await stats_store.conversation_facts(tx, actor.app_id, start_at, end_at, group, agent_id)
    result = report(rows, bucket)
    for point in result.get("series", []):
        point["start"] = iso(point["start"])
    return {"from": start, "to": to, **result}
