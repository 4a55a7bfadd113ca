"""`GET /stats`: the metrics of protocol §5."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from kefu import errors
from kefu.domain.clock import iso, parse_iso
from kefu.transport.http.deps import Caller, ServicesDep
from kefu.transport.http.errors import error_responses

router = APIRouter(tags=["metrics"], responses=error_responses(400, 401, 422))


class Spread(BaseModel):
    """Durations in seconds over the chats that have the figure (nearest-rank percentiles); all 0 when none do."""

    avg: float
    p50: float
    p90: float
    max: float


class HandoffReasons(BaseModel):
    low_confidence: int
    user_request: int
    no_answer: int
    negative_feedback: int
    repeated_question: int


class Summary(BaseModel):
    sessions: int
    messages: int = Field(description="of every sender")
    bot_sessions: int = Field(description="conversations the bot answered at least once (with an article)")
    bot_resolved: int = Field(description="of those, closed without ever being handed off")
    bot_resolution_rate: float = Field(description="bot_resolved / bot_sessions; 0 when there are none")
    handoffs: int = Field(description="conversations moved from bot to human, once each")
    handoff_reasons: HandoffReasons
    wait_seconds: Spread = Field(description="entering the queue → assignment")
    first_response_seconds: Spread = Field(description="entering the queue → the first agent message")
    handle_seconds: Spread = Field(description="assignment → closed")
    abandoned: int = Field(description="closed while queued")


class SeriesPoint(Summary):
    start: str = Field(description="the bucket's start, ISO-8601 UTC")


class StatsOut(Summary):
    from_: str | None = Field(alias="from", description="as asked")
    to: str | None = Field(description="as asked")
    by_group: dict[str, Summary]
    by_agent: dict[str, Summary] = Field(description="by the agent who has (or last had) the conversation")
    series: list[SeriesPoint] | None = Field(
        default=None, description="with `bucket` only: the buckets that have conversations, in time order"
    )


@router.get("/stats", response_model=StatsOut, response_model_exclude_unset=True)
async def stats(
    actor: Caller,
    svc: ServicesDep,
    start: Annotated[str | None, Query(alias="from", description="ISO-8601, inclusive", max_length=64)] = None,
    to: Annotated[str | None, Query(description="ISO-8601, exclusive", max_length=64)] = None,
    group: Annotated[str | None, Query(max_length=100)] = None,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    bucket: Literal["hour", "day"] | None = None,
) -> dict[str, Any]:
    """Over the conversations created in [from, to): volume, bot resolution, handoffs, waits, handle times."""
    try:
        start_at = parse_iso(start) if start else None
        end_at = parse_iso(to) if to else None
    except ValueError as exc:
        raise errors.BadRequest("from and to are ISO-8601 times, e.g. 2023-08-01T14:30:00.000Z.") from exc
    result = await svc.stats.report(actor, start_at, end_at, group, agent_id, bucket)
    for point in result.get("series", []):
        point["start"] = iso(point["start"])
    return {"from": start, "to": to, **result}
