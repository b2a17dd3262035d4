"""Bounded time everywhere (issue #14): a row that hangs anywhere, the sympy-free fast path included,
costs at most its limit and never blocks the others; grade_many from several threads runs
concurrently; `python -m grading.grade` streams its verdicts and resumes where it stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grading.grader import grade_many, group_equivalent, handle, is_equivalent
from grading.worker_pool import TIMEOUT, WorkerPool, untimed

ROOT = Path(__file__).resolve().parents[1]
HOOKED = "tests.test_grader_bounded:handle_with_markers"


def handle_with_markers(task: dict) -> dict:
    """grading.grader.handle, except on tasks mentioning a marker:
    HANG runs a catastrophically backtracking regex (C code: no signal or alarm interrupts it, as in
    the fast path's normalization), SLEEP waits 2 s (a slow task that needs no CPU), DIE exits,
    LOAD spends 1.5 s in one-off start-up work (as the real handler's first sympy import)."""
    text = json.dumps(task)
    if "LOAD" in text:
        with untimed():
            time.sleep(1.5)
    if "HANG" in text:
        re.match(r"(a+)+$", "a" * 64 + "b")  # 2^64 steps
    if "SLEEP" in text:
        time.sleep(2.0)
    if "DIE" in text:
        os._exit(3)
    return handle(task)


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(HOOKED)
    p.run([{"op": "eq", "p": "1", "g": "1"}] * 4, workers=4, timeout=60)  # four workers started
    yield p
    p.close()


def _normal(n: int) -> list[tuple[str, str]]:
    return [(f"So the answer is \\boxed{{{i}}}.", str(i)) for i in range(n)]


def test_a_hang_in_the_fast_path_costs_its_limit_and_blocks_nothing(pool):
    pairs = _normal(10) + [("HANG \\boxed{5}", "5")] + _normal(10)
    for workers in (1, 2):
        t0 = time.monotonic()
        verdicts = grade_many(pairs, workers=workers, timeout=1.0, pool=pool)
        elapsed = time.monotonic() - t0
        assert verdicts[10].status == "timeout" and not verdicts[10].correct
        assert all(v.correct and v.status == "ok" for k, v in enumerate(verdicts) if k != 10)
        assert elapsed < 6, f"{elapsed:.1f}s with one 1s timeout among 21 rows on {workers} worker(s)"


def test_every_row_that_hangs_gets_a_timeout(pool):
    pairs = [("HANG \\boxed{1}", "1"), ("\\boxed{2}", "2"), ("HANG 3", "3"), ("\\boxed{4}", "5")]
    verdicts = grade_many(pairs, workers=2, timeout=1.0, pool=pool)
    assert [v.status for v in verdicts] == ["timeout", "ok", "timeout", "ok"]
    assert [v.correct for v in verdicts] == [False, True, False, False]


def test_a_worker_that_dies_costs_its_row_only(pool):
    verdicts = grade_many([("\\boxed{1}", "1"), ("DIE", "2"), ("\\boxed{3}", "3")], timeout=5.0, pool=pool)
    assert [v.status for v in verdicts] == ["ok", "timeout", "ok"]


def test_grouping_and_equivalence_are_bounded_too(pool):
    answers = ["\\frac12", "HANG", "0.5", None, "\\sqrt{2}", "\\frac{2}{\\sqrt{2}}", "HANG"]
    t0 = time.monotonic()
    # the fast grouping of all answers times out; each answer is probed alone; HANG stays alone
    assert group_equivalent(answers, timeout=1.0, workers=2, pool=pool) == [0, 1, 0, -1, 2, 2, 1]
    assert not is_equivalent("HANG", "HANG", timeout=1.0, pool=pool)
    assert time.monotonic() - t0 < 10


def test_calls_from_threads_run_concurrently(pool):
    """Four threads, each grading one row that takes 2 s: run one after another, the last call would
    wait 8 s; concurrently each takes about 2 s (the limit leaves room for a loaded machine)."""
    latencies: dict[int, float] = {}
    verdicts = {}

    def call(k: int) -> None:
        t0 = time.monotonic()
        verdicts[k] = grade_many([("SLEEP \\boxed{7}", "7")], timeout=10.0, pool=pool)[0]
        latencies[k] = time.monotonic() - t0

    threads = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert all(v.correct for v in verdicts.values()) and len(verdicts) == 4
    assert max(latencies.values()) < 5.0, latencies


def test_start_up_work_does_not_count_against_the_first_pair():
    """A fresh worker imports sympy on its first slow pair (about 1.5 s on a cold machine, 0.4 s on a
    warm one); the limit is the pair's own. Here the start-up work is a 1.5 s sleep, three limits long."""
    p = WorkerPool(HOOKED)
    try:
        t0 = time.monotonic()
        v = grade_many([("LOAD \\boxed{2\\sqrt{2}}", "\\sqrt{8}")], timeout=0.5, pool=p)[0]
        assert v.status == "ok" and v.correct
        assert time.monotonic() - t0 >= 1.5  # the start-up work did run within this call
    finally:
        p.close()


def test_a_fresh_worker_grades_a_sympy_pair_within_a_short_limit():
    p = WorkerPool()
    try:
        v = grade_many([("\\boxed{2\\sqrt{2}}", "\\sqrt{8}")], timeout=0.5, pool=p)[0]
        assert v.status == "ok" and v.correct
    finally:
        p.close()


def test_the_pool_checks_answers_in_order_and_reports_timeouts():
    p = WorkerPool(HOOKED)
    try:
        tasks = [{"op": "eq", "p": "HANG", "g": "1"}, {"op": "eq", "p": "2", "g": "2"}]
        assert p.run(tasks, timeout=1.0) == [TIMEOUT, {"eq": True, "i": 1}]
        got = list(p.imap([{"op": "eq", "p": str(k), "g": str(k)} for k in range(20)], workers=3, timeout=5.0))
        assert sorted(i for i, _ in got) == list(range(20)) and all(r["eq"] for _, r in got)
    finally:
        p.close()
    with pytest.raises(RuntimeError, match="closed"):
        p.run([{"op": "eq", "p": "1", "g": "1"}], timeout=1.0)


def test_a_broken_handler_is_reported():
    p = WorkerPool("tests.test_grader_bounded:no_such_function")
    try:
        with pytest.raises(RuntimeError, match="cannot load tests.test_grader_bounded:no_such_function"):
            p.run([{"op": "eq", "p": "1", "g": "1"}], timeout=1.0)
    finally:
        p.close()


# ------------------------------------------------------------------ the CLI: streaming and resuming


def _cli(inp: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grading.grade", "--input", str(inp), "--output", str(out), *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def test_cli_streams_verdicts_and_a_killed_run_resumes(tmp_path):
    inp, out = tmp_path / "cases.jsonl", tmp_path / "verdicts.jsonl"
    rows = [{"id": k, "completion": f"\\boxed{{{k}}}", "gold": str(k)} for k in range(3)]
    rows.append({"id": 3, "completion": "\\boxed{(x+1)^{100000}}", "gold": "x^2"})  # sympy expands for minutes
    rows += [{"id": k, "completion": f"The answer is {k}.", "gold": str(k + 1)} for k in (4, 5)]
    inp.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n{broken\n"
                   + "\n".join(json.dumps(r) for r in rows[2:]) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "grading.grade", "--input", str(inp), "--output", str(out),
                             "--timeout", "120"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 3):
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert out.read_text().count("\n") == 3, "the first three verdicts were not written while row 4 runs"
    finally:
        proc.kill()  # a crash: no clean-up runs
        proc.wait()
        proc.stderr.close()
        for pid in workers:  # the killed run's grading worker, in a session of its own
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    first = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["id"], r["input_line"], r["status"], r["correct"]) for r in first] == [
        (0, 1, "ok", True), (1, 2, "ok", True), (2, 4, "ok", True)]
    with open(out, "a") as f:
        f.write('{"id": 3, "input_li')  # a line cut off mid-write

    r = _cli(inp, out, "--timeout", "1")
    assert r.returncode == 0, r.stderr
    assert ":3: skipped, not JSON" in r.stderr and "dropping an unfinished last line" in r.stderr
    assert "'graded': 6, 'graded_now': 3" in r.stderr and "'skipped': {'bad_json': 1}" in r.stderr
    final = [json.loads(x) for x in out.read_text().splitlines()]
    assert final[:3] == first  # nothing already written is lost or graded again
    assert [(r["id"], r["status"], r["correct"]) for r in final[3:]] == [
        (3, "timeout", False), (4, "ok", False), (5, "ok", False)]

    r = _cli(inp, out)  # complete: nothing to grade
    assert r.returncode == 0 and "'graded_now': 0" in r.stderr
    assert [json.loads(x) for x in out.read_text().splitlines()] == final


def test_cli_refuses_an_output_written_for_other_input(tmp_path):
    inp, out = tmp_path / "cases.jsonl", tmp_path / "verdicts.jsonl"
    inp.write_text(json.dumps({"completion": "\\boxed{1}", "gold": "1"}) + "\n")
    assert _cli(inp, out).returncode == 0
    inp.write_text(json.dumps({"completion": "\\boxed{1}", "gold": "2"}) + "\n")
    r = _cli(inp, out)
    assert r.returncode != 0 and "written for a different completion or gold" in r.stderr
