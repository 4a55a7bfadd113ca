"""The FAQ bot: knowledge-base index, answer with a calibrated confidence, and handoff decisions."""

from kefu.bot.engine import LOW_CONFIDENCE, NO_ANSWER, ArticleSource, Bot, BotAnswer
from kefu.bot.handoff import is_repeated_question, question_key, wants_human
from kefu.bot.index import KbArticle

__all__ = [
    "LOW_CONFIDENCE",
    "NO_ANSWER",
    "ArticleSource",
    "Bot",
    "BotAnswer",
    "KbArticle",
    "is_repeated_question",
    "question_key",
    "wants_human",
]
