"""Who may write into a conversation is one rule said twice: as checks (`check_visible`, `check_participant`)
and as the values the message writer compares in its transaction (`expected_of`). They agree everywhere."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from kefu import errors
from kefu.domain.models import Actor, Conversation
from kefu.services.chat import check_participant, check_visible, expected_of

BASE = Conversation(
    session_id="20260301-000001",
    app_id="app_1",
    visitor_id="v_1",
    status="active",
    group="default",
    agent_id="ag_1",
    min_level=0,
    queue_priority=0,
    context=None,
    channel="web",
    last_seq=0,
    created_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    queued_at=None,
    assigned_at=None,
    closed_at=None,
    resolution=None,
    handoff_reason=None,
)
ACTORS = [
    Actor(kind, app_id, actor_id, role=role)
    for kind, role in (("visitor", ""), ("agent", "agent"), ("agent", "admin"), ("api_key", ""))
    for app_id in ("app_1", "app_2")
    for actor_id in ("v_1", "v_2", "ag_1", "ag_2")
]
CONVERSATIONS = [
    dataclasses.replace(BASE, app_id=app_id, visitor_id=visitor_id, agent_id=agent_id, status=status)
    for app_id, visitor_id, agent_id, status in itertools.product(
        ("app_1", "app_2"), ("v_1", "v_2"), ("ag_1", "ag_2", None), ("bot", "queued", "active", "closed")
    )
]


@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: f"{a.kind}-{a.role}-{a.app_id}-{a.actor_id}")
def test_the_writers_values_admit_exactly_what_the_checks_allow(actor: Actor) -> None:
    expected = expected_of(actor)
    for conv in CONVERSATIONS:
        try:
            check_visible(actor, conv)
            check_participant(actor, conv)
            allowed = True
        except (errors.ConversationNotFound, errors.Forbidden):
            allowed = False
        assert expected.sender_fits(conv) is allowed, (actor, conv)
        assert expected.status_fits(conv) is (conv.status != "closed")
