"""`make bench`: per-page throughput of corpus ingestion on real pages, per step, in CPU time (issue #18).

The target is >= 1,000 pages/s per core for extract + classify + MinHash with the tiny classifier.
Pages: real ones, as benchmarks/build_corpus_real.py builds them (StackExchange math Q&A pages, the
shared samples' crawled pages, and Debian documentation pages when their cache exists), written to one
WARC shard. Each step is timed with `time.process_time()` (this process's CPU time: robust to other
jobs on the machine, unlike wall time), one thread:

- read: WARC records -> page HTML (corpus.warc.read_pages);
- precheck: the DOM-depth guard's routing (corpus.extract_guard.ExtractLimits.suspicious);
- extract: HTML -> text with LaTeX kept (corpus.extract.html_to_text, main content);
- classify: the fastText classifier trained with config/tiny.yaml's settings (training not timed);
- minhash: MinHash signatures with the config's dedup settings (corpus.dedup.MinHashDeduper).
Every step is also timed per kind of page, in pages/s and MB/s of HTML (documentation pages are long: per MB
is the fairer rate). Also: resiliparse alone (parse + main-content text, no math rewrite) per kind, the
peers measured in the same run (datasketch's `MinHash.bulk` for the same signatures, extraction without the
math gate, the classifier's input through the str tokenizer; outputs checked equal), peak memory, and the wall time of a shard holding one 20,000-deep page.

Kinds: `math_qa` (StackMathQA posts in a minimal page: ~3 KB, not the ~100 KB StackExchange serves),
`crawled` (real crawled HTML responses: the dolma and Common Crawl WARC samples), `ccnet` (Common Crawl
text documents in a minimal page), `docs` (Debian documentation pages).

    python -m benchmarks.bench_corpus_ingest [--debian 3000]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from datasketch import MinHash
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from benchmarks.build_corpus_real import (
    DEFAULT_CACHE,
    SHARED,
    crawled_nonmath_pages,
    debian_doc_pages,
    math_pages,
)
from corpus.classifier import FastTextSettings, MathClassifier
from corpus.dedup import MinHashDeduper, MinHashSettings
from corpus.extract import extract_shard, html_to_text
from corpus.extract_guard import ExtractLimits
from corpus.filters import StepStats
from corpus.html_text import EXTRACT_OPTIONS, rewrite_math
from corpus.text import classifier_line, classifier_tokens, word_tokens
from corpus.warc import read_pages
from pipeline.config import load_config
from world.warc import WebRecord, write_warc

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks.corpus_ingest")
CRAWLED_WARCS = ("dolma_sample-0000.warc.gz", "dolma_sample-0001.warc.gz", "resiliparse_warcfile_CC-MAIN-2020-34.warc.gz")
STEPS = ("precheck", "extract", "classify", "minhash")  # the target's steps


def real_pages(n_debian: int) -> list[dict]:
    if not SHARED.is_dir():
        raise FileNotFoundError(f"{SHARED} absent: the ingestion benchmark needs the shared real-data samples")
    pages = [{**p, "kind": "math_qa"} for p in math_pages()]
    crawled = {d.url for name in CRAWLED_WARCS for d in read_pages(SHARED / "warc" / name, 0, StepStats("read"))}
    pages += [{**p, "kind": "crawled" if p["url"] in crawled else "ccnet"} for p in crawled_nonmath_pages()]
    if n_debian and (DEFAULT_CACHE / "root").is_dir():
        pages += [{**p, "kind": "docs"} for p in debian_doc_pages(DEFAULT_CACHE, n_debian, seed=0)]
    elif n_debian:
        log.warning("%s absent: no Debian documentation pages (build them with benchmarks.build_corpus_real)",
                    DEFAULT_CACHE)
    return pages


def write_shard(path: Path, pages: list[dict]) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    write_warc(path, [WebRecord(p["url"], p["html"], start, f"urn:uuid:00000000-0000-4000-8000-{i:012x}")
                      for i, p in enumerate(pages)], "urn:uuid:ffffffff-0000-4000-8000-000000000000", start,
               {"software": "mathpipe benchmarks.bench_corpus_ingest"})


def _timed(fn):
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def _rate(n: int, seconds: float, html_bytes: int | None = None) -> dict:
    out = {"cpu_s": round(seconds, 3), "pages_per_s": round(n / seconds, 1) if seconds else None,
           "ms_per_page": round(1000 * seconds / n, 3) if n else None}
    if html_bytes is not None:
        out["html_mb_per_s"] = round(html_bytes / 1e6 / seconds, 2) if seconds else None
    return out


def _resiliparse_only(html: str, main_content: bool) -> str:
    return extract_plain_text(HTMLTree.parse(html), main_content=main_content, **EXTRACT_OPTIONS)


def _ungated_html_to_text(html: str, main_content: bool) -> str:
    """html_to_text as before the math gate (rewrite_math on every page): the extraction peer."""
    tree = HTMLTree.parse(html)
    rewrite_math(tree)
    return extract_plain_text(tree, main_content=main_content, **EXTRACT_OPTIONS).strip()


def _str_token_lines(texts: list[str], clf: MathClassifier) -> list[str]:
    """The classify step with the reference str tokenizer (the classify peer): fastText lines, scored."""
    lines = [" ".join(classifier_tokens(t, clf.max_tokens)) for t in texts]
    clf.model.predict(lines, k=2)
    return lines


def _datasketch_signatures(texts: list[str], deduper: MinHashDeduper) -> np.ndarray:
    """The same signatures through datasketch's `MinHash.bulk` (the MinHash peer; 1,000 sets a batch)."""
    s, out = deduper.settings, []
    for start in range(0, len(texts), 1000):
        sets = [{" ".join(w).encode() for w in _grams(t, s.ngram)} for t in texts[start : start + 1000]]
        out += [m.hashvalues for m in MinHash.bulk(sets, num_perm=s.num_perm, seed=s.seed)]
    return np.stack(out).astype(np.uint32)


def _grams(text: str, n: int) -> list[list[str]]:
    words = word_tokens(text)
    return [words[i : i + n] for i in range(len(words) - n + 1)] if len(words) > n else [words] if words else []


def deep_page_shard(workdir: Path, limits: ExtractLimits) -> dict:
    """Wall time of a 3-page shard whose middle page nests 20,000 <div>s (dropped as extract_timeout)."""
    good = "<html><body><main><p>" + "A page about prime numbers and their gaps. " * 20 + "</p></main></body></html>"
    deep = "<html><body>" + "<div>deep " * 20_000 + "</div>" * 20_000 + "</body></html>"
    path = workdir / "deep.warc.gz"
    write_shard(path, [{"url": f"https://x.org/{i}", "html": h} for i, h in enumerate([good, deep, good])])
    stats = StepStats("extract", shard=0)
    t0 = time.perf_counter()
    docs = extract_shard(path, 0, stats, main_content=True, min_tokens=5, limits=limits)
    return {"time_limit_s": limits.time_limit_s, "wall_s": round(time.perf_counter() - t0, 2), "kept": len(docs),
            "dropped": dict(stats.dropped)}


def run(n_debian: int = 3000, config: Path = ROOT / "config/tiny.yaml") -> dict:
    cfg = load_config(config)["corpus"]
    pages = real_pages(n_debian)
    limits = ExtractLimits.from_config(cfg["extract"])
    main_content = cfg["extract"]["main_content"]
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "shard.warc.gz"
        write_shard(shard, pages)
        docs, t_read = _timed(lambda: list(read_pages(shard, 0, StepStats("read"))))
        html = [d.text for d in docs]
        kind = [pages[int(d.id.rsplit("-", 1)[1])]["kind"] for d in docs]  # ids number the page records
        texts = [html_to_text(h, main_content) for h in html]
        settings = FastTextSettings.from_config(cfg["classifier"], seed=0)
        math = [t for t, k in zip(texts, kind) if k == "math_qa"]
        other = [t for t, k in zip(texts, kind) if k != "math_qa"]
        clf, _ = MathClassifier.train(math[::2], other[::2], settings, tmp)  # training not timed
        deduper = MinHashDeduper(MinHashSettings.from_config(cfg["dedup"], seed=0))
        by_kind, guarded, total = {}, 0, dict.fromkeys(STEPS, 0.0)
        peers = {"resiliparse_only": 0.0, "extract_without_math_gate": 0.0, "classify_str_tokens": 0.0,
                 "minhash_datasketch_bulk": 0.0}
        for name in sorted(set(kind)):
            sub = [i for i, k in enumerate(kind) if k == name]
            h, t = [html[i] for i in sub], [texts[i] for i in sub]
            size = sum(len(x.encode("utf-8", "surrogatepass")) for x in h)
            flags, t_pre = _timed(lambda h=h: [limits.suspicious(x) for x in h])
            out, t_ext = _timed(lambda h=h: [html_to_text(x, main_content) for x in h])
            _, t_cls = _timed(lambda t=t: clf.score(t))
            sig, t_mh = _timed(lambda t=t: deduper.signatures(t))
            _, t_res = _timed(lambda h=h: [_resiliparse_only(x, main_content) for x in h])
            ungated, t_ung = _timed(lambda h=h: [_ungated_html_to_text(x, main_content) for x in h])
            lines, t_str = _timed(lambda t=t: _str_token_lines(t, clf))
            ref, t_ds = _timed(lambda t=t: _datasketch_signatures(t, deduper))
            if (out != ungated or lines != [classifier_line(x, clf.max_tokens) for x in t]
                    or not np.array_equal(sig, ref)):
                raise AssertionError(f"{name}: the fast paths changed an output (text, classifier input, MinHash)")
            guarded += sum(flags)
            for step, sec in zip(STEPS, (t_pre, t_ext, t_cls, t_mh)):
                total[step] += sec
            for peer, sec in zip(peers, (t_res, t_ung, t_str, t_ds)):
                peers[peer] += sec
            core = t_pre + t_ext + t_cls + t_mh
            by_kind[name] = {
                "pages": len(sub), "mean_html_kb": round(size / len(sub) / 1024, 1),
                "mean_text_kb": round(sum(len(x.encode("utf-8", "surrogatepass")) for x in t) / len(sub) / 1024, 1),
                "steps": {step: _rate(len(sub), sec, size) for step, sec in zip(STEPS, (t_pre, t_ext, t_cls, t_mh))},
                "resiliparse_only": _rate(len(sub), t_res, size),
                "peers": {"extract_without_math_gate": _rate(len(sub), t_ung, size),
                          "classify_str_tokens": _rate(len(sub), t_str, size),
                          "minhash_datasketch_bulk": _rate(len(sub), t_ds, size)},
                "pages_per_s_per_core": round(len(sub) / core, 1), "html_mb_per_s_per_core": round(size / 1e6 / core, 2),
            }
        deep = deep_page_shard(Path(tmp), ExtractLimits(**{**limits.__dict__, "time_limit_s": 2.0}))
    n = len(docs)
    size = sum(len(x.encode("utf-8", "surrogatepass")) for x in html)
    core = sum(total.values())
    return {
        "pages": n, "pages_by_kind": dict(Counter(kind)), "html_mb": round(size / 1e6, 1),
        "mean_html_kb": round(size / n / 1024, 1), "guarded_pages": guarded,
        "steps": {"read": _rate(n, t_read, size), **{s: _rate(n, total[s], size) for s in STEPS}},
        "peers": {p: _rate(n, sec, size) for p, sec in peers.items()},
        "by_kind": by_kind,
        "pages_per_s_per_core": round(n / core, 1),  # precheck + extract + classify + MinHash (the target's steps)
        "html_mb_per_s_per_core": round(size / 1e6 / core, 2),
        "pages_per_s_per_core_with_read": round(n / (core + t_read), 1),
        "target_pages_per_s": 1000,
        "outputs_identical_to_peers": True,  # checked above: texts and signatures, every kind
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "deep_page_shard": deep,
    }


def main(out_dir: Path) -> dict:
    return run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debian", type=int, default=3000, help="Debian documentation pages (0: none)")
    args = p.parse_args()
    print(json.dumps(run(args.debian), indent=1))
