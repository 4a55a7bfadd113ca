"""Grouping visitors' questions by meaning (protocol §11): one deterministic pass over their sentence vectors.

Pure: vectors in, groups out. How the threshold was chosen is in docs/bot.md ("Learning from agents").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

# Cosine between a wording and a group's centroid at or above which they are one question (docs/bot.md).
SAME_QUESTION = 0.78
# Rows whose similarities to every earlier row are computed in one matrix product: a few MB at a time.
_BLOCK = 256


def group_by_meaning(
    vectors: NDArray[np.float32], weights: Sequence[int], threshold: float = SAME_QUESTION
) -> list[list[int]]:
    """Row indices of `vectors` (L2-normalised) in groups, each group's rows in the order they were given.

    Rows are taken in order; each joins the group whose centroid (the weighted sum of its members' vectors) is
    the most similar to it when that cosine reaches `threshold`, and starts a group of its own otherwise.
    Give the most frequent wordings first: they seed the groups the rarer ones then join. Ties go to the group
    made first, so the same input always gives the same groups.

    The cosine with a centroid is a weighted sum of the row's dot products with the group's members, so one
    matrix product per block of rows replaces a product per row and group (2,000 rows: under a second).
    """
    rows = len(vectors)
    if rows != len(weights):
        raise ValueError(f"{rows} vectors but {len(weights)} weights")
    weight = np.asarray(weights, dtype=np.float64)
    label = np.zeros(rows, dtype=np.int64)
    norm2 = np.zeros(rows, dtype=np.float64)  # each group's squared centroid length, kept as members join
    groups: list[list[int]] = []
    for start in range(0, rows, _BLOCK):
        stop = min(start + _BLOCK, rows)
        dots = (vectors[start:stop] @ vectors[:stop].T).astype(np.float64)
        for row in range(start, stop):
            w = weight[row]
            if groups:
                towards = np.bincount(
                    label[:row], weights=weight[:row] * dots[row - start, :row], minlength=len(groups)
                )
                similarity = towards / np.sqrt(np.maximum(norm2[: len(groups)], 1e-24))
                best = int(np.argmax(similarity))
                if similarity[best] >= threshold:
                    label[row] = best
                    groups[best].append(row)
                    norm2[best] += 2 * w * towards[best] + w * w  # |c + w v|² with |v| = 1
                    continue
            label[row] = len(groups)
            norm2[len(groups)] = w * w
            groups.append([row])
    return groups
