"""The metrics of protocol §5 over an app's conversations, for its agents and API keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kefu import errors
from kefu.domain.metrics import report
from kefu.domain.models import Actor
from kefu.storage import Database
from kefu.storage import stats as stats_store


def access_figures(actor: Actor) -> str:
    """The app whose figures `actor` may read: their own, for an agent or an API key (never a visitor)."""
    if actor.kind == "visitor":
        raise errors.Forbidden("The figures are for the app's agents and API keys.")
    return actor.app_id


class StatsService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def report(
        self,
        actor: Actor,
        start: dt.datetime | None,
        end: dt.datetime | None,
        group: str | None,
        agent_id: str | None,
        bucket: str | None,
    ) -> dict[str, Any]:
        """Over the conversations created in [start, end), of one group or agent when given; by `bucket` too."""
        app_id = access_figures(actor)
        async with self.db.read() as tx:
            facts = await stats_store.conversation_facts(tx, app_id, start, end, group, agent_id)
        return report(facts, bucket)
