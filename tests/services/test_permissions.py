"""The permission checks of canned responses and figures, which live in services (no I/O needed to check them)."""

from __future__ import annotations

import pytest

from kefu import errors
from kefu.domain.models import Actor
from kefu.services.canned import access_scope
from kefu.services.stats import access_figures

AGENT = Actor("agent", "app_1", "ag_1", role="agent")
ADMIN = Actor("agent", "app_1", "ag_2", role="admin")
API_KEY = Actor("api_key", "app_1", "key_1")
VISITOR = Actor("visitor", "app_1", "v_1")


def test_the_apps_responses_are_for_admins_and_api_keys_an_agents_own_for_that_agent() -> None:
    assert access_scope(ADMIN, "app") is None and access_scope(API_KEY, "app") is None
    assert access_scope(AGENT, "agent") == "ag_1" and access_scope(ADMIN, "agent") == "ag_2"
    with pytest.raises(errors.Forbidden):
        access_scope(AGENT, "app")
    with pytest.raises(errors.BadRequest):
        access_scope(API_KEY, "agent")


def test_figures_are_the_callers_own_apps_and_never_a_visitors() -> None:
    assert access_figures(AGENT) == access_figures(API_KEY) == "app_1"
    with pytest.raises(errors.Forbidden):
        access_figures(VISITOR)
