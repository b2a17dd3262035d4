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

_CLASSIFIER_TOKEN = re.compile(r"\\[A-Za-z]+|[^\W\d_]+|\d+|[^\w\s]")
# A CJK ideograph is a word of its own (Chinese has no spaces: CMATH, Chinese web pages).
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def count_tokens(text: str) -> int:
    return len(text.split())


def classifier_tokens(text: str, max_tokens: int | None = None) -> list[str]:
    return _prefix_tokens(text, _CLASSIFIER_TOKEN, max_tokens)


def _prefix_tokens(text, pattern: re.Pattern, max_tokens: int | None):
    """`pattern`'s tokens of the lower-cased `text` (str, or ASCII bytes with a bytes pattern), the first
    `max_tokens` of them if set."""
    if max_tokens:
        # Tokenize a prefix cut just after a space or newline: no token spans it, and lower-casing stops
        # there (Final_Sigma looks past case-ignorable characters only), so its tokens begin the text's.
        # Long pages then cost ~1/3 less (measured on real pages; the classifier reads max_tokens).
        space, newline = (" ", "\n") if isinstance(text, str) else (b" ", b"\n")
        limit = 16 * max_tokens
        while limit < len(text):
            cut = max(text.rfind(space, 0, limit), text.rfind(newline, 0, limit))
            if cut <= 0:
                break
            tokens = pattern.findall(text[: cut + 1].lower())
            if len(tokens) >= max_tokens:
                return tokens[:max_tokens]
            limit *= 4
    tokens = pattern.findall(text.lower())
    return tokens[:max_tokens] if max_tokens else tokens


# `classifier_line` tokenizes ASCII text as bytes (bytes regexes run ~2-4x faster than str ones), with the
# tokens of `_CLASSIFIER_TOKEN`: on ASCII, str `[^\W\d_]` is [A-Za-z] and `\d` [0-9], as on bytes; str `\s`
# also holds \x1c-\x1f, bytes `\s` does not. (Non-ASCII text could take bytes too where it has no non-ASCII
# word or space character, but finding that out cost as much as it saved.) tests/test_corpus_text_fast_paths.py
_CLASSIFIER_TOKEN_ASCII = re.compile(rb"\\[A-Za-z]+|[A-Za-z]+|[0-9]+|[^\w\s\x1c-\x1f]")


def classifier_line(text: str, max_tokens: int | None = None) -> str:
    """One line of fastText input (no newlines: fastText reads one example per line)."""
    if text.isascii():
        return b" ".join(_prefix_tokens(text.encode("ascii"), _CLASSIFIER_TOKEN_ASCII, max_tokens)).decode("ascii")
    return " ".join(classifier_tokens(text, max_tokens))


def word_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


# `word_tokens` as UTF-8 bytes (MinHash shingles hash bytes). Bytes regexes run ~4x faster than str ones, and
# on bytes `\w` is ASCII [A-Za-z0-9_]: the same words wherever the lower-cased text has no non-ASCII word
# character (its other non-ASCII characters, quotes, dashes, no-break spaces, encode to bytes >= 0x80 that
# `\w` does not match, so they separate words as in `word_tokens`). Other texts take `word_tokens`.
_WORD_ASCII = re.compile(rb"\w+")
_NON_ASCII_WORD_CHAR = re.compile(r"[^\W\x00-\x7f]")


def word_tokens_utf8(text: str) -> list[bytes]:
    """`[w.encode() for w in word_tokens(text)]`, faster."""
    low = text.lower()
    if low.isascii():
        return _WORD_ASCII.findall(low.encode("ascii"))
    if _NON_ASCII_WORD_CHAR.search(low) is None:
        try:
            return _WORD_ASCII.findall(low.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates: not words, but not encodable either
            pass
    return [w.encode() for w in _WORD.findall(low)]


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
