"""Write the stage's outputs (CONTRACTS.md): the mined corpus and the unfiltered web text.

- `final`: the last round's kept pages (the converged set, see corpus/rounds.py) with their text,
  as `corpus/final/part-{i:05d}.parquet` with columns text, url, domain, score, round; `round` is
  the round since which the page has been kept without interruption (its `first_round`).
- `web_text`: every pool page (after URL/near dedup and decontamination, before any classifier),
  same columns with score NaN and round 0: the unfiltered Common Crawl text of the paper's
  corpus-quality comparison (§2.2).

    python -m corpus.export final --config C --kept round4/kept.parquet --pool pool/shard-*.parquet --output final/
    python -m corpus.export web_text --config C --pool pool/shard-*.parquet --output web_text/
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc

from corpus.cli import parser, setup
from corpus.shards import read_table, write_parts

log = logging.getLogger(__name__)


def final_table(kept: pa.Table, pool_shards: list[str]) -> pa.Table:
    """Kept pages joined with their pool text, in id (crawl) order."""
    kept = kept.select(["id", "score", "first_round"])
    parts = []
    for path in pool_shards:
        pool = read_table(path, ["id", "url", "domain", "text"])
        parts.append(pool.join(kept, "id", join_type="inner"))
    table = pa.concat_tables(parts) if parts else kept
    if table.num_rows != kept.num_rows:
        raise ValueError(f"final: {kept.num_rows} kept pages but {table.num_rows} found in the pool shards")
    table = table.sort_by("id")
    return pa.table({"text": table.column("text"), "url": table.column("url"), "domain": table.column("domain"),
                     "score": table.column("score"), "round": table.column("first_round")})


def web_text_table(pool_shards: list[str]) -> pa.Table:
    tables = [read_table(p, ["url", "domain", "text"]) for p in pool_shards]
    table = pa.concat_tables(tables)
    n = table.num_rows
    return table.append_column("score", pa.array([float("nan")] * n, pa.float64())).append_column(
        "round", pa.array([0] * n, pa.int64()))


def main(argv: list[str] | None = None) -> None:
    p = parser("Write corpus/final or corpus/web_text Parquet parts.")
    p.add_argument("what", choices=["final", "web_text"])
    p.add_argument("--kept", help="final: the last round's kept.parquet")
    p.add_argument("--pool", nargs="+", required=True, help="pool document shards")
    p.add_argument("--output", required=True, help="output folder (replaced atomically)")
    args = p.parse_args(argv)
    cfg = setup(args)
    if args.what == "final":
        if not args.kept:
            raise SystemExit("final needs --kept")
        table = final_table(read_table(args.kept), args.pool)
    else:
        table = web_text_table(args.pool)
    parts = write_parts(args.output, table, cfg["corpus"]["output"]["part_docs"])
    tokens = pc.sum(pc.utf8_length(table.column("text"))).as_py() if table.num_rows else 0
    log.info("%s: %d pages (%s characters) in %d parts under %s", args.what, table.num_rows, tokens, len(parts),
             args.output)


if __name__ == "__main__":
    main()
