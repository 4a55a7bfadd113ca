"""Which visitor question a bot answer replied to (the question a 👍/👎 is about). No I/O."""

from __future__ import annotations

import datetime as dt

from kefu.domain.models import Message
from kefu.services.bot_flow import answered_question

AT = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def transcript(*lines: tuple[str, str, str | None]) -> list[Message]:
    """Messages from (sender, msg_type, article_id) triples, seq 1, 2, … (content: "<sender><seq>")."""
    return [
        Message(f"m{seq}", "s", seq, None, sender, None, kind, f"{sender}{seq}", AT, article_id=article)
        for seq, (sender, kind, article) in enumerate(lines, start=1)
    ]


def test_the_nth_answer_replies_to_the_nth_visitor_message() -> None:
    fast = transcript(("user", "text", None), ("user", "text", None), ("bot", "text", "a"), ("bot", "text", "b"))
    assert answered_question(fast[:3]) == fast[0]  # not user2, sent before the first answer came
    assert answered_question(fast) == fast[1]
    slow = transcript(("user", "text", None), ("bot", "text", "a"), ("user", "text", None), ("bot", "text", "b"))
    assert answered_question(slow[:2]) == slow[0] and answered_question(slow) == slow[2]


def test_notices_without_an_article_are_not_answers_and_a_mismatch_falls_back() -> None:
    greeted = transcript(("bot", "text", None), ("user", "text", None), ("bot", "text", "a"))
    assert answered_question(greeted) == greeted[1]
    # An answer with no visitor message left to pair (a reply that failed, then more answers): the last text.
    odd = transcript(("user", "text", None), ("bot", "text", "a"), ("bot", "text", "b"))
    assert answered_question(odd) == odd[0]
    assert answered_question(transcript(("bot", "text", "a"))) is None
