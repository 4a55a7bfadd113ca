"""The encoders' shared pieces: the lock that lets questions pass index builds, and the recent-vectors cache."""

from __future__ import annotations

import threading

import numpy as np

from kefu.bot.encoders import PriorityLock, RecentVectors, Vectors


class Counting:
    """An encode function that returns each text's length as a one-number vector and records what it was given."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> Vectors:
        self.calls.append(texts)
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)


def test_recent_vectors_encode_each_text_once_and_keep_the_order_asked() -> None:
    recent, encode = RecentVectors(size=10), Counting()
    first = recent.encode(["a", "bbb", "a"], "query", 1, encode)
    assert first[:, 0].tolist() == [1.0, 3.0, 1.0]
    assert encode.calls == [["a", "bbb"]]  # a repeated text is encoded once
    again = recent.encode(["cc", "bbb"], "query", 1, encode)
    assert again[:, 0].tolist() == [2.0, 3.0]
    assert encode.calls[-1] == ["cc"]
    recent.encode(["a"], "passage", 1, encode)  # the same text as a passage is another vector
    assert encode.calls[-1] == ["a"]


def test_recent_vectors_forget_the_least_recently_used_first() -> None:
    recent, encode = RecentVectors(size=2), Counting()
    recent.encode(["a", "b"], "query", 1, encode)
    recent.encode(["a"], "query", 1, encode)  # a is now the more recent
    recent.encode(["c"], "query", 1, encode)  # b goes
    encode.calls.clear()
    recent.encode(["a", "b", "c"], "query", 1, encode)
    assert encode.calls == [["b"]]


def test_recent_vectors_of_nothing_is_an_empty_table() -> None:
    encode = Counting()
    assert RecentVectors().encode([], "query", 3, encode).shape == (0, 3)
    assert encode.calls == []


def test_a_waiting_question_goes_before_a_waiting_build() -> None:
    lock, order = PriorityLock(), []
    lock.acquire(urgent=False)
    build_waits, question_waits = threading.Event(), threading.Event()

    def take(urgent: bool, waiting: threading.Event) -> None:
        waiting.set()
        lock.acquire(urgent)
        order.append("question" if urgent else "build")
        lock.release()

    build = threading.Thread(target=take, args=(False, build_waits))
    build.start()
    assert build_waits.wait(5)
    question = threading.Thread(target=take, args=(True, question_waits))
    question.start()
    assert question_waits.wait(5)
    # both wait on the held lock; give the question time to register as waiting before the release
    for _ in range(1000):
        with lock._condition:
            if lock._urgent_waiting:
                break
        threading.Event().wait(0.001)
    lock.release()
    build.join(5)
    question.join(5)
    assert order == ["question", "build"]
