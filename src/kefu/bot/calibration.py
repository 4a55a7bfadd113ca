"""The fitted confidence: a logistic model turning a match's features into P(the article answers the question).

`fitted.py` beside this module holds the fitted model as JSON text (a module, so it ships in every wheel); it
is written by `scripts/fit_bot.py`. The runtime needs only numpy.
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
class Calibration:
    features: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    weights: FloatArray
    bias: float
    meta: dict[str, Any]

    def confidence(self, values: FloatArray) -> float:
        """P(correct) for one feature vector (in `features` order), in [0, 1]."""
        z = float(((values - self.mean) / self.scale) @ self.weights) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        features = tuple(str(f) for f in data["features"])
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
        if any(a.shape != (len(features),) for a in arrays):
            raise ValueError("calibration: mean, scale and weights must have one value per feature")
        return cls(features, arrays[0], arrays[1], arrays[2], float(data["bias"]), dict(data.get("meta", {})))

    @classmethod
    def shipped(cls) -> Calibration:
        """The model fitted by scripts/fit_bot.py and shipped in the package."""
        from kefu.bot.fitted import CALIBRATION_JSON

        return cls.from_json(json.loads(CALIBRATION_JSON))

    def write_module(self, path: Path = FITTED_MODULE) -> None:
        text = json.dumps(self.to_json(), indent=1)
        path.write_text(
            '"""The bot\'s fitted confidence model, written by scripts/fit_bot.py: do not edit by hand."""\n\n'
            f'CALIBRATION_JSON = r"""\n{text}\n"""\n',
            encoding="utf-8",
        )


def fit_logistic(
    x: FloatArray, y: NDArray[np.int64], names: tuple[str, ...], l2: float = 1.0, meta: dict[str, Any] | None = None
) -> Calibration:
    """L2-regularised logistic regression by Newton's method on standardised features (numpy only)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(z.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return Calibration(names, mean, scale, w[:-1].copy(), float(w[-1]), dict(meta or {}))
