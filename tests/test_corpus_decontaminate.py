"""Benchmark decontamination (corpus/decontaminate.py: NgramMatcher), the one implementation the corpus
and SFT stages share: 10-gram overlap, exact match of 3-9-word benchmark texts (paper §2.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus.decontaminate import DecontaminationFilter, NgramMatcher, clean_benchmark_text
from corpus.document import Document

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (shared real-data samples)")

QUESTION = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
            "for her friends every day with four.")


def test_a_shared_10_gram_is_contamination_and_9_is_not():
    m = NgramMatcher.from_texts([("gsm8k", QUESTION)])
    words = QUESTION.split()
    ten = " ".join(words[3:13])
    nine = " ".join(words[3:12])
    page = f"Some forum post. {ten} Any ideas?"
    match = m.find(page)
    assert match is not None and match.kind == "ngram" and match.benchmark == "gsm8k"
    assert len(match.words.split()) == 10
    assert m.find(f"Some forum post. {nine} Any ideas?") is None


def test_case_punctuation_and_latex_spacing_do_not_hide_a_copy():
    m = NgramMatcher.from_texts([("math", "Compute $\\frac{3}{4} + \\frac{1}{8}$ and express the answer as a common fraction.")])
    assert m.is_contaminated("COMPUTE \\frac { 3 } { 4 } + \\frac{1}{8}, AND EXPRESS the answer as a common fraction!")


def test_short_benchmark_texts_match_exactly_and_tiny_ones_are_ignored():
    m = NgramMatcher.from_texts([("math", "Evaluate $\\dbinom{8}{4}$."), ("math", "Find x."),
                                 ("gsm8k", "#### 18")], n=10, min_exact=3)
    assert m.summary()["short_texts"] == 1 and m.summary()["ignored_short"] == 2
    hit = m.find("Homework: evaluate \\dbinom{8}{4} by hand.")
    assert hit is not None and hit.kind == "exact" and hit.words == "evaluate dbinom 8 4"
    assert m.find("We evaluate the binomial 8 choose 4 here.") is None
    assert m.find("18 is the answer") is None  # a 1-word text is never matched


def test_gsm8k_calculator_annotations_are_stripped():
    solution = "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market selling the eggs."
    assert "<<" not in clean_benchmark_text(solution)
    m = NgramMatcher.from_texts([("gsm8k", solution)])
    assert m.is_contaminated("Answer: she makes 9 * 2 = $18 every day at the farmer's market selling the eggs.")


def test_cjk_text_is_matched_character_by_character():
    m = NgramMatcher.from_texts([("cmath", "小明有5个苹果，吃了2个，还剩几个苹果？")])
    assert m.is_contaminated("今天的作业：小明有5个苹果，吃了2个，还剩几个苹果？请回答。")
    assert not m.is_contaminated("小红有7个梨，吃了3个。")


def test_invalid_settings():
    with pytest.raises(ValueError):
        NgramMatcher(n=5, min_exact=6)


def test_filter_reports_what_and_why():
    m = NgramMatcher.from_texts([("gsm8k", QUESTION)])
    f = DecontaminationFilter(m)
    doc = Document(text="Copied: " + QUESTION, id="s0000-0000001", url="https://x.org/q")
    assert f(doc) == "contaminated_ngram"
    assert doc.metadata["drop_detail"]["benchmark"] == "gsm8k"
    assert f(Document(text="An unrelated page about gardening.", id="s0000-0000002")) is None


@pytest.mark.shared
@needs_shared
def test_real_gsm8k_test_set_catches_quotes_and_spares_real_math_pages():
    """All 1319 real GSM8K test questions + solutions; a page quoting one is caught, and real math Q&A
    pages (StackMathQA) that do not quote GSM8K are (nearly) never flagged."""
    recs = [json.loads(x) for x in (SHARED / "decont/gsm8k_test_megamath.jsonl").read_text().splitlines()]
    m = NgramMatcher.from_texts([("gsm8k", r[f]) for r in recs for f in ("question", "cot")])
    assert m.summary()["texts"] == 2 * len(recs) == 2638
    quoted = f"Homework help! My teacher gave us this: {recs[100]['question']} I don't get it."
    assert m.find(quoted).benchmark == "gsm8k"
    solution = f"Here is how I solved it. {clean_benchmark_text(recs[7]['cot'])}"
    assert m.is_contaminated(solution)
    posts = [json.loads(x) for x in (SHARED / "text/math_stackmathqa100k_files32-127.jsonl").read_text().splitlines()]
    flagged = sum(m.is_contaminated(p["Q"] + "\n" + p["A"]) for p in posts)
    assert flagged / len(posts) < 0.01, flagged
