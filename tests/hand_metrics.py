"""Greedy accuracy, Pass@K and Maj@K recomputed from samples.jsonl rows by formulas written out here,
independently of eval/metrics.py, for tests that check what the eval stage wrote.

Rows are those of samples.jsonl: problem_id, sample_index (-1 = the greedy completion), pred (the extracted
answer, None = no answer), correct. The vote is on the `pred` strings, not on the harness's vote classes.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021): 1 - C(n-c, k) / C(n, k), with exact binomials."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority(votes: list[str | None]) -> str | None:
    """Winner of one vote: the answer with the most votes; a tie goes to the one given first; None = no vote."""
    answered = [v for v in votes if v is not None]
    if not answered:
        return None
    best = max(answered.count(v) for v in answered)
    return next(v for v in answered if answered.count(v) == best)


def metrics(rows: list[dict], ks: list[int]) -> dict:
    """{"greedy", "pass@k": {K: v}, "maj@k": {K: v}, "num_problems", "n"}: means over problems, Maj@K over
    all C(n, K) subsets of each problem's n samples."""
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_problem[r["problem_id"]].append(r)
    greedy, passes, majs, ns = [], defaultdict(list), defaultdict(list), set()
    for samples in by_problem.values():
        greedy += [r["correct"] for r in samples if r["sample_index"] == -1]
        sampled = sorted((r for r in samples if r["sample_index"] >= 0), key=lambda r: r["sample_index"])
        n = len(sampled)
        ns.add(n)
        right = {r["pred"] for r in sampled if r["correct"]}
        c = sum(bool(r["correct"]) for r in sampled)
        for k in ks:
            passes[k].append(pass_at_k(n, c, k))
            votes = [majority([sampled[i]["pred"] for i in subset]) for subset in itertools.combinations(range(n), k)]
            majs[k].append(sum(v is not None and v in right for v in votes) / len(votes))
    if len(ns) > 1:
        raise AssertionError(f"problems have different numbers of samples: {sorted(ns)}")
    count = len(by_problem)
    return {"num_problems": count, "n": ns.pop() if ns else 0,
            "greedy": sum(greedy) / len(greedy) if greedy else None,
            "pass@k": {k: sum(v) / count for k, v in passes.items()},
            "maj@k": {k: sum(v) / count for k, v in majs.items()}}
