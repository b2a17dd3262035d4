"""Text normalisations shared by the corpus steps, each defined once.

- `count_tokens`: whitespace words, the token unit of the stats and the funnel (the paper counts
  BPE tokens; words are tokenizer-independent and close enough for a funnel).
- `classifier_tokens`: what fastText sees (§2.1): lower-cased words, numbers, LaTeX commands and
  single symbols as separate tokens, so `\\frac{1}{2}=x^2` yields `\\frac { 1 } { 2 } = x ^ 2`.
- `word_tokens`: lower-cased alphanumeric words (each CJK ideograph one word), for MinHash shingles
  and benchmark n-grams.
"""

from __future__ import annotations

import re

_CLASSIFIER_TOKEN = re.compile(r"\\[A-Za-z]+|[^\W\d_]+|\d+|[^\w\s]")
# A CJK ideograph is a word of its own (Chinese has no spaces: CMATH, Chinese web pages).
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def count_tokens(text: str) -> int:
    return len(text.split())


def classifier_tokens(text: str, max_tokens: int | None = None) -> list[str]:
    tokens = _CLASSIFIER_TOKEN.findall(text.lower())
    return tokens[:max_tokens] if max_tokens else tokens


def classifier_line(text: str, max_tokens: int | None = None) -> str:
    """One line of fastText input (no newlines: fastText reads one example per line)."""
    return " ".join(classifier_tokens(text, max_tokens))


def word_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())
