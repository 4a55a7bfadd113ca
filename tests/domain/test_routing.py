"""The routing policy without any I/O: rule matching and validation, agent choice, queue order helpers, ETA."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from kefu import errors
from kefu.domain.routing import (
    DEFAULT_GROUP,
    DEFAULT_HANDLE_S,
    MIN_HANDLE_S,
    OPERATORS,
    AgentLoad,
    Rule,
    choose_target,
    estimate_new_chat_wait,
    estimate_wait,
    group_status,
    handle_time,
    head_of_queue,
    insert_at,
    parse_match,
    pick_agent,
    rule_matches,
    shown_status,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def rule(match: dict[str, Any], group: str, min_level: int = 0, priority: int = 0, rule_id: str = "r") -> Rule:
    combine, conditions = parse_match(match)
    return Rule(rule_id, conditions, combine, group, min_level, priority)


VIP = rule({"all": [{"field": "tags.vip_level", "op": ">=", "value": 3}]}, "vip", 2, 10, "vip")
REFUND = rule({"any": [{"field": "tags.inquiry_type", "op": "==", "value": "refund"}]}, "aftersales", rule_id="refund")


@pytest.mark.parametrize(
    ("op", "actual", "expected", "result"),
    [
        ("==", "refund", "refund", True),
        ("==", 3, 3.0, True),
        ("!=", "refund", "order", True),
        ("!=", None, "order", True),
        (">", 4, 3, True),
        (">", 3, 3, False),
        (">=", 3, 3, True),
        ("<", 2, 3, True),
        ("<=", 4, 3, False),
        (">", "3", 2, False),  # a string tag never compares with a number
        (">", None, 2, False),
        (">", True, 0, False),  # booleans are not numbers here
        ("in", "web", ["web", "mobile"], True),
        ("in", "miniprogram", ["web", "mobile"], False),
        ("contains", "please refund my order", "refund", True),
        ("contains", ["gold", "b2b"], "b2b", True),
        ("contains", ["gold"], "b2b", False),
        ("contains", 42, "4", False),
    ],
)
def test_each_operator(op: str, actual: Any, expected: Any, result: bool) -> None:
    r = rule({"all": [{"field": "tags.x", "op": op, "value": expected}]}, "g")
    assert rule_matches(r, {"x": actual} if actual is not None else {}, {}) is result


def test_every_operator_is_understood() -> None:
    for op in OPERATORS:
        value: Any = [1] if op == "in" else 1
        rule({"all": [{"field": "tags.x", "op": op, "value": value}]}, "g")


def test_all_needs_every_condition_and_any_needs_one() -> None:
    conditions = [{"field": "tags.a", "op": "==", "value": 1}, {"field": "channel", "op": "==", "value": "mobile"}]
    both, either = rule({"all": conditions}, "g"), rule({"any": conditions}, "g")
    assert rule_matches(both, {"a": 1}, {"channel": "mobile"})
    assert not rule_matches(both, {"a": 1}, {"channel": "web"})
    assert rule_matches(either, {"a": 1}, {"channel": "web"})
    assert not rule_matches(either, {"a": 2}, {"channel": "web"})


def test_rules_are_tried_in_order_and_the_fallback_is_the_chosen_group_or_default() -> None:
    rules = [VIP, REFUND]
    vip_refund = choose_target(rules, {"vip_level": 3, "inquiry_type": "refund"}, {"channel": "web"})
    assert (vip_refund.group, vip_refund.min_level, vip_refund.queue_priority, vip_refund.rule_id) == (
        "vip",
        2,
        10,
        "vip",
    )
    assert choose_target(rules, {"vip_level": 1, "inquiry_type": "refund"}, {}).group == "aftersales"
    assert choose_target(rules, {"vip_level": 1}, {}).group == DEFAULT_GROUP
    assert choose_target(rules, {}, {"group": "presales"}).group == "presales"
    by_group = rule({"all": [{"field": "group", "op": "==", "value": "presales"}]}, "sales-team")
    assert choose_target([by_group], {}, {"group": "presales"}).group == "sales-team"


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({"all": [{"field": "tags.x", "op": "=~", "value": 1}]}, "Operator '=~'"),
        ({"all": [{"field": "visitor.name", "op": "==", "value": 1}]}, "Field 'visitor.name'"),
        ({"all": [{"field": "tags.", "op": "==", "value": 1}]}, "Field 'tags.'"),
        ({"all": [{"field": "client_tags.x", "op": "==", "value": 1}]}, "Field 'client_tags.x'"),
        ({"all": [{"field": "tags.x", "op": "in", "value": "a"}]}, "takes a list"),
        ({"all": [{"field": "tags.x", "op": ">", "value": [1]}]}, "number or a string"),
        ({"all": [{"field": "tags.x", "op": ">", "value": True}]}, "number or a string"),
        ({"all": [{"field": "tags.x", "op": "contains", "value": [1]}]}, "single value"),
        ({"all": [{"field": "tags.x", "op": "=="}]}, "no value"),
        ({"all": []}, "1 to 50"),
        ({"all": [], "any": []}, "exactly one key"),
        ({"every": []}, "exactly one key"),
        ([], "exactly one key"),
    ],
)
def test_bad_rules_are_refused_with_a_precise_message(match: Any, message: str) -> None:
    with pytest.raises(errors.BadRequest, match=message):
        parse_match(match)


def test_insert_at_places_a_rule_and_moves_the_rest_down() -> None:
    assert insert_at(["a", "b", "c"], "n", None) == ["a", "b", "c", "n"]
    assert insert_at(["a", "b", "c"], "n", 1) == ["n", "a", "b", "c"]
    assert insert_at(["a", "b", "c"], "n", 2) == ["a", "n", "b", "c"]
    assert insert_at(["a", "b", "c"], "n", 99) == ["a", "b", "c", "n"]
    assert insert_at(["a", "b", "c"], "c", 1) == ["c", "a", "b"]  # moving an existing rule


def agent(agent_id: str, load: int, idle_min: int = 0, level: int = 1, max_concurrent: int = 3) -> AgentLoad:
    return AgentLoad(agent_id, level, load, max_concurrent, T0 + dt.timedelta(minutes=idle_min))


def test_pick_agent_takes_the_lowest_load_then_the_longest_idle() -> None:
    agents = [agent("a", 2), agent("b", 1, idle_min=5), agent("c", 1, idle_min=1), agent("d", 3)]
    chosen = pick_agent(agents, 0)
    assert chosen is not None and chosen.agent_id == "c"


def test_pick_agent_respects_capacity_and_level() -> None:
    assert pick_agent([agent("full", 3)], 0) is None
    assert pick_agent([agent("junior", 0, level=1)], 2) is None
    chosen = pick_agent([agent("junior", 0, level=1), agent("senior", 2, level=3)], 2)
    assert chosen is not None and chosen.agent_id == "senior"
    assert pick_agent([], 0) is None


def test_shown_and_group_status() -> None:
    assert shown_status("online", 3, 3) == "busy"
    assert shown_status("online", 2, 3) == "online"
    assert shown_status("offline", 0, 3) == "offline"
    assert group_status(1, True, True) == "online"
    assert group_status(0, True, True) == "busy"
    assert group_status(0, False, True) == "busy"  # agents there, all set busy
    assert group_status(0, False, False) == "offline"


def test_requeued_chats_go_ahead_of_the_earliest_arrival_in_their_order() -> None:
    times = head_of_queue(3, T0)
    assert times == sorted(times) and times[-1] < T0
    assert head_of_queue(0, None) == []


def test_eta_formula() -> None:
    # 15 slots, 180 s per chat: one slot frees every 12 s.
    assert [estimate_wait(p, 0, 15, 180.0) for p in (1, 2, 3, 85)] == [12, 24, 36, 1020]
    # Nobody online: position x handle time.
    assert estimate_wait(2, 0, 0, 100.0) == 200
    # A chat waiting beside free slots (no free agent has its level) waits for one slot, not zero.
    assert estimate_wait(1, 2, 4, 100.0) == 25
    assert estimate_wait(0, 0, 1, 100.0) == 0
    assert estimate_new_chat_wait(0, 1, 3, 100.0) == 0
    assert estimate_new_chat_wait(4, 0, 2, 100.0) == 250


def test_eta_is_positive_and_falls_as_the_queue_moves() -> None:
    etas = [estimate_wait(p, 0, 15, handle_time(None)) for p in range(85, 0, -1)]
    assert all(e > 0 for e in etas)
    assert all(a > b for a, b in itertools.pairwise(etas))


def test_handle_time_defaults_and_floors() -> None:
    assert handle_time(None) == DEFAULT_HANDLE_S
    assert handle_time(0.0) == MIN_HANDLE_S
    assert handle_time(240.0) == 240.0
