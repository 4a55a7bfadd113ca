"""The bot's learning loop: the questions it could not serve (protocol §11) and visitors' 👍/👎 on its answers.

Every query is scoped to one app.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kefu.storage.engine import Tx
from kefu.storage.rows import utc_required
from kefu.storage.tables import bot_feedback, kb_gaps

NEGATIVE_FEEDBACK = "negative_feedback"


@dataclass(frozen=True, slots=True)
class Gap:
    """A visitor question the bot could not serve: the one a conversation contributes to `GET /kb/gaps`."""

    app_id: str
    session_id: str
    seq: int
    question: str
    reason: str  # the handoff's reason, or negative_feedback for a 👎 on the answer to this question
    asked_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Feedback:
    """A visitor's 👍 (helpful) or 👎 on one bot answer, and the question that answer replied to."""

    app_id: str
    session_id: str
    seq: int
    article_id: str
    question: str | None
    helpful: bool
    at: dt.datetime


async def record_gap(tx: Tx, gap: Gap) -> None:
    """Keep a conversation's one gap question: the first one recorded, except that a 👎 replaces a handoff's.

    A 👎 says an answer was wrong, the strongest thing a visitor tells the bot; the question of a handoff that
    came first gives way to it (a group with a 👎 is always listed), a second 👎 changes nothing.
    """
    values = {
        "session_id": gap.session_id,
        "app_id": gap.app_id,
        "seq": gap.seq,
        "question": gap.question,
        "reason": gap.reason,
        "asked_at": gap.asked_at,
    }
    insert = sqlite.insert if tx.dialect.name == "sqlite" else postgresql.insert
    statement = insert(kb_gaps).values(**values)
    if gap.reason == NEGATIVE_FEEDBACK:
        upsert = statement.on_conflict_do_update(
            index_elements=[kb_gaps.c.session_id],
            set_={k: v for k, v in values.items() if k not in ("session_id", "app_id")},
            where=sa.and_(kb_gaps.c.app_id == gap.app_id, kb_gaps.c.reason != NEGATIVE_FEEDBACK),
        )
        await tx.execute(upsert)
    else:
        await tx.execute(statement.on_conflict_do_nothing(index_elements=[kb_gaps.c.session_id]))


async def gaps_between(tx: Tx, app_id: str, start: dt.datetime | None, end: dt.datetime | None, most: int) -> list[Gap]:
    """The app's gap questions asked in [start, end): the newest `most` of them, oldest first."""
    query = sa.select(kb_gaps).where(kb_gaps.c.app_id == app_id)
    if start is not None:
        query = query.where(kb_gaps.c.asked_at >= start)
    if end is not None:
        query = query.where(kb_gaps.c.asked_at < end)
    query = query.order_by(kb_gaps.c.asked_at.desc(), kb_gaps.c.session_id.desc()).limit(most)
    rows = (await tx.execute(query)).all()
    found = [Gap(r.app_id, r.session_id, r.seq, r.question, r.reason, utc_required(r.asked_at)) for r in rows]
    return found[::-1]


async def record_feedback(tx: Tx, feedback: Feedback) -> None:
    """Store a 👍/👎 on a bot answer; a visitor who changes their mind replaces their earlier mark."""
    values = {
        "session_id": feedback.session_id,
        "seq": feedback.seq,
        "app_id": feedback.app_id,
        "article_id": feedback.article_id,
        "question": feedback.question,
        "helpful": feedback.helpful,
        "at": feedback.at,
    }
    insert = sqlite.insert if tx.dialect.name == "sqlite" else postgresql.insert
    statement = (
        insert(bot_feedback)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[bot_feedback.c.session_id, bot_feedback.c.seq],
            set_={"helpful": feedback.helpful, "at": feedback.at},
            where=bot_feedback.c.app_id == feedback.app_id,
        )
    )
    await tx.execute(statement)


async def feedback_of(tx: Tx, app_id: str, session_id: str | None = None) -> list[Feedback]:
    """The app's 👍/👎 (of one conversation, when given), in time order: labels for the app's calibration."""
    query = sa.select(bot_feedback).where(bot_feedback.c.app_id == app_id)
    if session_id is not None:
        query = query.where(bot_feedback.c.session_id == session_id)
    rows = (await tx.execute(query.order_by(bot_feedback.c.at, bot_feedback.c.session_id, bot_feedback.c.seq))).all()
    return [
        Feedback(r.app_id, r.session_id, r.seq, r.article_id, r.question, r.helpful, utc_required(r.at)) for r in rows
    ]
