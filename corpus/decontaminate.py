"""Benchmark decontamination (paper §2.1): drop any text that shares a 10-gram with a benchmark
text; benchmark texts shorter than 10 words but of at least 3 are matched exactly.

`NgramMatcher` is the one implementation: the corpus stage filters web pages with it and the SFT
stage reuses it on its training data. Words are lower-cased alphanumeric runs (`corpus.text.
word_tokens`), so punctuation, LaTeX backslashes and spacing do not hide a copy: `\\frac{3}{4}` and
`frac 3 4` are the same words. GSM8K's `<<48/2=24>>` calculator annotations are stripped from
benchmark texts (a page quoting a solution does not carry them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from corpus.document import Document
from corpus.filters import Filter
from corpus.text import word_tokens

_CALCULATOR = re.compile(r"<<[^<>]*>>")


@dataclass(frozen=True)
class Match:
    """Why a text is contaminated: `kind` is `ngram` (shares an n-gram) or `exact` (contains a short
    benchmark text); `benchmark` names the source, `words` the matched words."""

    kind: str
    benchmark: str
    words: str


def clean_benchmark_text(text: str) -> str:
    return _CALCULATOR.sub(" ", text)


class NgramMatcher:
    """Index of benchmark n-grams; `find(text)` returns the first `Match` or None.

    Texts of at least `n` words contribute all their n-grams; texts of `min_exact`..`n-1` words are
    indexed whole and matched as an exact word sequence; shorter texts are ignored (counted in
    `ignored_short`), as in the paper.
    """

    def __init__(self, n: int = 10, min_exact: int = 3):
        if not 1 <= min_exact <= n:
            raise ValueError(f"NgramMatcher: need 1 <= min_exact ({min_exact}) <= n ({n})")
        self.n = n
        self.min_exact = min_exact
        self.ngrams: dict[tuple[str, ...], str] = {}
        self.short: dict[int, dict[tuple[str, ...], str]] = {}
        self.texts = 0
        self.ignored_short = 0

    @classmethod
    def from_texts(cls, texts: Iterable[tuple[str, str]], n: int = 10, min_exact: int = 3) -> NgramMatcher:
        """Build from (benchmark name, text) pairs."""
        matcher = cls(n, min_exact)
        for name, text in texts:
            matcher.add(text, name)
        return matcher

    def add(self, text: str, benchmark: str) -> None:
        words = word_tokens(clean_benchmark_text(text))
        self.texts += 1
        if len(words) >= self.n:
            for i in range(len(words) - self.n + 1):
                self.ngrams.setdefault(tuple(words[i : i + self.n]), benchmark)
        elif len(words) >= self.min_exact:
            self.short.setdefault(len(words), {}).setdefault(tuple(words), benchmark)
        else:
            self.ignored_short += 1

    def find(self, text: str) -> Match | None:
        words = word_tokens(text)
        n = self.n
        if self.ngrams:
            for i in range(len(words) - n + 1):
                gram = tuple(words[i : i + n])
                if gram in self.ngrams:
                    return Match("ngram", self.ngrams[gram], " ".join(gram))
        for length, index in self.short.items():
            for i in range(len(words) - length + 1):
                gram = tuple(words[i : i + length])
                if gram in index:
                    return Match("exact", index[gram], " ".join(gram))
        return None

    def is_contaminated(self, text: str) -> bool:
        return self.find(text) is not None

    def summary(self) -> dict:
        return {"n": self.n, "min_exact": self.min_exact, "texts": self.texts, "ngrams": len(self.ngrams),
                "short_texts": sum(len(v) for v in self.short.values()), "ignored_short": self.ignored_short}


class DecontaminationFilter(Filter):
    """Drops pages the matcher finds (reason `contaminated_ngram` / `contaminated_exact`); the match
    goes to `doc.metadata["drop_detail"]` for the removal report."""

    name = "contaminated"

    def __init__(self, matcher: NgramMatcher):
        self.matcher = matcher

    def __call__(self, doc: Document) -> str | None:
        match = self.matcher.find(doc.text)
        if match is None:
            return None
        doc.metadata["drop_detail"] = {"kind": match.kind, "benchmark": match.benchmark, "words": match.words}
        return f"contaminated_{match.kind}"
