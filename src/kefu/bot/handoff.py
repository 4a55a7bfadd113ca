"""When a visitor asks for a person, and when the same question comes back unanswered (pure functions)."""

from __future__ import annotations

import re

from kefu.bot.text import normalise

# Phrases that ask for a person, matched on normalised text (simplified, lower case, half-width).
_CHINESE = (
    "转人工",
    "转接人工",
    "人工客服",
    "人工服务",
    "人工坐席",
    "找人工",
    "要人工",
    "接人工",
    "真人",
    "活人",
    "客服人员",
    "人工",
)
_ENGLISH = re.compile(
    r"\b(human|humans|agent|agents|real person|live person|live chat|representative|operator|"
    r"talk to (a |an )?(person|someone|somebody|staff)|speak to (a |an )?(person|someone|somebody|staff))\b"
)
# "人工智能" is artificial intelligence, not a person.
_NOT_A_PERSON = ("人工智能",)
_PUNCTUATION = re.compile(r"[\W_]+", re.UNICODE)


def wants_human(text: str) -> bool:
    """True when the visitor asks to talk to a person ("转人工", "人工客服", "真人", "human", "agent", …)."""
    folded = normalise(text)
    for phrase in _NOT_A_PERSON:
        folded = folded.replace(phrase, " ")
    return any(p in folded for p in _CHINESE) or _ENGLISH.search(folded) is not None


def question_key(text: str) -> str:
    """A question reduced for comparison: normalised, without spaces or punctuation."""
    return _PUNCTUATION.sub("", normalise(text))


def is_repeated_question(text: str, previous_unanswered: list[str] | tuple[str, ...]) -> bool:
    """True when `text` is the same question (after normalisation) as one the bot already failed to answer."""
    key = question_key(text)
    return bool(key) and any(question_key(p) == key for p in previous_unanswered)
