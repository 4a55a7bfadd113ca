"""The figures managers run the team by (protocol §5), computed from one row of facts per conversation.

Percentiles are nearest-rank: p of n sorted values is the value at 1-based rank ceil(p * n).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

HANDOFF_REASONS = ("low_confidence", "user_request", "no_answer", "negative_feedback", "repeated_question")


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """What a conversation recorded as it happened (set once each, in the transaction of the event)."""

    session_id: str
    group: str
    agent_id: str | None
    status: str
    created_at: dt.datetime
    first_queued_at: dt.datetime | None
    first_assigned_at: dt.datetime | None
    first_response_at: dt.datetime | None
    closed_at: dt.datetime | None
    resolution: str | None
    handoff_reason: str | None
    bot_answered: bool
    messages: int


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(p * len(ordered)), 1) - 1] if ordered else 0.0


def spread(values: Sequence[float]) -> dict[str, float]:
    """{avg, p50, p90, max} of durations in seconds; all 0 when there are none."""
    if not values:
        return {"avg": 0.0, "p50": 0.0, "p90": 0.0, "max": 0.0}
    return {
        "avg": round(sum(values) / len(values), 3),
        "p50": round(percentile(values, 0.5), 3),
        "p90": round(percentile(values, 0.9), 3),
        "max": round(max(values), 3),
    }


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return None if start is None or end is None else max((end - start).total_seconds(), 0.0)


def summarize(rows: Iterable[ConversationFacts]) -> dict[str, Any]:
    rows = list(rows)
    bot = [r for r in rows if r.bot_answered]
    resolved = [r for r in bot if r.status == "closed" and r.handoff_reason is None]
    handed = [r for r in rows if r.handoff_reason is not None]
    waits = [w for r in rows if (w := _seconds(r.first_queued_at, r.first_assigned_at)) is not None]
    responses = [w for r in rows if (w := _seconds(r.first_queued_at, r.first_response_at)) is not None]
    handles = [w for r in rows if (w := _seconds(r.first_assigned_at, r.closed_at)) is not None]
    return {
        "sessions": len(rows),
        "messages": sum(r.messages for r in rows),
        "bot_sessions": len(bot),
        "bot_resolved": len(resolved),
        "bot_resolution_rate": round(len(resolved) / len(bot), 4) if bot else 0.0,
        "handoffs": len(handed),
        "handoff_reasons": {reason: sum(r.handoff_reason == reason for r in handed) for reason in HANDOFF_REASONS},
        "wait_seconds": spread(waits),
        "first_response_seconds": spread(responses),
        "handle_seconds": spread(handles),
        "abandoned": sum(r.resolution == "abandoned" for r in rows),
    }


def bucket_start(when: dt.datetime, bucket: str) -> dt.datetime:
    when = when.astimezone(dt.UTC)
    if bucket == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def report(rows: Sequence[ConversationFacts], bucket: str | None) -> dict[str, Any]:
    """The whole `GET /stats` answer: totals, by group, by agent, and with `bucket` a time series."""
    result = summarize(rows)
    groups = sorted({r.group for r in rows})
    result["by_group"] = {g: summarize(r for r in rows if r.group == g) for g in groups}
    agents = sorted({r.agent_id for r in rows if r.agent_id})
    result["by_agent"] = {a: summarize(r for r in rows if r.agent_id == a) for a in agents}
    if bucket is not None:
        starts = sorted({bucket_start(r.created_at, bucket) for r in rows})
        result["series"] = [
            {"start": start, **summarize(r for r in rows if bucket_start(r.created_at, bucket) == start)}
            for start in starts
        ]
    return result
