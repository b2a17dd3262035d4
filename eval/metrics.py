"""Pass@K, Maj@K and greedy accuracy, computed from per-sample records (DeepSeekMath §4.3 / Figure 7).

Every number in `metrics.json` comes from `metrics_from_samples`, which reads only the rows written
to `samples.jsonl`; the CLI and the offline recomputation call the same function.

Definitions (one problem, n sampled completions, c of them correct):

- greedy: the temperature-0 completion (a separate sample, `sample_index == -1`) is correct.
- Pass@K: the unbiased estimator of Chen et al. (2021), 1 - C(n-c, K) / C(n, K): the chance that at
  least one of K completions drawn without replacement from the n is correct.
- Maj@K: majority vote over K completions. Answers are grouped into equivalence classes by the shared
  grader (`grading.grader.group_equivalent`, stored per sample as `vote_class`; -1 = no answer). The class
  with the most votes wins. **Ties** go to the tied class whose first member (lowest `sample_index`
  among the K voters) comes first, i.e. the answer the model produced earliest. **No-answer samples never
  win**: they cast no vote, and if none of the K has an answer the vote is wrong. The vote is right when
  the winning class is correct; a class's correctness is that of its lowest-index member over all n
  samples (members of one class are equivalent, so they agree unless the grader is not transitive;
  such classes are counted in `vote_classes_inconsistent`).
  When n > K, Maj@K is the mean over size-K subsets of the n samples: all C(n, K) of them when there
  are at most `maj_subsets`, otherwise `maj_subsets` subsets drawn uniformly at random with a seed
  derived from (`seed`, problem position, K), so the number is reproducible.

Benchmark numbers are means over problems; the MATH breakdown repeats them per subject and per level.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

GREEDY_INDEX = -1  # `sample_index` of the greedy (temperature-0) completion in samples.jsonl
NO_ANSWER = -1  # `vote_class` of a sample without an extracted answer
DEFAULT_MAJ_SUBSETS = 200


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@K estimate 1 - C(n-c, k)/C(n, k) for n samples of which c are correct.

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which avoids huge binomials (Chen et al., 2021).
    """
    if not (0 <= c <= n):
        raise ValueError(f"pass@k: need 0 <= c <= n, got n={n}, c={c}")
    if not (1 <= k <= n):
        raise ValueError(f"pass@k: need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def class_correctness(vote_classes: Sequence[int], correct: Sequence[bool]) -> tuple[dict[int, bool], int]:
    """Correctness of each answer class = that of its lowest-index member; also count inconsistent classes."""
    first: dict[int, bool] = {}
    seen: dict[int, set[bool]] = defaultdict(set)
    for cls, ok in zip(vote_classes, correct):
        if cls == NO_ANSWER:
            continue
        first.setdefault(cls, bool(ok))
        seen[cls].add(bool(ok))
    return first, sum(1 for v in seen.values() if len(v) > 1)


def majority_vote(vote_classes: Sequence[int]) -> int:
    """Winning class of one vote (samples in `sample_index` order); NO_ANSWER if nobody answered.

    Most votes wins; a tie goes to the tied class that appears first; NO_ANSWER never wins.
    """
    counts = Counter(c for c in vote_classes if c != NO_ANSWER)
    if not counts:
        return NO_ANSWER
    best = max(counts.values())
    return next(c for c in vote_classes if c != NO_ANSWER and counts[c] == best)


def maj_at_k(vote_classes: Sequence[int], correct: Sequence[bool], k: int, *,
             max_subsets: int = DEFAULT_MAJ_SUBSETS, rng: np.random.Generator | None = None) -> float:
    """Maj@K for one problem: mean correctness of the majority vote over size-K subsets of the n samples.

    `vote_classes[i]` / `correct[i]` belong to sample i (in `sample_index` order). Exact (all subsets)
    when C(n, K) <= max_subsets, else a mean over `max_subsets` random subsets drawn with `rng`.
    """
    n = len(vote_classes)
    if len(correct) != n:
        raise ValueError(f"maj@k: {n} vote classes but {len(correct)} correctness flags")
    if not (1 <= k <= n):
        raise ValueError(f"maj@k: need 1 <= k <= n, got k={k}, n={n}")
    cls_ok, _ = class_correctness(vote_classes, correct)
    if not cls_ok:
        return 0.0
    subsets = _subsets(n, k, max_subsets, rng)  # (R, k) sample indices, each row sorted ascending
    winners = _vote_winners(np.asarray(vote_classes, dtype=np.int64), subsets)  # (R,)
    ok = np.array([cls_ok.get(int(w), False) for w in winners], dtype=np.float64)
    return float(ok.mean())


def _subsets(n: int, k: int, max_subsets: int, rng: np.random.Generator | None) -> np.ndarray:
    if k == n:
        return np.arange(n)[None, :]
    if math.comb(n, k) <= max_subsets:
        return np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
    if rng is None:
        raise ValueError("maj@k: an rng is needed to draw random subsets when C(n, k) > max_subsets")
    # A uniformly random k-subset per row: the first k positions of a random permutation.
    perm = np.argsort(rng.random((max_subsets, n)), axis=1)[:, :k]
    return np.sort(perm, axis=1)


def _vote_winners(classes: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Vectorised `majority_vote` over many subsets. classes: (n,), subsets: (R, k) -> (R,) winners."""
    votes = classes[subsets]  # (R, k), in sample_index order within each row
    m = int(classes.max()) + 1 if classes.size and classes.max() >= 0 else 0
    if m == 0:
        return np.full(len(subsets), NO_ANSWER)
    R, k = votes.shape
    counts = np.zeros((R, m), dtype=np.int64)
    first = np.full((R, m), k, dtype=np.int64)  # first position of each class in the row (k = absent)
    rows = np.repeat(np.arange(R), k)
    pos = np.tile(np.arange(k), R)
    flat = votes.ravel()
    has = flat != NO_ANSWER
    np.add.at(counts, (rows[has], flat[has]), 1)
    np.minimum.at(first, (rows[has], flat[has]), pos[has])
    # Lexicographic (most votes, earliest first member); classes with no vote score -1.
    score = np.where(counts > 0, counts * (k + 1) + (k - first), -1)
    winners = score.argmax(axis=1)
    return np.where(score.max(axis=1) < 0, NO_ANSWER, winners)


def summarize_problems(rows: Sequence[dict], k_list: Sequence[int]) -> dict:
    """Mean of per-problem metric rows ({greedy, pass@k: {K: v}, maj@k: {K: v}}) -> one metrics block.

    `stderr` holds the standard error of each mean over problems (sample std / sqrt(#problems)), the
    uncertainty that comes from the finite benchmark.
    """
    def mean_se(values: list[float]) -> tuple[float | None, float | None]:
        if not values:
            return None, None
        v = np.asarray(values, dtype=np.float64)
        se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
        return float(v.mean()), se

    out: dict = {"num_problems": len(rows)}
    stderr: dict = {}
    out["greedy"], stderr["greedy"] = mean_se([float(r["greedy"]) for r in rows if r["greedy"] is not None])
    for key in ("pass@k", "maj@k"):
        out[key], stderr[key] = {}, {}
        for k in k_list:
            out[key][str(k)], stderr[key][str(k)] = mean_se([r[key][str(k)] for r in rows])
    out["stderr"] = stderr
    return out


def metrics_from_samples(samples: Iterable[dict], k_list: Sequence[int], *, seed: int = 0,
                         maj_subsets: int = DEFAULT_MAJ_SUBSETS, breakdown_keys: Sequence[str] = ("subject", "level"),
                         ) -> dict:
    """Every metric of a benchmark run, from the rows of samples.jsonl.

    A row has `problem_id`, `sample_index` (-1 = greedy), `correct`, `status`, `vote_class` and, where the
    benchmark has them, `subject` / `level`. Problems are taken in order of first appearance. Every
    problem must have the same number n of sampled rows (indices 0..n-1); every K must be <= n.
    Returns {num_problems, n, k, greedy, pass@k, maj@k, stderr, status_counts, vote_classes_inconsistent,
    maj_subsets, breakdown, per_problem} (per_problem: `ids` and each metric's per-problem values).
    """
    by_problem: dict[str, dict] = {}
    status = {"greedy": Counter(), "sampled": Counter()}
    for i, row in enumerate(samples):
        for key in ("problem_id", "sample_index", "correct", "status"):
            if key not in row:
                raise ValueError(f"sample row {i}: missing field {key!r}")
        p = by_problem.setdefault(str(row["problem_id"]), {"greedy": None, "sampled": {}, "meta": {}})
        for key in breakdown_keys:
            if row.get(key) is not None:
                p["meta"][key] = row[key]
        idx = int(row["sample_index"])
        if idx == GREEDY_INDEX:
            p["greedy"] = bool(row["correct"])
            status["greedy"][row["status"]] += 1
            continue
        if "vote_class" not in row:
            raise ValueError(f"sample row {i} ({row['problem_id']}/{idx}): missing field 'vote_class'")
        if idx in p["sampled"]:
            raise ValueError(f"sample row {i}: duplicate sample_index {idx} for problem {row['problem_id']!r}")
        p["sampled"][idx] = (int(row["vote_class"]), bool(row["correct"]))
        status["sampled"][row["status"]] += 1

    ns = {len(p["sampled"]) for p in by_problem.values()}
    if len(ns) > 1:
        raise ValueError(f"samples: problems have different numbers of samples: {sorted(ns)}")
    n = ns.pop() if ns else 0
    k_list = sorted({int(k) for k in k_list})
    if n and any(k > n for k in k_list):
        raise ValueError(f"samples: K={max(k_list)} > n={n} samples per problem")
    if n == 0:
        k_list = []

    per_problem, inconsistent = [], 0
    for pos, (pid, p) in enumerate(by_problem.items()):
        if sorted(p["sampled"]) != list(range(n)):
            raise ValueError(f"samples: problem {pid!r} has sample indices {sorted(p['sampled'])[:5]}..., "
                             f"expected 0..{n - 1}")
        votes = [p["sampled"][j][0] for j in range(n)]
        correct = [p["sampled"][j][1] for j in range(n)]
        inconsistent += class_correctness(votes, correct)[1]
        c = sum(correct)
        row = {"greedy": p["greedy"], "meta": p["meta"], "pass@k": {}, "maj@k": {}}
        for k in k_list:
            rng = np.random.default_rng([seed, pos, k])
            row["pass@k"][str(k)] = pass_at_k(n, c, k)
            row["maj@k"][str(k)] = maj_at_k(votes, correct, k, max_subsets=maj_subsets, rng=rng)
        per_problem.append(row)

    out = summarize_problems(per_problem, k_list)
    out.update({
        "n": n,
        "k": k_list,
        "maj_subsets": maj_subsets,
        "status_counts": {k: dict(sorted(v.items())) for k, v in status.items()},
        "vote_classes_inconsistent": inconsistent,
    })
    breakdown = {}
    for key in breakdown_keys:
        groups: dict[str, list[dict]] = defaultdict(list)
        for row in per_problem:
            if key in row["meta"]:
                groups[str(row["meta"][key])].append(row)
        if groups:
            breakdown[key] = {g: summarize_problems(rows, k_list) for g, rows in sorted(groups.items())}
    out["breakdown"] = breakdown
    # Per-problem columns (aligned with `ids`), so two evaluations of the same problems can be compared
    # pair by pair (pipeline/report_headline.py: the s.e. of a paired difference).
    out["per_problem"] = {
        "ids": list(by_problem),
        "greedy": [None if r["greedy"] is None else int(r["greedy"]) for r in per_problem],
        **{key: {str(k): [round(r[key][str(k)], 6) for r in per_problem] for k in k_list}
           for key in ("pass@k", "maj@k")},
    }
    return out
