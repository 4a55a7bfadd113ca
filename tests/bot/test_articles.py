from __future__ import annotations

import pytest

from kefu.bot.articles import ImportTooLarge, InvalidImport, parse_article_list, parse_articles
from kefu.bot.evaluation import InvalidEvaluationFile, LabelledQuestion, Prediction, parse_labelled, score
from tests.bot.conftest import DATA


def test_the_shipped_files_parse() -> None:
    assert len(parse_articles((DATA / "kb_shop.json").read_bytes(), "kb_shop.json")) == 20
    bank = parse_articles((DATA / "kb_bank.csv").read_bytes(), "kb_bank.csv")
    assert len(bank) == 20 and bank[0].similar[0] == "借记卡找不到了"


def test_csv_with_bom_quotes_and_optional_columns() -> None:
    data = '\ufeffid,question,answer\nx,"问题, 带逗号",答案\n\n'.encode()
    [article] = parse_articles(data, "kb.csv")
    assert (article.article_id, article.question, article.similar, article.category) == ("x", "问题, 带逗号", (), "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[\n {"id": "a", "question": "q", "answer": "x"},\n {"id": "b", "question": "", "answer": "x"}\n]', "line 3"),
        (
            b'[\n {"id": "a", "question": "q", "answer": "x"},\n {"id": "a", "question": "q", "answer": "y"}\n]',
            "line 3",
        ),
        (b'[\n {"id": "a", "question": "q", "answer": "x", "similiar": []}\n]', "unknown field"),
        (b'[\n {"id": "a", "question": "q",\n "answer": "x"}\n,]', "line 4"),
        (b'{"id": "a"}', "must be a list"),
        (b"id,question,similar,answer,category\na,q,,x,c\nb,q,,x,c,extra\n", "line 3"),
        (b"identifier,question,answer\n", "header"),
        (b"id,question,similar,answer,category\na,q,,,c\n", "'answer' is empty"),
        (b"id,question,answer\na/b,q,x\n", "'id' may not"),
        (b"id,question,answer\na,\xff\xfe,x\n", "not UTF-8"),
    ],
)
def test_bad_files_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImport, match=message):
        parse_articles(data, None)


def test_too_large() -> None:
    with pytest.raises(ImportTooLarge):
        parse_articles(b" " * (10 * 1024 * 1024 + 1), "kb.json")


def test_body_lists_are_checked_per_item() -> None:
    with pytest.raises(InvalidImport, match="item 2: 'similar' must be a list"):
        parse_article_list(
            [{"id": "a", "question": "q", "answer": "x"}, {"id": "b", "question": "q", "answer": "x", "similar": "s"}]
        )


def test_evaluation_file_and_scores() -> None:
    labels = parse_labelled(b'{"question": "a", "article": "x"}\n\n{"question": "b", "article": null}\n')
    assert labels == [LabelledQuestion("a", "x"), LabelledQuestion("b", None)]
    with pytest.raises(InvalidEvaluationFile, match="line 2"):
        parse_labelled(b'{"question": "a", "article": "x"}\n{"question": "b"}\n')
    predictions = [Prediction("x", 0.9), Prediction("x", 0.8)]
    high = score(labels, predictions, 0.85)
    assert (high.answered_correct, high.answered_wrong, high.handed_off) == (1, 0, 1)
    assert (high.resolution_rate, high.wrong_answer_rate) == (1.0, 0.0)
    low = score(labels, predictions, 0.5)
    assert (low.answered_wrong, low.wrong_answer_rate) == (1, 0.5)
    nothing = score(labels, [Prediction(None, 0.0)] * 2, 0.5)
    assert (nothing.resolution_rate, nothing.wrong_answer_rate, nothing.handed_off) == (0.0, 0.0, 2)
