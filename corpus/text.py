"""Text normalisations shared by the corpus steps, each defined once.

- `count_tokens`: whitespace words, the token unit of the stats and the funnel (the paper counts
  BPE tokens; words are tokenizer-independent and close enough for a funnel).
- `classifier_tokens`: what fastText sees (§2.1): lower-cased words, numbers, LaTeX commands and
  single symbols as separate tokens, so `\\frac{1}{2}=x^2` yields `\\frac { 1 } { 2 } = x ^ 2`.
- `word_tokens`: lower-cased alphanumeric words (each CJK ideograph one word), for MinHash shingles
  (`word_tokens_utf8`: the same as UTF-8 bytes, faster).
- `latex_tokens`: what benchmark decontamination compares (§2.1 10-grams): lower-cased words, digit
  runs, LaTeX commands and the structure of a formula (`{`, `}`, `&`, `\\\\`), after spellings that
  typeset the same are made one (`\\dfrac` = `\\frac`, `x^{2}` = `x^2`, `\\left(` = `(`, `\\text{cm}` = `cm`).
  Keeping the structure is what stops an identity matrix or a run of `\\frac{1}{2}` from reading as a
  run of digits that matches any other such run (issue #18).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

_CLASSIFIER_TOKEN = re.compile(r"\\[A-Za-z]+|[^\W\d_]+|\d+|[^\w\s]")
# A CJK ideograph is a word of its own (Chinese has no spaces: CMATH, Chinese web pages).
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def count_tokens(text: str) -> int:
    return len(text.split())


def classifier_tokens(text: str, max_tokens: int | None = None) -> list[str]:
    return _prefix_tokens(text, lambda chunk: _CLASSIFIER_TOKEN.findall(chunk.lower()), max_tokens)


def _prefix_tokens(text: str, tokenize: Callable[[str], list], max_tokens: int | None) -> list:
    """`tokenize(text)` (which lower-cases), the first `max_tokens` tokens if set."""
    if max_tokens:
        # Tokenize a prefix cut just after a space or newline: no token spans it, and lower-casing stops
        # there (Final_Sigma looks past case-ignorable characters only), so its tokens begin the text's.
        # Long pages then cost ~1/3 less (measured on real pages; the classifier reads max_tokens).
        limit = 16 * max_tokens
        while limit < len(text):
            cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit))
            if cut <= 0:
                break
            tokens = tokenize(text[: cut + 1])
            if len(tokens) >= max_tokens:
                return tokens[:max_tokens]
            limit *= 4
    tokens = tokenize(text)
    return tokens[:max_tokens] if max_tokens else tokens


# Fast paths (tests/test_corpus_text_fast_paths.py checks they give the reference tokens). Bytes regexes run
# 2-4x faster than str ones, and on bytes `\w`, `\d`, `[A-Za-z]` are ASCII. A lower-cased text whose non-ASCII
# characters are none of them word characters (`\w` beyond ASCII is `str.isalnum`) has ASCII words, numbers
# and commands only, and each non-ASCII character there is a separator (`word_tokens`) or, unless it is a
# space (replaced by " "), a one-character symbol token (`_CLASSIFIER_TOKEN`'s `[^\w\s]`), i.e. one UTF-8
# sequence: a lead byte and its continuation bytes. Such texts are tokenized as UTF-8 bytes (on the real pages
# of benchmarks/bench_corpus_ingest.py: nearly all; quotes, dashes and no-break spaces are the usual non-ASCII
# characters); others, and texts with a lone surrogate (not UTF-8), by the str regexes. str `\s` also holds
# \x1c-\x1f, bytes `\s` does not.
_CLASSIFIER_TOKEN_UTF8 = re.compile(rb"\\[A-Za-z]+|[A-Za-z]+|[0-9]+|[\xc0-\xff][\x80-\xbf]*|[^\w\s\x1c-\x1f\x80-\xff]")
_WORD_UTF8 = re.compile(rb"\w+")


def _non_ascii_chars(low: str) -> list[str] | None:
    """The distinct non-ASCII characters of `low`; None if it holds a lone surrogate."""
    points = np.frombuffer(low.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    points = np.unique(points[points > 0x7F])
    if ((points >= 0xD800) & (points <= 0xDFFF)).any():
        return None
    return [chr(p) for p in points]


def _classifier_tokens_fast(chunk: str) -> list:
    low = chunk.lower()
    if low.isascii():
        return _CLASSIFIER_TOKEN_UTF8.findall(low.encode("ascii"))
    chars = _non_ascii_chars(low)
    if chars is None or any(c.isalnum() for c in chars):
        return _CLASSIFIER_TOKEN.findall(low)
    for c in chars:
        if c.isspace():
            low = low.replace(c, " ")
    return _CLASSIFIER_TOKEN_UTF8.findall(low.encode())


def classifier_line(text: str, max_tokens: int | None = None) -> str:
    """One line of fastText input (no newlines: fastText reads one example per line):
    `" ".join(classifier_tokens(text, max_tokens))`, faster."""
    tokens = _prefix_tokens(text, _classifier_tokens_fast, max_tokens)
    return b" ".join(tokens).decode() if tokens and isinstance(tokens[0], bytes) else " ".join(tokens)


def word_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_tokens_utf8(text: str) -> list[bytes]:
    """`[w.encode() for w in word_tokens(text)]`, faster (MinHash shingles hash UTF-8 bytes)."""
    low = text.lower()
    if low.isascii():
        return _WORD_UTF8.findall(low.encode("ascii"))
    chars = _non_ascii_chars(low)
    if chars is None or any(c.isalnum() for c in chars):
        return [w.encode() for w in _WORD.findall(low)]
    return _WORD_UTF8.findall(low.encode())


# Spellings that typeset (nearly) the same, rewritten to one before tokenizing (lower-cased text).
_LATEX_SAME = [
    (re.compile(r"\\[dtc]frac(?![a-z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![a-z])"), r"\\binom"),
    (re.compile(r"\\(le|ge|ne)(?![a-z])"), r"\\\1q"),
    (re.compile(r"\\frac\s*(\d)\s*(\d)"), r"\\frac{\1}{\2}"),  # \frac12 = \frac{1}{2}
    # Sizing, spacing and style commands that carry no content.
    (re.compile(r"\\(?:left|right|bigg?[lr]?|displaystyle|textstyle|quad|qquad|limits|nonumber)(?![a-z])"
                r"|(?<!\\)\\[,;:! ]"), " "),
    # Text wrappers: `\text{ cm}` reads as ` cm`.
    (re.compile(r"\\(?:text|textrm|textbf|textit|mathrm|mbox|operatorname)\s*\{([^{}]*)\}"), r" \1 "),
    (re.compile(r"([\^_])\s*\{\s*([a-z0-9])\s*\}"), r"\1\2"),  # x^{2} = x^2
]
_LATEX_TOKEN = re.compile(rf"\\\\|\\[a-z]+|[{{}}&]|[{_CJK}]|\d+|[^\W\d_{_CJK}]+")


def latex_tokens(text: str) -> list[str]:
    text = text.lower()
    for pattern, repl in _LATEX_SAME:
        text = pattern.sub(repl, text)
    return _LATEX_TOKEN.findall(text)
