"""Fit the bot's ranker and confidence on the development tenants; report them on tenants they never saw.

    .venv/bin/python scripts/fit_bot.py --loto          # fit; leave-one-tenant-out figures on the development set
    .venv/bin/python scripts/fit_bot.py --held-out      # fit, score the held-out tenants, write fitted.py
    .venv/bin/python scripts/fit_bot.py --report-only   # the shipped model on the held-out tenants (no fitting)
    add --dry-run to leave src/kefu/bot/fitted.py alone

Protocol (docs/bot.md): the models are fitted on the development tenants only, each at every density it has (no
similar questions, at most 3, ~20). The headline figures come from the held-out tenants, whose questions no
fitting, feature choice or similar question ever saw; each is a tenant the model never saw. Reserve tenants are
not scored. Nothing here reads a held-out tenant's questions except to score them at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from bot_data import (
    DENSE_DEV,
    HELD_OUT,
    ROOT,
    SPARSE_DEV,
    CachedEncoder,
    Collected,
    chitchat,
    collect,
    copied_questions,
    variants,
)
from numpy.typing import NDArray

from kefu.bot.encoders import MultilingualE5, UniversalSentenceEncoder
from kefu.bot.evaluation import SWEEP, Prediction, fitted_key, sweep
from kefu.bot.index import KbIndex
from kefu.bot.matcher import CANDIDATE_FEATURES, DECISION_FEATURES, Matcher
from kefu.bot.model import FITTED_MODULE, BotModel, LinearRanker, Tree, TreeEnsemble, fit_ranker
from kefu.bot.text import Analyzer

DEV = (*DENSE_DEV, *SPARSE_DEV)
FIGURES = ROOT / "docs" / "bot-figures.json"
WRONG_ANSWER_WEIGHT = 4  # the confidence weighs a wrong answer as four handoffs (docs/bot.md, "Confidence")
TREES = {"max_depth": 3, "learning_rate": 0.05, "max_iter": 150, "l2_regularization": 1.0, "min_samples_leaf": 40}
FloatArray = NDArray[np.float64]


def matcher(cache: Path | None, model: BotModel | None = None) -> Matcher:
    use, e5 = UniversalSentenceEncoder(), MultilingualE5()
    analyzer = Analyzer()
    if cache is None:
        return Matcher(use, e5, analyzer, model)
    return Matcher(CachedEncoder(use, cache), CachedEncoder(e5, cache), analyzer, model)


def groups(collected: Iterable[Collected]) -> list[tuple[FloatArray, int]]:
    return [(item.rows, item.target) for c in collected for item in c.items if item.target >= 0]


def decisions(m: Matcher, c: Collected, ranker: LinearRanker) -> tuple[FloatArray, list[str | None]]:
    """The confidence features of each question of `c` under `ranker`, and the article chosen."""
    rows, chosen = [], []
    for item in c.items:
        position, features = m.decision(
            c.index, item.asked, item.scores, item.candidates, item.rows, ranker.scores(item.rows)
        )
        rows.append(features)
        chosen.append(c.index.articles[position].article_id)
    return np.vstack(rows), chosen


def confidence_of(m: Matcher, model: BotModel, index: KbIndex, question: str) -> float:
    """What the bot would say of `question` with `model` (the matcher here carries no model of its own)."""
    asked = m.question(question)
    assert asked is not None
    scores = m.scores(index, asked)
    candidates, rows = m.candidates(index, asked, scores)
    _, features = m.decision(index, asked, scores, candidates, rows, model.ranker.scores(rows))
    return model.decider.probability(features)


def correct(c: Collected, chosen: list[str | None]) -> NDArray[np.int64]:
    return np.array([int(a is not None and a == item.label.article) for a, item in zip(chosen, c.items, strict=True)])


def fit_trees(x: FloatArray, y: NDArray[np.int64]) -> TreeEnsemble:
    from sklearn.ensemble import HistGradientBoostingClassifier  # a development dependency only

    model = HistGradientBoostingClassifier(random_state=0, **TREES).fit(x, y)
    trees = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        trees.append(
            Tree(
                np.where(leaf, -1, nodes["feature_idx"]).astype(np.int64),
                nodes["num_threshold"].astype(np.float64),
                nodes["left"].astype(np.int64),
                nodes["right"].astype(np.int64),
                nodes["value"].astype(np.float64),
            )
        )
    ensemble = TreeEnsemble(DECISION_FEATURES, float(np.ravel(model._baseline_prediction)[0]), tuple(trees))
    ours = np.array([ensemble.probability(row) for row in x[:200]])
    theirs = model.predict_proba(x[:200])[:, 1]
    assert np.allclose(ours, theirs, atol=1e-6), "the exported trees disagree with scikit-learn"
    # P(right) becomes P(right) among answers where each wrong one counts WRONG_ANSWER_WEIGHT times: odds / weight.
    return TreeEnsemble(ensemble.features, ensemble.baseline - math.log(WRONG_ANSWER_WEIGHT), ensemble.trees)


def scores_table(c: Collected, chosen: list[str | None], confidence: FloatArray) -> list[dict[str, Any]]:
    labels = [item.label for item in c.items]
    predictions = [Prediction(a, float(p)) for a, p in zip(chosen, confidence, strict=True)]
    return [s.as_dict() for s in sweep(labels, predictions, SWEEP)]


def pooled(tables: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Sum the counts of several tenants' sweeps and recompute the rates."""
    result = []
    for rows in zip(*tables, strict=True):
        total = {k: sum(r[k] for r in rows) for k in ("questions", "answered_correct", "answered_wrong", "handed_off")}
        answerable = sum(r["answerable"] for r in rows)
        answered = total["answered_correct"] + total["answered_wrong"]
        result.append(
            {
                "threshold": rows[0]["threshold"],
                **total,
                "answerable": answerable,
                "resolution_rate": round(total["answered_correct"] / answerable, 4) if answerable else 0.0,
                "wrong_answer_rate": round(total["answered_wrong"] / answered, 4) if answered else 0.0,
            }
        )
    return result


def with_answerable(c: Collected, table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answerable = sum(1 for item in c.items if item.label.article is not None)
    return [dict(row, answerable=answerable) for row in table]


def at(table: list[dict[str, Any]], threshold: float = 0.7) -> dict[str, Any]:
    return next(row for row in table if abs(row["threshold"] - threshold) < 1e-9)


def line(name: str, row: dict[str, Any]) -> str:
    return (
        f"{name:34s} resolution {row['resolution_rate']:6.1%}  wrong {row['wrong_answer_rate']:5.1%}"
        f"  ({row['answered_correct']} right, {row['answered_wrong']} wrong, {row['handed_off']} handed off"
        f" of {row['questions']})"
    )


def evaluate(m: Matcher, model: BotModel, names: Iterable[str]) -> dict[str, Any]:
    """The model on each variant of `names`: sweeps per tenant and density, pooled per density, and chit-chat."""
    by_density: dict[str, list[list[dict[str, Any]]]] = {}
    per_tenant: dict[str, dict[str, Any]] = {}
    top1: dict[str, list[int]] = {}
    small_talk: dict[str, int] = {"asked": 0, "answered": 0}
    talk = chitchat()
    for name in names:
        for variant in variants(name):
            c = collect(m, variant)
            x, chosen = decisions(m, c, model.ranker)
            confidence = np.array([model.decider.probability(row) for row in x])
            table = with_answerable(c, scores_table(c, chosen, confidence))
            per_tenant.setdefault(name, {})[variant.density] = table
            by_density.setdefault(variant.density, []).append(table)
            hits = [int(a == item.label.article) for a, item in zip(chosen, c.items, strict=True) if item.label.article]
            top1.setdefault(variant.density, []).extend(hits)
            if variant.density == "3":
                for label in talk:
                    small_talk["asked"] += 1
                    small_talk["answered"] += int(confidence_of(m, model, c.index, label.question) >= 0.7)
    return {
        "pooled": {d: pooled(tables) for d, tables in by_density.items()},
        "per_tenant": per_tenant,
        "top1": {d: round(float(np.mean(v)), 4) for d, v in top1.items()},
        "chitchat_at_0.7": dict(small_talk, rate=round(small_talk["answered"] / max(1, small_talk["asked"]), 4)),
    }


def print_evaluation(title: str, result: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for density, table in result["pooled"].items():
        print(line(f"all, {density} similar, at 0.7", at(table)), f" top-1 {result['top1'][density]:.1%}")
    for name, tables in result["per_tenant"].items():
        for density, table in tables.items():
            print("  " + line(f"{name}, {density} similar", at(table)))
    talk = result["chitchat_at_0.7"]
    print(f"chit-chat answered at 0.7: {talk['answered']} of {talk['asked']} ({talk['rate']:.1%})")


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """What docs/bot.md and README.md quote, and tests/bot/test_figures.py recomputes."""
    keep = ("questions", "answerable", "answered_correct", "answered_wrong", "handed_off")
    rates = ("resolution_rate", "wrong_answer_rate")
    held = report["held_out"]
    result: dict[str, Any] = {
        "date": report["date"],
        "held_out_tenants": list(HELD_OUT),
        "held_out_at_0.7": {d: {k: at(t)[k] for k in (*keep, *rates)} for d, t in held["pooled"].items()},
        "held_out_top1": held["top1"],
        "chitchat_answered_at_0.7": held["chitchat_at_0.7"]["rate"],
    }
    loto = report.get("development_leave_one_tenant_out")
    if loto:
        result["development_leave_one_tenant_out_at_0.7"] = {d: {k: at(t)[k] for k in rates} for d, t in loto.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="do not write src/kefu/bot/fitted.py")
    parser.add_argument("--report-only", action="store_true", help="score the shipped model on the held-out tenants")
    parser.add_argument("--loto", action="store_true", help="report leave-one-tenant-out on the development set")
    parser.add_argument("--held-out", action="store_true", help="score the held-out tenants (once the method is fixed)")
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bot-vectors.sqlite", help="vector cache")
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {"date": dt.date.today().isoformat()}

    if args.report_only:
        model = BotModel.shipped()
        result = evaluate(matcher(args.cache), model, HELD_OUT)
        print_evaluation("held-out tenants, shipped model", result)
        report["held_out"] = result
    else:
        m = matcher(args.cache)
        dev = {name: [collect(m, v) for v in variants(name)] for name in DEV}
        for name, collected in dev.items():
            for c in collected:
                copies = copied_questions(c.variant)
                if copies:
                    raise SystemExit(f"{name}: labelled questions copied from its knowledge base: {copies[:5]}")
        scored = sum(len(c.items) for cs in dev.values() for c in cs)
        print(f"development: {scored} scored questions, {time.perf_counter() - started:.0f}s")

        def ranker_without(*left_out: str) -> LinearRanker:
            return fit_ranker(groups(c for n, cs in dev.items() if n not in left_out for c in cs), CANDIDATE_FEATURES)

        # The confidence is fitted on rows each scored by a ranker that never saw that row's tenant.
        x_parts, y_parts = [], []
        for name, collected in dev.items():
            ranker = ranker_without(name)
            for c in collected:
                x, chosen = decisions(m, c, ranker)
                x_parts.append(x)
                y_parts.append(correct(c, chosen))
        model = BotModel(
            ranker_without(),
            fit_trees(np.vstack(x_parts), np.concatenate(y_parts)),
            {
                "fitted": dt.date.today().isoformat(),
                "development_tenants": list(DEV),
                "rows": int(sum(len(y) for y in y_parts)),
                "trees": TREES,
                "wrong_answer_weight": WRONG_ANSWER_WEIGHT,
                "question_keys": sorted(
                    {fitted_key(item.label.question) for cs in dev.values() for c in cs for item in c.items}
                ),
            },
        )

        if args.loto:
            dumped: list[dict[str, Any]] = []
            loto: dict[str, list[list[dict[str, Any]]]] = {}
            for held in DEV:
                xs, ys = [], []
                for name, collected in dev.items():
                    if name == held:
                        continue
                    ranker = ranker_without(held, name)
                    for c in collected:
                        x, chosen = decisions(m, c, ranker)
                        xs.append(x)
                        ys.append(correct(c, chosen))
                decider = fit_trees(np.vstack(xs), np.concatenate(ys))
                ranker = ranker_without(held)
                for c in dev[held]:
                    x, chosen = decisions(m, c, ranker)
                    confidence = np.array([decider.probability(row) for row in x])
                    dumped.extend(
                        {
                            "tenant": held,
                            "density": c.variant.density,
                            "question": item.label.question,
                            "article": item.label.article,
                            "chosen": a,
                            "confidence": round(float(p), 4),
                            "features": dict(zip(DECISION_FEATURES, map(float, row), strict=True)),
                        }
                        for item, a, p, row in zip(c.items, chosen, confidence, x, strict=True)
                    )
                    loto.setdefault(c.variant.density, []).append(
                        with_answerable(c, scores_table(c, chosen, confidence))
                    )
            report["development_leave_one_tenant_out"] = {d: pooled(t) for d, t in loto.items()}
            report["development_leave_one_tenant_out_questions"] = dumped
            print("\n== development tenants, leave one tenant out")
            for density, tables in loto.items():
                print(line(f"all, {density} similar, at 0.7", at(pooled(tables))))

        if args.held_out:
            result = evaluate(m, model, HELD_OUT)
            print_evaluation("held-out tenants (never fitted on), this fit", result)
            report["held_out"] = result
            model.meta["held_out_at_0.7"] = {d: at(t) for d, t in result["pooled"].items()}
        if not args.dry_run:
            model.write_module()
            if args.held_out:
                FIGURES.write_text(json.dumps(figures(report), indent=1) + "\n", encoding="utf-8")
                print(f"wrote {FIGURES.relative_to(ROOT)}")
            print(f"\nwrote {FITTED_MODULE.relative_to(ROOT)}")
    if args.report:
        args.report.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n{time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
