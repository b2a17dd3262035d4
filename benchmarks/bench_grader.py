"""Grader throughput and accuracy: grading.grader vs Math-Verify 0.9, measured in the same run.

Workloads:
- golden: the golden table (tests/test_grader_golden.py), every category of the issue plus hard
  negatives; accuracy = verdicts that match the table's expected `correct`;
- mathverify: Math-Verify's own test suite as data (benchmarks/data/mathverify_cases.jsonl, the
  default-configuration rows), when present; Math-Verify is called on it as its tests call it;
- math500: MATH500 reference solutions vs their answers (../shared/data/bench, when present), all
  expected correct.

Each (grader, workload) runs in a fresh process, so nothing is cached from an earlier workload (three
times, alternating between the graders; the fastest time of each kind is reported, all are kept):
- startup_s: imports plus one trivial verdict (ours: the pool's worker starts, imports sympy and runs
  its self-test; Math-Verify: sympy and its parsers load);
- cold: the first pass over the workload (every parse cache empty), the number the issue asks for;
- warm: the same inputs graded again in the same process (parse caches hit; repeated-input speed).
Both graders use one process for the comparisons (ours: `workers=1`). Math-Verify is called as its
README advises: `verify(parse("$" + gold + "$"), parse(completion))`.

pool_overhead: GSM8K's fast-path pairs graded in-process by the worker's own function vs through the
pool (what bounding every pair's time costs). concurrency: per-call latency of grade_many(golden
table, workers=1) alone and from 8 threads at once.

    python -m benchmarks.run --only grader          # writes results/bench/grader.json
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.mathverify_cases import DATA as MATHVERIFY_CASES
from benchmarks.mathverify_cases import gold_answer, load_cases, score_math_verify
from tests.test_grader_golden import GOLDEN

log = logging.getLogger("benchmarks.grader")
ROOT = Path(__file__).resolve().parents[1]
MATH500 = ROOT.parent / "shared" / "data" / "bench" / "math500_test.jsonl"
GSM8K = MATH500.with_name("gsm8k_test.jsonl")
GRADERS = {"ours": "grading.grader", "math_verify": "math-verify 0.9.0"}
THREADS = 8
REPEATS = 3  # fresh processes per grader and workload; the fastest is reported (the machine is shared)


def load_workload(name: str) -> dict:
    """{"pairs": [(completion, gold)], "expected": [bool], "categories": [str]} (and Math-Verify's rows)."""
    if name == "golden":
        return {"pairs": [(c.completion, c.gold) for c in GOLDEN], "expected": [c.correct for c in GOLDEN],
                "categories": [c.category for c in GOLDEN]}
    if name == "mathverify":
        cases = load_cases(MATHVERIFY_CASES)
        return {"pairs": [(c["pred"], gold_answer(c["gold"])) for c in cases], "expected": [c["expected"] for c in cases],
                "categories": [c["test"] for c in cases], "cases": cases}
    if name == "math500":
        rows = [json.loads(x) for x in MATH500.read_text().splitlines()]
        return {"pairs": [(r["solution"], r["answer"]) for r in rows], "expected": [True] * len(rows),
                "categories": [r["subject"] for r in rows]}
    raise ValueError(f"unknown workload {name!r}")


def available_workloads() -> list[str]:
    names = ["golden"]
    if MATHVERIFY_CASES.exists():
        names.append("mathverify")
    else:
        log.warning("%s absent: Math-Verify's suite skipped", MATHVERIFY_CASES)
    if MATH500.exists():
        names.append("math500")
    else:
        log.warning("%s absent: MATH500 workload skipped", MATH500)
    return names


# ---------------------------------------------------------------- one grader, one workload, one process


def _ours() -> tuple[float, Callable[[dict], list[bool]]]:
    t0 = time.perf_counter()
    # Imported here: its import is part of the start-up this fresh process measures.
    from grading.grader import grade, grade_many

    grade("\\boxed{2\\sqrt{2}}", "\\sqrt{8}")  # the worker starts, imports sympy, runs its self-test
    return time.perf_counter() - t0, lambda w: [v.correct for v in grade_many(w["pairs"], workers=1, timeout=5.0)]


def _math_verify() -> tuple[float, Callable[[dict], list[bool]]]:
    t0 = time.perf_counter()
    # math_verify is imported here only: a comparison baseline, not a dependency of the grader.
    from math_verify import parse, verify

    verify(parse("$\\sqrt{8}$"), parse("$\\boxed{2\\sqrt{2}}$"))

    def run(w: dict) -> list[bool]:
        if "cases" in w:  # its own suite, called as its tests call it
            return score_math_verify(w["cases"])
        out = []
        for completion, gold in w["pairs"]:
            try:
                out.append(bool(verify(parse(f"${gold}$"), parse(completion))))
            except Exception as e:  # a grader that raises scores the case as not equal
                log.debug("math-verify raised on %r: %s", gold, e)
                out.append(False)
        return out

    return time.perf_counter() - t0, run


def measure(grader: str, workload: str) -> dict:
    """Run in a fresh process: start-up, the cold pass and the warm pass, with the cold verdicts."""
    w = load_workload(workload)
    startup, run = (_ours if grader == "ours" else _math_verify)()
    t0 = time.perf_counter()
    verdicts = run(w)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(w)
    warm = time.perf_counter() - t0
    return {"startup_s": startup, "cold_s": cold, "warm_s": warm, "verdicts": verdicts}


def measure_concurrency(threads: int = THREADS) -> dict:
    """Per-call latency of grade_many(golden table) alone, then from `threads` threads at once."""
    # As in _ours: nothing of ours loads in Math-Verify's process.
    from grading.grader import grade_many
    from grading.worker_pool import shared_pool

    pairs = load_workload("golden")["pairs"]
    shared_pool().run([{"op": "eq", "p": "\\sqrt{8}", "g": "2\\sqrt{2}"}] * threads, workers=threads, timeout=60)
    for _ in range(2):  # warm: parse caches of every worker
        grade_many(pairs, workers=threads)
    t0 = time.perf_counter()
    grade_many(pairs, workers=1)
    alone = time.perf_counter() - t0
    latencies: list[float] = []

    def call() -> None:
        t = time.perf_counter()
        grade_many(pairs, workers=1)
        latencies.append(time.perf_counter() - t)

    ths = [threading.Thread(target=call) for _ in range(threads)]
    t0 = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    wall = time.perf_counter() - t0
    return {"threads": threads, "cases_per_call": len(pairs), "alone_s": round(alone, 3),
            "threaded_mean_s": round(sum(latencies) / len(latencies), 3), "threaded_max_s": round(max(latencies), 3),
            "threaded_wall_s": round(wall, 3)}


def measure_overhead() -> dict:
    """What running every pair in a worker costs: the same pairs graded by the worker's own function
    in this process (no time limit possible) and through the pool (workers=1), both warm. Pairs: GSM8K
    reference solutions, all decided by the fast path (the common case)."""
    # As in _ours: nothing of ours loads in Math-Verify's process.
    from grading.grader import grade_many, handle

    rows = [json.loads(x)["answer"] for x in GSM8K.read_text().splitlines()]
    pairs = [(r.replace("####", "The answer is"), r.split("####")[-1].strip()) for r in rows]
    tasks = [{"op": "grade", "c": c, "g": g, "t": False, "x": False} for c, g in pairs]
    grade_many([*pairs, ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}")])  # warm, sympy loaded: no warm_up() to come
    for task in tasks:
        handle(task)
    t0 = time.perf_counter()
    for task in tasks:
        handle(task)
    local = time.perf_counter() - t0
    t0 = time.perf_counter()
    grade_many(pairs)
    pooled = time.perf_counter() - t0
    return {"pairs": len(pairs), "in_process_s": round(local, 3), "pool_s": round(pooled, 3),
            "overhead_us_per_pair": round(1e6 * (pooled - local) / len(pairs), 1)}


def _in_fresh_process(*args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "benchmarks.bench_grader", *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"bench_grader {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the report


def _fastest(runs: list[dict]) -> dict:
    """Per time, the minimum over repeated runs (other load only ever adds time); every run's times kept."""
    best = {k: min(r[k] for r in runs) for k in ("startup_s", "cold_s", "warm_s")}
    return {**best, "verdicts": runs[0]["verdicts"],
            "runs": [{k: round(r[k], 3) for k in ("startup_s", "cold_s", "warm_s")} for r in runs]}


def _score(name: str, m: dict, expected: list[bool], categories: list[str]) -> dict:
    got, n = m["verdicts"], len(expected)
    right = [g == e for g, e in zip(got, expected)]
    by_cat: dict[str, list[int]] = {}
    for cat, ok in zip(categories, right):
        by_cat.setdefault(cat, [0, 0])
        by_cat[cat][0] += ok
        by_cat[cat][1] += 1
    return {
        "grader": name, "cases": n, "runs": m["runs"], "startup_s": round(m["startup_s"], 3),
        "cold_s": round(m["cold_s"], 3), "warm_s": round(m["warm_s"], 3),
        "cold_cases_per_s": round(n / m["cold_s"], 1), "warm_cases_per_s": round(n / m["warm_s"], 1),
        "cold_with_startup_cases_per_s": round(n / (m["cold_s"] + m["startup_s"]), 1),
        "accuracy": round(sum(right) / n, 4),
        "false_accepts": sum(g and not e for g, e in zip(got, expected)),
        "false_rejects": sum(e and not g for g, e in zip(got, expected)),
        "accuracy_by_category": {c: round(a / k, 3) for c, (a, k) in sorted(by_cat.items())},
    }


def main(out_dir: Path) -> dict:
    result: dict = {"workers": 1}
    for workload in available_workloads():
        w = load_workload(workload)
        runs: dict[str, list[dict]] = {g: [] for g in GRADERS}
        for _ in range(REPEATS):  # alternating, so both graders see the same spells of machine load
            for g in GRADERS:
                runs[g].append(_in_fresh_process("--grader", g, "--workload", workload))
        side = {g: _score(name, _fastest(runs[g]), w["expected"], w["categories"]) for g, name in GRADERS.items()}
        ours, mv = side["ours"], side["math_verify"]
        result[workload] = {**side, "speedup_cold": round(mv["cold_s"] / ours["cold_s"], 1),
                            "speedup_warm": round(mv["warm_s"] / ours["warm_s"], 1)}
        result[f"speedup_cold_{workload}"] = result[workload]["speedup_cold"]
        result[f"accuracy_{workload}_ours"], result[f"accuracy_{workload}_math_verify"] = ours["accuracy"], mv["accuracy"]
        log.info("%s: cold %.0f vs %.0f cases/s (%.1fx), warm %.0f vs %.0f (%.1fx); accuracy %.3f vs %.3f", workload,
                 ours["cold_cases_per_s"], mv["cold_cases_per_s"], result[workload]["speedup_cold"],
                 ours["warm_cases_per_s"], mv["warm_cases_per_s"], result[workload]["speedup_warm"],
                 ours["accuracy"], mv["accuracy"])
    if GSM8K.exists():
        result["pool_overhead"] = _in_fresh_process("--overhead")
        log.info("every pair in a worker: %.1f us a pair over grading in-process (%s)",
                 result["pool_overhead"]["overhead_us_per_pair"], result["pool_overhead"])
    result["concurrency"] = _in_fresh_process("--concurrency")
    log.info("grade_many from %d threads: %.2fs per call alone, %.2fs mean / %.2fs max at once",
             THREADS, result["concurrency"]["alone_s"], result["concurrency"]["threaded_mean_s"],
             result["concurrency"]["threaded_max_s"])
    return result


if __name__ == "__main__":  # the fresh process main() starts for one measurement; prints one JSON line
    ap = argparse.ArgumentParser()
    ap.add_argument("--grader", choices=sorted(GRADERS))
    ap.add_argument("--workload")
    ap.add_argument("--concurrency", action="store_true")
    ap.add_argument("--overhead", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.concurrency or args.overhead:
        print(json.dumps(measure_concurrency() if args.concurrency else measure_overhead()))
    else:
        print(json.dumps(measure(args.grader, args.workload)))
