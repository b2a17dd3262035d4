"""The dedup step as a fan-out of jobs, for a whole crawl (`corpus.dedup` is the same step as one job).

    url        (1 job):  ids + URLs of every shard -> exact URL duplicates, and the `active` mask of the
                         rows that take part in near-dedup (not URL-dropped, with at least one shingle)
    bands g    (G jobs): LSH bands of band range g (`corpus.dedup.band_groups` = G ranges of the b bands);
                         per band, rows sorted by the band's r values: every pair in a run of equal values
                         is a candidate, confirmed when its estimated Jaccard >= threshold -> a spanning
                         forest of the confirmed pairs (edges row -> smallest row of its local component)
    merge      (1 job):  union of the G forests -> connected components -> the smallest id of each
                         component is kept -> `removed.parquet` + stats, the format of `corpus.dedup`
    (then `corpus.pool` applies the decisions per shard, as before)

The result is exactly `corpus.dedup`'s: there two rows are joined when they share a band (datasketch
`MinHashLSH` keys a band by its exact values) and their signatures agree on >= threshold of the
positions; the clusters are the connected components of that graph over the active rows, and each keeps
its smallest id. An edge lies in exactly one band range, the components of a union of graphs are those
of the union of their spanning forests, and the kept member depends only on the component. Rows are
indexed by position in the concatenated shards (`--signatures` order); only the merge needs ids.

Learned from datatrove's sharded MinHash (signatures per rank written per bucket, sorted, then merged
per bucket and clustered by union-find); unlike datatrove, a candidate pair is verified by its Jaccard
estimate, as in the single job, so the sharded step drops exactly the same documents.

Memory per job (peak RSS, benchmarks/bench_dedup.py, 128 permutations, 16x8 bands): ~170 MB of interpreter
and libraries plus, per document, url ~544 B (id and URL strings), bands ~226 B (one band's r columns,
its sort order, row and component arrays; the candidate pairs at 16 B each and up to VERIFY_CHUNK
signature pairs, ~70 MB, come on top) and merge ~354 B (ids, tokens, component labels). The single job
holds every signature in datasketch's index: ~8.4 KB per document (1.0 GB at 100k documents).
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from corpus.dedup import MinHashSettings, decisions, url_duplicates
from corpus.filters import StepStats
from corpus.shards import read_table
from pipeline.io import write_json

log = logging.getLogger(__name__)

VERIFY_CHUNK = 1 << 16  # candidate pairs whose signatures are compared at once: 2 x 64Ki x num_perm x 4 bytes
EMPTY_ROW = np.iinfo(np.uint32).max  # a text without shingles has an all-max signature (MinHashDeduper)


def band_ranges(bands: int, groups: int) -> list[range]:
    """`groups` contiguous ranges of band indices, as equal as possible: (16, 4) -> 0-3, 4-7, 8-11, 12-15."""
    if not 1 <= groups <= bands:
        raise ValueError(f"corpus.dedup.band_groups = {groups}: must be between 1 and the number of bands ({bands})")
    return [range(int(a[0]), int(a[-1]) + 1) for a in np.array_split(np.arange(bands), groups)]


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (reset by exec), else ru_maxrss, which on Linux also counts
    the parent's memory at fork time."""
    try:
        with open("/proc/self/status") as f:
            return round(int(next(x for x in f if x.startswith("VmHWM:")).split()[1]) / 1024, 1)
    except (OSError, StopIteration, ValueError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class SignatureFiles:
    """The per-shard `(rows, num_perm)` uint32 signature files as one row space (shards concatenated).

    Files are memory-mapped only while columns or rows are copied out, so the pages read do not stay
    in the job's resident memory.
    """

    def __init__(self, paths: Sequence[str | Path], num_perm: int):
        self.paths = [Path(p) for p in paths]
        self.num_perm = num_perm
        counts = []
        for p in self.paths:
            sig = self._open(p)
            counts.append(sig.shape[0])
            del sig
        self.offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

    def _open(self, path: Path) -> np.ndarray:
        try:
            sig = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot read MinHash signatures: {e}") from e
        if sig.ndim != 2 or sig.shape[1] != self.num_perm or sig.dtype != np.uint32:
            raise ValueError(f"{path}: signatures of shape {sig.shape} {sig.dtype}, expected (rows, {self.num_perm}) "
                             "uint32 — re-run the extract step")
        return sig

    @property
    def rows_total(self) -> int:
        return int(self.offsets[-1])

    def columns(self, lo: int, hi: int) -> np.ndarray:
        """Columns [lo, hi) of every row, (N, hi - lo), in row order."""
        out = np.empty((self.rows_total, hi - lo), dtype=np.uint32)
        for k, p in enumerate(self.paths):
            out[self.offsets[k]:self.offsets[k + 1]] = self._open(p)[:, lo:hi]
        return out

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Full signatures of global rows `index`, (len(index), num_perm)."""
        out = np.empty((len(index), self.num_perm), dtype=np.uint32)
        shard = np.searchsorted(self.offsets, index, side="right") - 1
        for k in np.unique(shard):
            sel = np.flatnonzero(shard == k)
            out[sel] = self._open(self.paths[k])[index[sel] - self.offsets[k]]
        return out

    def nonempty(self) -> np.ndarray:
        """Rows with at least one shingle (not all-max), shard by shard."""
        return np.concatenate([(self._open(p) != EMPTY_ROW).any(axis=1) for p in self.paths]
                              or [np.zeros(0, dtype=bool)])


# ---- url job ------------------------------------------------------------------------------------------------------

def url_step(shards: Sequence[str | Path], signatures: Sequence[str | Path], cfg: dict, seed: int):
    """-> (url table: id, duplicate_of; active mask over the concatenated rows; stats dict)."""
    settings = MinHashSettings.from_config(cfg, seed=seed)
    sigs = SignatureFiles(signatures, settings.num_perm)
    tables = [read_table(s, ["id", "url"]) for s in shards]
    for k, t in enumerate(tables):
        rows = sigs.offsets[k + 1] - sigs.offsets[k]
        if t.num_rows != rows:
            raise ValueError(f"{sigs.paths[k]}: {rows} signatures for the {t.num_rows} documents of {shards[k]} "
                             "— re-run the extract step")
    ids = [i for t in tables for i in t.column("id").to_pylist()]
    if len(set(ids)) != len(ids):
        raise ValueError("dedup: document ids are not unique across shards (two inputs with the same shard index?)")
    urls = [u for t in tables for u in t.column("url").to_pylist()]
    del tables
    dropped = url_duplicates(ids, urls) if cfg["url"] else {}
    del urls
    active = sigs.nonempty()
    if dropped:
        active &= ~np.fromiter((i in dropped for i in ids), dtype=bool, count=len(ids))
    d_ids = sorted(dropped)
    table = pa.table({"id": d_ids, "duplicate_of": [dropped[i] for i in d_ids]},
                     schema=pa.schema([("id", pa.string()), ("duplicate_of", pa.string())]))
    stats = {"step": "dedup_url", "rows": len(ids), "url_duplicates": len(d_ids), "active": int(active.sum()),
             "peak_rss_mb": peak_rss_mb()}
    return table, active, stats


# ---- bands job ----------------------------------------------------------------------------------------------------

def run_pairs(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j by position) inside each run order[start:start+size] -> (first rows, second rows)."""
    firsts, seconds = [], []
    for d in range(1, int(sizes.max(initial=0))):  # pairs at distance d inside a run, for all runs at once
        keep = sizes > d
        s, n = starts[keep], sizes[keep] - d
        pos = np.repeat(s - np.cumsum(n) + n, n) + np.arange(n.sum())
        firsts.append(order[pos])
        seconds.append(order[pos + d])
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def band_candidates(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Pair codes lo * N_MAX + hi of the rows (`rows`, aligned with `keys`) that share all r band values."""
    if len(rows) < 2:
        return np.zeros(0, np.int64)
    order = np.lexsort(keys.T[::-1])
    k = keys[order]
    new_run = np.concatenate([[True], (k[1:] != k[:-1]).any(axis=1)])
    starts = np.flatnonzero(new_run)
    sizes = np.diff(np.concatenate([starts, [len(k)]]))
    multi = sizes > 1
    a, b = run_pairs(rows[order], starts[multi], sizes[multi])
    return pair_code(np.minimum(a, b), np.maximum(a, b))


N_MAX = np.int64(1) << 31  # rows per crawl the pair codes support (2.1e9; a code is lo * N_MAX + hi)


def pair_code(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo.astype(np.int64) * N_MAX + hi.astype(np.int64)


def verify(sigs: SignatureFiles, codes: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs whose estimated Jaccard (fraction of equal signature values) is >= threshold,
    computed as the single job does (`np.mean(a == b) >= threshold`)."""
    los, his = [], []
    for start in range(0, len(codes), VERIFY_CHUNK):
        c = codes[start:start + VERIFY_CHUNK]
        lo, hi = c // N_MAX, c % N_MAX
        ok = np.mean(sigs.rows(lo) == sigs.rows(hi), axis=1) >= threshold
        los.append(lo[ok])
        his.append(hi[ok])
    if not los:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(los), np.concatenate(his)


def forest(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(E, 2) int64 edges (row, smallest row of its component) spanning the components of graph lo-hi."""
    if len(lo) == 0:
        return np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(lo), np.int32), (lo, hi)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n))
    root = smallest[labels]
    nodes = np.flatnonzero(root != np.arange(n))
    return np.stack([nodes, root[nodes]], axis=1).astype(np.int64)


def band_group_step(signatures: Sequence[str | Path], active: np.ndarray, cfg: dict, seed: int, group: int):
    """-> ((E, 2) forest edges of the pairs confirmed in band range `group`, stats dict)."""
    t0 = time.perf_counter()
    settings = MinHashSettings.from_config(cfg, seed=seed)
    bands, rows_per_band = settings.lsh_params()
    ranges = band_ranges(bands, cfg["band_groups"])
    if not 0 <= group < len(ranges):
        raise ValueError(f"band group {group} out of range: corpus.dedup.band_groups = {cfg['band_groups']}")
    sigs = SignatureFiles(signatures, settings.num_perm)
    n = sigs.rows_total
    if len(active) != n:
        raise ValueError(f"active mask has {len(active)} rows, the signatures {n} — the url job saw other shards")
    if n >= N_MAX:
        raise ValueError(f"{n} documents: more than the {N_MAX} pair codes support; split the crawl")
    stats = {"step": "dedup_bands", "group": group, "bands": [ranges[group].start, ranges[group].stop],
             "rows": n, "candidates": 0, "confirmed": 0}
    if not cfg["near"]:
        return np.zeros((0, 2), np.int64), {**stats, "peak_rss_mb": peak_rss_mb()}
    rows = np.flatnonzero(active)
    codes = np.zeros(0, np.int64)
    for band in ranges[group]:  # one band's columns in memory at a time
        keys = sigs.columns(band * rows_per_band, (band + 1) * rows_per_band)[rows]
        codes = np.union1d(codes, band_candidates(keys, rows))
        del keys
    lo, hi = verify(sigs, codes, settings.threshold)
    edges = forest(n, lo, hi)
    stats.update(candidates=len(codes), confirmed=len(lo), forest_edges=len(edges),
                 seconds=round(time.perf_counter() - t0, 3), peak_rss_mb=peak_rss_mb())
    return edges, stats


# ---- merge job ----------------------------------------------------------------------------------------------------

def merge_step(shards: Sequence[str | Path], url_table: pa.Table, edges: Sequence[np.ndarray], cfg: dict, seed: int):
    """-> (removed table: id, reason, duplicate_of; StepStats), as `corpus.dedup.dedup_shards` gives them."""
    settings = MinHashSettings.from_config(cfg, seed=seed)
    table = pa.concat_tables([read_table(s, ["id", "n_tokens"]) for s in shards]) if shards else \
        pa.table({"id": pa.array([], pa.string()), "n_tokens": pa.array([], pa.int64())})
    n = table.num_rows
    ids = table.column("id")
    removed = {i: ("url_duplicate", k) for i, k in zip(url_table.column("id").to_pylist(),
                                                       url_table.column("duplicate_of").to_pylist())}
    n_clusters = 0
    edges = [e for e in edges if len(e)]
    if edges:
        e = np.concatenate(edges)
        if e.max() >= n:
            raise ValueError(f"dedup edges name row {e.max()} of {n}: the band jobs saw other shards")
        graph = coo_matrix((np.ones(len(e), np.int32), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
        _, labels = connected_components(graph, directed=False)
        by_rank = pc.sort_indices(ids).to_numpy()  # rows in id order: the keep priority
        rank = np.empty(n, dtype=np.int64)
        rank[by_rank] = np.arange(n)
        best = np.full(labels.max() + 1, n, dtype=np.int64)
        np.minimum.at(best, labels, rank)
        sizes = np.bincount(labels)
        dup = np.flatnonzero((sizes[labels] > 1) & (rank != best[labels]))
        keep_rows = by_rank[best[labels[dup]]]
        dup_ids, keep_ids = ids.take(pa.array(dup)).to_pylist(), ids.take(pa.array(keep_rows)).to_pylist()
        for i, k in zip(dup_ids, keep_ids):
            if i in removed:
                raise ValueError(f"dedup: {i} is both a URL duplicate and in a near-duplicate cluster — "
                                 "the band jobs read another active mask")
            removed[i] = ("near_duplicate", k)
        n_clusters = len(set(keep_ids))
    tokens = dict(zip(ids.to_pylist(), table.column("n_tokens").to_pylist()))
    stats = StepStats("dedup_decisions")
    out, stats = decisions(tokens, removed, stats, {"minhash": settings.to_dict(), "near_duplicate_clusters": n_clusters,
                                                    "band_groups": cfg["band_groups"]})
    return out, stats


# ---- CLI ----------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    import pyarrow.parquet as pq

    from corpus.cli import parser, setup
    from pipeline.io import atomic_path

    p = parser("Dedup as a fan-out: url (1 job) -> bands (one job per band group) -> merge (1 job).")
    sub = p.add_subparsers(dest="step", required=True)
    u = sub.add_parser("url", help="exact URL dedup and the rows that take part in near-dedup")
    u.add_argument("--shards", nargs="+", required=True, help="extract document shards")
    u.add_argument("--signatures", nargs="+", required=True, help="their MinHash signatures, same order")
    u.add_argument("--output", required=True, help="Parquet of URL duplicates: id, duplicate_of")
    u.add_argument("--active", required=True, help=".npy bool mask over the concatenated rows")
    u.add_argument("--stats", required=True)
    b = sub.add_parser("bands", help="candidate pairs of one band group, verified -> spanning forest")
    b.add_argument("--group", type=int, required=True)
    b.add_argument("--signatures", nargs="+", required=True, help="every shard's signatures, the url job's order")
    b.add_argument("--active", required=True)
    b.add_argument("--output", required=True, help=".npy (E, 2) int64 edges")
    b.add_argument("--stats", required=True)
    m = sub.add_parser("merge", help="components of all groups' forests -> removed ids")
    m.add_argument("--shards", nargs="+", required=True, help="extract document shards, the url job's order")
    m.add_argument("--url", required=True, help="the url job's output")
    m.add_argument("--edges", nargs="+", required=True, help="every band group's edges")
    m.add_argument("--output", required=True, help="Parquet of removed ids: id, reason, duplicate_of")
    m.add_argument("--stats", required=True)
    args = p.parse_args(argv)
    cfg = setup(args)
    dcfg, seed = cfg["corpus"]["dedup"], cfg["seed"]
    if args.step == "url":
        if len(args.shards) != len(args.signatures):
            raise SystemExit("--shards and --signatures must pair up")
        table, active, stats = url_step(args.shards, args.signatures, dcfg, seed)
        with atomic_path(args.output) as tmp:
            pq.write_table(table, tmp)
        with atomic_path(args.active) as tmp, open(tmp, "wb") as f:
            np.save(f, active)
        write_json(args.stats, stats)
    elif args.step == "bands":
        edges, stats = band_group_step(args.signatures, np.load(args.active), dcfg, seed, args.group)
        with atomic_path(args.output) as tmp, open(tmp, "wb") as f:
            np.save(f, edges)
        write_json(args.stats, stats)
    else:
        if len(args.edges) != dcfg["band_groups"]:
            raise SystemExit(f"{len(args.edges)} --edges files for corpus.dedup.band_groups = {dcfg['band_groups']}")
        url_table = read_table(args.url, ["id", "duplicate_of"])
        removed, stats = merge_step(args.shards, url_table, [np.load(e) for e in args.edges], dcfg, seed)
        stats.extra["peak_rss_mb"] = peak_rss_mb()
        with atomic_path(args.output) as tmp:
            pq.write_table(removed, tmp)
        stats.save(args.stats)
    log.info("dedup %s: %s", args.step, stats if isinstance(stats, dict) else stats.to_dict())


if __name__ == "__main__":
    main()
