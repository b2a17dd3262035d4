"""The fast paths of corpus/text.py give exactly the tokens of the reference regexes: `word_tokens_utf8`
(MinHash shingles) is `word_tokens` encoded, `classifier_line` is `classifier_tokens` joined (what fastText
reads), on hand-written texts that take each path and on real pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.text import classifier_line, classifier_tokens, word_tokens, word_tokens_utf8
from tests.test_corpus_dedup import EDGE_TEXTS, real_texts

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples"

# Characters where bytes and str regexes could part: str `\s` holds \x1c-\x1f, `_` is a word character but
# not a letter, `\v` is whitespace for both, a backslash starts a LaTeX command; non-ASCII symbols next to
# words (one token each), non-ASCII spaces (thin, ideographic: separators), `²` (a digit: the str path).
MORE_EDGES = ["a\x1cb\x1dc\x1ed\x1fe", "x_1 = \\frac{1}{2}\\cdot y\vz", "Ends with a command \\alpha", "\\\\ \\ 12ab34",
               "a\u00d7b\u2264c\u2009d\u3000e\u2026 \u201cf\u201d", "x\u00b2 + y\u00b2 \u2260 z\u00b3"]


@pytest.mark.parametrize("text", EDGE_TEXTS + MORE_EDGES)
def test_word_tokens_utf8_are_the_words_encoded(text):
    assert word_tokens_utf8(text) == [w.encode() for w in word_tokens(text)]


def test_word_tokens_by_the_rule():
    assert word_tokens("It\u2019s x_1\u00a0CAF\u00c9 \u6570\u5b66!") == ["it", "s", "x_1", "caf\u00e9", "\u6570", "\u5b66"]
    assert word_tokens_utf8("It\u2019s x_1\u00a0CAF\u00c9") == [b"it", b"s", b"x_1", "caf\u00e9".encode()]


@pytest.mark.parametrize("max_tokens", [None, 3, 1000])
@pytest.mark.parametrize("text", EDGE_TEXTS + MORE_EDGES)
def test_classifier_line_is_the_tokens_joined(text, max_tokens):
    assert classifier_line(text, max_tokens) == " ".join(classifier_tokens(text, max_tokens))


def test_classifier_tokens_by_the_rule():
    # \x1c-\x1f separate (str whitespace); `_` is a word character, so neither a letter, a digit nor a symbol
    # token: it is dropped (the reference regex's rule, kept: scores must not change); `\\` is two symbols.
    assert classifier_line("A\x1cb x_1\\\\") == "a b x 1 \\ \\"
    assert classifier_line("Let $\\frac{1}{2}$", max_tokens=4) == "let $ \\frac {"
    assert classifier_line("A\u00d7B\u2009\u2264 C\u00a0D") == "a \u00d7 b \u2264 c d"  # symbols alone, spaces gone


def test_long_ascii_text_cut_at_max_tokens():
    text = "word " * 30_000 + "\\tail"
    assert classifier_line(text, 1000) == " ".join(["word"] * 1000)
    assert classifier_line(text).endswith("word \\tail")


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (shared real-data samples)")
def test_fast_paths_on_real_pages():
    for text in real_texts():
        assert word_tokens_utf8(text) == [w.encode() for w in word_tokens(text)]
        assert classifier_line(text, 1000) == " ".join(classifier_tokens(text, 1000))
