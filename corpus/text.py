"""Text normalisations shared by the corpus steps, each defined once.

- `count_tokens`: whitespace words, the token unit of the stats and the funnel (the paper counts
  BPE tokens; words are tokenizer-independent and close enough for a funnel).
- `classifier_tokens`: what fastText sees (§2.1): lower-cased words, numbers, LaTeX commands and
  single symbols as separate tokens, so `\\frac{1}{2}=x^2` yields `\\frac { 1 } { 2 } = x ^ 2`.
- `word_tokens`: lower-cased alphanumeric words, for MinHash shingles and benchmark n-grams.
"""

from __future__ import annotations

import re

_CLASSIFIER_TOKEN = re.compile(r"\\[A-Za-z]+|[^\W\d_]+|\d+|[^\w\s]")
_WORD = re.compile(r"\w+")


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
