"""Measure how `GET /kb/gaps` groups questions by meaning, and choose the grouping threshold.

    .venv/bin/python scripts/measure_gap_grouping.py

Customer questions labelled with the article that answers them stand in for a tenant's gaps: two questions
answered by the same article ask the same thing, two answered by different articles do not. Each tenant's
covered questions are grouped with `kefu.domain.question_groups.group_by_meaning` over the bot's sentence
vectors, in a fixed shuffled order, at a sweep of thresholds, and scored by pairs:
- precision: of the pairs put in one group, the share that ask the same thing (a low one merges distinct gaps,
  and an admin adds a wording to the wrong article);
- recall: of the pairs that ask the same thing, the share put in one group (a low one splits a gap over groups,
  each still right but smaller).
Chosen on the development tenants only (shop, bank, saas, with their training questions too; README of
tests/data/tenants); checked on education, hotel, telecom. Held-out and reserve tenants are not read.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from kefu.bot.encoders import UniversalSentenceEncoder
from kefu.bot.text import normalise
from kefu.domain.question_groups import group_by_meaning

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
CHOOSE = {
    name: [DATA / f"eval_{name}.jsonl", DATA / f"train_{name}.jsonl"] for name in ("shop", "bank", "saas")
}
CHECK = {name: [DATA / "tenants" / name / "eval.jsonl"] for name in ("education", "hotel", "telecom")}
THRESHOLDS = (0.6, 0.65, 0.7, 0.72, 0.75, 0.78, 0.8, 0.85, 0.9)


def labelled(files: list[Path]) -> list[tuple[str, str]]:
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    questions = [(r["question"], r["article"]) for r in rows if r["article"] is not None]
    random.Random(20261208).shuffle(questions)
    return questions


def pair_scores(groups: list[list[int]], labels: list[str]) -> tuple[int, int, int]:
    """(pairs grouped together, of those asking the same thing, pairs asking the same thing)."""
    together = same_together = 0
    for group in groups:
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                together += 1
                same_together += labels[a] == labels[b]
    same = sum(labels[a] == labels[b] for a in range(len(labels)) for b in range(a + 1, len(labels)))
    return together, same_together, same


def report(title: str, tenants: dict[str, list[Path]], encoder: UniversalSentenceEncoder) -> None:
    data = {}
    for name, files in tenants.items():
        questions = labelled(files)
        vectors = encoder.encode([normalise(q)[:500] for q, _ in questions])
        data[name] = (vectors, [a for _, a in questions])
    print(f"\n{title}: {', '.join(f'{n} {len(d[1])} questions' for n, d in data.items())}")
    print("threshold  pairs grouped  precision  recall  groups/articles")
    for threshold in THRESHOLDS:
        together = same_together = same = 0
        groups_made = articles = 0
        for vectors, labels in data.values():
            groups = group_by_meaning(vectors, [1] * len(labels), threshold)
            t, st, s = pair_scores(groups, labels)
            together, same_together, same = together + t, same_together + st, same + s
            groups_made, articles = groups_made + len(groups), articles + len(set(labels))
        precision = same_together / together if together else 1.0
        recall = same_together / same
        print(f"{threshold:9.2f}  {together:13d}  {precision:9.3f}  {recall:6.3f}  {groups_made}/{articles}")


def main() -> None:
    encoder = UniversalSentenceEncoder()
    report("choose on", CHOOSE, encoder)
    report("check on", CHECK, encoder)


if __name__ == "__main__":
    main()
