"""The shared grader (grading.grader.grade_many) behind a wall-clock limit, for RL's reward.

An RL run grades hundreds of thousands of outputs from a policy that can write anything, and one
output that makes the grader hang (for instance catastrophic regex backtracking in code that runs in the
calling process) would stall the whole run forever. So the reward grades in one persistent child
process (a plain `python -c` subprocess speaking JSON lines, as grading.worker_pool's workers do): a batch
that exceeds its limit gets the child killed and replaced, and the batch is graded again one output at a
time, each with its own limit; an output that still exceeds it gets the grader's "timeout" status
(reward 0), is logged, and is counted. Otherwise the verdicts are exactly grade_many's, called with the
same options evaluation uses.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

TIMEOUT = "timeout"
STARTUP_LIMIT_S = 300.0
_ROOT = Path(__file__).resolve().parent.parent


def _grade_batch(request: dict) -> list[list]:
    from grading.grader import grade_many

    got = grade_many([tuple(p) for p in request["pairs"]], truncated=request["truncated"], **request["kwargs"])
    return [[bool(v.correct), v.pred, str(v.status)] for v in got]


def serve() -> None:
    """The child: announce readiness, then answer one JSON line per request until stdin closes."""
    import grading.grader  # noqa: F401  (imported before "ready": start-up never counts against a limit)

    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            reply = {"ok": _grade_batch(json.loads(line))}
        except Exception as e:  # reported to the parent, which raises it with context
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class GuardedGrader:
    """`grade(pairs, truncated, execute_code) -> [{correct, pred, status}]` with time limits.

    Limits (None: derived per call): an output gets `timeout` (+ `code_timeout` when programs run) + 2 s,
    a batch that plus 0.2 s per output + 5 s; grading 128 outputs normally takes 0.1-0.5 s.
    """

    def __init__(self, *, workers: int = 1, timeout: float = 5.0, code_timeout: float = 10.0,
                 batch_limit_s: float | None = None, item_limit_s: float | None = None,
                 entry: str = "rl.grading:serve"):
        self.kwargs = {"workers": workers, "timeout": timeout, "code_timeout": code_timeout}
        self.item_limit_s, self.batch_limit_s = item_limit_s, batch_limit_s
        self.entry = entry  # module:function the child runs (tests substitute one that hangs)
        self.timeouts = 0  # outputs that hit the limit, over the grader's lifetime
        self._proc: subprocess.Popen | None = None
        self._buf = b""

    # -- the child -------------------------------------------------------------------------------
    def _start(self) -> None:
        module, fn = self.entry.split(":")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "OPENBLAS_"))}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")])))
        self._proc = subprocess.Popen([sys.executable, "-c", f"from {module} import {fn}; {fn}()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=str(_ROOT),
                                      start_new_session=True)
        self._buf = b""
        if self._readline(STARTUP_LIMIT_S) is None:
            self.close()
            raise RuntimeError(f"the grader process did not start within {STARTUP_LIMIT_S:.0f}s")

    def _readline(self, limit: float) -> bytes | None:
        """The child's next line, or None if none came within `limit` seconds."""
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + limit
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"the grader process exited (code {self._proc.poll()})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def close(self) -> None:
        """Kill the child (and its process group)."""
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for f in (self._proc.stdin, self._proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self._proc.wait()
        self._proc = None

    def _call(self, pairs, truncated, execute_code: bool, limit: float) -> list[list]:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        request = {"pairs": [list(p) for p in pairs], "truncated": [bool(t) for t in truncated],
                   "kwargs": {**self.kwargs, "execute_code": execute_code}}
        self._proc.stdin.write((json.dumps(request) + "\n").encode())
        self._proc.stdin.flush()
        line = self._readline(limit)
        if line is None:
            self.close()
            raise TimeoutError(f"grading {len(pairs)} output(s) took longer than {limit:.0f}s")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"grading.grader.grade_many failed: {reply['error']}")
        return reply["ok"]

    # -- the interface ---------------------------------------------------------------------------
    def grade(self, pairs: Sequence[tuple[str, str]], truncated: Sequence[bool], *,
              execute_code: bool = False) -> list[dict]:
        if not pairs:
            return []
        item = self.item_limit_s or (self.kwargs["timeout"] + (self.kwargs["code_timeout"] if execute_code else 0) + 2)
        batch = self.batch_limit_s or (item + 0.2 * len(pairs) + 5)
        try:
            got = self._call(pairs, truncated, execute_code, batch)
        except TimeoutError as e:
            log.warning("%s: grading the batch again one output at a time", e)
            got = []
            for pair, cut in zip(pairs, truncated):
                try:
                    got += self._call([pair], [cut], execute_code, item)
                except TimeoutError:
                    self.timeouts += 1
                    log.warning("grader timeout (reward 0) on an output of %d chars, gold %r: %r...",
                                len(pair[0]), pair[1], pair[0][:200])
                    got.append([False, None, TIMEOUT])
        return [{"correct": c, "pred": p, "status": s} for c, p, s in got]
