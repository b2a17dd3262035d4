"""The shared grader (eval.grader.grade_many) behind a wall-clock limit, for RL's reward.

An RL run grades hundreds of thousands of outputs from a policy that can write anything, and one
output that makes the grader hang (for instance catastrophic regex backtracking in code that runs in the
calling process) would stall the whole run forever. So the reward grades in one persistent child
process: a batch that exceeds its limit gets the child killed and replaced, and the batch is graded again
one output at a time, each with its own limit; an output that still exceeds it gets the grader's own
"timeout" status (reward 0), is logged, and is counted. The verdicts are otherwise exactly
grade_many's, called with the same options evaluation uses.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence

log = logging.getLogger(__name__)

TIMEOUT = "timeout"


def _serve(conn) -> None:
    """Child process: say it is ready, then grade batches until the pipe closes."""
    from eval.grader import grade_many

    conn.send(("ready", None))
    while True:
        try:
            pairs, truncated, kwargs = conn.recv()
        except EOFError:
            return
        try:
            got = grade_many(pairs, truncated=truncated, **kwargs)
            conn.send(("ok", [(bool(v.correct), v.pred, str(v.status)) for v in got]))
        except Exception as e:  # reported to the parent, which raises it with the context
            conn.send(("error", f"{type(e).__name__}: {e}"))


class GuardedGrader:
    """`grade(pairs, truncated, execute_code) -> [{pred, correct, status}]` with a time limit per batch."""

    def __init__(self, *, workers: int = 1, timeout: float = 5.0, code_timeout: float = 10.0,
                 batch_limit_s: float | None = None, item_limit_s: float | None = None, serve=_serve):
        self.kwargs = {"workers": workers, "timeout": timeout, "code_timeout": code_timeout}
        # The grader bounds each slow comparison (and program run) by its own timeouts; only a hang in
        # the calling process exceeds these. None: derived per call from the timeouts and the batch size.
        self.item_limit_s, self.batch_limit_s = item_limit_s, batch_limit_s
        self._serve = serve  # the child's loop (tests substitute one that hangs)
        self.timeouts = 0  # outputs that hit the limit, over the grader's lifetime
        self._ctx = multiprocessing.get_context("spawn")
        self._conn = None
        self._proc = None

    def _start(self, startup_limit_s: float = 300.0) -> None:
        """Start the child and wait until it has imported the grader (not counted in any limit)."""
        self._conn, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=self._serve, args=(child,), daemon=True, name="rl-grader")
        self._proc.start()
        child.close()
        if not self._conn.poll(startup_limit_s) or self._conn.recv()[0] != "ready":
            self._kill()
            raise RuntimeError(f"the grader process did not start within {startup_limit_s:.0f}s")

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._conn.close()
        self._proc = self._conn = None

    def close(self) -> None:
        self._kill()

    def _call(self, pairs, truncated, execute_code: bool, limit: float):
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send((list(pairs), list(truncated), {**self.kwargs, "execute_code": execute_code}))
        if not self._conn.poll(limit):
            self._kill()
            raise TimeoutError(f"grading {len(pairs)} output(s) took longer than {limit:.0f}s")
        kind, payload = self._conn.recv()
        if kind == "error":
            raise RuntimeError(f"eval.grader.grade_many failed: {payload}")
        return payload

    def grade(self, pairs: Sequence[tuple[str, str]], truncated: Sequence[bool], *,
              execute_code: bool = False) -> list[dict]:
        if not pairs:
            return []
        item = self.item_limit_s or (self.kwargs["timeout"] + (self.kwargs["code_timeout"] if execute_code else 0) + 2)
        batch = self.batch_limit_s or (item + 0.2 * len(pairs) + 5)  # grading 128 outputs takes ~0.1-0.5 s
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
                    got.append((False, None, TIMEOUT))
        return [{"correct": c, "pred": p, "status": s} for c, p, s in got]
