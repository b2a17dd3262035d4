"""URL normalisation, exact URL dedup and MinHash LSH near-dedup (corpus/dedup.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash

from corpus.dedup import (
    MinHashDeduper,
    MinHashSettings,
    near_duplicates,
    normalize_url,
    url_domain,
    url_duplicates,
)
from corpus.filters import StepStats
from corpus.html_text import html_to_text
from corpus.text import word_tokens
from corpus.warc import read_pages

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples"


@pytest.mark.parametrize("url, key", [
    ("http://WWW.Example.com:80/a/./b/../c/?utm_source=x&b=2&a=1#top", "example.com/a/c?a=1&b=2"),
    ("https://example.com/a/c?a=1&b=2", "example.com/a/c?a=1&b=2"),
    ("https://example.com:8443/x", "example.com:8443/x"),
    ("https://example.com//x//y/", "example.com/x/y"),
    ("https://example.com/%7Euser/caf%C3%A9", "example.com/~user/caf%C3%A9"),
    ("https://example.com/", "example.com"),
    ("https://example.com/p?fbclid=123&gclid=9", "example.com/p"),
    ("https://example.com:99999/p", "example.com/p"),  # malformed port: ignored, not raised
])
def test_normalize_url(url, key):
    assert normalize_url(url) == key


def test_url_domain_is_the_base_host():
    assert url_domain("https://www.MathOverflow.net/questions/1") == "mathoverflow.net"
    assert url_domain("http://math.stackexchange.com:8080/q") == "math.stackexchange.com"


def test_url_dedup_keeps_the_first_id_of_each_url():
    ids = ["s0001-0000003", "s0000-0000007", "s0000-0000002", "s0002-0000000"]
    urls = ["https://a.org/x", "http://www.a.org/x/", "https://a.org/y", "https://a.org/x?utm_medium=m"]
    assert url_duplicates(ids, urls) == {"s0001-0000003": "s0000-0000007", "s0002-0000000": "s0000-0000007"}


def test_settings_threshold_math_and_validation():
    s = MinHashSettings(bands=16, rows=8)
    midpoint = (1 / s.bands) ** (1 / s.rows)
    assert 0.70 < midpoint < 0.72  # the S-curve midpoint stated in the docstring
    p = lambda j: 1 - (1 - j**s.rows) ** s.bands  # noqa: E731 - candidate probability at Jaccard j
    assert p(0.8) > 0.94 and p(0.4) < 0.011
    with pytest.raises(ValueError, match="bands\\*rows"):
        MinHashSettings(num_perm=64, bands=16, rows=8)
    with pytest.raises(ValueError, match="both"):
        MinHashSettings(bands=None, rows=8)


def _texts(n: int, words: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    return [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]


def test_signatures_are_deterministic_for_a_seed():
    texts = _texts(5)
    a = MinHashDeduper(MinHashSettings(seed=3)).signatures(texts)
    b = MinHashDeduper(MinHashSettings(seed=3)).signatures(texts)
    c = MinHashDeduper(MinHashSettings(seed=4)).signatures(texts)
    assert a.shape == (5, 128) and a.dtype == np.uint32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    empty = MinHashDeduper(MinHashSettings()).signatures(["", "!!!"])
    assert (empty == np.iinfo(np.uint32).max).all()  # no words: never a candidate


def _edit(text: str, fraction: float, seed: int) -> str:
    rng = random.Random(seed)
    words = text.split()
    for i in rng.sample(range(len(words)), int(fraction * len(words))):
        words[i] = f"edited{rng.randrange(10**6)}"
    return " ".join(words)


def test_near_duplicate_clusters_keep_one_document_each():
    base = _texts(30, seed=1)
    docs = list(base)
    for i in range(10):  # 10 lightly edited copies (1% of words changed: 5-gram Jaccard ~0.9)
        docs.append(_edit(base[i], 0.01, seed=i))
    for i in range(10, 13):  # 3 heavily edited ones (50% changed: different documents)
        docs.append(_edit(base[i], 0.5, seed=i))
    ids = [f"s0000-{i:07d}" for i in range(len(docs))]
    deduper = MinHashDeduper(MinHashSettings(seed=0))
    dropped = near_duplicates(ids, deduper.signatures(docs), deduper)
    assert dropped == {ids[30 + i]: ids[i] for i in range(10)}
    # keep-priority is the id order: the same duplicates in another order keep the first id
    with pytest.raises(ValueError, match="sorted"):
        near_duplicates(list(reversed(ids)), deduper.signatures(docs), deduper)


def test_skipped_ids_do_not_take_part():
    docs = _texts(3, seed=2)
    docs.append(docs[0])
    ids = [f"s0000-{i:07d}" for i in range(4)]
    deduper = MinHashDeduper(MinHashSettings())
    sig = deduper.signatures(docs)
    assert near_duplicates(ids, sig, deduper) == {ids[3]: ids[0]}
    assert near_duplicates(ids, sig, deduper, skip={ids[3]}) == {}


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (shared real-data samples)")
def test_real_math_pages_with_edited_boilerplate_are_near_duplicates():
    """Real StackMathQA posts: a re-crawl with a new date line and a changed footer is caught, distinct
    posts on the same site are not merged."""
    lines = (SHARED / "text/math_stackmathqa100k_files32-127.jsonl").read_text().splitlines()[:200]
    posts = [json.loads(x)["Q"] + "\n" + json.loads(x)["A"] for x in lines]
    posts = [p for p in posts if len(p.split()) > 150][:60]
    docs = [f"Posted 2020-01-0{i % 9 + 1}\n{p}\nShare this page" for i, p in enumerate(posts)]
    copies = [f"Posted 2023-11-2{i % 9}\n{p}\nShare this page. Cookies help us." for i, p in enumerate(posts[:20])]
    all_docs = docs + copies
    ids = [f"s0000-{i:07d}" for i in range(len(all_docs))]
    deduper = MinHashDeduper(MinHashSettings(seed=1))
    dropped = near_duplicates(ids, deduper.signatures(all_docs), deduper)
    assert dropped == {ids[len(docs) + i]: ids[i] for i in range(20)}


def _datasketch_signatures(texts: list[str], settings: MinHashSettings) -> np.ndarray:
    """The rule, through datasketch's own path: word n-grams of `word_tokens` joined by one space, UTF-8,
    hashed by `MinHash.bulk` with the default scheme (affine32, sha1_hash32)."""
    sets = []
    for text in texts:
        words, n = word_tokens(text), settings.ngram
        grams = [words[i : i + n] for i in range(len(words) - n + 1)] if len(words) > n else [words] if words else []
        sets.append({" ".join(g).encode() for g in grams})
    minhashes = MinHash.bulk(sets, num_perm=settings.num_perm, seed=settings.seed)
    return np.stack([m.hashvalues for m in minhashes]).astype(np.uint32)


# Texts whose words take each path of `corpus.text.word_tokens_utf8`: ASCII; non-ASCII separators only (curly quotes,
# no-break space, dashes: bytes >= 0x80 between words); non-ASCII words (accents, Greek, the Kelvin sign that
# lower-cases to ASCII `k`, `İ` that lower-cases to two characters); CJK ideographs one word each; a lone
# surrogate; fewer words than the n-gram; none.
EDGE_TEXTS = [
    "The sum of the first n odd numbers is n^2, so 1 + 3 + 5 = 9 and snake_case_words stay whole.",
    "It\u2019s \u201cquoted\u201d\u00a0text \u2014 with dashes \u2013 and no\u00a0break spaces between six words here.",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9: \u03b1 + \u03b2 = \u03b3 and \u212a is Kelvin, \u0130stanbul is a city.",
    "\u6570\u5b66\u662f\u5f88\u597d\u7684\u5b66\u79d1 mixed with English words for the test",
    "a lone \ud800 surrogate between words one two three four",
    "three short words",
    "",
    "!!! ... ---",
]


@pytest.mark.parametrize("ngram, num_perm, seed", [(5, 128, 0), (3, 64, 7)])
def test_signatures_equal_datasketch_minhash(ngram, num_perm, seed):
    """Signatures are computed outside datasketch for speed; they must be its MinHash bit for bit."""
    settings = MinHashSettings(ngram=ngram, num_perm=num_perm, bands=None, rows=None, seed=seed)
    texts = EDGE_TEXTS + _texts(20, words=300, seed=seed)
    got = MinHashDeduper(settings).signatures(texts)
    assert got.dtype == np.uint32 and got.shape == (len(texts), num_perm)
    assert np.array_equal(got, _datasketch_signatures(texts, settings))
    assert (got[EDGE_TEXTS.index("")] == np.iinfo(np.uint32).max).all()  # no words: never a candidate
    assert (got[EDGE_TEXTS.index("!!! ... ---")] == np.iinfo(np.uint32).max).all()
    assert MinHashDeduper(settings).signatures([]).shape == (0, num_perm)
    chunked = MinHashDeduper(settings)
    chunked.CHUNK = 7  # a page's shingles permuted 7 at a time (memory bound on huge pages): same minima
    assert np.array_equal(chunked.signatures(texts), got)


def real_texts() -> list[str]:
    """Real text: 300 StackMathQA posts (LaTeX, Unicode math) and the text of the crawled pages (English
    homepages, Common Crawl's Chinese and Russian sites), ASCII and not."""
    lines = (SHARED / "text/math_stackmathqa100k_files32-127.jsonl").read_text().splitlines()[:300]
    texts = [json.loads(x)["Q"] + "\n" + json.loads(x)["A"] for x in lines]
    for name in ("dolma_sample-0000", "resiliparse_warcfile_CC-MAIN-2020-34"):
        texts += [html_to_text(p.text) for p in read_pages(SHARED / f"warc/{name}.warc.gz", 0, StepStats("t"))]
    assert sum(t.isascii() for t in texts) >= 50 and sum(not t.isascii() for t in texts) >= 20
    return texts


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} absent (shared real-data samples)")
def test_signatures_equal_datasketch_on_real_pages():
    texts = real_texts()
    settings = MinHashSettings(seed=1)
    assert np.array_equal(MinHashDeduper(settings).signatures(texts), _datasketch_signatures(texts, settings))
