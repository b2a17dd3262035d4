"""The one grader: RL rewards and evaluation scores both call this (DeepSeekMath §4.1, §5.2; DESIGN.md).

    from grading.grader import extract_answer, is_equivalent, grade, grade_many, group_equivalent, Verdict

`grade(completion, gold)` extracts the final answer (`grading.answer_extraction`) and compares it with
the gold answer (`grading.equivalence`), returning `Verdict(correct, pred, status)` where status is
- "ok": compared; `correct` says whether they are equivalent,
- "no_answer": the completion states no answer (empty, truncated, or nothing extractable),
- "unparseable_gold": the gold answer is empty, malformed or not understood (skip and count it;
  never reward against it),
- "timeout": the comparison (or the program run for a PoT answer) ran out of its time limit.

Cost: a cheap, sympy-free fast path (exact rationals, letters, words, identical LaTeX) runs in the
calling process and decides most pairs; only the rest go to `grading.worker_pool`, whose processes are
killed and replaced when a comparison exceeds `timeout`. So a pathological answer costs at most its
limit and never stalls a batch, from any thread.

PoT answers: with `execute_code=True`, a completion that has a ```python block but no boxed answer,
no answer statement and no ```output block is run in `grading.sandbox` and its printed output (last
line) is graded. Tool-integrated traces already carry their ```output blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from grading.answer_extraction import extract_answer, has_explicit_answer, last_python_block
from grading.equivalence import compare, gold_is_malformed, number_key
from grading.worker_pool import TIMEOUT, shared_pool

__all__ = ["Verdict", "extract_answer", "is_equivalent", "grade", "grade_many", "group_equivalent", "STATUSES"]

log = logging.getLogger(__name__)

STATUSES = ("ok", "no_answer", "unparseable_gold", "timeout")
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_CODE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Verdict:
    correct: bool
    pred: str | None
    status: str

    def to_dict(self) -> dict:
        return asdict(self)


def grade(completion: str, gold: str, *, timeout: float = DEFAULT_TIMEOUT_S, execute_code: bool = False,
          truncated: bool = False, code_timeout: float = DEFAULT_CODE_TIMEOUT_S) -> Verdict:
    """Grade one completion against its gold answer (see the module docstring).

    `truncated=True` (generation hit its length limit) accepts only an explicitly stated answer,
    never the last number of an unfinished solution.
    """
    return grade_many([(completion, gold)], timeout=timeout, execute_code=execute_code,
                      truncated=[truncated], code_timeout=code_timeout)[0]


def grade_many(pairs: Sequence[tuple[str, str]], *, workers: int = 1, timeout: float = DEFAULT_TIMEOUT_S,
               execute_code: bool = False, truncated: Sequence[bool] | None = None,
               code_timeout: float = DEFAULT_CODE_TIMEOUT_S) -> list[Verdict]:
    """Grade (completion, gold) pairs; slow comparisons run on `workers` processes in parallel."""
    n = len(pairs)
    if truncated is not None and len(truncated) != n:
        raise ValueError(f"grade_many: {len(truncated)} truncation flags for {n} pairs")
    # A numeric gold (from JSON) is graded as written; any other non-string gold is unparseable.
    pairs = [(c, str(g) if isinstance(g, (int, float)) and not isinstance(g, bool) else g) for c, g in pairs]
    preds = [_extract(c if isinstance(c, str) else "", bool(truncated and truncated[i]))
             for i, (c, _) in enumerate(pairs)]
    verdicts: list[Verdict | None] = [None] * n
    if execute_code:
        _run_programs(pairs, preds, verdicts, workers, code_timeout)

    slow: list[int] = []
    for i, (_, gold) in enumerate(pairs):
        if verdicts[i] is not None:
            continue
        if not isinstance(gold, str) or gold_is_malformed(gold):
            verdicts[i] = Verdict(False, preds[i], "unparseable_gold")
        elif preds[i] is None:
            verdicts[i] = Verdict(False, None, "no_answer")
        else:
            fast = compare(preds[i], gold, use_sympy=False)
            if fast is None:
                slow.append(i)
            else:
                verdicts[i] = Verdict(fast, preds[i], "ok")

    tasks = [{"pred": preds[i], "gold": pairs[i][1], "check_gold": True} for i in slow]
    for i, result in zip(slow, shared_pool().run(tasks, workers=workers, timeout=timeout)):
        if result == TIMEOUT or result.get("exhausted"):
            verdicts[i] = Verdict(False, preds[i], "timeout")
        elif not result.get("gold_ok", True):
            verdicts[i] = Verdict(False, preds[i], "unparseable_gold")
        else:
            verdicts[i] = Verdict(bool(result["eq"]), preds[i], "ok")
    return verdicts  # type: ignore[return-value]


def is_equivalent(pred: str | None, gold: str | None, *, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether two final answers are the same mathematical object (False on timeout or None)."""
    if pred is None or gold is None:
        return False
    fast = compare(pred, gold, use_sympy=False)
    if fast is not None:
        return fast
    result = shared_pool().run([{"pred": pred, "gold": gold}], workers=1, timeout=timeout)[0]
    return result != TIMEOUT and bool(result["eq"])  # out of time or memory: not shown equal


def group_equivalent(answers: Sequence[str | None], *, timeout: float = DEFAULT_TIMEOUT_S,
                     workers: int = 1) -> list[int]:
    """Equivalence-class id per answer for Maj@K (paper §5.2.2); None answers get -1.

    Ids are 0, 1, 2, ... in order of first appearance. Each distinct answer is compared with the
    earlier distinct ones (fast path first, the rest in one pooled batch), and equal pairs are merged.
    """
    distinct: list[str] = []
    index: dict[str, int] = {}
    for a in answers:
        if a is not None and a not in index:
            index[a] = len(distinct)
            distinct.append(a)
    parent = list(range(len(distinct)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    # Plain numbers are grouped by exact value; only other pairs are compared one by one.
    keys = [number_key(a) for a in distinct]
    first_with_value: dict = {}
    for j, key in enumerate(keys):
        if key is not None:
            parent[j] = first_with_value.setdefault(key, j)
    slow: list[tuple[int, int]] = []
    for j in range(len(distinct)):
        if parent[j] != j:
            continue
        for i in range(j):
            if parent[i] != i or (keys[i] is not None and keys[j] is not None):
                continue
            fast = compare(distinct[j], distinct[i], use_sympy=False)
            if fast:
                parent[find(j)] = find(i)
            elif fast is None:
                slow.append((j, i))
    tasks = [{"pred": distinct[j], "gold": distinct[i]} for j, i in slow]
    for (j, i), result in zip(slow, shared_pool().run(tasks, workers=workers, timeout=timeout)):
        if result != TIMEOUT and result["eq"]:
            parent[find(j)] = find(i)

    class_of_root: dict[int, int] = {}
    ids = []
    for a in answers:
        if a is None:
            ids.append(-1)
            continue
        root = find(index[a])
        ids.append(class_of_root.setdefault(root, len(class_of_root)))
    return ids


_MODULES = ("grader.py", "answer_extraction.py", "normalize.py", "equivalence.py", "sympy_compare.py",
            "worker_pool.py", "sandbox.py", "sandbox_child.py")


def __getattr__(name: str):
    """`GRADER_VERSION`: a hash of the grader's sources, recorded beside every score (computed lazily)."""
    if name == "GRADER_VERSION":
        import hashlib
        from pathlib import Path

        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for module in _MODULES:
            h.update(module.encode() + b"\0" + (here / module).read_bytes())
        globals()["GRADER_VERSION"] = version = f"sha256:{h.hexdigest()[:16]}"
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _extract(completion: str, truncated: bool) -> str | None:
    if truncated and not (completion and has_explicit_answer(completion)):
        return None
    return extract_answer(completion)


def _run_programs(pairs, preds, verdicts, workers: int, code_timeout: float) -> None:
    """PoT: run the last ```python block of completions that state no answer; grade its output."""
    from grading.sandbox import run_code

    jobs = {}
    for i, (completion, _) in enumerate(pairs):
        if completion and not has_explicit_answer(completion):
            code = last_python_block(completion)
            if code is not None:
                jobs[i] = code
    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        results = dict(zip(jobs, ex.map(lambda code: run_code(code, timeout=code_timeout), jobs.values())))
    for i, result in results.items():
        lines = [ln.strip() for ln in result.stdout.splitlines() if ln.strip()]
        if result.status == "timeout":
            verdicts[i] = Verdict(False, None, "timeout")
        elif result.status != "ok" or not lines:
            preds[i] = None
        else:
            preds[i] = lines[-1]
