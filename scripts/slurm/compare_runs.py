"""Compare two runs of one config (e.g. local vs Slurm executor): every file of one run against the other.

    python scripts/slurm/compare_runs.py results/test-slurm/local/smoke results/test-slurm/slurm/smoke

What "equal" means here (every job runs in its own process in both runs, one torch thread each, same seeds):
- both runs hold the same files, apart from what records how a run went rather than what it made: `logs/`,
  Snakemake's `benchmarks/` (timings), the report (`report.md`, `report.html`: it prints stage times),
  Snakemake's `.snakemake_timestamp` markers, and the training stages' `resume_key.json` (a digest of the
  run's settings, paths included, that only decides whether checkpoints may be resumed); those are left
  out (counted in the summary);
- every other file (model weights, tokenizers, numpy arrays, WARC shards, generated samples, ...) is
  byte-identical, except parquet, compared as a table (its bytes carry writer metadata; NaN equals NaN in
  the same cell), and JSON / JSONL /
  YAML records whose bytes differ, compared as values:
  - paths under the two runs' results roots are the same path: each run's results root (the parent of the
    folder given, as given and absolute) is replaced by `<results_root>` in every string and dict key;
  - measurements of the run itself are ignored: keys with a word (split on `_`, `/`, `-`) naming a
    duration, rate or clock ("s", "time", "seconds", "elapsed", "wall") or a memory peak ("rss"), such as
    `step_s`, `tokens_per_s`, `time`, `peak_rss_mb`; settings such as `timeout_s` or `time_limit_s`
    (unless a word says "timeout" or "limit") and counts such as `grader_timeouts_total` are compared;
  - integers and strings equal; floats equal within 1e-6 relative (same code, seeds and thread count give
    the same floats; the tolerance absorbs print/round-trip noise only). The summary says how many floats
    were not bit-identical.
Exit 0 when equal; otherwise one line per difference and exit 1.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml

SKIPPED_DIRS = ("logs", "benchmarks")
SKIPPED_FILES = ("report.md", "report.html", ".snakemake_timestamp", "resume_key.json")
RECORD_SUFFIXES = (".json", ".jsonl", ".yaml", ".yml")
MEASUREMENT = {"s", "time", "seconds", "elapsed", "wall", "rss"}
SETTING = {"timeout", "limit"}
REL_TOL = 1e-6
ROOT_TOKEN = "<results_root>"


def is_measurement(key: str) -> bool:
    words = set(re.split(r"[_/\-]", str(key).lower()))
    return bool(words & MEASUREMENT) and not words & SETTING


def _skipped(rel: Path) -> bool:
    return rel.parts[0] in SKIPPED_DIRS or rel.name in SKIPPED_FILES


def files(root: Path) -> tuple[set[str], int]:
    """Files to compare (relative paths) and how many were left out."""
    kept, skipped = set(), 0
    for p in root.rglob("*"):
        if p.is_file():
            rel = p.relative_to(root)
            if _skipped(rel):
                skipped += 1
            else:
                kept.add(str(rel))
    return kept, skipped


def _roots(run: Path) -> list[str]:
    """Spellings of the run's results root, longest first (absolute, then as given)."""
    return sorted({str(run.parent.resolve()), str(run.parent)} - {"", "."}, key=len, reverse=True)


def _normalise(value, roots: list[str]):
    if isinstance(value, str):
        for r in roots:
            value = value.replace(r, ROOT_TOKEN)
        return value
    if isinstance(value, dict):
        return {_normalise(k, roots): _normalise(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, roots) for v in value]
    return value


class Comparison:
    def __init__(self) -> None:
        self.diffs: list[str] = []
        self.inexact_floats = 0
        self.ignored_keys: set[str] = set()

    def values(self, a, b, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            if set(a) != set(b):
                self.diffs.append(f"{where}: keys differ: {sorted(map(str, set(a) ^ set(b)))}")
            for k in set(a) & set(b):
                if is_measurement(k):
                    self.ignored_keys.add(str(k))
                else:
                    self.values(a[k], b[k], f"{where}.{k}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                self.diffs.append(f"{where}: lengths differ: {len(a)} vs {len(b)}")
            for i, (x, y) in enumerate(zip(a, b)):
                self.values(x, y, f"{where}[{i}]")
        elif isinstance(a, float) or isinstance(b, float):
            if not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                    and math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)):
                self.diffs.append(f"{where}: {a!r} vs {b!r}")
            elif a != b:
                self.inexact_floats += 1
        elif a != b:
            self.diffs.append(f"{where}: {a!r} vs {b!r}")


def _records(path: Path):
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


def compare(a: Path, b: Path) -> tuple[Comparison, dict[str, int]]:
    """Compare run folders a and b; the Comparison holds the differences, the dict counts files by kind."""
    c = Comparison()
    fa, skipped_a = files(a)
    fb, skipped_b = files(b)
    if not fa:
        c.diffs.append(f"{a}: no files to compare (did the run finish?)")
    for rel in sorted(fa ^ fb):
        c.diffs.append(f"{rel}: only in {a if rel in fa else b}")
    counts = {"bytes": 0, "parquet": 0, "records": 0, "skipped": max(skipped_a, skipped_b)}
    roots_a, roots_b = _roots(a), _roots(b)
    for rel in sorted(fa & fb):
        pa_, pb_ = a / rel, b / rel
        if rel.endswith(".parquet"):
            counts["parquet"] += 1
            ta, tb = pq.read_table(pa_), pq.read_table(pb_)
            if not (ta.schema.equals(tb.schema) and ta.to_pandas().equals(tb.to_pandas())):
                c.diffs.append(f"{rel}: tables differ")
        elif pa_.read_bytes() == pb_.read_bytes():
            counts["bytes"] += 1
        elif rel.endswith(RECORD_SUFFIXES):
            counts["records"] += 1
            try:
                ra, rb = _records(pa_), _records(pb_)
            except (ValueError, yaml.YAMLError) as e:
                c.diffs.append(f"{rel}: bytes differ and it does not parse ({e})")
                continue
            c.values(_normalise(ra, roots_a), _normalise(rb, roots_b), rel)
        else:
            c.diffs.append(f"{rel}: bytes differ")
    return c, counts


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    a, b = map(Path, argv)
    c, counts = compare(a, b)
    for d in c.diffs:
        print(d)
    print(f"compare_runs: {sum(counts[k] for k in ('bytes', 'parquet', 'records'))} files compared "
          f"({counts['bytes']} byte-identical, {counts['parquet']} parquet as tables, {counts['records']} "
          f"records as values with {c.inexact_floats} floats not bit-identical), {counts['skipped']} left out "
          f"(logs, benchmarks, report); {len(c.diffs)} differences")
    if c.ignored_keys:
        print(f"compare_runs: measurements ignored: {', '.join(sorted(c.ignored_keys))}")
    return 1 if c.diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
