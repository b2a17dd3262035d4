"""corpus/text.py: the classifier's tokens, including the prefix shortcut for long pages."""

from __future__ import annotations

import pytest

from corpus.text import classifier_tokens


def test_classifier_tokens_by_hand():
    assert classifier_tokens("Let \\frac{1}{2}=X^2.") == ["let", "\\frac", "{", "1", "}", "{", "2", "}", "=", "x", "^",
                                                          "2", "."]
    assert classifier_tokens("Let \\frac{1}{2}=X^2.", max_tokens=3) == ["let", "\\frac", "{"]


@pytest.mark.parametrize("text", [
    "word " * 40_000,  # the prefix holds max_tokens: the rest is never tokenized
    "ΟΔΟΣ " * 5_000 + "ΟΔΟΣ" + "." * 30_000 + "b",  # final sigma: lower-casing looks past '.' to 'b'
    "ab" * 30_000 + " Σ x",  # no space in the first 16*max_tokens characters
    "İ" * 20_000 + " Σ",  # lower() turns each İ into two characters
    "x " * 999 + "y" * 50_000 + " z",  # the prefix has too few tokens: a longer one is tried
])
@pytest.mark.parametrize("max_tokens", [1, 1000])
def test_classifier_tokens_are_the_first_tokens_of_the_whole_text(text, max_tokens):
    whole = classifier_tokens(text)  # no max_tokens: the whole text, lower-cased then tokenized
    assert classifier_tokens(text, max_tokens) == whole[:max_tokens]
