"""Pool step (per shard): apply the global dedup decisions and decontaminate (paper §2.1).

The result is the candidate pool that every mining round scores, and, written out unfiltered by
the classifier, the `web_text` corpus of the corpus-quality experiment (§2.2). Decontaminating the
pool once, before the rounds, removes exactly the pages a final decontamination would (a dropped
page can never be kept) and spares the classifier scoring them. Every removal goes to a report
(`*.decontam.jsonl`: id, url, reason, benchmark, matched words) beside the stats.

    python -m corpus.pool --config C --shard I --input extract/shard-I.parquet --removed dedup/removed.parquet
        --benchmarks corpus/benchmarks.jsonl --output pool/shard-I.parquet --report ... --dedup-stats ... --stats ...
"""

from __future__ import annotations

import logging

from corpus.cli import parser, setup
from corpus.decontaminate import DecontaminationFilter, NgramMatcher
from corpus.document import Document
from corpus.filters import IdSetFilter, StepStats, apply_filter, count_in, count_out
from corpus.shards import read_docs, read_table, write_docs
from pipeline.io import read_jsonl, write_jsonl

log = logging.getLogger(__name__)


def load_matcher(benchmarks_path: str, decontamination: dict) -> NgramMatcher:
    """The matcher over the benchmark texts materialised by `corpus.sources benchmarks`, with the settings
    of `corpus.decontamination` (n-gram length, LaTeX-aware tokens, generic n-grams not counted)."""
    return NgramMatcher.from_config(((r["benchmark"], r["text"]) for r in read_jsonl(benchmarks_path)), decontamination)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--input", required=True, help="extract document shard")
    p.add_argument("--removed", required=True, help="dedup step's removed ids")
    p.add_argument("--benchmarks", required=True, help="benchmark texts JSONL (benchmark, text)")
    p.add_argument("--output", required=True, help="pool document shard")
    p.add_argument("--report", required=True, help="decontamination report JSONL")
    p.add_argument("--dedup-stats", required=True, help="stats of applying the dedup decisions to this shard")
    p.add_argument("--stats", required=True, help="stats of decontaminating this shard")
    args = p.parse_args(argv)
    cfg = setup(args)
    dcfg = cfg["corpus"]["decontamination"]

    removed = read_table(args.removed, ["id", "reason"])
    reasons = dict(zip(removed.column("id").to_pylist(), removed.column("reason").to_pylist()))
    matcher = load_matcher(args.benchmarks, dcfg)
    dedup = StepStats("dedup", shard=args.shard)
    decontam = StepStats("decontaminate", shard=args.shard)
    rejects: list[dict] = []

    def report(doc: Document, reason: str) -> None:
        rejects.append({"id": doc.id, "url": doc.url, "reason": reason, **doc.metadata.get("drop_detail", {})})

    docs = count_in(read_docs(args.input), dedup)
    docs = count_out(apply_filter(docs, IdSetFilter(reasons), dedup), dedup)
    docs = count_in(docs, decontam)
    docs = apply_filter(docs, DecontaminationFilter(matcher), decontam, on_reject=report)
    write_docs(args.output, count_out(docs, decontam))
    write_jsonl(args.report, rejects)
    decontam.extra = {"matcher": matcher.summary()}
    dedup.save(args.dedup_stats)
    decontam.save(args.stats)
    log.info("pool shard %d: %d -> %d (dedup, dropped %s) -> %d documents (decontamination, dropped %s)",
             args.shard, dedup.docs_in, dedup.docs_out, dict(dedup.dropped), decontam.docs_out, dict(decontam.dropped))


if __name__ == "__main__":
    main()
