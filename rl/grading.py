"""The shared grader (grading.grader.grade_many) adapted for RL's reward.

An RL run grades hundreds of thousands of outputs from a policy that can write anything. The grader
already bounds each output's time (every step runs in a grading.worker_pool worker that is killed at
its limit), so this adapter only gives RL what it needs on top: a pool of its own, closed when the run
ends; verdicts as dicts; and a count of the outputs that hit the limit (status "timeout", reward 0),
each logged. The verdicts are exactly grade_many's, called with the options evaluation uses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from grading.grader import DEFAULT_CODE_TIMEOUT_S, DEFAULT_TIMEOUT_S, HANDLER, grade_many
from grading.worker_pool import WorkerPool

log = logging.getLogger(__name__)


class RewardGrader:
    """`grade(pairs, truncated, execute_code) -> [{correct, pred, status}]`, each output within `timeout`
    (+ `code_timeout` for a PoT program)."""

    def __init__(self, *, workers: int = 1, timeout: float = DEFAULT_TIMEOUT_S,
                 code_timeout: float = DEFAULT_CODE_TIMEOUT_S, handler: str = HANDLER):
        self.workers, self.timeout, self.code_timeout = workers, timeout, code_timeout
        self.pool = WorkerPool(handler)  # tests substitute a handler that hangs
        self.timeouts = 0  # outputs that hit the limit, over the grader's lifetime

    def grade(self, pairs: Sequence[tuple[str, str]], truncated: Sequence[bool], *,
              execute_code: bool = False) -> list[dict]:
        verdicts = grade_many(pairs, truncated=truncated, execute_code=execute_code, workers=self.workers,
                              timeout=self.timeout, code_timeout=self.code_timeout, pool=self.pool)
        for (completion, gold), v in zip(pairs, verdicts):
            if v.status == "timeout":
                self.timeouts += 1
                log.warning("grader timeout (reward 0) on an output of %d chars, gold %r: %r...",
                            len(completion) if isinstance(completion, str) else 0, gold,
                            completion[:200] if isinstance(completion, str) else completion)
        return [v.to_dict() for v in verdicts]

    def close(self) -> None:
        """Stop the pool's worker processes."""
        self.pool.close()
