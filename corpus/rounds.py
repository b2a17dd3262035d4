"""The mining loop's per-round selection and its convergence test (paper §2.1).

Round r: the classifier of round r scored every pool page (corpus.classifier). This step ranks
them and keeps the top (score threshold or token budget), measures the overlap with round r-1's
kept set, discovers math domains and annotates their math URL paths (corpus.domains), and adds the
uncollected pages under those paths to the positives of round r+1.

Convergence without a dynamic DAG: the workflow always has `max_rounds` rounds (a Snakemake
`{round}` wildcard). Round r is converged when at least `convergence_overlap` of its kept pages were
kept by round r-1 (paper: ~98% in round 4 vs round 3). Every step of a round after a converged one
(train, score, select) sees the converged flag in the previous round's state.json and carries the
previous round's files over (hard links, no recomputation), so the last round's kept set is the
converged one and the final corpus needs no knowledge of when the loop stopped.

Files of round r (under corpus/round{r}/): classifier.bin, train.json, scores/shard-*.parquet,
kept.parquet (id, url, domain, n_tokens, score, first_round), positives.parquet (discovered pages,
cumulative: id, url, domain, round_added), negatives.parquet (ids round r+1 draws its negatives
from), domains.json, state.json, select.stats.json.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus.cli import parser, setup
from corpus.domains import DomainStats, build_annotator, domain_stats, math_domains
from corpus.filters import StepStats
from corpus.shards import link_or_copy, read_table
from pipeline.io import atomic_path, write_json

log = logging.getLogger(__name__)

KEPT_SCHEMA = pa.schema([("id", pa.string()), ("url", pa.string()), ("domain", pa.string()),
                         ("n_tokens", pa.int64()), ("score", pa.float64()), ("first_round", pa.int64())])
POSITIVES_SCHEMA = pa.schema([("id", pa.string()), ("url", pa.string()), ("domain", pa.string()),
                              ("round_added", pa.int64())])
NEGATIVES_SCHEMA = pa.schema([("id", pa.string())])


def round_seed(seed: int, round_: int) -> int:
    """Seed of round r's sampling and training, derived from the global seed."""
    return int(seed) * 1000 + int(round_)


def load_state(path: str | Path) -> dict:
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read a round state: {e}") from e
    if not {"round", "converged"} <= set(state):
        raise ValueError(f"{path}: not a round state (needs `round` and `converged`)")
    return state


def carry_over(src: str | Path | None, dst: str | Path) -> None:
    """A converged loop's later rounds reuse the converged round's file unchanged."""
    if not src:
        raise ValueError(f"{dst}: the previous round converged but its file was not given to carry over")
    link_or_copy(src, dst)


def select_mask(scores: np.ndarray, n_tokens: np.ndarray, ids: list[str], mode: str, threshold: float,
                token_budget: int) -> np.ndarray:
    """Pages kept: score >= threshold; in `token_budget` mode also the best-scored pages (ties by id)
    whose cumulative words fit the budget (the paper keeps the top 40B tokens of round 1)."""
    return ~drop_reasons(scores, n_tokens, ids, mode, threshold, token_budget).astype(bool)


BELOW_THRESHOLD, OVER_BUDGET, OUTSIDE_MATH_DOMAINS = "below_threshold", "over_token_budget", "outside_math_domains"
DROP_REASONS = (BELOW_THRESHOLD, OVER_BUDGET, OUTSIDE_MATH_DOMAINS)


def outside_domain_drops(scores: np.ndarray, domains: list[str], collected: np.ndarray, math_domain: set[str],
                         threshold: float | None) -> np.ndarray:
    """Collected pages dropped from the kept set: outside the round's math domains and scored below
    `threshold` (None: none dropped).

    A page on a site where the round collected almost nothing else (10% at most) is an isolated hit;
    among real documentation pages those are the hard negatives a few hundred seed pages cannot teach:
    packet-format diagrams (rows of digits), template files full of `{{ }}`, hash test vectors
    (benchmarks/bench_corpus_real.py, doc pool: 13 such pages kept at threshold 0.5, 6 above 0.9, and no
    math page of the unseeded sites between 0.5 and 0.9 once their domains are found). Such a page needs
    the stronger evidence; pages of math domains keep the round's threshold. Discovery, path annotation and
    the next negatives still use everything collected, so this changes only what is kept.
    """
    if threshold is None:
        return np.zeros(len(scores), dtype=bool)
    off = np.array([d not in math_domain for d in domains], dtype=bool)
    return collected & off & (scores < threshold)


def drop_reasons(scores: np.ndarray, n_tokens: np.ndarray, ids: list[str], mode: str, threshold: float,
                 token_budget: int) -> np.ndarray:
    """Per page: "" if kept, else what dropped it: `below_threshold` (score < threshold, checked first)
    or `over_token_budget` (above the threshold but past the budget of the ranked pages)."""
    reasons = np.where(scores >= threshold, "", BELOW_THRESHOLD).astype(object)
    if mode == "token_budget":
        order = np.lexsort((np.array(ids, dtype=object).astype(str), -scores))
        cum = np.cumsum(n_tokens[order])
        in_budget = np.zeros(len(scores), dtype=bool)
        in_budget[order[cum <= token_budget]] = True
        reasons[(reasons == "") & ~in_budget] = OVER_BUDGET
    return reasons


def round_budget(sel: dict, round_: int) -> int:
    """Words kept by round r in token_budget mode: `token_budget` in round 1 (paper 40B), then
    `final_token_budget` (paper: 120B after four rounds) where set."""
    final = sel.get("final_token_budget")
    return int(sel["token_budget"] if round_ == 1 or final is None else final)


def overlap(kept_ids: set[str], prev_ids: set[str]) -> float:
    """Fraction of this round's kept pages that the previous round kept too."""
    if not kept_ids:
        return 1.0 if not prev_ids else 0.0
    return len(kept_ids & prev_ids) / len(kept_ids)


def reliable_negatives(ids: list[str], scores: np.ndarray, excluded: np.ndarray, quantile: float,
                       prev_negatives: set[str] | None) -> list[str]:
    """Ids the next round draws its negatives from: pages scored at or below the `quantile` of this
    round's scores, plus the previous round's reliable negatives, minus pages kept or taken as
    positives (`excluded`).

    The paper trains on random Common Crawl pages as negatives, which is right when math is rare.
    Where math is a large share of the pages (the embedded world: ~35%), random negatives teach the
    classifier that math it has not found yet is "other" (tiny: round-1 recall 0.19 with random
    negatives, 1.0 with math-free ones). This is positive-unlabelled learning's "reliable negatives":
    the low-scored part of the pool, accumulated over rounds so that pages that once scored low
    (numeric decoys, before the classifier learns to like numbers) stay negatives. quantile 1.0 keeps
    the paper's choice: every page not collected so far.
    """
    low = scores <= np.quantile(scores, quantile) if len(scores) else np.zeros(0, dtype=bool)
    prev = prev_negatives or set()
    return [i for i, lo, ex in zip(ids, low, excluded) if (lo or i in prev) and not ex]


def negative_free_domains(stats: dict[str, DomainStats], max_kept: float | None, min_kept_fraction: float,
                          min_pages: int) -> list[str]:
    """Domains (>= `min_pages` pages) none of whose pages may be a next-round negative: more than `max_kept`
    of their pages kept by the round (None: `min_kept_fraction`, i.e. the math domains).

    A math site outside the seed is first found page by page: the classifier of round 1, trained against
    random pages, keeps a few of its pages (real StackExchange pages, seeded from mathoverflow only:
    8% of stats.stackexchange, 3.5% of physics.stackexchange), under the paper's 10% domain rule. Drawing
    the next negatives from the rest of such a site teaches the classifier that this site's math is
    "other" and the site is never found (measured: recall on unseeded sites 0.05 on a math-rich pool). A
    non-math domain rarely has even a few percent of its pages kept, so a low `max_kept` (e.g. 0.02)
    takes the sites the round started to find out of the negatives and leaves the rest random.
    """
    bar = min_kept_fraction if max_kept is None else max_kept
    return [d for d, st in stats.items() if st.pages >= min_pages and st.kept_fraction > bar]


def select_round(scores: pa.Table, round_: int, cfg: dict, prev_kept: pa.Table | None,
                 prev_positives: pa.Table | None, prev_negatives: pa.Table | None = None
                 ) -> tuple[pa.Table, pa.Table, pa.Table, dict, dict]:
    """-> (kept, positives, negatives, domains report, state) of one round from its scored pool."""
    scores = scores.sort_by("id")
    ids = scores.column("id").to_pylist()
    s = scores.column("score").to_numpy()
    n_tok = scores.column("n_tokens").to_numpy()
    sel = cfg["select"]
    reasons = drop_reasons(s, n_tok, ids, sel["mode"], sel["threshold"], round_budget(sel, round_))
    collected = reasons == ""  # what the round collects: domain discovery, paths and negatives work on it
    dcfg = cfg["domains"]
    domains = scores.column("domain").to_pylist()
    dstats = domain_stats(domains, collected)
    found = math_domains(dstats, dcfg["min_kept_fraction"], dcfg["min_domain_pages"])
    outside = outside_domain_drops(s, domains, collected, set(found), sel.get("outside_domain_threshold"))
    reasons[outside] = OUTSIDE_MATH_DOMAINS
    keep = reasons == ""
    kept_share = float(keep.mean()) if len(keep) else 0.0
    if kept_share > 0.5:
        log.warning("round %d keeps %.1f%% of the pool (%d pages): fine for a math-rich pool, a sign of a classifier "
                    "that learned little for Common Crawl (see train.json health)", round_, 100 * kept_share, keep.sum())
    kept_ids = [i for i, k in zip(ids, keep) if k]

    prev_first = {}
    if prev_kept is not None:
        prev_first = dict(zip(prev_kept.column("id").to_pylist(), prev_kept.column("first_round").to_pylist()))
    first_round = [prev_first.get(i, round_) for i in kept_ids]
    kept = scores.filter(pa.array(keep)).select(["id", "url", "domain", "n_tokens", "score"])
    kept = kept.append_column("first_round", pa.array(first_round, pa.int64())).cast(KEPT_SCHEMA)

    # Path annotation in the math domains (found above from what the round collected).
    urls = scores.column("url").to_pylist()
    annotator = build_annotator(dcfg)
    by_domain: dict[str, list[int]] = {d: [] for d in found}
    for i, d in enumerate(domains):
        if d in by_domain:
            by_domain[d].append(i)
    known = set(prev_positives.column("id").to_pylist()) if prev_positives is not None else set()
    report = {}
    new_pos: list[int] = []
    for d, rows in by_domain.items():
        paths = annotator.annotate(d, [urls[i] for i in rows], [s[i] for i in rows],
                                   [bool(collected[i]) for i in rows])
        under = [i for i in rows if annotator.matches(urls[i], paths)]
        fresh = [i for i in under if not collected[i] and ids[i] not in known]
        new_pos += fresh
        report[d] = {"pages": dstats[d].pages, "kept": dstats[d].kept, "kept_fraction": round(dstats[d].kept_fraction, 4),
                     "math_paths": paths, "pages_under_math_paths": len(under), "new_positives": len(fresh)}
    new_pos.sort()
    added = pa.table({"id": [ids[i] for i in new_pos], "url": [urls[i] for i in new_pos],
                      "domain": [domains[i] for i in new_pos], "round_added": [round_] * len(new_pos)},
                     schema=POSITIVES_SCHEMA)
    positives = added if prev_positives is None else pa.concat_tables([prev_positives.cast(POSITIVES_SCHEMA), added])

    # Next round's negatives never come from pages kept, taken as positives, or of a domain the round
    # collected from: a math site (more than 10% collected) or one below the math-domain rule but above
    # `negatives_max_domain_kept` is not evidence of "other" (see negative_free_domains).
    pos_ids = set(positives.column("id").to_pylist())
    no_neg = set(negative_free_domains(dstats, cfg["classifier"].get("negatives_max_domain_kept"),
                                       dcfg["min_kept_fraction"], dcfg["min_domain_pages"]))
    excluded = collected | np.array([i in pos_ids or d in no_neg for i, d in zip(ids, domains)], dtype=bool)
    negatives = pa.table({"id": reliable_negatives(
        ids, s, excluded, cfg["classifier"]["negatives_quantile"],
        set(prev_negatives.column("id").to_pylist()) if prev_negatives is not None else None)}, schema=NEGATIVES_SCHEMA)

    ov = overlap(set(kept_ids), set(prev_first)) if prev_kept is not None else None
    converged = ov is not None and ov >= cfg["rounds"]["convergence_overlap"]
    state = {
        "round": round_, "kept_docs": kept.num_rows, "kept_tokens": int(n_tok[keep].sum()),
        "overlap_with_previous": ov, "converged": converged, "converged_at": round_ if converged else None,
        "carried_over_from": None, "math_domains": len(found), "new_positives": len(new_pos),
        "positives_total": positives.num_rows, "reliable_negatives": negatives.num_rows,
        "negative_free_domains": len(no_neg),
        "dropped": {r: int((reasons == r).sum()) for r in DROP_REASONS if (reasons == r).any()},
        "dropped_tokens": {r: int(n_tok[reasons == r].sum()) for r in DROP_REASONS
                           if (reasons == r).any()},
    }
    return kept, positives, negatives, report, state


def _write_parquet(path: str | Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def main(argv: list[str] | None = None) -> None:
    p = parser("Select round R's kept pages, discover math domains/paths, test convergence (paper §2.1).")
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--scores", nargs="+", required=True, help="round R's score shards")
    p.add_argument("--prev-state", help="round R-1 state.json (absent in round 1)")
    p.add_argument("--prev-kept", help="round R-1 kept.parquet")
    p.add_argument("--prev-positives", help="round R-1 positives.parquet")
    p.add_argument("--prev-negatives", help="round R-1 negatives.parquet")
    p.add_argument("--prev-domains", help="round R-1 domains.json (carried over when converged)")
    p.add_argument("--prev-stats", help="round R-1 select stats (carried over when converged)")
    p.add_argument("--kept", required=True)
    p.add_argument("--positives", required=True)
    p.add_argument("--negatives", required=True, help="reliable negatives of the next round (ids)")
    p.add_argument("--domains", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--stats", required=True)
    args = p.parse_args(argv)
    cfg = setup(args)
    r = args.round
    prev = load_state(args.prev_state) if args.prev_state else None
    if prev is not None and prev["converged"]:
        for src, dst in ((args.prev_kept, args.kept), (args.prev_positives, args.positives),
                         (args.prev_negatives, args.negatives), (args.prev_domains, args.domains)):
            carry_over(src, dst)
        origin = prev["carried_over_from"] or prev["round"]
        stats = StepStats.load(args.prev_stats)
        write_json(args.stats, {**stats, "round": r, "extra": {**stats["extra"], "carried_over_from": origin}})
        write_json(args.state, {**prev, "round": r, "carried_over_from": origin})
        log.info("round %d: converged at round %d, kept set carried over", r, prev["converged_at"])
        return

    stats = StepStats("select", round=r)
    scores = pa.concat_tables([read_table(f, ["id", "url", "domain", "n_tokens", "score"]) for f in args.scores])
    prev_kept = read_table(args.prev_kept) if args.prev_kept else None
    prev_pos = read_table(args.prev_positives) if args.prev_positives else None
    prev_neg = read_table(args.prev_negatives) if args.prev_negatives else None
    kept, positives, negatives, report, state = select_round(scores, r, cfg["corpus"], prev_kept, prev_pos, prev_neg)
    total_tokens = int(pc.sum(scores.column("n_tokens")).as_py() or 0)
    stats.docs_in, stats.tokens_in = scores.num_rows, total_tokens
    stats.docs_out, stats.tokens_out = kept.num_rows, state["kept_tokens"]
    for reason, n in state["dropped"].items():
        stats.dropped[reason] = n
    stats.dropped_tokens.update(state.pop("dropped_tokens"))
    stats.extra = {k: state[k] for k in ("overlap_with_previous", "converged", "math_domains",
                                         "new_positives", "positives_total")}
    _write_parquet(args.kept, kept)
    _write_parquet(args.positives, positives)
    _write_parquet(args.negatives, negatives)
    write_json(args.domains, report)
    stats.save(args.stats)
    write_json(args.state, state)
    log.info("round %d: kept %d/%d pages, overlap with previous %s, %d math domains, %d new positives%s",
             r, kept.num_rows, scores.num_rows, "n/a" if state["overlap_with_previous"] is None
             else f"{state['overlap_with_previous']:.4f}", state["math_domains"], state["new_positives"],
             " -> converged" if state["converged"] else "")


if __name__ == "__main__":
    main()
