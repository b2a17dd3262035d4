"""Peak memory and time of each dedup job (corpus/dedup_shards.py: url, bands x G, merge) and of the single
job (corpus.dedup), on N synthetic documents in S shards, each job in its own process as Snakemake runs it.

    .venv/bin/python -m benchmarks.bench_dedup --docs 100000 400000 --shards 8 --groups 4 --single-max 100000

Synthetic crawl: random 128-value signatures (no chance band collisions), of which `--dup-fraction` are
copies of an earlier document with 20% of the values replaced (estimated Jaccard ~0.8: near-duplicates),
and 5% of the URLs repeat an earlier page's URL. The per-document slope between two sizes is what
pipeline/rules/corpus_helpers.smk (CORPUS_DEDUP_BYTES_PER_DOC) states; the intercept is the interpreter.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

DEDUP = {"url": True, "near": True, "ngram": 5, "num_perm": 128, "bands": 16, "rows": 8, "threshold": 0.7}


def synthetic_crawl(out: Path, docs: int, shards: int, dup_fraction: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 2**32 - 1, size=(docs, DEDUP["num_perm"]), dtype=np.uint32)
    dups = np.flatnonzero(rng.random(docs) < dup_fraction)
    dups = dups[dups > 0]
    src = (rng.random(len(dups)) * dups).astype(np.int64)  # an earlier document
    sig[dups] = sig[src]
    n_change = int(0.2 * DEDUP["num_perm"])
    for _ in range(n_change):  # replace up to 20% of the positions of each copy (drawn with replacement)
        cols = rng.integers(0, DEDUP["num_perm"], size=len(dups))
        sig[dups, cols] = rng.integers(0, 2**32 - 1, size=len(dups), dtype=np.uint32)
    urls = np.array([f"https://site{i % 5000}.example.org/articles/{i}/index.html" for i in range(docs)], dtype=object)
    same = np.flatnonzero(rng.random(docs) < 0.05)
    same = same[same > 0]
    urls[same] = urls[(rng.random(len(same)) * same).astype(np.int64)]
    doc_paths, sig_paths = [], []
    for k, rows in enumerate(np.array_split(np.arange(docs), shards)):
        d, s = out / f"shard-{k:04d}.parquet", out / f"shard-{k:04d}.minhash.npy"
        pq.write_table(pa.table({"id": [f"s{k:04d}-{r:07d}" for r in range(len(rows))], "url": urls[rows].tolist(),
                                 "n_tokens": np.full(len(rows), 500)}), d)
        np.save(s, sig[rows])
        doc_paths.append(str(d))
        sig_paths.append(str(s))
    return doc_paths, sig_paths


# A job in a fresh interpreter that writes its peak resident memory (VmHWM, which exec resets; ru_maxrss
# would include the benchmark process's memory at fork time) to the file named by BENCH_HWM.
JOB = """import os, runpy, sys
mod = sys.argv[1]
sys.argv = sys.argv[1:]
try:
    runpy.run_module(mod, run_name="__main__", alter_sys=True)
finally:
    hwm = [x for x in open("/proc/self/status") if x.startswith("VmHWM:")][0].split()[1]
    open(os.environ["BENCH_HWM"], "w").write(hwm)
"""


def run_job(args: list[str], tmp: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one CLI run in its own process."""
    hwm = tmp / "hwm.txt"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", JOB, *args],
                          env={**os.environ, "OMP_NUM_THREADS": "1", "BENCH_HWM": str(hwm)})
    if proc.returncode != 0:
        raise SystemExit(f"job failed: {' '.join(args[:4])}")
    return round(time.perf_counter() - t0, 2), round(int(hwm.read_text()) / 1024, 1)


def bench(docs: int, shards: int, groups: int, dup_fraction: float, single: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_dedup_") as tmp:
        tmp = Path(tmp)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:  # keeps this one small
            doc_paths, sig_paths = pool.submit(synthetic_crawl, tmp, docs, shards, dup_fraction).result()
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump({"name": "bench_dedup", "results_root": str(tmp), "seed": 0,
                                          "corpus": {"dedup": {**DEDUP, "band_groups": groups}}}))
        c = ["--config", str(config), "--log-level", "WARNING"]
        row = {"docs": docs, "shards": shards, "band_groups": groups, "jobs": {}}
        row["jobs"]["url"] = run_job(["corpus.dedup_shards", *c, "url", "--shards", *doc_paths, "--signatures",
                                      *sig_paths, "--output", str(tmp / "url.parquet"), "--active",
                                      str(tmp / "active.npy"), "--stats", str(tmp / "url.json")], tmp)
        for g in range(groups):
            row["jobs"][f"bands{g:02d}"] = run_job(
                ["corpus.dedup_shards", *c, "bands", "--group", str(g), "--signatures", *sig_paths, "--active",
                 str(tmp / "active.npy"), "--output", str(tmp / f"g{g}.npy"), "--stats", str(tmp / f"g{g}.json")], tmp)
        row["jobs"]["merge"] = run_job(["corpus.dedup_shards", *c, "merge", "--shards", *doc_paths, "--url",
                                        str(tmp / "url.parquet"), "--edges", *[str(tmp / f"g{g}.npy") for g in range(groups)],
                                        "--output", str(tmp / "removed.parquet"), "--stats", str(tmp / "stats.json")], tmp)
        row["candidates"] = sum(json.loads((tmp / f"g{g}.json").read_text())["candidates"] for g in range(groups))
        sharded = pq.read_table(tmp / "removed.parquet")
        row["removed"] = dict(zip(*np.unique(sharded.column("reason").to_numpy(zero_copy_only=False),
                                            return_counts=True)))
        row["removed"] = {k: int(v) for k, v in row["removed"].items()}
        if single:
            row["jobs"]["single"] = run_job(["corpus.dedup", *c, "--shards", *doc_paths, "--signatures", *sig_paths,
                                             "--output", str(tmp / "single.parquet"), "--stats",
                                             str(tmp / "single.json")], tmp)
            row["single_equal"] = pq.read_table(tmp / "single.parquet").equals(sharded)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, nargs="+", default=[100_000, 400_000])
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--groups", type=int, default=4)
    p.add_argument("--dup-fraction", type=float, default=0.3)
    p.add_argument("--single-max", type=int, default=100_000, help="run the single job up to this many documents")
    p.add_argument("--output", default=None, help="write the rows as JSON here")
    args = p.parse_args()
    rows = []
    for n in args.docs:
        row = bench(n, args.shards, args.groups, args.dup_fraction, single=n <= args.single_max)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        slope = {job: round((b["jobs"][job][1] - a["jobs"][job][1]) * 1e6 / (b["docs"] - a["docs"]))
                 for job in ("url", "bands00", "merge")}
        print(json.dumps({"bytes_per_doc": slope}))
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
