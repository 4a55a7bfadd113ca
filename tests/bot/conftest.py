"""The bot's models load once per test session (about two seconds), shared by every test that needs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from kefu.bot.articles import parse_articles
from kefu.bot.engine import shared_matcher
from kefu.bot.index import KbArticle
from kefu.bot.matcher import Matcher

DATA = Path(__file__).resolve().parents[1] / "data"


def load_kb(name: str) -> list[KbArticle]:
    path = DATA / name
    return [
        KbArticle(a.article_id, a.question, a.similar, a.answer, a.category)
        for a in parse_articles(path.read_bytes(), path.name)
    ]


@pytest.fixture(scope="session")
def matcher() -> Matcher:
    return shared_matcher()
