"""Routing policy: which rule matches a chat, which agent takes it, and the queue's order and wait estimate.

Pure and synchronous: records in, decisions out. The services apply these decisions inside a
database transaction (see `kefu.services.routing`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kefu import errors

OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "in", "contains")
COMBINATORS = ("all", "any")
CHAT_FIELDS = ("channel", "group")
DEFAULT_GROUP = "default"
MAX_CONDITIONS = 50
MAX_TAG_KEY = 100

DEFAULT_HANDLE_S = 180.0
"""The handle time the wait estimate assumes before a group has any history."""
MIN_HANDLE_S = 10.0
"""A floor under the measured average, so chats closed at once do not promise a zero wait."""


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


# --- rules -----------------------------------------------------------------------------------------


def check_field(name: Any) -> str:
    """A rule's `field`: `tags.<key>` (trusted tags only), `channel` or `group`."""
    if not isinstance(name, str):
        raise errors.BadRequest("A condition's field must be a string.")
    if name in CHAT_FIELDS:
        return name
    if name.startswith("tags.") and 0 < len(name) - 5 <= MAX_TAG_KEY:
        return name
    raise errors.BadRequest(f"Field '{name}' is not one of tags.<key>, {', '.join(CHAT_FIELDS)}.")


def check_condition(raw: Any) -> Condition:
    """One `{field, op, value}` from a client, checked against what `rule_matches` understands."""
    if not isinstance(raw, Mapping):
        raise errors.BadRequest("A condition is an object {field, op, value}.")
    name = check_field(raw.get("field"))
    op = raw.get("op")
    if op not in OPERATORS:
        raise errors.BadRequest(f"Operator '{op}' is not one of {', '.join(OPERATORS)}.")
    if "value" not in raw:
        raise errors.BadRequest(f"The condition on '{name}' has no value.")
    value = raw["value"]
    if op == "in" and not isinstance(value, list):
        raise errors.BadRequest(f"'in' on '{name}' takes a list value.")
    if op in (">", ">=", "<", "<=") and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        raise errors.BadRequest(f"'{op}' on '{name}' takes a number or a string.")
    if op == "contains" and isinstance(value, list | dict):
        raise errors.BadRequest(f"'contains' on '{name}' takes a single value, not a list or object.")
    return Condition(name, op, value)


def parse_match(match: Any) -> tuple[str, tuple[Condition, ...]]:
    """`{all: [...]}` or `{any: [...]}` → (combinator, conditions); raises BadRequest on anything else."""
    if not isinstance(match, Mapping) or len(match) != 1 or next(iter(match)) not in COMBINATORS:
        raise errors.BadRequest("match is an object with exactly one key, 'all' or 'any'.")
    combine = next(iter(match))
    items = match[combine]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_CONDITIONS:
        raise errors.BadRequest(f"match.{combine} is a list of 1 to {MAX_CONDITIONS} conditions.")
    return combine, tuple(check_condition(item) for item in items)


def match_document(combine: str, conditions: Sequence[Condition]) -> dict[str, list[dict[str, Any]]]:
    """The stored and returned form of a rule's conditions."""
    return {combine: [{"field": c.field, "op": c.op, "value": c.value} for c in conditions]}


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
    """The first matching rule's target; the group the visitor chose, else `default`, when none matches.

    `tags` must be the visitor's trusted tags: `client_tags` never reach a rule.
    """
    for rule in rules:
        if rule_matches(rule, tags, chat):
            return Target(rule.group, rule.min_level, rule.queue_priority, rule.rule_id)
    return Target(str(chat.get("group") or DEFAULT_GROUP))


def insert_at(ordered: Sequence[str], item: str, position: int | None) -> list[str]:
    """`ordered` with `item` placed at 1-based `position` (None or past the end: last); the rest move down."""
    rest = [x for x in ordered if x != item]
    index = len(rest) if position is None else min(max(position, 1), len(rest) + 1) - 1
    return [*rest[:index], item, *rest[index:]]


# --- agents ----------------------------------------------------------------------------------------


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


def shown_status(chosen: str, load: int, max_concurrent: int) -> str:
    """What others see of an agent: `busy` when online but at capacity, else the status they chose."""
    if chosen == "online" and load >= max_concurrent:
        return "busy"
    return chosen


def group_status(free_slots: int, online_here: bool, present_here: bool) -> str:
    """`online` = a free slot; `busy` = agents online (or busy) but no free slot; `offline` = nobody there."""
    if free_slots > 0:
        return "online"
    return "busy" if online_here or present_here else "offline"


# --- the queue ----------------------------------------------------------------------------------------


def head_of_queue(count: int, earliest: dt.datetime | None) -> list[dt.datetime]:
    """Arrival times for `count` chats going back to the head of the queue, in the order given.

    Within a priority the queue is served by arrival, so times just before the `earliest` arrival
    of any waiting (or returning) chat put them first; a waiting chat of higher priority stays ahead.
    """
    if earliest is None:
        return []
    return [earliest - dt.timedelta(milliseconds=count - i) for i in range(count)]


# --- the queue's wait estimate -----------------------------------------------------------------------


def handle_time(measured_mean_s: float | None) -> float:
    """The average handle time the estimate uses: the group's recent mean, `DEFAULT_HANDLE_S` without history."""
    if measured_mean_s is None:
        return DEFAULT_HANDLE_S
    return max(measured_mean_s, MIN_HANDLE_S)


def estimate_wait(position: int, free_slots: int, serving_slots: int, avg_handle_s: float) -> int:
    """Seconds until the chat at queue `position` (1 = head) is likely taken; at least 1 while it waits.

    The first `free_slots` chats of the queue could be taken by slots free now (a chat still waits
    beside a free slot only when no free agent has the level it needs); the others wait for chats
    in progress to end. The group's `serving_slots` (the capacity of its online agents) each free
    up about once per `avg_handle_s`, so the chat at `position` waits

        ceil(max(position - free_slots, 1) * avg_handle_s / max(serving_slots, 1))

    With nobody online this is `position * avg_handle_s`: someone has to come back first.
    """
    if position <= 0:
        return 0
    behind = max(position - max(free_slots, 0), 1)
    return max(1, math.ceil(behind * avg_handle_s / max(serving_slots, 1)))


def estimate_new_chat_wait(queue_length: int, free_slots: int, serving_slots: int, avg_handle_s: float) -> int:
    """What a chat opened now would wait (`GET /status`): 0 when a slot is free for it, else its queue estimate."""
    if free_slots > queue_length:
        return 0
    return estimate_wait(queue_length + 1, free_slots, serving_slots, avg_handle_s)
