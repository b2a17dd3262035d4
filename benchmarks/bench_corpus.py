"""`make bench` for the corpus stage: quality of the mined corpus against the world's ground truth,
and throughput of the per-page work.

Runs `snakemake corpus` for the tiny config (world included) under `<out_dir>/corpus/`, then scores
the outputs with the world's labels.jsonl, which the pipeline itself never reads:

- precision / recall, near-duplicates collapsed, contaminated pages removed, rounds: world.corpus_score
  (the same scoring the workflow's report quotes);
- throughput of extract + classify + MinHash in pages/s on one core (one process, one thread),
  on the world's WARC shards with round 1's classifier.
Also compares the two extractors (resiliparse, trafilatura if installed) on math-preservation.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from corpus.classifier import MathClassifier
from corpus.dedup import MinHashDeduper, MinHashSettings
from corpus.extract import html_to_text
from corpus.filters import StepStats
from corpus.warc import read_pages
from pipeline.config import load_config
from pipeline.io import read_jsonl
from tests.test_corpus_extract import MATH_PAGES, compare_extractors
from world import corpus_score

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks.corpus")


def measure(results: Path) -> dict:
    """Corpus quality of a finished corpus stage under `results` (= results/<name>) vs the world's labels."""
    return corpus_score.measure(list(read_jsonl(results / "world/web/labels.jsonl")),
                                corpus_score.corpus_urls(results / "corpus/final"),
                                corpus_score.corpus_urls(results / "corpus/web_text"),
                                json.loads((results / "corpus/funnel.json").read_text()))


def throughput(results: Path, max_pages: int = 3000) -> dict:
    """Pages/s on one core for extract + classify + MinHash (the per-page work of a shard)."""
    cfg = load_config(results / "config.yaml")["corpus"]
    pages = []
    for shard in sorted((results / "world/web").glob("shard-*.warc.gz")):
        pages += list(read_pages(shard, 0, StepStats("bench")))
        if len(pages) >= max_pages:
            break
    pages = pages[:max_pages]
    clf = MathClassifier.load(results / "corpus/round1/classifier.bin", cfg["classifier"]["max_tokens"])
    deduper = MinHashDeduper(MinHashSettings.from_config(cfg["dedup"], seed=0))
    t0 = time.process_time()
    texts = [html_to_text(p.text, cfg["extract"]["main_content"]) for p in pages]
    t1 = time.process_time()
    clf.score(texts)
    t2 = time.process_time()
    deduper.signatures(texts)
    t3 = time.process_time()
    total = t3 - t0
    return {"pages": len(pages), "extract_s": round(t1 - t0, 3), "classify_s": round(t2 - t1, 3),
            "minhash_s": round(t3 - t2, 3), "pages_per_s_per_core": round(len(pages) / total, 1) if total else None}


def extractor_comparison() -> dict:
    """Math kept by each extractor on the test fixtures' math pages (see tests/test_corpus_extract.py)."""
    sys.path.insert(0, str(ROOT))
    return compare_extractors(MATH_PAGES)


def main(out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    root = out_dir / "corpus_results"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(ROOT),
           "--configfile", str(ROOT / "config/tiny.yaml"), "--config", f"results_root={root}",
           "--cores", "2", "corpus", "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake corpus failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    results = root / "tiny"
    out = {"config": "tiny", "corpus_stage_wall_s": round(wall, 1), **measure(results)}
    out["throughput"] = throughput(results)
    out["extractors"] = extractor_comparison()
    return out
