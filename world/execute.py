"""Run the generated programs and return what they really print.

Paper §3.1: PoT solutions are programs whose output is the answer, and tool-integrated solutions
interleave code with its real execution results. Every PoT program and every tool code block of the
problem family goes through here; world/problems.py compares the outputs with the gold answers.

Two backends:
- `batch` (default): one child Python process (isolated mode, in an empty temp dir, address space
  capped) runs all programs, each in a fresh namespace with its own stdout and a per-program time limit.
  Thousands of programs take about a second; one process per program would take minutes on 2 cores.
- `sandbox`: `grading.sandbox.run_code` once per program, the same sandbox that grades model outputs.
  Slower; `tests/test_world_problems.py` checks the two agree.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from tqdm import tqdm

from grading.sandbox import run_code

log = logging.getLogger(__name__)

BACKENDS = ("batch", "sandbox")

# Runs in the child: reads a JSON list of programs on stdin, writes a JSON list of results on stdout.
_WORKER = r"""
import contextlib, io, json, resource, signal, sys, traceback
timeout, memory_mb = float(sys.argv[1]), int(sys.argv[2])
limit = memory_mb * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
def on_alarm(signum, frame):
    raise TimeoutError(f"ran past {timeout}s")
signal.signal(signal.SIGALRM, on_alarm)
programs = json.load(sys.stdin)
results = []
for code in programs:
    out, err = io.StringIO(), io.StringIO()
    status = "ok"
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(code, "<program>", "exec"), {"__name__": "__main__"})
    except TimeoutError:
        status = "timeout"
    except BaseException:
        status = "error"
        err.write(traceback.format_exc(limit=2))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    results.append([status, out.getvalue(), err.getvalue()])
json.dump(results, sys.__stdout__)
"""


@dataclass(frozen=True)
class ExecResult:
    status: str  # "ok", "error", "timeout" (batch); whatever grading.sandbox reports (sandbox)
    stdout: str
    stderr: str


def run_programs(programs: list[str], backend: str = "batch", timeout: float = 5.0,
                 memory_mb: int = 1024) -> list[ExecResult]:
    """Execute each program; identical programs run once. Returns one result per program, in order."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown executor {backend!r}; expected one of {BACKENDS}")
    unique = list(dict.fromkeys(programs))
    log.info("executing %d programs (%d distinct) with the %s backend", len(programs), len(unique), backend)
    results = _run_batch(unique, timeout, memory_mb) if backend == "batch" else _run_sandbox(unique, timeout, memory_mb)
    by_code = dict(zip(unique, results))
    return [by_code[code] for code in programs]


def _run_batch(programs: list[str], timeout: float, memory_mb: int) -> list[ExecResult]:
    if not programs:
        return []
    with tempfile.TemporaryDirectory(prefix="world-exec-") as cwd:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _WORKER, str(timeout), str(memory_mb)],
            input=json.dumps(programs), capture_output=True, text=True, cwd=cwd,
            timeout=60 + timeout * len(programs),
        )
    if proc.returncode != 0:
        raise RuntimeError(f"program runner exited with {proc.returncode}: {proc.stderr[-2000:]}")
    rows = json.loads(proc.stdout)
    if len(rows) != len(programs):
        raise RuntimeError(f"program runner returned {len(rows)} results for {len(programs)} programs")
    return [ExecResult(*row) for row in rows]


def _run_sandbox(programs: list[str], timeout: float, memory_mb: int) -> list[ExecResult]:
    results = []
    for code in tqdm(programs, desc="sandbox", unit="prog", mininterval=5):
        res = run_code(code, timeout=timeout, memory_mb=memory_mb)
        results.append(ExecResult(str(res.status), res.stdout, res.stderr))
    return results
