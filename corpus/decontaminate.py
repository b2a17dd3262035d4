"""Benchmark decontamination (paper §2.1): drop any text that shares a 10-gram with a benchmark
text; benchmark texts shorter than 10 tokens but of at least 3 are matched exactly.

`NgramMatcher` is the one implementation: the corpus stage filters web pages with it and the SFT
stage reuses it on its training data. GSM8K's `<<48/2=24>>` calculator annotations are stripped from
benchmark texts (a page quoting a solution does not carry them). Two settings (issue #18):

- `tokens="latex"` compares `corpus.text.latex_tokens`: words, digit runs, LaTeX commands and the
  structure of formulas (`{ } & \\\\`), so `\\frac{1}{2}` stays `\\frac { 1 } { 2 }` and an identity
  matrix stays a matrix. `tokens="words"` (lower-cased alphanumeric runs, punctuation and
  backslashes gone) is the rule the world generator and SFT were built with; it stays their default.
- `generic=GenericNgrams()` drops benchmark n-grams that are no evidence of copying before they are
  indexed, as the GPT-3 paper (App. C: n-grams frequent in the training data are ignored) and
  lm-eval's decontamination do: an n-gram with fewer than `min_informative` informative tokens
  (a digit run of 1-2 digits, a single letter, an English stopword, a LaTeX command or brace, a word in
  more than `common_df` of the benchmark texts are not informative), or one found in `max_texts` or
  more distinct benchmark texts (a stock phrase: "let a, b and c be real numbers such that").
  A benchmark text all of whose n-grams are generic is matched whole, so a verbatim copy of it is
  still found.

On the 987 real StackMathQA pages against the real GSM8K + MATH test sets (problems and
solutions), the words rule flags 84 pages (8.5%) and the latex + generic rule 3 or fewer
(tests/test_corpus_real.py measures it); every planted verbatim or reformatted test problem is found.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from corpus.document import Document
from corpus.filters import Filter
from corpus.text import latex_tokens, word_tokens
from pipeline.config import defaults_from_schema, settings_from

_CALCULATOR = re.compile(r"<<[^<>]*>>")
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"words": word_tokens, "latex": latex_tokens}

# English function words (and math prose's own: "let", "such", "find"): never evidence of copying.
STOPWORDS = frozenset("""
a an the and or but if then else of to in on at by for with from as is are was were be been being it its
this that these those there their they them he she his her him we our us you your i me my not no nor so
such than too very can could will would shall should may might must do does did done has have had having
let what which who whom whose when where why how all any each every both few more most other some same
only own just also into over under about above below between through during before after up down out off
again further once here per via s t find given suppose show prove compute determine
""".split())
# Environment names and column specs (`\\begin{array}{cc}`): formula layout, not content.
LATEX_LAYOUT = frozenset("""
array matrix pmatrix bmatrix vmatrix smallmatrix cases align aligned eqnarray equation gather split tabular
hline multline
""".split())
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_COLUMN_SPEC = re.compile(r"[clr]+")


@dataclass(frozen=True)
class Match:
    """Why a text is contaminated: `kind` is `ngram` (shares an n-gram), `exact` (contains a short
    benchmark text) or `whole` (contains a benchmark text whose n-grams are all generic);
    `benchmark` names the source, `words` the matched tokens."""

    kind: str
    benchmark: str
    words: str


@dataclass(frozen=True)
@defaults_from_schema("corpus.decontamination.generic")
class GenericNgrams:
    """When a benchmark n-gram is too generic to count as evidence of copying (see the module doc).

    `common_df` applies once the index holds at least `min_texts_for_df` texts (a document frequency
    over a handful of texts says nothing)."""

    min_informative: int
    min_distinct: int
    common_df: float
    min_texts_for_df: int
    max_texts: int

    @classmethod
    def from_config(cls, section: dict) -> GenericNgrams:
        return settings_from(cls, section)


def clean_benchmark_text(text: str) -> str:
    return _CALCULATOR.sub(" ", text)


class NgramMatcher:
    """Index of benchmark n-grams; `find(text)` returns the first `Match` or None.

    Texts of at least `n` tokens contribute their n-grams (the non-generic ones when `generic` is
    set; a text left with none is matched whole); texts of `min_exact`..`n-1` tokens are indexed whole
    and matched as an exact token sequence; shorter texts are ignored (counted in `ignored_short`), as
    in the paper. Index keys are Python hashes of token tuples (one int instead of n strings).
    """

    def __init__(self, n: int = 10, min_exact: int = 3, tokens: str = "words", generic: GenericNgrams | None = None):
        if not 1 <= min_exact <= n:
            raise ValueError(f"NgramMatcher: need 1 <= min_exact ({min_exact}) <= n ({n})")
        if tokens not in TOKENIZERS:
            raise ValueError(f"NgramMatcher: tokens must be one of {sorted(TOKENIZERS)}, got {tokens!r}")
        self.n, self.min_exact, self.tokens, self.generic = n, min_exact, tokens, generic
        self.tokenize = TOKENIZERS[tokens]
        self.ngrams: dict[int, str] = {}
        # First `min_exact` tokens -> [(length, hash of the whole sequence, benchmark)].
        self.exact: dict[int, list[tuple[int, int, str]]] = {}
        self.texts = self.ignored_short = self.short_texts = self.whole_texts = 0
        self.generic_ngrams = self.stock_ngrams = 0
        self.common_words: frozenset[str] = frozenset()

    @classmethod
    def from_texts(cls, texts: Iterable[tuple[str, str]], n: int = 10, min_exact: int = 3, tokens: str = "words",
                   generic: GenericNgrams | None = None) -> NgramMatcher:
        """Build from (benchmark name, text) pairs."""
        matcher = cls(n, min_exact, tokens, generic)
        matcher.build(texts)
        return matcher

    @classmethod
    def from_config(cls, texts: Iterable[tuple[str, str]], section: dict) -> NgramMatcher:
        """Build with the settings of `corpus.decontamination` (ngram, min_exact, tokens, generic)."""
        gen = section.get("generic", {})
        generic = GenericNgrams.from_config(gen) if gen.get("enabled", True) else None
        return cls.from_texts(texts, section["ngram"], section["min_exact"], section.get("tokens", "latex"), generic)

    def build(self, texts: Iterable[tuple[str, str]]) -> None:
        docs = [(name, self.tokenize(clean_benchmark_text(text))) for name, text in texts]
        self.texts += len(docs)
        if self.generic is None:
            for name, toks in docs:
                if len(toks) >= self.n:
                    for i in range(len(toks) - self.n + 1):
                        self.ngrams.setdefault(hash(tuple(toks[i : i + self.n])), name)
                else:
                    self._add_exact(toks, name, "short")
            return
        self.common_words = self._common_words([toks for _, toks in docs])
        seen_in: Counter = Counter()  # n-gram -> distinct benchmark texts holding it
        kept: list[tuple[str, list[str], set[int]]] = []
        for name, toks in docs:
            grams = set()
            if len(toks) >= self.n:
                informative = [self._informative(t) for t in toks]
                have = sum(informative[: self.n])
                for i in range(len(toks) - self.n + 1):
                    if i:
                        have += informative[i + self.n - 1] - informative[i - 1]
                    gram = tuple(toks[i : i + self.n])
                    if have >= self.generic.min_informative or self._distinct_formula(gram):
                        grams.add(hash(gram))
                    else:
                        self.generic_ngrams += 1
                seen_in.update(grams)
            kept.append((name, toks, grams))
        for name, toks, grams in kept:
            stock = {g for g in grams if seen_in[g] >= self.generic.max_texts}
            self.stock_ngrams += len(stock)
            for g in grams - stock:
                self.ngrams.setdefault(g, name)
            if len(toks) < self.n:
                self._add_exact(toks, name, "short")
            elif grams == stock:
                self._add_exact(toks, name, "whole")

    def _common_words(self, docs: list[list[str]]) -> frozenset[str]:
        if len(docs) < self.generic.min_texts_for_df:
            return frozenset()
        df = Counter(t for toks in docs for t in set(toks))
        cut = self.generic.common_df * len(docs)
        return frozenset(t for t, c in df.items() if c > cut)

    def _informative(self, tok: str) -> bool:
        if tok.isdigit():
            return len(tok) >= 3
        if _CJK.match(tok):
            return True
        return (len(tok) > 1 and tok[0] not in "\\{}&" and tok not in STOPWORDS and tok not in LATEX_LAYOUT
                and not _COLUMN_SPEC.fullmatch(tok) and tok not in self.common_words)

    def _distinct_formula(self, gram: tuple[str, ...]) -> bool:
        """A formula n-gram is evidence when it holds `min_distinct` distinct symbols (numbers, commands,
        at most two one-letter variables; braces, `&`, `\\\\`, environment names and stopwords aside),
        two of them not numbers. An identity matrix, `\\frac{1}{2}` runs, `1 2 3 ... 10` or
        `a^2+b^2+c^2+d^2` have too few."""
        symbols = {t for t in gram if t not in "{}&" and t != "\\\\" and t not in LATEX_LAYOUT
                   and t not in STOPWORDS and t not in ("\\begin", "\\end")}
        letters = sum(len(t) == 1 and t.isalpha() for t in symbols)
        distinct = len(symbols) - letters + min(letters, 2)
        return distinct >= self.generic.min_distinct and sum(not t.isdigit() for t in symbols) >= 2

    def _add_exact(self, toks: list[str], name: str, kind: str) -> None:
        if len(toks) < self.min_exact:
            self.ignored_short += 1
            return
        entries = self.exact.setdefault(hash(tuple(toks[: self.min_exact])), [])
        entry = (len(toks), hash(tuple(toks)), name)
        if entry not in entries:
            entries.append(entry)
        if kind == "short":
            self.short_texts += 1
        else:
            self.whole_texts += 1

    def find(self, text: str) -> Match | None:
        words = self.tokenize(text)
        n, m = self.n, self.min_exact
        if self.ngrams:
            for i in range(len(words) - n + 1):
                gram = tuple(words[i : i + n])
                name = self.ngrams.get(hash(gram))
                if name is not None:
                    return Match("ngram", name, " ".join(gram))
        if self.exact:
            for i in range(len(words) - m + 1):
                for length, full, name in self.exact.get(hash(tuple(words[i : i + m])), ()):
                    seq = tuple(words[i : i + length])
                    if len(seq) == length and hash(seq) == full:
                        return Match("exact" if length < n else "whole", name, " ".join(seq))
        return None

    def is_contaminated(self, text: str) -> bool:
        return self.find(text) is not None

    def summary(self) -> dict:
        return {"n": self.n, "min_exact": self.min_exact, "tokens": self.tokens, "texts": self.texts,
                "ngrams": len(self.ngrams), "short_texts": self.short_texts, "ignored_short": self.ignored_short,
                "whole_texts": self.whole_texts, "generic_ngrams_skipped": self.generic_ngrams,
                "stock_ngrams_skipped": self.stock_ngrams, "common_words": len(self.common_words)}


class DecontaminationFilter(Filter):
    """Drops pages the matcher finds (reason `contaminated_ngram` / `_exact` / `_whole`); the match
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
