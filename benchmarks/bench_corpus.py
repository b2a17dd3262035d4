"""`make bench` for the corpus stage: quality of the mined corpus against the world's ground truth,
and throughput of the per-page work.

Runs `snakemake corpus` for the tiny config (world included) under `<out_dir>/corpus/`, then scores
the outputs with the world's labels.jsonl, which the pipeline itself never reads:

- precision / recall of the final corpus for math pages. A duplicate cluster (labels' dup_cluster)
  counts as one page; recall is over the math pages that can be kept, i.e. not contaminated
  (decontamination must remove those), and also reported over all math pages;
- near-duplicate clusters collapsed: clusters with at most one member left in the pool (web_text);
- contaminated pages removed: contaminated records in neither web_text nor final;
- rounds, per-round overlap and convergence, from funnel.json;
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
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks.corpus")


def read_labels(results: Path) -> list[dict]:
    with open(results / "world/web/labels.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _urls(folder: Path) -> list[str]:
    parts = sorted(folder.glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p, columns=["url"]) for p in parts]).column("url").to_pylist()


def measure(results: Path) -> dict:
    """Corpus quality of a finished corpus stage under `results` (= results/<name>) vs the world's labels."""
    labels = read_labels(results)
    final = _urls(results / "corpus/final")
    web = _urls(results / "corpus/web_text")
    by_url = defaultdict(list)
    for lab in labels:
        by_url[lab["url"]].append(lab)

    def unit(lab: dict) -> str:  # one page = one duplicate cluster (or one URL)
        return lab["dup_cluster"] or lab["url"]

    final_set, web_set = set(final), set(web)
    final_labels = [by_url[u][0] for u in final]
    unknown = [u for u in final if u not in by_url]
    math_units = {unit(lab) for lab in labels if lab["is_math"]}
    clean_math_units = {unit(lab) for lab in labels if lab["is_math"] and not lab["contaminated"]}
    kept_units = {unit(lab) for lab in final_labels if lab["is_math"]}
    true_pos = sum(1 for lab in final_labels if lab["is_math"])

    clusters = defaultdict(set)
    for lab in labels:
        if lab["dup_cluster"]:
            clusters[lab["dup_cluster"]].add(lab["url"])
    # several records may share a URL (exact URL duplicates): count surviving records, not URLs
    web_count = defaultdict(int)
    for u in web:
        web_count[u] += 1
    survivors = {c: sum(web_count[u] for u in urls) for c, urls in clusters.items()}
    contaminated = [lab["url"] for lab in labels if lab["contaminated"]]
    leaked = [u for u in contaminated if u in web_set or u in final_set]

    funnel = json.loads((results / "corpus/funnel.json").read_text())
    return {
        "final_pages": len(final),
        "precision": round(true_pos / len(final), 4) if final else None,
        "recall": round(len(kept_units & clean_math_units) / len(clean_math_units), 4) if clean_math_units else None,
        "recall_all_math": round(len(kept_units) / len(math_units), 4) if math_units else None,
        "final_urls_not_in_labels": len(unknown),
        "near_dup_clusters": len(clusters),
        "near_dup_clusters_collapsed": sum(1 for n in survivors.values() if n <= 1),
        "near_dup_collapsed_fraction": round(sum(1 for n in survivors.values() if n <= 1) / len(clusters), 4)
        if clusters else None,
        "contaminated_pages": len(contaminated),
        "contaminated_removed_fraction": round(1 - len(leaked) / len(contaminated), 4) if contaminated else None,
        "web_text_pages": len(web),
        "rounds": [{k: r[k] for k in ("round", "kept_docs", "overlap_with_previous", "converged", "carried_over_from",
                                      "math_domains", "new_positives")} for r in funnel["rounds"]],
        "converged_at": funnel["converged_at"],
        "decontamination": {k: funnel["decontamination"][k] for k in ("removed", "by_reason", "by_benchmark")},
    }


def throughput(results: Path, max_pages: int = 3000) -> dict:
    """Pages/s on one core for extract + classify + MinHash (the per-page work of a shard)."""
    from corpus.classifier import MathClassifier
    from corpus.dedup import MinHashDeduper, MinHashSettings
    from corpus.extract import html_to_text
    from corpus.filters import StepStats
    from corpus.warc import read_pages
    from pipeline.config import load_config

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
    from tests.test_corpus_extract import MATH_PAGES, compare_extractors

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
