"""The bot's two fitted models, evaluated with numpy only: a linear ranker and a tree ensemble for confidence.

- `LinearRanker` scores each candidate article from its features; a softmax over the candidates says how
  clearly the chosen one beats the rest.
- `TreeEnsemble` (gradient-boosted trees, fitted by scripts/fit_bot.py with scikit-learn) turns the features of
  the chosen article into P(the article answers the question).
`fitted.py` beside this module holds both as JSON text (a module, so it ships in every wheel).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FITTED_MODULE = Path(__file__).with_name("fitted.py")
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LinearRanker:
    features: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    weights: FloatArray

    def scores(self, rows: FloatArray) -> FloatArray:
        """One score per row (candidate); higher is a better article for the question."""
        result: FloatArray = ((rows - self.mean) / self.scale) @ self.weights
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearRanker:
        features = tuple(str(f) for f in data["features"])
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
        if any(a.shape != (len(features),) for a in arrays):
            raise ValueError("ranker: mean, scale and weights need one value per feature")
        return cls(features, arrays[0], arrays[1], arrays[2])


@dataclass(frozen=True, slots=True)
class Tree:
    """One regression tree as flat arrays; node 0 is the root, a leaf has feature -1."""

    feature: NDArray[np.int64]
    threshold: FloatArray
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    value: FloatArray

    def predict(self, x: FloatArray) -> float:
        node = 0
        while self.feature[node] >= 0:
            node = int(self.left[node] if x[self.feature[node]] <= self.threshold[node] else self.right[node])
        return float(self.value[node])


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    features: tuple[str, ...]
    baseline: float
    trees: tuple[Tree, ...]

    def probability(self, x: FloatArray) -> float:
        """P(correct) for one feature vector (in `features` order)."""
        z = self.baseline + sum(tree.predict(x) for tree in self.trees)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "baseline": self.baseline,
            "trees": [
                {
                    "feature": t.feature.tolist(),
                    "threshold": t.threshold.tolist(),
                    "left": t.left.tolist(),
                    "right": t.right.tolist(),
                    "value": t.value.tolist(),
                }
                for t in self.trees
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeEnsemble:
        features = tuple(str(f) for f in data["features"])
        trees = []
        for raw in data["trees"]:
            tree = Tree(
                np.asarray(raw["feature"], dtype=np.int64),
                np.asarray(raw["threshold"], dtype=np.float64),
                np.asarray(raw["left"], dtype=np.int64),
                np.asarray(raw["right"], dtype=np.int64),
                np.asarray(raw["value"], dtype=np.float64),
            )
            if int(tree.feature.max(initial=-1)) >= len(features):
                raise ValueError("tree ensemble: a split names a feature the model does not have")
            trees.append(tree)
        return cls(features, float(data["baseline"]), tuple(trees))


@dataclass(frozen=True, slots=True)
class BotModel:
    ranker: LinearRanker
    decider: TreeEnsemble
    meta: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"ranker": self.ranker.to_json(), "decider": self.decider.to_json(), "meta": self.meta}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BotModel:
        return cls(
            LinearRanker.from_json(data["ranker"]), TreeEnsemble.from_json(data["decider"]), dict(data.get("meta", {}))
        )

    @classmethod
    def shipped(cls) -> BotModel:
        """The model fitted by scripts/fit_bot.py and shipped in the package."""
        from kefu.bot.fitted import MODEL_JSON

        return cls.from_json(json.loads(MODEL_JSON))

    def write_module(self, path: Path = FITTED_MODULE) -> None:
        text = json.dumps(self.to_json(), separators=(",", ":"))
        path.write_text(
            '"""The bot\'s fitted models, written by scripts/fit_bot.py: do not edit by hand."""\n\n'
            "# ruff: noqa: E501\n\n"
            f'MODEL_JSON = r"""{text}"""\n',
            encoding="utf-8",
        )


def fit_ranker(
    groups: list[tuple[FloatArray, int]], names: tuple[str, ...], l2: float = 1e-2, iterations: int = 400
) -> LinearRanker:
    """A conditional logit (softmax over each question's candidates) fitted by Adam; numpy only.

    `groups`: per question, its candidates' feature rows and the position of the right article among them.
    """
    width = max(len(rows) for rows, _ in groups)
    dim = len(names)
    x = np.zeros((len(groups), width, dim))
    mask = np.zeros((len(groups), width), dtype=bool)
    target = np.zeros(len(groups), dtype=np.int64)
    for i, (rows, right) in enumerate(groups):
        x[i, : len(rows)] = rows
        mask[i, : len(rows)] = True
        target[i] = right
    mean = x[mask].mean(axis=0)
    scale = x[mask].std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    z[~mask] = 0.0
    w = np.zeros(dim)
    m = np.zeros(dim)
    v = np.zeros(dim)
    picked = np.arange(len(groups))
    for step in range(1, iterations + 1):
        s = z @ w
        s[~mask] = -1e9
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        gradient = (np.einsum("gk,gkd->d", p, z) - z[picked, target].sum(axis=0)) / len(groups) + l2 * w
        m = 0.9 * m + 0.1 * gradient
        v = 0.999 * v + 0.001 * gradient * gradient
        w -= 0.05 * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return LinearRanker(names, mean, scale, w)
