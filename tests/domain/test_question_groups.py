"""Grouping questions by meaning (GET /kb/gaps): vectors in, groups out. No I/O."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from kefu.domain.question_groups import SAME_QUESTION, group_by_meaning


def unit(*rows: list[float]) -> NDArray[np.float32]:
    vectors = np.asarray(rows, dtype=np.float32)
    normalised: NDArray[np.float32] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def naive(vectors: NDArray[np.float32], weights: list[int], threshold: float) -> list[list[int]]:
    """The rule as its docstring says it, one centroid product per row and group."""
    groups: list[list[int]] = []
    centroids: list[NDArray[np.float64]] = []
    for row, vector in enumerate(vectors.astype(np.float64)):
        similarity = [float(c @ vector / np.linalg.norm(c)) for c in centroids]
        best = int(np.argmax(similarity)) if similarity else -1
        if best >= 0 and similarity[best] >= threshold:
            groups[best].append(row)
            centroids[best] = centroids[best] + weights[row] * vector
        else:
            groups.append([row])
            centroids.append(weights[row] * vector)
    return groups


def test_close_rows_group_and_far_ones_stay_apart() -> None:
    vectors = unit([1, 0, 0], [0, 1, 0], [0.95, 0.1, 0], [0.9, 0, 0.2], [0, 0, 1])
    assert group_by_meaning(vectors, [1] * 5) == [[0, 2, 3], [1], [4]]
    assert group_by_meaning(vectors[:0], []) == []


def test_the_threshold_is_inclusive_and_a_lower_one_merges_more() -> None:
    cosine = SAME_QUESTION
    vectors = unit([1, 0], [cosine, float(np.sqrt(1 - cosine**2))])
    assert group_by_meaning(vectors, [1, 1], threshold=cosine - 1e-6) == [[0, 1]]
    assert group_by_meaning(vectors, [1, 1], threshold=cosine + 1e-3) == [[0], [1]]


def test_a_frequent_wording_pulls_its_groups_centroid() -> None:
    """Row 2 is near row 1 and far from row 0: it joins their group only when row 1 weighs more."""
    vectors = unit([1, 0, 0], [0.6, 0.8, 0], [0.2, 0.98, 0])
    heavy_first = group_by_meaning(vectors, [10, 1, 1], threshold=0.55)
    heavy_second = group_by_meaning(vectors, [1, 10, 1], threshold=0.55)
    assert heavy_first == [[0, 1], [2]] and heavy_second == [[0, 1, 2]]


def test_matches_the_rule_on_random_vectors_and_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((40, 64))
    rows = np.concatenate([centres[rng.integers(0, 40, 700)] + 0.5 * rng.standard_normal((700, 64))])
    vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    weights = [int(w) for w in rng.integers(1, 5, 700)]
    groups = group_by_meaning(vectors, weights, threshold=0.6)
    assert 40 <= len(groups) < 700  # the blocks of 256 rows see every earlier row
    assert groups == naive(vectors, weights, 0.6) == group_by_meaning(vectors, weights, threshold=0.6)
    assert sorted(row for group in groups for row in group) == list(range(700))


def test_vectors_and_weights_must_agree() -> None:
    with pytest.raises(ValueError, match="3 vectors but 2 weights"):
        group_by_meaning(unit([1, 0], [0, 1], [1, 1]), [1, 1])
