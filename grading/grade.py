"""Grade a file of completions: `python -m grading.grade --input cases.jsonl --output verdicts.jsonl`.

Each input line is a JSON object with `completion` and `gold` (other fields are kept); each output
line is the same object plus `input_line` (its line number in the input) and `pred`, `correct` and
`status` from `grading.grader`. A line that is not a JSON object, or lacks a string `completion` /
`gold`, is skipped, counted and logged with its line number.

Verdicts are appended to the output as they finish, so an interrupted run loses nothing already
written; run the same command again and it grades only the input lines the output lacks (a last line
cut off mid-write is dropped and graded again). When every line is graded the output is rewritten in
input order. The summary (counts per status, accuracy, skipped lines) goes to the log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from grading.grader import DEFAULT_TIMEOUT_S, grade_iter
from pipeline.config import setup_logging
from pipeline.io import write_jsonl

log = logging.getLogger("grading.grade")


def read_cases(path: Path) -> tuple[dict[int, dict], Counter]:
    """Valid records by line number, and the count of skipped lines by reason."""
    rows, skipped = {}, Counter()
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
            rows[lineno] = row
    return rows, skipped


def read_done(out: Path, rows: dict[int, dict]) -> dict[int, dict]:
    """Verdict records already in `out` by input line. A last line without its newline (the run was
    killed while writing it) is cut off; a record that does not match the input is an error."""
    done: dict[int, dict] = {}
    if not out.exists():
        return done
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        log.warning("%s: dropping an unfinished last line (%d bytes); it is graded again", out, len(data) - cut)
        with open(out, "r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    for k, line in enumerate(data.decode("utf-8").splitlines(), 1):
        try:
            rec = json.loads(line)
            lineno = rec["input_line"]
            row = rows[lineno]
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            raise SystemExit(f"{out}:{k}: not a verdict for this input ({type(e).__name__}: {e}); "
                             "remove the output or choose another --output") from None
        if rec.get("completion") != row["completion"] or rec.get("gold") != row["gold"]:
            raise SystemExit(f"{out}:{k}: the verdict for input line {lineno} was written for a different "
                             "completion or gold; remove the output or choose another --output")
        done[lineno] = rec
    return done


def grade_file(inp: Path, out: Path, *, workers: int, timeout: float, execute_code: bool) -> dict:
    rows, skipped = read_cases(inp)
    done = read_done(out, rows)
    todo = [n for n in rows if n not in done]
    if done:
        log.info("%s: %d of %d verdicts already written; grading the other %d", out, len(done), len(rows), len(todo))
    out.parent.mkdir(parents=True, exist_ok=True)
    pairs = [(rows[n]["completion"], rows[n]["gold"]) for n in todo]
    with open(out, "a", encoding="utf-8") as f, tqdm(total=len(todo), desc="grading", unit="case", mininterval=5) as bar:
        for k, verdict in grade_iter(pairs, workers=workers, timeout=timeout, execute_code=execute_code,
                                     ids=[f"{inp}:{n}" for n in todo]):
            n = todo[k]
            done[n] = {**rows[n], "input_line": n, **verdict.to_dict()}
            f.write(json.dumps(done[n], ensure_ascii=False) + "\n")
            f.flush()
            bar.update(1)
        os.fsync(f.fileno())
    if todo or list(done) != sorted(done):
        write_jsonl(out, (done[n] for n in sorted(done)))  # atomic: input order
    verdicts = list(done.values())
    correct = sum(bool(v["correct"]) for v in verdicts)
    summary = {
        "graded": len(verdicts), "graded_now": len(todo), "correct": correct,
        "accuracy": correct / len(verdicts) if verdicts else 0.0,
        "statuses": dict(Counter(v["status"] for v in verdicts)), "skipped": dict(skipped),
    }
    log.info("%s -> %s: %s", inp, out, summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, type=Path, help="JSONL with `completion` and `gold` per line")
    p.add_argument("--output", required=True, type=Path,
                   help="JSONL: the input records plus input_line/pred/correct/status (resumed if present)")
    p.add_argument("--workers", type=int, default=1, help="grading processes [1]")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per case [5]")
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
