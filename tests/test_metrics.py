"""Pass@K against brute-force enumeration; Maj@K on hand-made vote tables (ties, no-answer samples)."""

import itertools
import math

import numpy as np
import pytest

from eval.metrics import (
    NO_ANSWER,
    maj_at_k,
    majority_vote,
    metrics_from_samples,
    pass_at_k,
)


def brute_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_pass_at_k_equals_brute_force(n):
    for c in range(n + 1):
        correct = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(correct, k), abs=1e-12), (n, c, k)


def test_pass_at_k_closed_form_large_n():
    # 1 - C(n-c,k)/C(n,k) with exact integers, against the product form, at paper scale (n=64).
    for c in (0, 1, 7, 40, 63, 64):
        for k in (1, 4, 16, 64):
            exact = 1 - math.comb(64 - c, k) / math.comb(64, k)
            assert pass_at_k(64, c, k) == pytest.approx(exact, abs=1e-12)
    assert pass_at_k(64, 1, 1) == pytest.approx(1 / 64)


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 0)


A, B, C, X = 0, 1, 2, NO_ANSWER


@pytest.mark.parametrize(
    "votes, winner",
    [
        ([A, A, B], A),  # plain majority
        ([B, A, A], A),  # majority beats first position
        ([B, A, A, B], B),  # 2-2 tie: B appears first
        ([A, B, B, A], A),  # 2-2 tie: A appears first
        ([X, X, X, B], B),  # no-answer samples cast no vote, even when they are the majority
        ([X, X, X], X),  # nobody answered: no winner
        ([X, C, B, B, C], C),  # tie between C and B; C's first member comes first
        ([], X),
    ],
)
def test_majority_vote_table(votes, winner):
    assert majority_vote(votes) == winner


def test_maj_at_k_full_vote():
    # n == k: one vote over everything; correctness of the winning class.
    assert maj_at_k([A, A, B], [True, True, False], 3) == 1.0
    assert maj_at_k([B, A, A, B], [False, True, True, False], 4) == 0.0  # tie -> B (first), B is wrong
    assert maj_at_k([X, X, X, A], [False, False, False, True], 4) == 1.0  # no-answers never win
    assert maj_at_k([X, X], [False, False], 2) == 0.0  # no answer at all -> wrong


def brute_maj_at_k(votes, correct, k):
    cls_ok = {}
    for v, ok in zip(votes, correct):
        if v != X:
            cls_ok.setdefault(v, ok)
    subsets = list(itertools.combinations(range(len(votes)), k))
    return sum(cls_ok.get(majority_vote([votes[i] for i in s]), False) for s in subsets) / len(subsets)


def test_maj_at_k_exact_subset_average_hand_table():
    # votes A A B X, A correct. k=2 subsets (6): AA->A, AB->A(tie, A first), AX->A, AB->A, AX->A, BX->B
    votes, correct = [A, A, B, X], [True, True, False, False]
    assert maj_at_k(votes, correct, 2) == pytest.approx(5 / 6)
    # k=1: the single vote; X never wins -> 2/4 correct
    assert maj_at_k(votes, correct, 1) == pytest.approx(2 / 4)


def test_maj_at_k_vectorised_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(1, 8))
        votes = [int(v) for v in rng.integers(-1, 3, size=n)]
        correct_cls = {0: True, 1: False, 2: bool(rng.integers(0, 2))}
        correct = [v != X and correct_cls[v] for v in votes]
        for k in range(1, n + 1):
            got = maj_at_k(votes, correct, k, max_subsets=10_000)
            assert got == pytest.approx(brute_maj_at_k(votes, correct, k)), (votes, k)


def test_maj_at_k_random_subsets_are_seeded_and_close_to_exact():
    rng = np.random.default_rng(1)
    votes = [int(v) for v in rng.integers(-1, 4, size=16)]
    correct = [v == 0 for v in votes]
    exact = maj_at_k(votes, correct, 4, max_subsets=10_000)  # C(16,4)=1820: all subsets
    a = maj_at_k(votes, correct, 4, max_subsets=500, rng=np.random.default_rng(7))
    b = maj_at_k(votes, correct, 4, max_subsets=500, rng=np.random.default_rng(7))
    assert a == b
    assert a == pytest.approx(exact, abs=0.07)
    with pytest.raises(ValueError, match="rng"):
        maj_at_k(votes, correct, 4, max_subsets=10)


def _rows(pid, votes, correct, greedy, **meta):
    rows = [{"problem_id": pid, "sample_index": -1, "correct": greedy, "status": "correct" if greedy else "wrong",
             "vote_class": None, **meta}]
    for i, (v, ok) in enumerate(zip(votes, correct)):
        rows.append({"problem_id": pid, "sample_index": i, "correct": ok, "vote_class": v,
                     "status": "no_answer" if v == X else ("correct" if ok else "wrong"), **meta})
    return rows


def test_metrics_from_samples_aggregates_and_breaks_down():
    samples = (_rows("p1", [A, A, B, X], [True, True, False, False], True, subject="Algebra", level=1)
               + _rows("p2", [B, A, B, X], [False, True, False, False], False, subject="Geometry", level=1)
               + _rows("p3", [X, X, X, X], [False] * 4, False, subject="Algebra", level=3))
    m = metrics_from_samples(samples, [1, 2, 4])
    assert m["n"] == 4 and m["num_problems"] == 3 and m["k"] == [1, 2, 4]
    assert m["greedy"] == pytest.approx(1 / 3)
    # standard error over problems: greedy = [1, 0, 0] -> std (ddof 1) sqrt(1/3) / sqrt(3) = 1/3
    assert m["stderr"]["greedy"] == pytest.approx(1 / 3)
    assert m["stderr"]["maj@k"]["4"] == pytest.approx(np.std([1, 0, 0], ddof=1) / np.sqrt(3))
    assert m["pass@k"]["1"] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3)
    assert m["pass@k"]["4"] == pytest.approx(2 / 3)
    # p1: maj@4 -> A (right); p2: B,A,B -> B (wrong); p3: no answers -> wrong
    assert m["maj@k"]["4"] == pytest.approx(1 / 3)
    assert m["status_counts"]["sampled"] == {"correct": 3, "no_answer": 6, "wrong": 3}
    assert m["status_counts"]["greedy"] == {"correct": 1, "wrong": 2}
    alg = m["breakdown"]["subject"]["Algebra"]
    assert alg["num_problems"] == 2 and alg["greedy"] == pytest.approx(0.5)
    assert m["breakdown"]["level"]["1"]["maj@k"]["4"] == pytest.approx(0.5)
    # per-problem columns, in problem order: what the report pairs between two evaluations
    pp = m["per_problem"]
    assert pp["ids"] == ["p1", "p2", "p3"] and pp["greedy"] == [1, 0, 0]
    assert pp["pass@k"]["1"] == [0.5, 0.25, 0.0] and pp["maj@k"]["4"] == [1.0, 0.0, 0.0]


def test_metrics_from_samples_rejects_inconsistent_input():
    good = _rows("p1", [A, B], [True, False], True)
    with pytest.raises(ValueError, match="K=4 > n=2"):
        metrics_from_samples(good, [1, 4])
    uneven = good + _rows("p2", [A], [True], True)
    with pytest.raises(ValueError, match="different numbers of samples"):
        metrics_from_samples(uneven, [1])
    with pytest.raises(ValueError, match="missing field 'correct'"):
        metrics_from_samples([{"problem_id": "p", "sample_index": 0, "status": "x"}], [1])
    with pytest.raises(ValueError, match="duplicate sample_index"):
        metrics_from_samples(good + good[1:2], [1])
