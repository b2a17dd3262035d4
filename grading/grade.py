"""Grade a file of completions: `python -m grading.grade --input cases.jsonl --output verdicts.jsonl`.

Each input line is a JSON object with `completion` and `gold` (other fields are kept); each output
line is the same object plus `pred`, `correct` and `status` from `grading.grader.grade_many`.
A line that is not a JSON object, or lacks a string `completion` / `gold`, is skipped, counted
and logged with its line number; the summary (counts per status, accuracy) goes to the log.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from grading.grader import DEFAULT_TIMEOUT_S, grade_many
from pipeline.config import setup_logging
from pipeline.io import write_jsonl

log = logging.getLogger("grading.grade")
CHUNK = 512  # pairs per grade_many call (progress granularity)


def read_cases(path: Path) -> tuple[list[dict], Counter]:
    """Valid records, and the count of skipped lines by reason."""
    rows, skipped = [], Counter()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                skipped["bad_json"] += 1
                log.warning("%s:%d: skipped, not JSON: %s", path, lineno, e)
                continue
            if not isinstance(row, dict):
                skipped["not_an_object"] += 1
                log.warning("%s:%d: skipped, expected a JSON object", path, lineno)
                continue
            missing = [k for k in ("completion", "gold") if not isinstance(row.get(k), str)]
            if missing:
                skipped["missing_field"] += 1
                log.warning("%s:%d: skipped, %s missing or not a string", path, lineno, " and ".join(missing))
                continue
            rows.append(row)
    return rows, skipped


def grade_file(inp: Path, out: Path, *, workers: int, timeout: float, execute_code: bool) -> dict:
    rows, skipped = read_cases(inp)
    verdicts = []
    with tqdm(total=len(rows), desc="grading", unit="case", mininterval=5) as bar:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            verdicts += grade_many([(r["completion"], r["gold"]) for r in chunk], workers=workers,
                                   timeout=timeout, execute_code=execute_code)
            bar.update(len(chunk))
    write_jsonl(out, ({**r, **v.to_dict()} for r, v in zip(rows, verdicts)))
    statuses = Counter(v.status for v in verdicts)
    summary = {
        "graded": len(rows), "correct": sum(v.correct for v in verdicts),
        "accuracy": sum(v.correct for v in verdicts) / len(rows) if rows else 0.0,
        "statuses": dict(statuses), "skipped": dict(skipped),
    }
    log.info("%s -> %s: %s", inp, out, summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, type=Path, help="JSONL with `completion` and `gold` per line")
    p.add_argument("--output", required=True, type=Path, help="JSONL: the input records plus pred/correct/status")
    p.add_argument("--workers", type=int, default=1, help="grading processes for the sympy path [1]")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per comparison [5]")
    p.add_argument("--execute-code", action="store_true",
                   help="program-of-thought: run the last ```python block of completions with no stated answer")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    if not args.input.is_file():
        p.error(f"--input {args.input}: no such file")
    grade_file(args.input, args.output, workers=args.workers, timeout=args.timeout, execute_code=args.execute_code)


if __name__ == "__main__":
    main()
