"""URL normalisation + exact URL dedup, then MinHash LSH near-dedup (§2.1: the paper scores the
"URL-based deduplicated and near-deduplicated" Common Crawl; it does not name the near-dup method,
we use MinHash LSH with datasketch).

Both decisions keep one document per duplicate group, deterministically: the one with the smallest
document id, i.e. the first in crawl order (shard, then record). The CLI is the dedup step as one
job: it reads every shard's document table and MinHash signatures (computed per shard by
`corpus.extract`) and writes the ids to drop with their reason and the id they duplicate. The
workflow runs the same step fanned out over LSH band groups (corpus/dedup_shards.py), which gives
exactly these decisions; this job is its reference.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from operator import methodcaller
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import numpy as np
import pyarrow as pa
from datasketch import LeanMinHash, MinHash, MinHashLSH
from datasketch.hashfunc import sha1_hash32

from corpus.filters import StepStats
from corpus.shards import read_table
from corpus.text import word_tokens_utf8
from pipeline.config import defaults_from_schema, settings_from

log = logging.getLogger(__name__)

TRACKING_PARAMS = re.compile(r"^(utm_.*|fbclid|gclid|dclid|msclkid|mc_[ce]id|yclid|_ga|sessionid|sid|phpsessid|jsessionid)$", re.I)
DEFAULT_PORTS = {"http": "80", "https": "443"}


def url_domain(url: str) -> str:
    """The paper's "same base URL": the host, lower-cased, without `www.` and port."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def normalize_url(url: str) -> str:
    """Canonical key of a URL for exact dedup: scheme-less, host without `www.`/default port,
    dot segments and duplicate slashes removed, percent-encoding normalised, tracking parameters
    dropped, remaining parameters sorted, fragment dropped, no trailing slash.
    `http://WWW.Example.com:80/a/./b/?utm_source=x&b=2&a=1#top` -> `example.com/a/b?a=1&b=2`."""
    parts = urlsplit(url.strip())
    host = url_domain(url)
    port = parts.port if _valid_port(parts) else None
    if port is not None and str(port) != DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", unquote(parts.path) or "/")
    path = posixpath.normpath(path) if path not in ("", "/") else "/"
    path = quote(path, safe="/:@!$&'()*+,;=-._~")
    path = path.rstrip("/") if path != "/" else ""
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k))
    return host + path + ("?" + urlencode(query) if query else "")


def _valid_port(parts) -> bool:
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return True


def url_duplicates(ids: Sequence[str], urls: Sequence[str]) -> dict[str, str]:
    """Exact URL dedup: {dropped id: kept id} where the kept one has the smallest id of its URL key."""
    first: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for doc_id, url in sorted(zip(ids, urls)):
        key = normalize_url(url)
        if key in first:
            dropped[doc_id] = first[key]
        else:
            first[key] = doc_id
    return dropped


@dataclass(frozen=True)
@defaults_from_schema("corpus.dedup")
class MinHashSettings:
    """Near-dedup settings (one place). Shingles are word `ngram`s of lower-cased words.

    LSH with `bands` b of `rows` r hash values each (b * r <= num_perm) makes two documents with
    Jaccard similarity s candidates with probability 1 - (1 - s^r)^b, an S-curve whose midpoint is
    about (1/b)^(1/r): b=16, r=8 -> 0.71 (P=0.95 at s=0.8, P=0.01 at s=0.4). With bands/rows unset,
    datasketch picks them for `threshold`. Candidates are then confirmed when their estimated
    Jaccard (fraction of equal signature values) is at least `threshold`; `seed` fixes the
    permutations, so signatures are deterministic for a seed. Defaults: config/schema/corpus.schema.yaml.
    """

    ngram: int
    num_perm: int
    bands: int | None
    rows: int | None
    threshold: float
    seed: int = 1

    def __post_init__(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("MinHashSettings: set both bands and rows, or neither (then threshold decides)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"MinHashSettings: bands*rows = {self.bands * self.rows} > num_perm {self.num_perm}")

    @classmethod
    def from_config(cls, cfg: dict, seed: int) -> MinHashSettings:
        return settings_from(cls, {k: v for k, v in cfg.items() if k != "seed"}, seed=seed)

    def to_dict(self) -> dict:
        return asdict(self)

    def lsh(self) -> MinHashLSH:
        """An empty LSH index with these settings (datasketch picks bands/rows for `threshold` when unset)."""
        params = (self.bands, self.rows) if self.bands is not None else None
        return MinHashLSH(threshold=self.threshold, num_perm=self.num_perm, params=params)

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows) the LSH index uses: band k is signature columns [k*rows, (k+1)*rows)."""
        lsh = self.lsh()
        return lsh.b, lsh.r


# Signatures are datasketch 2.0's MinHash, bit for bit (tests/test_corpus_dedup.py compares them with
# `MinHash.bulk` on real pages): each shingle's hash is the first 4 bytes of its SHA-1, little-endian
# (datasketch's `sha1_hash32`), pre-mixed by MurmurHash3's 32-bit finalizer (fmix32), then permuted by
# h -> a*h + b mod 2^32 with datasketch's (a, b) for the seed (scheme "affine32"), and the minimum kept per
# permutation. Computed here rather than through `MinHash.bulk` because its per-shingle Python calls
# (`sha1_hash32`: a function call, a slice and a struct unpack each) and per-set MinHash copies were most of
# the step: the same SHA-1s through `map` in C, one numpy pass per page, and shingles joined as UTF-8 bytes
# (corpus.text.word_tokens_utf8) make the step 1.5x faster on the 3,944 real pages of
# benchmarks/bench_corpus_ingest.py (CPU time, old and new code alternated: 555-589 -> 830-861 pages/s; ~1,000
# shingles a page, of which SHA-1 alone costs ~0.6 us each). `LeanMinHash(..., scheme="affine32")` reads them.
_FMIX32 = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)  # MurmurHash3 fmix32: shifts and multipliers
_digest = methodcaller("digest")  # a hashlib object's digest, called from C by `map`


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer on uint32 values (a bijection; products wrap mod 2^32)."""
    s1, m1, s2, m2, s3 = _FMIX32
    h = h ^ (h >> np.uint32(s1))
    h = h * np.uint32(m1)
    h = h ^ (h >> np.uint32(s2))
    h = h * np.uint32(m2)
    return h ^ (h >> np.uint32(s3))


class MinHashDeduper:
    """Signatures (datasketch's MinHash, bit for bit), LSH candidates (`MinHashLSH`), clusters by union-find."""

    CHUNK = 1 << 16  # shingles permuted at once: 32 MB at num_perm 128 (a huge page holds millions)

    def __init__(self, settings: MinHashSettings):
        self.settings = settings
        reference = MinHash(num_perm=settings.num_perm, seed=settings.seed)
        if reference.scheme != "affine32" or reference.hashfunc is not sha1_hash32:
            raise RuntimeError(f"datasketch's default MinHash is now {reference.scheme!r} with "
                               f"{reference.hashfunc!r}: corpus.dedup computes affine32 / sha1_hash32 signatures")
        self._a, self._b = (np.asarray(p, dtype=np.uint32) for p in reference.permutations)
        self._empty = np.full(settings.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)

    def shingles(self, text: str) -> set[bytes]:
        """The set of word `ngram`s (UTF-8, words joined by one space); a text of at most `ngram` words is one."""
        words = word_tokens_utf8(text)
        n = self.settings.ngram
        if len(words) <= n:
            return {b" ".join(words)} if words else set()
        return set(map(b" ".join, zip(*(words[i:] for i in range(n)))))

    def signature(self, text: str) -> np.ndarray:
        """(num_perm,) uint32 MinHash of one text; all-max for a text without words (never a candidate)."""
        shingles = self.shingles(text)
        if not shingles:
            return self._empty.copy()
        # SHA-1 digests are 20 bytes: every 5th little-endian uint32 is a digest's first 4 bytes.
        hashes = _fmix32(np.frombuffer(b"".join(map(_digest, map(hashlib.sha1, shingles))), dtype="<u4")[::5]
                         .astype(np.uint32))
        out = self._empty.copy()
        for start in range(0, hashes.size, self.CHUNK):  # memory: CHUNK x num_perm values at a time
            permuted = hashes[start : start + self.CHUNK, None] * self._a
            permuted += self._b
            np.minimum(out, permuted.min(axis=0), out=out)
        return out

    def signatures(self, texts: Iterable[str]) -> np.ndarray:
        """(N, num_perm) uint32 signatures, one text at a time (memory: one page's shingles)."""
        rows = [self.signature(t) for t in texts]
        return np.stack(rows) if rows else np.zeros((0, self.settings.num_perm), dtype=np.uint32)

    def clusters(self, signatures: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Representative index of each row's near-duplicate cluster (the smallest index in it).

        Rows must be in the caller's keep-priority order (smallest id first). `valid` masks rows
        that take part (rows without shingles or already dropped do not).
        """
        s = self.settings
        n = len(signatures)
        parent = np.arange(n)
        if valid is None:
            valid = np.ones(n, dtype=bool)
        valid = valid & (signatures != np.iinfo(np.uint32).max).any(axis=1)
        lsh = s.lsh()
        minhashes = {}
        with lsh.insertion_session() as session:
            for i in np.flatnonzero(valid):
                m = LeanMinHash(seed=s.seed, hashvalues=signatures[i], scheme="affine32")
                minhashes[i] = m
                session.insert(int(i), m, check_duplication=False)

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, m in minhashes.items():
            for j in lsh.query(m):
                if j <= i:
                    continue
                if np.mean(signatures[i] == signatures[j]) >= s.threshold:
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
        return np.array([find(i) for i in range(n)])


def near_duplicates(ids: Sequence[str], signatures: np.ndarray, deduper: MinHashDeduper,
                    skip: set[str] | None = None) -> dict[str, str]:
    """{dropped id: kept id} for near-duplicates; `ids` sorted ascending, rows of `signatures` aligned."""
    if list(ids) != sorted(ids):
        raise ValueError("near_duplicates: ids must be sorted so that the kept document is the first")
    skip = skip or set()
    valid = np.array([i not in skip for i in ids], dtype=bool)
    rep = deduper.clusters(signatures, valid)
    return {ids[i]: ids[r] for i, r in enumerate(rep) if r != i and valid[i]}


def load_signatures(path: str | Path, expected_rows: int, num_perm: int) -> np.ndarray:
    sig = np.load(path)
    if sig.shape != (expected_rows, num_perm) or sig.dtype != np.uint32:
        raise ValueError(f"{path}: signatures of shape {sig.shape} {sig.dtype}, "
                         f"expected ({expected_rows}, {num_perm}) uint32 — re-run the extract step")
    return sig


def dedup_shards(shards: Sequence[str | Path], signatures: Sequence[str | Path], cfg: dict, seed: int):
    """The global dedup step over all extract shards -> (removed table: id, reason, duplicate_of; StepStats)."""
    settings = MinHashSettings.from_config(cfg, seed=seed)
    stats = StepStats("dedup_decisions")  # the funnel counts dedup per shard, where corpus.pool applies it
    tables, sigs = [], []
    for shard, sig in zip(shards, signatures):
        t = read_table(shard, ["id", "url", "n_tokens"])
        tables.append(t)
        sigs.append(load_signatures(sig, t.num_rows, settings.num_perm))
    table = pa.concat_tables(tables) if tables else pa.table({"id": [], "url": [], "n_tokens": []})
    sig = np.concatenate(sigs) if sigs else np.zeros((0, settings.num_perm), np.uint32)
    all_ids, all_urls = table.column("id").to_pylist(), table.column("url").to_pylist()
    order = sorted(range(len(all_ids)), key=all_ids.__getitem__)  # keep priority: smallest id first
    ids = [all_ids[i] for i in order]
    urls = [all_urls[i] for i in order]
    tokens = dict(zip(all_ids, table.column("n_tokens").to_pylist()))
    sig = sig[order] if order else sig
    if len(set(ids)) != len(ids):
        raise ValueError("dedup: document ids are not unique across shards (two inputs with the same shard index?)")

    removed: dict[str, tuple[str, str]] = {}
    if cfg["url"]:
        removed.update({i: ("url_duplicate", k) for i, k in url_duplicates(ids, urls).items()})
    n_clusters = 0
    if cfg["near"]:
        near = near_duplicates(ids, sig, MinHashDeduper(settings), skip=set(removed))
        removed.update({i: ("near_duplicate", k) for i, k in near.items()})
        n_clusters = len(set(near.values()))
    return decisions(tokens, removed, stats, {"minhash": settings.to_dict(), "near_duplicate_clusters": n_clusters})


REMOVED_SCHEMA = pa.schema([("id", pa.string()), ("reason", pa.string()), ("duplicate_of", pa.string())])


def decisions(tokens: dict[str, int], removed: dict[str, tuple[str, str]], stats, extra: dict):
    """The removed table (id, reason, duplicate_of; sorted by id) and `stats` counted over every document."""
    for i in sorted(tokens):
        stats.seen(tokens[i])
        if i in removed:
            stats.drop(removed[i][0], tokens[i])
        else:
            stats.kept(tokens[i])
    stats.extra = extra
    rem_ids = sorted(removed)
    out = pa.table({"id": rem_ids, "reason": [removed[i][0] for i in rem_ids],
                    "duplicate_of": [removed[i][1] for i in rem_ids]}, schema=REMOVED_SCHEMA)
    return out, stats


def main(argv: list[str] | None = None) -> None:
    import pyarrow.parquet as pq

    from corpus.cli import parser, setup
    from pipeline.io import atomic_path

    p = parser("Dedup step (global): exact URL dedup, then MinHash LSH near-dedup over all shards.")
    p.add_argument("--shards", nargs="+", required=True, help="extract document shards")
    p.add_argument("--signatures", nargs="+", required=True, help="their MinHash signatures, same order")
    p.add_argument("--output", required=True, help="Parquet of removed ids: id, reason, duplicate_of")
    p.add_argument("--stats", required=True)
    args = p.parse_args(argv)
    if len(args.shards) != len(args.signatures):
        raise SystemExit("--shards and --signatures must pair up")
    cfg = setup(args)
    removed, stats = dedup_shards(args.shards, args.signatures, cfg["corpus"]["dedup"], cfg["seed"])
    with atomic_path(args.output) as tmp:
        pq.write_table(removed, tmp)
    stats.save(args.stats)
    log.info("dedup: %d documents -> %d (dropped %s)", stats.docs_in, stats.docs_out, dict(stats.dropped))


if __name__ == "__main__":
    main()
