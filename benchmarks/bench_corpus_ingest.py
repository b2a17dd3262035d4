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
Also: extraction by kind of page, peak memory, and the wall time of a shard holding one 20,000-deep page.

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
from corpus.warc import read_pages
from pipeline.config import load_config
from world.warc import WebRecord, write_warc

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks.corpus_ingest")


def real_pages(n_debian: int) -> list[dict]:
    if not SHARED.is_dir():
        raise FileNotFoundError(f"{SHARED} absent: the ingestion benchmark needs the shared real-data samples")
    pages = [{**p, "kind": "math_qa"} for p in math_pages()]
    pages += [{**p, "kind": "crawled"} for p in crawled_nonmath_pages()]
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


def _rate(n: int, seconds: float) -> dict:
    return {"cpu_s": round(seconds, 3), "pages_per_s": round(n / seconds, 1) if seconds else None,
            "ms_per_page": round(1000 * seconds / n, 3) if n else None}


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
        guarded, t_pre = _timed(lambda: [limits.suspicious(h) for h in html])
        texts, t_extract = _timed(lambda: [html_to_text(h, main_content) for h in html])
        by_kind = {}
        for name in sorted(set(kind)):
            sub = [h for h, k in zip(html, kind) if k == name]
            _, t = _timed(lambda sub=sub: [html_to_text(h, main_content) for h in sub])
            by_kind[name] = {"pages": len(sub), "mean_html_kb": round(sum(map(len, sub)) / max(1, len(sub)) / 1024, 1),
                             **_rate(len(sub), t)}
        settings = FastTextSettings.from_config(cfg["classifier"], seed=0)
        math = [t for t, k in zip(texts, kind) if k == "math_qa"]
        other = [t for t, k in zip(texts, kind) if k != "math_qa"]
        clf, _ = MathClassifier.train(math[::2], other[::2], settings, tmp)
        _, t_classify = _timed(lambda: clf.score(texts))
        deduper = MinHashDeduper(MinHashSettings.from_config(cfg["dedup"], seed=0))
        _, t_minhash = _timed(lambda: deduper.signatures(texts))
        deep = deep_page_shard(Path(tmp), ExtractLimits(**{**limits.__dict__, "time_limit_s": 2.0}))
    n = len(docs)
    core = t_pre + t_extract + t_classify + t_minhash
    return {
        "pages": n, "pages_by_kind": dict(Counter(kind)),
        "mean_html_kb": round(sum(map(len, html)) / n / 1024, 1), "guarded_pages": sum(guarded),
        "steps": {"read": _rate(n, t_read), "precheck": _rate(n, t_pre), "extract": _rate(n, t_extract),
                  "classify": _rate(n, t_classify), "minhash": _rate(n, t_minhash)},
        "extract_by_kind": by_kind,
        "pages_per_s_per_core": round(n / core, 1),  # precheck + extract + classify + MinHash (the target's steps)
        "pages_per_s_per_core_with_read": round(n / (core + t_read), 1),
        "target_pages_per_s": 1000,
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
