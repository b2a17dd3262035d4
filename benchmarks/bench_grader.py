"""Grader throughput and accuracy: grading.grader vs Math-Verify 0.9, measured in the same run.

Workloads:
- the golden table (tests/test_grader_golden.py): every category of the issue plus hard negatives;
  accuracy = verdicts that match the table's expected `correct`;
- MATH500 solutions vs their answers (../shared/data/bench, when present): real LaTeX answers, all
  expected correct.

Both graders run on one core with equal warm-up: ours after its worker has started and run its
start-up self-test (start-up time reported separately), Math-Verify after parsing and verifying the
same self-test expressions. Math-Verify is called as its README
advises: `verify(parse("$" + gold + "$"), parse(completion))`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

log = logging.getLogger("benchmarks.grader")
BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench" / "math500_test.jsonl"


def _ours(pairs: list[tuple[str, str]]) -> tuple[list[bool], float]:
    from grading.grader import grade_many

    t0 = time.perf_counter()
    verdicts = grade_many(pairs, workers=1, timeout=5.0)
    return [v.correct for v in verdicts], time.perf_counter() - t0


def _math_verify(pairs: list[tuple[str, str]]) -> tuple[list[bool], float]:
    from math_verify import parse, verify

    t0 = time.perf_counter()
    out = []
    for completion, gold in pairs:
        try:
            out.append(bool(verify(parse(f"${gold}$"), parse(completion))))
        except Exception as e:  # a grader that raises scores the case as not equal
            log.debug("math-verify raised on %r: %s", gold, e)
            out.append(False)
    return out, time.perf_counter() - t0


def _score(name: str, got: list[bool], expected: list[bool], categories: list[str], seconds: float) -> dict:
    right = [g == e for g, e in zip(got, expected)]
    by_cat: dict[str, list[int]] = {}
    for cat, ok in zip(categories, right):
        by_cat.setdefault(cat, [0, 0])
        by_cat[cat][0] += ok
        by_cat[cat][1] += 1
    false_pos = sum(g and not e for g, e in zip(got, expected))
    false_neg = sum(e and not g for g, e in zip(got, expected))
    return {
        "grader": name, "cases": len(got), "seconds": round(seconds, 3),
        "cases_per_s": round(len(got) / seconds, 1) if seconds else None,
        "accuracy": round(sum(right) / len(right), 4), "false_accepts": false_pos, "false_rejects": false_neg,
        "accuracy_by_category": {c: round(a / n, 3) for c, (a, n) in sorted(by_cat.items())},
    }


def main(out_dir: Path) -> dict:
    from math_verify import parse, verify

    from grading.grader import grade
    from grading.sympy_compare import SELF_TEST_CASES
    from tests.test_grader_golden import GOLDEN

    t0 = time.perf_counter()
    grade("\\boxed{2\\sqrt{2}}", "\\sqrt{8}")  # start the worker: sympy import and self-test
    startup = time.perf_counter() - t0
    for text, _ in SELF_TEST_CASES:  # Math-Verify gets the same warm-up as our worker's self-test
        verify(parse(f"${text}$"), parse(f"$\\boxed{{{text}}}$"))

    workloads = {"golden": ([(c.completion, c.gold) for c in GOLDEN], [c.correct for c in GOLDEN],
                            [c.category for c in GOLDEN])}
    if BENCH.exists():
        rows = [json.loads(x) for x in BENCH.read_text().splitlines()]
        workloads["math500"] = ([(r["solution"], r["answer"]) for r in rows], [True] * len(rows),
                                [r["subject"] for r in rows])
    else:
        log.warning("%s absent: MATH500 workload skipped", BENCH)

    result: dict = {"worker_startup_s": round(startup, 3)}
    for name, (pairs, expected, cats) in workloads.items():
        ours, t_ours = _ours(pairs)
        mv, t_mv = _math_verify(pairs)
        a, b = _score("grading.grader", ours, expected, cats, t_ours), _score("math-verify 0.9.0", mv, expected, cats, t_mv)
        result[name] = {"ours": a, "math_verify": b, "speedup": round(t_mv / t_ours, 1),
                        "math_verify_wrong": Counter(c for c, g, e in zip(cats, mv, expected) if g != e)}
        log.info("%s: ours %.0f cases/s acc %.3f | math-verify %.0f cases/s acc %.3f | speed-up %.1fx",
                 name, a["cases_per_s"], a["accuracy"], b["cases_per_s"], b["accuracy"], t_mv / t_ours)
    result["speedup_golden"] = result["golden"]["speedup"]
    result["accuracy_golden_ours"] = result["golden"]["ours"]["accuracy"]
    result["accuracy_golden_math_verify"] = result["golden"]["math_verify"]["accuracy"]
    return result
