"""Routing policy: which rule matches a chat, which agent takes it, and the queue's order and wait estimate."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "in", "contains")
DEFAULT_GROUP = "default"


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    conditions: tuple[Condition, ...]
    combine: str  # "all" | "any"
    group: str
    min_level: int = 0
    queue_priority: int = 0


@dataclass(frozen=True, slots=True)
class Target:
    """Where a chat goes: its group, the agents' minimum level and its queue priority."""

    group: str
    min_level: int = 0
    queue_priority: int = 0
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class AgentLoad:
    agent_id: str
    level: int
    load: int
    max_concurrent: int
    idle_since: dt.datetime
    groups: frozenset[str] = field(default_factory=frozenset)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    try:
        if op == "==":
            return bool(actual == expected)
        if op == "!=":
            return bool(actual != expected)
        if op == "in":
            return isinstance(expected, list | tuple) and actual in expected
        if op == "contains":
            if isinstance(actual, str):
                return isinstance(expected, str) and expected in actual
            return isinstance(actual, list | tuple) and expected in actual
        if actual is None or isinstance(actual, bool) or isinstance(expected, bool):
            return False
        if op == ">":
            return bool(actual > expected)
        if op == ">=":
            return bool(actual >= expected)
        if op == "<":
            return bool(actual < expected)
        if op == "<=":
            return bool(actual <= expected)
    except TypeError:  # comparing a string tag with a number: no match, not an error
        return False
    raise ValueError(f"Operator '{op}' is not one of {', '.join(OPERATORS)}")


def field_value(name: str, tags: Mapping[str, Any], chat: Mapping[str, Any]) -> Any:
    """The value a rule's `field` names: `tags.<key>` from the trusted tags, else a chat field."""
    if name.startswith("tags."):
        return tags.get(name[5:])
    return chat.get(name)


def rule_matches(rule: Rule, tags: Mapping[str, Any], chat: Mapping[str, Any]) -> bool:
    results = (_compare(c.op, field_value(c.field, tags, chat), c.value) for c in rule.conditions)
    return any(results) if rule.combine == "any" else all(results)


def choose_target(rules: Sequence[Rule], tags: Mapping[str, Any], chat: Mapping[str, Any]) -> Target:
    """The first matching rule's target; the group the visitor chose, else `default`, when none matches."""
    for rule in rules:
        if rule_matches(rule, tags, chat):
            return Target(rule.group, rule.min_level, rule.queue_priority, rule.rule_id)
    return Target(str(chat.get("group") or DEFAULT_GROUP))


def is_available(agent: AgentLoad, min_level: int) -> bool:
    return agent.load < agent.max_concurrent and agent.level >= min_level


def pick_agent(candidates: Iterable[AgentLoad], min_level: int) -> AgentLoad | None:
    """The available agent with the lowest load, ties to the one idle longest; None when nobody is free.

    `candidates` are the agents that are online in the chat's group; availability is checked here.
    """
    free = [a for a in candidates if is_available(a, min_level)]
    if not free:
        return None
    return min(free, key=lambda a: (a.load, a.idle_since, a.agent_id))


def estimate_wait(position: int, free_slots: int, serving_slots: int, avg_handle_s: float) -> int:
    """Seconds until a chat at queue `position` (1 = head) is likely taken.

    With free slots the chat is taken at once. Otherwise the group's `serving_slots` chats in
    progress each end after about `avg_handle_s`, so slots free at `serving_slots / avg_handle_s`
    a second and the chat at `position` waits `position * avg_handle_s / serving_slots`. With no
    agent online at all, the estimate is `position * avg_handle_s` (someone has to come back).
    """
    if position <= 0:
        return 0
    if free_slots > position:
        return 0
    slots = max(serving_slots, 1)
    return max(1, math.ceil(position * avg_handle_s / slots))
