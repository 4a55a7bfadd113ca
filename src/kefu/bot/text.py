"""Text normalisation and tokens for matching: jieba words and character pairs, Chinese and English alike."""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections.abc import Iterable

import jieba  # type: ignore[import-untyped]
import zhconv  # type: ignore[import-untyped]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[a-z0-9][a-z0-9'+.-]*[a-z0-9+]|[a-z0-9]")
_SPACES = re.compile(r"\s+")

# Function words and question scaffolding: they say nothing about *which* article a question wants, so
# they are left out of coverage (character pairs still carry them into BM25, where idf weighs them down).
STOP_WORDS = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 嘛 么 哦 噢 哈 啦 呗 哇 嗯 诶 欸 喔 滴 地 得 着 过 之 其 而 及 与 和 跟 或 并 就 都 也 还 又
    再 才 很 太 最 更 挺 蛮 好 能 会 要 想 可 可以 能够 应该 需要 需 得 是 不是 有 没 没有 不 别 在 到 从 给 把 被 让 对
    向 往 用 为 为了 因为 所以 如果 但是 但 然后 我 你 您 他 她 它 我们 你们 他们 咱们 咱 自己 这 那 这个 那个 这些 那些
    这样 那样 怎么 怎样 怎么样 怎么办 如何 什么 啥 咋 为什么 为啥 哪 哪里 哪儿 哪个 哪些 多少 几 多久 吗 请问 请 问
    一下 下 一个 个 一 亲 谢谢 麻烦 你好 您好 在吗 就是 那么 这么 现在 已经 一直 还是 是不是 能不能 可不可以 行不行
    可否 是否 么 呐 急 急急急 啊啊啊 嗨
    a an the i me my mine you your yours we our us he she it its they them their this that these those is am are
    was were be been being do does did doing done can could will would should shall may might must have has had
    having to of for in on at by with from about as into onto than then so and or but if not no yes please
    hi hello hey how what when where why which who whom whose there here any some all just also too very get got
    want need know tell let like one thanks thank
    """.split()  # noqa: SIM905 (a list literal of 200 words would be unreadable)
)


def normalise(text: str) -> str:
    """Width, case and script folded: full-width to half-width, traditional to simplified, lower case."""
    folded = unicodedata.normalize("NFKC", text)
    if _CJK.search(folded):
        folded = str(zhconv.convert(folded, "zh-cn"))
    return _SPACES.sub(" ", folded.lower()).strip()


def _stem(word: str) -> str:
    # Enough English folding for FAQ questions (returns/returned/returning, fees/fee); not a real stemmer.
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


def latin_words(text: str) -> list[str]:
    """English words and numbers of a normalised text, stemmed."""
    return [_stem(w) for w in _LATIN_WORD.findall(text)]


def char_pairs(text: str) -> list[str]:
    """Overlapping character pairs of each Chinese run (a lone character stands for itself) and English words."""
    pairs: list[str] = []
    for run in _CJK_RUN.findall(text):
        pairs.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
    pairs.extend(latin_words(text))
    return pairs


def latin_share(text: str) -> float:
    """The share of a normalised text's letters that are Latin (1.0 for an English question)."""
    latin = sum(1 for ch in text if "a" <= ch <= "z")
    cjk = len(_CJK.findall(text))
    return latin / (latin + cjk) if latin + cjk else 0.0


class Analyzer:
    """jieba segmentation with its own dictionary instance (loaded once, about a second, on first use)."""

    def __init__(self) -> None:
        jieba.setLogLevel(logging.WARNING)
        self._tokenizer = jieba.Tokenizer()
        self._lock = threading.Lock()
        self._ready = False

    def warm_up(self) -> None:
        with self._lock:
            if not self._ready:
                self._tokenizer.initialize()
                self._ready = True

    def words(self, normalised: str) -> list[str]:
        """Content words of a normalised text: jieba words (Chinese), stemmed English words, no stop words."""
        self.warm_up()
        found: list[str] = []
        for token in self._tokenizer.lcut(normalised):
            token = token.strip()
            if not token:
                continue
            if _CJK.search(token):
                if token not in STOP_WORDS:
                    found.append(token)
            else:
                found.extend(w for w in latin_words(token) if w not in STOP_WORDS)
        return found


def idf(document_frequency: int, documents: int) -> float:
    """Smoothed inverse document frequency (always > 0)."""
    return math.log(1.0 + (documents + 1.0) / (document_frequency + 0.5))


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
