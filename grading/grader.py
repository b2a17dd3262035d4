"""The one grader: RL rewards and evaluation scores both call this (DeepSeekMath §4.1, §5.2; DESIGN.md).

    from grading.grader import extract_answer, is_equivalent, grade, grade_many, group_equivalent, Verdict

`grade(completion, gold)` extracts the final answer (`grading.answer_extraction`) and compares it with
the gold answer (`grading.equivalence`), returning `Verdict(correct, pred, status)` where status is
- "ok": compared; `correct` says whether they are equivalent,
- "no_answer": the completion states no answer (empty, not a string, truncated, or nothing extractable),
- "unparseable_gold": the gold answer is empty, malformed or not understood (skip and count it;
  never reward against it; logged once per gold),
- "timeout": grading the pair (or the program run for a PoT answer) ran out of its time limit.

Bounded time: every step of grading a pair (extraction, the cheap sympy-free fast path, sympy) runs
in a `grading.worker_pool` worker, which is killed when the pair exceeds `timeout`. So a pathological
answer (sympy on `10^{10^{10}}`, a regex that backtracks for hours) costs at most its limit and never
stalls the other pairs, from any thread. The price is the trip to the worker: about 35 µs a pair with
a handler that does nothing, and on GSM8K's fast-path pairs 0.32-0.55 s pooled vs 0.16-0.31 s
in-process for 1319 pairs on one worker (benchmarks/bench_grader.py `pool_overhead`, on a shared
2-core machine); with two or more workers the fast path runs in parallel, which in-process it could
not. A worker imports sympy when a pair first needs it or when it sits idle, outside any pair's
limit. `grade_iter` yields verdicts as they finish (grading.grade streams them to disk).

PoT answers: with `execute_code=True`, a completion that has a ```python block but no boxed answer,
no answer statement and no ```output block is run in `grading.sandbox` (which bounds the program's
time itself) and its printed output (last line) is graded. Tool-integrated traces already carry their
```output blocks.

`GRADER_VERSION` is a hash of every source file of the grading package, recorded beside each score.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from grading.answer_extraction import extract_answer, has_explicit_answer, last_python_block
from grading.equivalence import compare, gold_is_malformed, gold_parses, number_key
from grading.sandbox import run_code
from grading.worker_pool import TIMEOUT, WorkerFatal, WorkerPool, shared_pool, untimed

__all__ = ["Verdict", "extract_answer", "is_equivalent", "grade", "grade_many", "grade_iter", "group_equivalent",
           "STATUSES", "GRADER_VERSION"]

log = logging.getLogger(__name__)

STATUSES = ("ok", "no_answer", "unparseable_gold", "timeout")
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_CODE_TIMEOUT_S = 10.0
HANDLER = "grading.grader:handle"


def source_version(package: Path = Path(__file__).resolve().parent) -> str:
    """sha256 over the names and contents of the package's *.py files, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha256:{h.hexdigest()[:16]}"


# Computed at import (reading ~15 small files, under a millisecond): the hash of the code this process
# actually loaded, not of whatever is on disk when a score is written later.
GRADER_VERSION = source_version()


@dataclass(frozen=True)
class Verdict:
    correct: bool
    pred: str | None
    status: str

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------ the caller's side


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
               code_timeout: float = DEFAULT_CODE_TIMEOUT_S, ids: Sequence | None = None,
               pool: WorkerPool | None = None) -> list[Verdict]:
    """Grade (completion, gold) pairs on up to `workers` processes; verdicts in input order."""
    verdicts: list[Verdict | None] = [None] * len(pairs)
    for i, verdict in grade_iter(pairs, workers=workers, timeout=timeout, execute_code=execute_code,
                                 truncated=truncated, code_timeout=code_timeout, ids=ids, pool=pool):
        verdicts[i] = verdict
    return verdicts  # type: ignore[return-value]


def grade_iter(pairs: Sequence[tuple[str, str]], *, workers: int = 1, timeout: float = DEFAULT_TIMEOUT_S,
               execute_code: bool = False, truncated: Sequence[bool] | None = None,
               code_timeout: float = DEFAULT_CODE_TIMEOUT_S, ids: Sequence | None = None,
               pool: WorkerPool | None = None) -> Iterator[tuple[int, Verdict]]:
    """(index, Verdict) per pair as each finishes. `ids` name the pairs in log lines (default: index)."""
    n = len(pairs)
    for name, seq in (("truncation flags", truncated), ("ids", ids)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"grade_many: {len(seq)} {name} for {n} pairs")
    pool = pool or shared_pool(HANDLER)
    golds = [_gold_text(g) for _, g in pairs]
    tasks = [{"op": "grade", "c": c if isinstance(c, str) else "", "g": golds[i],
              "t": bool(truncated and truncated[i]), "x": execute_code} for i, (c, _) in enumerate(pairs)]
    programs: dict[int, Future] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as executor:
        for i, reply in pool.imap(tasks, workers=workers, timeout=timeout):
            if isinstance(reply, dict) and "code" in reply:  # PoT: the program's output is the answer
                programs[i] = executor.submit(run_code, reply["code"], timeout=code_timeout)
                continue
            yield i, _verdict(reply, golds[i], i if ids is None else ids[i])
        outputs = {i: f.result() for i, f in programs.items()}
    preds: dict[int, str | None] = {}
    for i, result in outputs.items():
        lines = [ln.strip() for ln in result.stdout.splitlines() if ln.strip()]
        if result.status == "timeout":
            yield i, Verdict(False, None, "timeout")
        else:
            preds[i] = lines[-1] if result.status == "ok" and lines else None
    order = list(preds)
    tasks = [{"op": "pred", "p": preds[i], "g": golds[i]} for i in order]
    for k, reply in pool.imap(tasks, workers=workers, timeout=timeout):
        i = order[k]
        yield i, _verdict(reply, golds[i], i if ids is None else ids[i])


def is_equivalent(pred: str | None, gold: str | None, *, timeout: float = DEFAULT_TIMEOUT_S,
                  pool: WorkerPool | None = None) -> bool:
    """Whether two final answers are the same mathematical object (False on timeout or None)."""
    if not isinstance(pred, str) or not isinstance(gold, str):
        return False
    reply = (pool or shared_pool(HANDLER)).run([{"op": "eq", "p": pred, "g": gold}], timeout=timeout)[0]
    return _equal(reply)


def group_equivalent(answers: Sequence[str | None], *, timeout: float = DEFAULT_TIMEOUT_S, workers: int = 1,
                     pool: WorkerPool | None = None) -> list[int]:
    """Equivalence-class id per answer for Maj@K (paper §5.2.2); None answers get -1.

    Ids are 0, 1, 2, ... in order of first appearance. A worker groups the distinct answers with the
    fast path (plain numbers by exact value, other pairs compared one by one); the pairs only sympy can
    decide are then compared in parallel, and equal pairs are merged. If the fast grouping exceeds
    `timeout`, each answer is first checked alone (one that still exceeds it stays a class of its own).
    """
    pool = pool or shared_pool(HANDLER)
    distinct: list[str] = []
    index: dict[str, int] = {}
    for a in answers:
        if isinstance(a, str) and a not in index:
            index[a] = len(distinct)
            distinct.append(a)
    parent = list(range(len(distinct)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    slow: list[tuple[int, int]] = []
    if len(distinct) > 1:
        ok = list(range(len(distinct)))
        reply = pool.run([{"op": "group", "a": distinct}], timeout=timeout)[0]
        if not isinstance(reply, dict) or "parent" not in reply:
            probes = pool.run([{"op": "probe", "a": a} for a in distinct], workers=workers, timeout=timeout)
            ok = [j for j, r in enumerate(probes) if isinstance(r, dict) and "key" in r]
            log.warning("grouping %d answers exceeded %.1fs; %d answer(s) that do so alone stay classes of "
                        "their own: %r", len(distinct), timeout, len(distinct) - len(ok),
                        [distinct[j][:100] for j in set(range(len(distinct))) - set(ok)])
            reply = pool.run([{"op": "group", "a": [distinct[j] for j in ok]}], timeout=timeout)[0]
            if not isinstance(reply, dict) or "parent" not in reply:
                reply = {"parent": list(range(len(ok))), "slow": []}
        for j, p in enumerate(reply["parent"]):
            parent[find(ok[j])] = find(ok[p])
        slow = [(ok[j], ok[i]) for j, i in reply["slow"]]
    tasks = [{"op": "eq", "p": distinct[j], "g": distinct[i]} for j, i in slow]
    for k, reply in pool.imap(tasks, workers=workers, timeout=timeout):
        if _equal(reply):
            j, i = slow[k]
            parent[find(j)] = find(i)

    class_of_root: dict[int, int] = {}
    ids = []
    for a in answers:
        if not isinstance(a, str):
            ids.append(-1)
            continue
        root = find(index[a])
        ids.append(class_of_root.setdefault(root, len(class_of_root)))
    return ids


def _gold_text(gold) -> str | None:
    """A numeric gold (from JSON) is graded as written; any other non-string gold is unparseable."""
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        return str(gold)
    return gold if isinstance(gold, str) else None


_REPORTED_GOLDS: set[str | None] = set()
_REPORTED_LOCK = threading.Lock()


def _verdict(reply: dict | str, gold: str | None, pair_id) -> Verdict:
    """A worker's reply to a "grade"/"pred" task as a Verdict (running out of time or memory: timeout)."""
    if reply == TIMEOUT or reply.get("exhausted"):
        return Verdict(False, None, "timeout")
    if "error" in reply:
        raise RuntimeError(f"grading pair {pair_id} failed in the worker: {reply['error']}")
    if reply["status"] == "unparseable_gold":
        with _REPORTED_LOCK:
            first = gold not in _REPORTED_GOLDS
            _REPORTED_GOLDS.add(gold)
        if first:
            log.warning("unparseable gold answer %r (pair %s): skipped and counted, never rewarded",
                        gold if gold is None else gold[:200], pair_id)
    return Verdict(bool(reply["correct"]), reply["pred"], reply["status"])


def _equal(reply: dict | str) -> bool:
    """A worker's reply to an "eq" task: out of time, memory or luck (an error) is not shown equal."""
    return isinstance(reply, dict) and bool(reply.get("eq"))


# ------------------------------------------------------------------------------ the worker's side

_SYMPY_READY = False


def handle(task: dict) -> dict:
    """One task in a grading worker (grading.worker_pool runs this under a time limit).

    ops: "grade" {c: completion, g: gold or None, t: truncated, x: execute_code} -> {correct, pred, status}
    or {code} (a PoT program to run); "pred" {p, g} -> the same for a given prediction; "eq" {p, g} ->
    {eq}; "group" {a: answers} -> {parent, slow}; "probe" {a: answer} -> {key}.
    """
    op = task["op"]
    if op == "grade":
        completion = task["c"]
        if task["x"] and completion and not has_explicit_answer(completion):
            code = last_python_block(completion)
            if code is not None:
                return {"code": code}
        return _grade_pred(_extract(completion, task["t"]), task["g"])
    if op == "pred":
        return _grade_pred(task["p"], task["g"])
    if op == "eq":
        return {"eq": _equivalent(task["p"], task["g"])}
    if op == "group":
        return _fast_groups(task["a"])
    if op == "probe":
        return {"key": _key_text(number_key(task["a"]))}
    raise ValueError(f"unknown grading task {op!r}")


def _extract(completion: str, truncated: bool) -> str | None:
    if truncated and not (completion and has_explicit_answer(completion)):
        return None
    return extract_answer(completion)


def _grade_pred(pred: str | None, gold: str | None) -> dict:
    if gold is None or gold_is_malformed(gold):
        return {"correct": False, "pred": pred, "status": "unparseable_gold"}
    if pred is None:
        return {"correct": False, "pred": None, "status": "no_answer"}
    eq = compare(pred, gold, use_sympy=False)
    if eq is None:
        eq = _sympy_equivalent(pred, gold)
        if not eq and not gold_parses(gold):
            return {"correct": False, "pred": pred, "status": "unparseable_gold"}
    return {"correct": eq, "pred": pred, "status": "ok"}


def _equivalent(pred: str, gold: str) -> bool:
    eq = compare(pred, gold, use_sympy=False)
    return _sympy_equivalent(pred, gold) if eq is None else eq


def _sympy_equivalent(pred: str, gold: str) -> bool:
    _load_sympy()
    try:
        return bool(compare(pred, gold, use_sympy=True))
    except (MemoryError, RecursionError):
        raise
    except Exception as e:  # sympy internals failing on odd input: not shown equal
        log.debug("sympy comparison of %r and %r raised %s", pred[:100], gold[:100], e)
        return False


def _load_sympy() -> None:
    """Import sympy and the LaTeX parser and self-test them, outside any task's limit: on the first
    comparison that needs them, or earlier when the worker is idle (`warm_up`)."""
    global _SYMPY_READY
    if _SYMPY_READY:
        return
    with untimed():
        # Heavy (about 1 s): a worker that only sees fast-path pairs never pays it.
        sympy_compare = importlib.import_module("grading.sympy_compare")
        try:
            sympy_compare.self_test()
        except RuntimeError as e:
            raise WorkerFatal(str(e)) from e
    _SYMPY_READY = True


warm_up = _load_sympy  # grading.worker_pool calls this when a worker is idle


def _fast_groups(answers: list[str]) -> dict:
    """Union-find over `answers` by the fast path: {"parent": root index per answer, "slow": [[j, i], ...]
    pairs of roots only sympy can decide}."""
    parent = list(range(len(answers)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keys = [number_key(a) for a in answers]
    first_with_value: dict[Fraction, int] = {}
    for j, key in enumerate(keys):
        if key is not None:
            parent[j] = first_with_value.setdefault(key, j)
    slow: list[list[int]] = []
    for j in range(len(answers)):
        if parent[j] != j:
            continue
        for i in range(j):
            if parent[i] != i or (keys[i] is not None and keys[j] is not None):
                continue
            fast = compare(answers[j], answers[i], use_sympy=False)
            if fast:
                parent[find(j)] = find(i)
            elif fast is None:
                slow.append([j, i])
    return {"parent": [find(j) for j in range(len(answers))], "slow": slow}


def _key_text(key: Fraction | None) -> str | None:
    return None if key is None else str(key)
