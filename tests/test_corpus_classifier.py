"""The fastText math classifier (corpus/classifier.py) on real math and non-math text, its determinism,
and the training-page sampler."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from corpus.classifier import (
    FastTextSettings,
    HealthSettings,
    MathClassifier,
    UnhealthyClassifierError,
    auto_settings,
    roc_auc,
    sample_training_pages,
    train_checked,
    write_training_file,
)
from corpus.document import Document
from corpus.shards import write_docs
from corpus.text import classifier_tokens

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples"
SMALL = FastTextSettings(dim=16, lr=0.5, word_ngrams=2, min_count=1, epoch=20, bucket=20000, thread=1,
                         max_tokens=500, seed=7)


def test_classifier_tokens_split_latex_and_symbols():
    assert classifier_tokens("Let $\\frac{1}{2}=x^2$, OK?") == \
        ["let", "$", "\\frac", "{", "1", "}", "{", "2", "}", "=", "x", "^", "2", "$", ",", "ok", "?"]
    assert len(classifier_tokens("a " * 50, max_tokens=10)) == 10


def test_training_file_is_shuffled_deterministically_and_needs_both_classes(tmp_path):
    a = write_training_file(tmp_path / "a.txt", ["p1", "p2", "p3"], ["n1", "n2"], seed=1)
    write_training_file(tmp_path / "b.txt", ["p1", "p2", "p3"], ["n1", "n2"], seed=1)
    assert a == {"positives": 3, "negatives": 2}
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()
    assert sorted((tmp_path / "a.txt").read_text().split("\n")[:-1])[0] == "__label__math p1"
    with pytest.raises(ValueError, match="0 negatives"):
        write_training_file(tmp_path / "c.txt", ["p"], [], seed=0)


def _real_texts():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} absent (shared real-data samples)")
    math = [json.loads(x) for x in (SHARED / "text/math_stackmathqa100k_files32-127.jsonl").read_text().splitlines()]
    math = [m["Q"] + "\n" + m["A"] for m in math]
    other = []
    for name in ("nonmath_dolma_cc_en_head-0091.jsonl.gz", "nonmath_dolma_cc_en_head-0174.jsonl.gz"):
        with gzip.open(SHARED / "text" / name, "rt") as f:
            other += [json.loads(x)["text"] for x in f]
    # real crawled pages (the dolma WARCs: homepages, blogs; several load MathJax but have no math)
    from corpus.extract import html_to_text
    from corpus.filters import StepStats
    from corpus.warc import read_pages

    for w in ("dolma_sample-0000.warc.gz", "dolma_sample-0001.warc.gz", "resiliparse_warcfile_CC-MAIN-2020-34.warc.gz"):
        other += [t for p in read_pages(SHARED / "warc" / w, 0, StepStats("t")) if len(t := html_to_text(p.text)) > 200]
    # paragraphs as extra non-math examples (the real non-math text is much smaller than the math)
    other += [p for t in other for p in t.split("\n\n") if len(p.split()) > 40]
    return math, other


@pytest.mark.shared
def test_real_math_vs_real_web_text(tmp_path):
    math, other = _real_texts()
    rng = random.Random(0)
    rng.shuffle(math)
    rng.shuffle(other)
    m_tr, m_te = math[:150], math[150:450]
    o_tr, o_te = other[: len(other) // 2], other[len(other) // 2 :]
    clf, info = MathClassifier.train(m_tr, o_tr, SMALL, tmp_path)
    assert info["positives"] == 150 and info["settings"]["seed"] == 7
    p_math, p_other = clf.score(m_te), clf.score(o_te)
    assert ((p_math >= 0.5).mean() + (p_other < 0.5).mean()) / 2 >= 0.9, (np.median(p_math), np.median(p_other))
    assert np.all((p_math >= 0) & (p_math <= 1))


def test_training_is_deterministic_with_one_thread(tmp_path):
    rng = random.Random(1)
    pos = [" ".join(rng.choice(["x", "=", "\\frac", "{", "}", "2", "sum", "prove"]) for _ in range(60)) for _ in range(80)]
    neg = [" ".join(rng.choice(["the", "shop", "price", "2", "visit", "today", "news"]) for _ in range(60)) for _ in range(80)]
    probe = pos[:5] + neg[:5] + ["prove that x = 2", "visit the shop today"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, _ = MathClassifier.train(pos, neg, SMALL, tmp_path / "a")
    b, _ = MathClassifier.train(pos, neg, SMALL, tmp_path / "b")
    assert np.array_equal(a.score(probe), b.score(probe))  # bit-identical, not just close
    a.save(tmp_path / "m.bin")
    assert np.array_equal(MathClassifier.load(tmp_path / "m.bin", 500).score(probe), a.score(probe))
    (tmp_path / "bad.bin").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a fastText model"):
        MathClassifier.load(tmp_path / "bad.bin", 500)


def test_sampler_draws_negatives_from_allowed_pages_only(tmp_path):
    shards = []
    for s in range(2):
        docs = [Document(text=f"page {s} {i}", id=f"s{s:04d}-{i:07d}", url=f"https://d{s}.org/{i}",
                         metadata={"domain": f"d{s}.org"}) for i in range(50)]
        write_docs(tmp_path / f"{s}.parquet", docs)
        shards.append(tmp_path / f"{s}.parquet")
    discovered = pa.array(["s0000-0000001", "s0001-0000002"])
    seed_urls = pa.array(["https://d0.org/3"])
    pos, neg = sample_training_pages(shards, discovered, seed_urls, n_negatives=40, seed=0)
    assert sorted(pos) == ["page 0 1", "page 1 2"] and len(neg) == 40
    assert not {"page 0 1", "page 1 2", "page 0 3"} & set(neg)
    allowed = pa.array([f"s0000-{i:07d}" for i in range(10, 20)])
    _, neg2 = sample_training_pages(shards, discovered, seed_urls, n_negatives=40, seed=0, negative_ids=allowed)
    assert sorted(neg2) == sorted(f"page 0 {i}" for i in range(10, 20))  # capped by what is allowed
    assert sample_training_pages(shards, discovered, seed_urls, 40, seed=0) == (pos, neg)  # deterministic


def test_settings_are_built_from_the_config_dict_generically():
    cfg = {"dim": 64, "lr": 0.3, "word_ngrams": 2, "min_count": 1, "epoch": 5, "bucket": 5000, "thread": 1,
           "max_tokens": 100, "positives": 10, "negatives": 10, "health": {"on_fail": "auto"}}
    st = FastTextSettings.from_config(cfg, seed=3)
    assert (st.dim, st.lr, st.word_ngrams, st.min_count, st.epoch, st.bucket, st.max_tokens, st.seed) == \
        (64, 0.3, 2, 1, 5, 5000, 100, 3)
    assert HealthSettings.from_config({"on_fail": "auto", "min_auc": 0.7}) == HealthSettings(on_fail="auto", min_auc=0.7)


def test_roc_auc_counts_ties_as_half():
    # pairs (pos, neg): 0.9>0.1, 0.9>0.8, 0.8>0.1, 0.8=0.8 (half) -> 3.5 / 4
    assert roc_auc([0.9, 0.8], [0.1, 0.8]) == 0.875
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5 and roc_auc([0.2], [0.9]) == 0.0


def test_auto_settings_add_updates_step_by_step():
    paper = FastTextSettings(lr=0.1, epoch=3)
    assert [(auto_settings(paper, k).lr, auto_settings(paper, k).epoch) for k in (1, 2, 3)] == \
        [(0.5, 20), (1.0, 40), (1.0, 80)]
    big = FastTextSettings(lr=0.8, epoch=100)
    assert (auto_settings(big, 1).lr, auto_settings(big, 1).epoch) == (1.0, 100)  # never fewer updates


# The paper's settings (dim 256, lr 0.1, word n-grams 3, min count 3, epoch 3), the bucket count scaled
# down from 2M (a 2 GB model) for a test.
PAPER = FastTextSettings(dim=256, lr=0.1, word_ngrams=3, min_count=3, epoch=3, bucket=20000, thread=1,
                         max_tokens=500, seed=3)


def test_paper_settings_on_a_few_hundred_pages_stop_with_the_reason_or_adapt(tmp_path):
    math, other = _real_texts()
    rng = random.Random(2)
    pos, neg = rng.sample(math, 150), rng.sample(other, 150)
    with pytest.raises(UnhealthyClassifierError, match=r"round 2: .*135 positives and 135 negatives.*near 0\.5"):
        train_checked(pos, neg, PAPER, HealthSettings(on_fail="stop"), tmp_path, round_=2)
    clf, info = train_checked(pos, neg, PAPER, HealthSettings(on_fail="auto"), tmp_path, round_=2)
    checks = info["health"]["checks"]
    assert checks[0]["spread"] < 0.01 and checks[0]["score_max"] - checks[0]["score_min"] < 0.01  # learned nothing
    assert info["health"]["passed"] and info["health"]["adapted"]
    assert checks[-1]["auc"] >= 0.8 and checks[-1]["spread"] >= 0.3
    assert info["positives"] == 150 and info["settings"]["epoch"] > 3  # the final model: all pages, adapted settings
    assert (clf.score(math[:50]) >= 0.5).mean() > (clf.score(other[:50]) >= 0.5).mean()


def test_healthy_settings_give_the_model_they_gave_without_the_check(tmp_path):
    rng = random.Random(1)
    pos = [" ".join(rng.choice(["x", "=", "\\frac", "{", "}", "2", "sum", "prove"]) for _ in range(60)) for _ in range(80)]
    neg = [" ".join(rng.choice(["the", "shop", "price", "2", "visit", "today", "news"]) for _ in range(60))
           for _ in range(80)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    checked, info = train_checked(pos, neg, SMALL, HealthSettings(), tmp_path / "a", round_=1)
    plain, _ = MathClassifier.train(pos, neg, SMALL, tmp_path / "b")
    assert info["health"]["passed"] and not info["health"]["adapted"]
    assert np.array_equal(checked.score(pos[:5] + neg[:5]), plain.score(pos[:5] + neg[:5]))
    with pytest.raises(UnhealthyClassifierError, match="at least 2 of each"):
        train_checked(pos, neg[:1], SMALL, HealthSettings(), tmp_path / "a", round_=3)
