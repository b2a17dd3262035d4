"""Compare two runs of one config (e.g. local vs Slurm executor) on their deterministic outputs.

    python scripts/slurm/compare_runs.py results/test-slurm/local/smoke results/test-slurm/slurm/smoke

What "equal" means here (every job runs in its own process in both runs, one torch thread each, same seeds):
- the generated world (world/**) and the corpus funnel's kept set: byte-identical files, except parquet,
  which is compared as a table (its bytes carry writer metadata);
- every eval metrics.json and every training run's metrics.jsonl: the same keys, integers equal, floats
  equal to within 1e-6 relative (same code, same seeds and thread count give the same float results;
  the tolerance absorbs only print/round-trip noise, not a different computation);
- timings (keys containing "time", "seconds", "per_s", "/s", "elapsed") are ignored.
Exit 0 when equal; otherwise one line per difference and exit 1.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pyarrow.parquet as pq

EXACT_GLOBS = ["world/**/*", "corpus/final/**/*", "corpus/funnel.json"]
NUMERIC_GLOBS = ["eval/**/metrics.json", "pretrain/**/metrics.jsonl", "sft/**/metrics.jsonl",
                 "rl/metrics.jsonl"]
TIMING = ("time", "seconds", "per_s", "/s", "elapsed", "wall")
REL_TOL = 1e-6


def _files(root: Path, globs: list[str]) -> set[str]:
    return {str(p.relative_to(root)) for g in globs for p in root.glob(g) if p.is_file()}


def _numbers_equal(a, b, where: str, diffs: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            diffs.append(f"{where}: keys differ: {sorted(set(a) ^ set(b))}")
        for k in set(a) & set(b):
            if not any(t in str(k).lower() for t in TIMING):
                _numbers_equal(a[k], b[k], f"{where}.{k}", diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{where}: lengths differ: {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _numbers_equal(x, y, f"{where}[{i}]", diffs)
    elif isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                and math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)):
            diffs.append(f"{where}: {a!r} vs {b!r}")
    elif a != b:
        diffs.append(f"{where}: {a!r} vs {b!r}")


def _records(path: Path):
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


def compare(a: Path, b: Path) -> tuple[list[str], int]:
    diffs: list[str] = []
    exact, numeric = _files(a, EXACT_GLOBS), _files(a, NUMERIC_GLOBS)
    for name, files in (("exact", exact), ("numeric", numeric)):
        if not files:
            diffs.append(f"{a}: no {name} files to compare (did the run finish?)")
    other = _files(b, EXACT_GLOBS) | _files(b, NUMERIC_GLOBS)
    for rel in sorted((exact | numeric) ^ other):
        diffs.append(f"{rel}: only in {a if rel in exact | numeric else b}")
    for rel in sorted(exact & other):
        pa, pb = a / rel, b / rel
        if rel.endswith(".parquet"):
            if not pq.read_table(pa).equals(pq.read_table(pb)):
                diffs.append(f"{rel}: tables differ")
        elif pa.read_bytes() != pb.read_bytes():
            diffs.append(f"{rel}: bytes differ")
    for rel in sorted(numeric & other):
        _numbers_equal(_records(a / rel), _records(b / rel), rel, diffs)
    return diffs, len(exact & other) + len(numeric & other)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    a, b = map(Path, argv)
    diffs, n = compare(a, b)
    for d in diffs:
        print(d)
    print(f"compare_runs: {n} files compared, {len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
