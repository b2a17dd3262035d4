"""Rule-based rewards for GRPO, chosen by name in config (`rl.rewards: {correctness: 1.0, format: 0.1}`).

The paper trains GRPO against a learned reward model (§4.2); our reward is rule-based, as DESIGN.md
("RL") fixes: the final answer checked by the *same* grader evaluation uses (`grading.grader.grade_many`,
called with the same options evaluation uses, truncation rule included; it bounds each output's time, so
one pathological output cannot stall a run; rl/grading.py adapts it), so RL optimizes exactly what
eval measures. Program-of-thought completions are graded by running their program in the sandbox
(the grader's `execute_code` option).

Terms (each logged separately, the weighted sum is the reward):
- `correctness`: 1 if the final answer is equivalent to the gold, else 0. A gold answer the grader
  cannot parse (status `unparseable_gold`) is *skipped and counted*: the output gets no reward at all
  (`None`), and the rollout leaves its group out of the loss.
- `format`: 1 if the completion states a final answer the grader can read (a \\boxed{} for CoT and
  tool, a program with output for PoT) and was not cut off, else 0.

Process supervision (§4.1.2) needs step rewards; `step_rewards_arithmetic` is a rule-based one: every
sentence or line of a solution with an equation (a whole arithmetic expression = a number; rl/arithmetic_steps.py)
is a step, rewarded 1 if its arithmetic is right, else 0, and the last step is rewarded with the outcome. (The paper's steps were scored by a learned process
reward model; this rule is ours.)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rl.arithmetic_steps import check_equations
from rl.grading import RewardGrader

log = logging.getLogger(__name__)

UNPARSEABLE_GOLD = "unparseable_gold"


@dataclass
class RewardInput:
    """What a reward term sees: the completions of a rollout batch and their golds (flat, aligned)."""

    texts: list[str]
    golds: list[str]
    finish_reasons: list[str]
    grader: RewardGrader
    fmt: str = "cot"
    _verdicts: list[dict] | None = None

    @property
    def verdicts(self) -> list[dict]:
        """The shared grader's verdicts ({pred, correct, status}), computed once for all terms.

        Graded exactly as evaluation grades (eval.run): an output cut at max_new_tokens counts only
        with an explicitly stated answer (`truncated=True`), and PoT programs are run (`execute_code`).
        """
        if self._verdicts is None:
            truncated = [f == "length" for f in self.finish_reasons]
            self._verdicts = self.grader.grade(list(zip(self.texts, self.golds)), truncated,
                                               execute_code=self.fmt == "pot")
        return self._verdicts


def correctness_reward(inp: RewardInput) -> list[float | None]:
    """1/0 from the shared grader; None (skipped) where the gold itself cannot be parsed."""
    return [None if v["status"] == UNPARSEABLE_GOLD else float(bool(v["correct"])) for v in inp.verdicts]


def format_reward(inp: RewardInput) -> list[float | None]:
    """1 if the completion ends with an answer the grader can read and was not truncated."""
    out: list[float | None] = []
    for v, fin in zip(inp.verdicts, inp.finish_reasons):
        if v["status"] == UNPARSEABLE_GOLD:
            out.append(None)
        else:
            out.append(float(v["pred"] is not None and fin != "length"))
    return out


REWARDS: dict[str, Callable[[RewardInput], list[float | None]]] = {
    "correctness": correctness_reward,
    "format": format_reward,
}


@dataclass
class Scores:
    total: list[float | None]  # weighted sum per completion; None: skipped (unparseable gold)
    terms: dict[str, list[float | None]]  # each term's raw value per completion
    correct: list[bool]
    statuses: list[str]

    @property
    def skipped(self) -> int:
        return sum(t is None for t in self.total)


class RewardFunction:
    """A weighted sum of registered terms: `RewardFunction({"correctness": 1.0, "format": 0.1})`."""

    def __init__(self, weights: dict[str, float], *, workers: int = 1, timeout: float = 5.0,
                 code_timeout: float = 10.0):
        unknown = sorted(set(weights) - set(REWARDS))
        if unknown:
            raise ValueError(f"unknown reward term(s) {unknown}: registered are {sorted(REWARDS)}")
        if not weights:
            raise ValueError("rl.rewards must name at least one reward term")
        self.weights = {k: float(v) for k, v in weights.items()}
        self.grader = RewardGrader(workers=workers, timeout=timeout, code_timeout=code_timeout)

    def __call__(self, texts: Sequence[str], golds: Sequence[str], finish_reasons: Sequence[str], *,
                 fmt: str = "cot") -> Scores:
        inp = RewardInput(list(texts), list(golds), list(finish_reasons), self.grader, fmt)
        terms = {name: REWARDS[name](inp) for name in self.weights}
        total: list[float | None] = []
        for i in range(len(texts)):
            vals = [terms[name][i] for name in self.weights]
            total.append(None if any(v is None for v in vals)
                         else sum(self.weights[n] * terms[n][i] for n in self.weights))
        verdicts = inp.verdicts
        return Scores(total=total, terms=terms, correct=[bool(v["correct"]) for v in verdicts],
                      statuses=[str(v["status"]) for v in verdicts])


# --- process supervision: rule-based step rewards ---------------------------------------------------

@dataclass
class Steps:
    ends: list[int]  # character offset (exclusive) where each step ends in the text
    rewards: list[float]


# A step ends at a sentence end (". " / "! " / "? ") or a line break; "3.5" has no space after its dot.
_STEP_END = re.compile(r"(?<=[.!?])[ \t]+|\n+")


def split_steps(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the non-empty steps of a solution."""
    spans, start = [], 0
    for m in _STEP_END.finditer(text):
        if text[start:m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def step_rewards_arithmetic(text: str, outcome: float) -> Steps:
    """Steps with an equation (`16 - 3 - 4 = 9`) are scored by their arithmetic (1 right, 0 wrong); the last
    step is scored with the outcome reward; other steps carry no reward of their own."""
    spans = split_steps(text)
    ends: list[int] = []
    rewards: list[float] = []
    for k, (a, b) in enumerate(spans):
        if k == len(spans) - 1:
            ends.append(b)
            rewards.append(float(outcome))
            continue
        verdicts = check_equations(text[a:b])
        if verdicts:
            ends.append(b)
            rewards.append(float(all(verdicts)))
    return Steps(ends=ends, rewards=rewards)


STEP_REWARDS: dict[str, Callable[[str, float], Steps]] = {"arithmetic": step_rewards_arithmetic}
