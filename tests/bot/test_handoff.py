from __future__ import annotations

import pytest

from kefu.bot import is_repeated_question, wants_human


@pytest.mark.parametrize(
    "text",
    [
        "转人工",
        "人工客服在吗",
        "我要找人工",
        "能不能转接人工",
        "给我找个真人",
        "人工!!",
        "轉人工",
        "ＨＵＭＡＮ please",
        "agent",
        "talk to a person",
    ],
)
def test_requests_for_a_person(text: str) -> None:
    assert wants_human(text)


@pytest.mark.parametrize("text", ["退货政策是什么", "人工智能是什么", "how do I return this", "agenda for today", ""])
def test_ordinary_questions_are_not_requests(text: str) -> None:
    assert not wants_human(text)


def test_repeated_question_compares_normalised_text() -> None:
    assert is_repeated_question("退款多久到账？", ["退款 多久到账"])
    assert is_repeated_question("退款幾久到帳", ["退款几久到账!"])
    assert not is_repeated_question("退款多久到账", ["运费怎么算"])
    assert not is_repeated_question("？？", ["!!"])
