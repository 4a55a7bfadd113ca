"""Knowledge-base import files (protocol §7): a JSON list of articles, or CSV `id,question,similar,answer,category`.

Parsing is all-or-nothing: the first problem raises `InvalidImport` naming its line, and nothing is returned.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from kefu import errors

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ARTICLES = 20_000
MAX_ID_CHARS = 200
MAX_QUESTION_CHARS = 1000
MAX_SIMILAR = 200
MAX_ANSWER_CHARS = 10_000
MAX_CATEGORY_CHARS = 100
FIELDS = ("id", "question", "similar", "answer", "category")
REQUIRED = ("id", "question", "answer")
_BAD_ID = re.compile(r"[\x00-\x1f\x7f/?#%\\]")


class InvalidImport(errors.BadRequest):
    code = "invalid_import"


class InvalidArticle(errors.BadRequest):
    code = "invalid_article"


class ImportTooLarge(errors.KefuError):
    code = "too_large"
    status = 413


@dataclass(frozen=True, slots=True)
class ArticleInput:
    """A validated article as a client sent it."""

    article_id: str
    question: str
    similar: tuple[str, ...]
    answer: str
    category: str


def _text(value: Any, name: str, limit: int, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string")
    text = value.strip()
    if required and not text:
        raise ValueError(f"'{name}' is empty")
    if len(text) > limit:
        raise ValueError(f"'{name}' is longer than {limit} characters")
    return text


def check_article_id(value: Any) -> str:
    article_id = _text(value, "id", MAX_ID_CHARS, True)
    if _BAD_ID.search(article_id):
        raise ValueError("'id' may not contain control characters or any of / ? # % \\")
    return article_id


def article_from(data: Any, similar_separator: str | None = None) -> ArticleInput:
    """Validate one article (a dict with the §7 fields); raises ValueError saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("an article must be an object with id, question, answer (similar and category optional)")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field '{unknown[0]}' (the fields are {', '.join(FIELDS)})")
    for name in REQUIRED:
        if name not in data:
            raise ValueError(f"'{name}' is missing")
    similar_value = data.get("similar")
    if similar_value is None:
        similar_items: list[Any] = []
    elif similar_separator is not None and isinstance(similar_value, str):
        similar_items = similar_value.split(similar_separator)
    elif isinstance(similar_value, list):
        similar_items = similar_value
    else:
        raise ValueError("'similar' must be a list of strings")
    similar: list[str] = []
    for item in similar_items:
        text = _text(item, "similar", MAX_QUESTION_CHARS, False)
        if text and text not in similar:
            similar.append(text)
    if len(similar) > MAX_SIMILAR:
        raise ValueError(f"'similar' has more than {MAX_SIMILAR} questions")
    return ArticleInput(
        article_id=check_article_id(data["id"]),
        question=_text(data["question"], "question", MAX_QUESTION_CHARS, True),
        similar=tuple(similar),
        answer=_text(data["answer"], "answer", MAX_ANSWER_CHARS, True),
        category=_text(data.get("category"), "category", MAX_CATEGORY_CHARS, False),
    )


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _json_items(text: str) -> list[tuple[int, Any]]:
    """The elements of a JSON list with the line each starts on."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidImport(f"line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise InvalidImport("line 1: the JSON file must be a list of articles")
    decoder = json.JSONDecoder()
    whitespace = " \t\r\n"
    position = text.index("[") + 1
    items: list[tuple[int, Any]] = []
    while True:
        while position < len(text) and text[position] in whitespace:
            position += 1
        if text[position] == "]":
            return items
        if text[position] == ",":
            position += 1
            continue
        value, end = decoder.raw_decode(text, position)
        items.append((_line_of(text, position), value))
        position = end


def _csv_items(text: str) -> list[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidImport(
                "line 1: the CSV file is empty (it needs the header id,question,similar,answer,category)"
            )
        names = [h.strip().lower() for h in header]
        unknown = [n for n in names if n not in FIELDS]
        if unknown or len(set(names)) != len(names) or any(r not in names for r in REQUIRED):
            raise InvalidImport(
                f"line 1: the header must be id,question,similar,answer,category, not {','.join(header)}"
            )
        items: list[tuple[int, Any]] = []
        start = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                if len(row) != len(names):
                    raise InvalidImport(
                        f"line {start}: expected {len(names)} fields, found {len(row)} "
                        "(put a field that contains a comma in double quotes)"
                    )
                items.append((start, dict(zip(names, row, strict=True))))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidImport(f"line {reader.line_num}: not valid CSV ({exc})") from None
    return items


def file_format(data: bytes, filename: str | None) -> str:
    """'json' or 'csv', from the file name's extension or else the first character."""
    name = (filename or "").lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith(".csv"):
        return "csv"
    return "json" if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"[", b"{")) else "csv"


def parse_articles(data: bytes, filename: str | None = None) -> list[ArticleInput]:
    """Every article of an import file, validated; raises InvalidImport naming the first bad line."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportTooLarge(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidImport(f"line {line}: the file is not UTF-8 text (save it as UTF-8)") from None
    fmt = file_format(data, filename)
    items = _json_items(text) if fmt == "json" else _csv_items(text)
    return check_items(items, "|" if fmt == "csv" else None)


def parse_article_list(items: list[Any]) -> list[ArticleInput]:
    """A JSON list already decoded (a request body); errors name the element's position (1-based)."""
    return check_items(list(enumerate(items, start=1)), None, where="item")


def check_items(items: list[tuple[int, Any]], separator: str | None, where: str = "line") -> list[ArticleInput]:
    if len(items) > MAX_ARTICLES:
        raise InvalidImport(f"more than {MAX_ARTICLES} articles in one import; split the file")
    articles: list[ArticleInput] = []
    first_seen: dict[str, int] = {}
    for number, data in items:
        try:
            article = article_from(data, separator)
        except ValueError as exc:
            raise InvalidImport(f"{where} {number}: {exc}") from None
        if article.article_id in first_seen:
            earlier = first_seen[article.article_id]
            raise InvalidImport(f"{where} {number}: id '{article.article_id}' already appears at {where} {earlier}")
        first_seen[article.article_id] = number
        articles.append(article)
    return articles
