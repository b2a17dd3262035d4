"""`python -m world.corpus_score`: the mined corpus scored against the generated world's ground truth.

    python -m world.corpus_score --labels results/tiny/world/web/labels.jsonl \
        --final results/tiny/corpus/final --web-text results/tiny/corpus/web_text \
        --funnel results/tiny/corpus/funnel.json --out results/tiny/corpus/world_score.json

Only the embedded default has labels, so only it can be scored; the corpus stage itself never reads them.
Measured (what the report's headline and `make bench` quote):

- precision / recall of the final corpus for math pages. A duplicate cluster (labels' dup_cluster)
  counts as one page; recall is over the math pages that can be kept, i.e. not contaminated
  (decontamination must remove those), and also reported over all math pages;
- near-duplicate clusters collapsed: clusters with at most one member left in the pool (web_text);
- contaminated pages removed: contaminated records in neither web_text nor final;
- rounds, per-round overlap and convergence, from funnel.json.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import setup_logging
from pipeline.io import read_jsonl, write_json

log = logging.getLogger("world.corpus_score")


def corpus_urls(folder: str | Path) -> list[str]:
    """The `url` column of every part-*.parquet of a corpus folder, in order."""
    parts = sorted(Path(folder).glob("part-*.parquet"))
    if not parts:
        return []
    return pa.concat_tables([pq.read_table(p, columns=["url"]) for p in parts]).column("url").to_pylist()


def measure(labels: list[dict], final: list[str], web: list[str], funnel: dict) -> dict:
    """Corpus quality of a finished corpus stage against the world's labels."""
    by_url = defaultdict(list)
    for lab in labels:
        by_url[lab["url"]].append(lab)

    def unit(lab: dict) -> str:  # one page = one duplicate cluster (or one URL)
        return lab["dup_cluster"] or lab["url"]

    final_set, web_set = set(final), set(web)
    final_labels = [by_url[u][0] for u in final if u in by_url]
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
    collapsed = sum(1 for n in survivors.values() if n <= 1)
    return {
        "final_pages": len(final),
        "math_pages_kept": true_pos,
        "precision": round(true_pos / len(final), 4) if final else None,
        "recall": round(len(kept_units & clean_math_units) / len(clean_math_units), 4) if clean_math_units else None,
        "recall_all_math": round(len(kept_units) / len(math_units), 4) if math_units else None,
        "final_urls_not_in_labels": len(unknown),
        "near_dup_clusters": len(clusters),
        "near_dup_clusters_collapsed": collapsed,
        "near_dup_collapsed_fraction": round(collapsed / len(clusters), 4) if clusters else None,
        "contaminated_pages": len(contaminated),
        "contaminated_removed": len(contaminated) - len(leaked),
        "contaminated_removed_fraction": round(1 - len(leaked) / len(contaminated), 4) if contaminated else None,
        "web_text_pages": len(web),
        "rounds": [{k: r.get(k) for k in ("round", "kept_docs", "overlap_with_previous", "converged",
                                          "carried_over_from", "math_domains", "new_positives")}
                   for r in funnel.get("rounds") or []],
        "converged_at": funnel.get("converged_at"),
        "decontamination": {k: (funnel.get("decontamination") or {}).get(k)
                            for k in ("removed", "by_reason", "by_benchmark")},
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m world.corpus_score", description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", required=True, help="the world's labels.jsonl (world.web)")
    p.add_argument("--final", required=True, help="the mined corpus folder (corpus/final)")
    p.add_argument("--web-text", required=True, help="the deduplicated pool folder (corpus/web_text)")
    p.add_argument("--funnel", required=True, help="the corpus funnel (corpus/funnel.json)")
    p.add_argument("--out", required=True, help="JSON to write")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    score = measure(list(read_jsonl(args.labels)), corpus_urls(args.final), corpus_urls(args.web_text),
                    json.loads(Path(args.funnel).read_text()))
    write_json(args.out, score)
    log.info("corpus vs the world's labels: precision %s, recall %s, near-dup clusters collapsed %s/%s, "
             "contaminated removed %s/%s", score["precision"], score["recall"], score["near_dup_clusters_collapsed"],
             score["near_dup_clusters"], score["contaminated_removed"], score["contaminated_pages"])
    return score


if __name__ == "__main__":
    main()
