"""`kefu kb import` and `kefu kb eval` (protocol §6, files per §7)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kefu import errors
from kefu.bot import Bot
from kefu.bot.articles import parse_articles
from kefu.bot.evaluation import LabelledQuestion, Prediction, Scores, fitted_key, parse_labelled, score, sweep
from kefu.bot.model import BotModel
from kefu.config import Settings
from kefu.domain.clock import SystemClock
from kefu.services.kb import ImportResult, KbArticleSource, KbService
from kefu.storage import apps as app_store
from kefu.storage.migrate import open_app_database

kb_cli = typer.Typer(help="The bot's knowledge base.", no_args_is_help=True)

AppOption = Annotated[str, typer.Option("--app", help="app_id")]
FileArgument = Annotated[Path, typer.Argument(help="the file", show_default=False)]
DbOption = Annotated[str | None, typer.Option("--db", help="sqlite:///kefu.db or postgresql://… (env KEFU_DB)")]


def _settings(db: str | None) -> Settings:
    try:
        return Settings(db=db) if db is not None else Settings()
    except ValidationError as exc:
        raise errors.BadRequest(
            str(exc.errors()[0].get("msg", "invalid setting")).removeprefix("Value error, ")
        ) from None


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise errors.BadRequest(f"{path}: no such file")
    return path.read_bytes()


async def import_file(settings: Settings, app_id: str, path: Path, console: Console) -> ImportResult:
    """Parse the whole file first (a bad line stops everything), then write it in one transaction."""
    articles = parse_articles(_read(path), path.name)
    db = await open_app_database(settings.db, app_id)
    try:
        service = KbService(db, SystemClock(), Bot(KbArticleSource(db)))
        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("import", total=len(articles))
            return await service.import_articles(app_id, articles, lambda n: progress.advance(task, n))
    finally:
        await db.dispose()


async def evaluate_file(settings: Settings, app_id: str, path: Path, console: Console) -> dict[str, Any]:
    labels = parse_labelled(_read(path))
    db = await open_app_database(settings.db, app_id)
    try:
        async with db.read() as tx:
            app = await app_store.get_app(tx, app_id)
        assert app is not None
        bot = Bot(KbArticleSource(db))
        await bot.index(app_id)  # load the models and index the KB before the bar starts
        predictions: list[Prediction] = []
        columns = (TextColumn("asking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("eval", total=len(labels))
            for label in labels:
                article, confidence = await bot.best_match(app_id, label.question)
                predictions.append(Prediction(article, confidence))
                progress.advance(task)
    finally:
        await db.dispose()
    threshold = app.settings.bot_threshold
    headline = score(labels, predictions, threshold)
    seen = fitted_share(labels)
    if seen:
        console.print(
            f"[yellow]warning:[/] the shipped model was fitted on {seen:.0%} of these questions: these figures are"
            " in-sample and flatter it (docs/bot.md quotes figures on tenants it never saw)"
        )
    return headline.as_dict() | {
        "answerable": sum(1 for label in labels if label.article is not None),
        "fitted_on_share": round(seen, 4),
        "sweep": [s.as_dict() for s in sweep(labels, predictions)],
        "misses": misses(labels, predictions, threshold),
    }


def fitted_share(labels: list[LabelledQuestion]) -> float:
    """The share of `labels` whose question the shipped model was fitted on (0 for a file it never saw)."""
    fitted = set(BotModel.shipped().meta.get("question_keys", ()))
    return sum(1 for label in labels if fitted_key(label.question) in fitted) / len(labels) if labels else 0.0


def misses(labels: list[LabelledQuestion], predictions: list[Prediction], threshold: float) -> list[dict[str, Any]]:
    """Per expected article (null: questions to hand off), what the bot got wrong at `threshold`."""
    rows: dict[str | None, dict[str, Any]] = {}
    for label, prediction in zip(labels, predictions, strict=True):
        row = rows.setdefault(
            label.article, {"article": label.article, "questions": 0, "handed_off": 0, "answered_wrong": {}}
        )
        row["questions"] += 1
        answered = prediction.article is not None and prediction.confidence >= threshold
        if label.article is not None and not answered:
            row["handed_off"] += 1
        elif answered and prediction.article != label.article:
            wrong = str(prediction.article)
            row["answered_wrong"][wrong] = row["answered_wrong"].get(wrong, 0) + 1
    found = [r for r in rows.values() if r["handed_off"] or r["answered_wrong"]]
    return sorted(found, key=lambda r: (-(r["handed_off"] + sum(r["answered_wrong"].values())), str(r["article"])))


def _table(headline: Scores, rows: list[Scores]) -> Table:
    table = Table(title=f"{headline.questions} questions; the app's threshold is {headline.threshold}")
    for name in ("threshold", "answered correct", "answered wrong", "handed off", "resolution", "wrong answers"):
        table.add_column(name, justify="right")
    for s in rows:
        style = "bold" if s.threshold == headline.threshold else None
        table.add_row(
            f"{s.threshold:.2f}",
            str(s.answered_correct),
            str(s.answered_wrong),
            str(s.handed_off),
            f"{s.resolution_rate:.1%}",
            f"{s.wrong_answer_rate:.1%}",
            style=style,
        )
    return table


@kb_cli.command("import")
def import_command(app: AppOption, file: FileArgument, db: DbOption = None) -> None:
    """Import a JSON or CSV knowledge base (§7); re-importing an id updates it. Prints {created, updated}."""
    result = asyncio.run(import_file(_settings(db), app, file, Console(stderr=True)))
    sys.stdout.write(orjson.dumps({"created": result.created, "updated": result.updated}).decode() + "\n")


@kb_cli.command("eval")
def eval_command(
    app: AppOption,
    file: FileArgument,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
    db: DbOption = None,
) -> None:
    """Ask the bot every labelled question (JSON Lines, §7); print resolution and wrong-answer rates."""
    report = asyncio.run(evaluate_file(_settings(db), app, file, Console(stderr=True)))
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    headline = Scores(**{k: report[k] for k in Scores.__dataclass_fields__})
    rows = [Scores(**row) for row in report["sweep"]]
    if all(r.threshold != headline.threshold for r in rows):
        rows = sorted([*rows, headline], key=lambda r: r.threshold)
    console = Console()
    console.print(
        f"at threshold {headline.threshold}: resolution rate {headline.resolution_rate:.1%} "
        f"({headline.answered_correct} of {report['answerable']} answerable), "
        f"wrong-answer rate {headline.wrong_answer_rate:.1%} ({headline.answered_wrong} wrong), "
        f"handed off {headline.handed_off}"
    )
    console.print(_table(headline, rows))
    if report["misses"]:
        console.print(_misses_table(report["misses"], headline.threshold))


def _misses_table(rows: list[dict[str, Any]], threshold: float) -> Table:
    table = Table(title=f"misses at {threshold}, by expected article (none: should have handed off)")
    for name in ("expected article", "questions", "handed off", "answered with another article"):
        table.add_column(name, justify="left" if name.startswith(("expected", "answered")) else "right")
    for row in rows:
        wrong = ", ".join(f"{article} ×{n}" for article, n in sorted(row["answered_wrong"].items()))
        table.add_row(str(row["article"] or "(none)"), str(row["questions"]), str(row["handed_off"]), wrong)
    return table
