"""Fit the bot's confidence model on the training sets in tests/data and report it on the held-out evaluation sets.

    .venv/bin/python scripts/fit_bot.py            # report, and write src/kefu/bot/fitted.py
    .venv/bin/python scripts/fit_bot.py --dry-run  # report only

Each business (shop, bank, SaaS) is one tenant with its own knowledge base and two labelled files written
separately: `train_<tenant>.jsonl` (written to fit on, by someone who never saw the evaluation files) and
`eval_<tenant>.jsonl` (the figures reported). No figure scores a question with a model that saw it:
- headline, cross-validated: 10 folds over the evaluation questions (5 shuffled repeats); each fold is scored by a
  model fitted on all training questions plus the other nine folds — the shipped model's recipe, minus the fold;
- strictly held out: fitted on the training sets only, scored on every evaluation question;
- a tenant never seen: fitted on the other two tenants' training sets only.
The shipped model is fitted on every training and evaluation question, so `kefu kb eval` on these files is
in-sample (optimistic): quote the cross-validated figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kefu.bot.articles import parse_articles  # noqa: E402
from kefu.bot.calibration import FITTED_MODULE, Calibration, fit_logistic  # noqa: E402
from kefu.bot.encoders import UniversalSentenceEncoder  # noqa: E402
from kefu.bot.evaluation import SWEEP, LabelledQuestion, Prediction, parse_labelled, sweep  # noqa: E402
from kefu.bot.index import KbArticle  # noqa: E402
from kefu.bot.matcher import FEATURES, Matcher  # noqa: E402
from kefu.bot.text import Analyzer, normalise  # noqa: E402

DATA = ROOT / "tests" / "data"
TENANTS = {"shop": "kb_shop.json", "bank": "kb_bank.csv", "saas": "kb_saas.json"}
L2 = 1.0


@dataclass
class Rows:
    tenant: list[str]
    labels: list[LabelledQuestion]
    chosen: list[str | None]
    x: NDArray[np.float64]
    y: NDArray[np.int64]


def load_kb(name: str) -> list[KbArticle]:
    path = DATA / TENANTS[name]
    return [
        KbArticle(a.article_id, a.question, a.similar, a.answer, a.category)
        for a in parse_articles(path.read_bytes(), path.name)
    ]


def check_no_copies(kb: list[KbArticle], labels: list[LabelledQuestion], tenant: str) -> None:
    phrasings = {normalise(p) for a in kb for p in a.phrasings()}
    copies = [q.question for q in labels if normalise(q.question) in phrasings]
    if copies:
        raise SystemExit(f"{tenant}: evaluation questions copied from the knowledge base: {copies}")
    known = {a.article_id for a in kb}
    unknown = [q.article for q in labels if q.article is not None and q.article not in known]
    if unknown:
        raise SystemExit(f"{tenant}: labels name articles not in the knowledge base: {unknown}")


def collect(matcher: Matcher, split: str) -> Rows:
    tenants: list[str] = []
    labels: list[LabelledQuestion] = []
    chosen: list[str | None] = []
    features: list[NDArray[np.float64]] = []
    for tenant in TENANTS:
        kb = load_kb(tenant)
        questions = parse_labelled((DATA / f"{split}_{tenant}.jsonl").read_bytes())
        check_no_copies(kb, questions, tenant)
        index = matcher.build(kb, 1, matcher.new_cache())
        for q in questions:
            position, values = matcher.features(index, q.question)
            tenants.append(tenant)
            labels.append(q)
            chosen.append(None if position is None else index.articles[position].article_id)
            features.append(values)
    y = np.array([int(c is not None and c == q.article) for c, q in zip(chosen, labels, strict=True)])
    return Rows(tenants, labels, chosen, np.vstack(features), y)


def predict(model: Calibration, x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([model.confidence(row) for row in x])


def fitted_on(rows: Rows, subset: NDArray[np.int64] | None = None) -> Calibration:
    idx = np.arange(len(rows.y)) if subset is None else subset
    return fit_logistic(rows.x[idx], rows.y[idx], FEATURES, L2)


def table(
    rows: Rows, confidence: NDArray[np.float64], subset: NDArray[np.int64] | None = None
) -> list[dict[str, float]]:
    idx = np.arange(len(rows.y)) if subset is None else subset
    labels = [rows.labels[i] for i in idx]
    predictions = [Prediction(rows.chosen[i], float(confidence[i])) for i in idx]
    return [s.as_dict() for s in sweep(labels, predictions, SWEEP)]


def reliability(rows: Rows, confidence: NDArray[np.float64]) -> list[dict[str, float]]:
    bins = []
    for low, high in ((0.0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)):
        inside = (confidence >= low) & (confidence < high)
        if inside.any():
            bins.append(
                {
                    "bin": f"[{low:.1f}, {min(high, 1.0):.1f})",
                    "n": int(inside.sum()),
                    "mean_confidence": round(float(confidence[inside].mean()), 3),
                    "share_correct": round(float(rows.y[inside].mean()), 3),
                }
            )
    return bins


def markdown(sweep_rows: list[dict[str, float]]) -> str:
    lines = [
        "| threshold | answered correct | answered wrong | handed off | resolution rate | wrong-answer rate |",
        "|---|---|---|---|---|---|",
    ]
    for s in sweep_rows:
        lines.append(
            f"| {s['threshold']:.2f} | {s['answered_correct']} | {s['answered_wrong']} | {s['handed_off']} "
            f"| {s['resolution_rate']:.1%} | {s['wrong_answer_rate']:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="report only; do not write src/kefu/bot/fitted.py")
    parser.add_argument("--report", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    started = time.perf_counter()
    matcher = Matcher(UniversalSentenceEncoder(), Analyzer(), None)
    train, held = collect(matcher, "train"), collect(matcher, "eval")
    train_tenants, held_tenants = np.array(train.tenant), np.array(held.tenant)
    covered = np.array([q.article is not None for q in held.labels])
    elapsed = time.perf_counter() - started
    print(
        f"training: {len(train.y)} questions; evaluation: {len(held.y)} questions ({int((~covered).sum())} not"
        f" covered); features in {elapsed:.1f}s"
    )
    top1 = {t: round(float(held.y[(held_tenants == t) & covered].mean()), 3) for t in TENANTS} | {
        "all": round(float(held.y[covered].mean()), 3)
    }
    print("top-1 article right (covered evaluation questions):", top1)

    strict = predict(fitted_on(train), held.x)
    both = Rows(
        train.tenant + held.tenant,
        train.labels + held.labels,
        train.chosen + held.chosen,
        np.vstack([train.x, held.x]),
        np.concatenate([train.y, held.y]),
    )
    offset, rng, repeats = len(train.y), np.random.default_rng(20261125), []
    for _ in range(5):
        order, scored = rng.permutation(len(held.y)), np.full(len(held.y), np.nan)
        for fold in (order[i::10] for i in range(10)):
            model = fitted_on(both, np.setdiff1d(np.arange(len(both.y)), fold + offset))
            scored[fold] = predict(model, held.x[fold])
        repeats.append(scored)
    headline = np.mean(repeats, axis=0)
    final = fitted_on(both)
    unseen = np.full(len(held.y), np.nan)
    for t in TENANTS:  # a tenant the model never saw: fitted on the other two tenants' training rows
        model = fitted_on(train, np.flatnonzero(train_tenants != t))
        unseen[held_tenants == t] = predict(model, held.x[held_tenants == t])
    by_tenant = [np.flatnonzero(held_tenants == t) for t in TENANTS]
    report = {
        "training_questions": len(train.y),
        "questions": len(held.y),
        "not_covered": int((~covered).sum()),
        "top1_covered": top1,
        "cross_validated": table(held, headline),
        "cross_validated_by_tenant": {t: table(held, headline, by_tenant[i]) for i, t in enumerate(TENANTS)},
        "strictly_held_out": table(held, strict),
        "unseen_tenant": table(held, unseen),
        "in_sample_not_for_reporting": table(held, predict(final, held.x)),
        "reliability_cross_validated": reliability(held, headline),
    }
    print("\ncross-validated (headline):\n" + markdown(report["cross_validated"]))
    for t in TENANTS:
        at = next(s for s in report["cross_validated_by_tenant"][t] if s["threshold"] == 0.7)
        print(f"  {t} at 0.7: resolution {at['resolution_rate']:.1%}, wrong {at['wrong_answer_rate']:.1%}")
    print("\nstrictly held out (fitted on train_* only):\n" + markdown(report["strictly_held_out"]))
    print("\nunseen tenant (fitted on the other two tenants' training sets):\n" + markdown(report["unseen_tenant"]))
    print("\nin-sample (optimistic, not for reporting):\n" + markdown(report["in_sample_not_for_reporting"]))
    print("\nreliability (cross-validated):")
    for b in report["reliability_cross_validated"]:
        print(f"  {b['bin']}: n={b['n']} mean confidence {b['mean_confidence']} share correct {b['share_correct']}")
    print("\nweights:", {f: round(float(w), 3) for f, w in zip(FEATURES, final.weights, strict=True)})

    if args.report:
        args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not args.dry_run:
        at = next(s for s in report["cross_validated"] if s["threshold"] == 0.7)
        meta = {
            "fitted": dt.date.today().isoformat(),
            "encoder": matcher.encoder.name,
            "rows": len(both.y),
            "l2": L2,
            "cross_validated_at_0.7": {k: at[k] for k in ("resolution_rate", "wrong_answer_rate")},
        }
        model = Calibration(final.features, final.mean, final.scale, final.weights, final.bias, meta)
        model.write_module()
        print(f"\nwrote {FITTED_MODULE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
