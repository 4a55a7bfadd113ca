"""Scoring the bot on labelled questions (protocol §7): resolution and wrong-answer rates, and a threshold sweep."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kefu.bot.articles import InvalidImport
from kefu.bot.handoff import question_key

SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def fitted_key(question: str) -> str:
    """How the shipped model's metadata names a question it was fitted on (a short hash of its normalised text)."""
    return hashlib.sha1(question_key(question).encode()).hexdigest()[:10]  # noqa: S324 (a fingerprint, not security)


class InvalidEvaluationFile(InvalidImport):
    code = "invalid_evaluation_file"


@dataclass(frozen=True, slots=True)
class LabelledQuestion:
    question: str
    article: str | None  # None: the right behaviour is to hand off


@dataclass(frozen=True, slots=True)
class Prediction:
    article: str | None  # the bot's best article (None for an empty knowledge base)
    confidence: float


@dataclass(frozen=True, slots=True)
class Scores:
    threshold: float
    questions: int
    answered_correct: int
    answered_wrong: int
    handed_off: int
    resolution_rate: float
    wrong_answer_rate: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_labelled(data: bytes) -> list[LabelledQuestion]:
    """JSON Lines of `{"question": str, "article": str | null}`; blank lines are skipped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidEvaluationFile(f"line {line}: the file is not UTF-8 text") from None
    found: list[LabelledQuestion] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidEvaluationFile(f"line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(item, dict) or "question" not in item or "article" not in item:
            raise InvalidEvaluationFile(f'line {number}: expected {{"question": "…", "article": "id" or null}}')
        question, article = item["question"], item["article"]
        if not isinstance(question, str) or not question.strip():
            raise InvalidEvaluationFile(f"line {number}: 'question' must be a non-empty string")
        if article is not None and (not isinstance(article, str) or not article.strip()):
            raise InvalidEvaluationFile(f"line {number}: 'article' must be an article id or null")
        found.append(LabelledQuestion(question, article.strip() if article is not None else None))
    if not found:
        raise InvalidEvaluationFile("line 1: the file has no labelled questions")
    return found


def score(labels: Sequence[LabelledQuestion], predictions: Sequence[Prediction], threshold: float) -> Scores:
    """Answered = confidence ≥ threshold; resolution over answerable questions, wrong answers over answered."""
    assert len(labels) == len(predictions)
    correct = wrong = handed_off = 0
    for label, prediction in zip(labels, predictions, strict=True):
        if prediction.article is None or prediction.confidence < threshold:
            handed_off += 1
        elif prediction.article == label.article:
            correct += 1
        else:
            wrong += 1
    answerable = sum(1 for label in labels if label.article is not None)
    answered = correct + wrong
    return Scores(
        threshold=threshold,
        questions=len(labels),
        answered_correct=correct,
        answered_wrong=wrong,
        handed_off=handed_off,
        resolution_rate=round(correct / answerable, 4) if answerable else 0.0,
        wrong_answer_rate=round(wrong / answered, 4) if answered else 0.0,
    )


def sweep(
    labels: Sequence[LabelledQuestion], predictions: Sequence[Prediction], thresholds: Sequence[float] = SWEEP
) -> list[Scores]:
    return [score(labels, predictions, t) for t in thresholds]
