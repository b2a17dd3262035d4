"""What a rollout's metrics read of each question (exchanged between data-parallel processes, so that every
process logs the numbers one process would), and the metrics themselves (rl/README.md "Metrics")."""

from __future__ import annotations

from typing import NamedTuple

import torch


class QuestionScores(NamedTuple):
    """What the rollout metrics read of one question's group (exchanged between processes)."""

    position: int  # in the step's global batch
    rewards: list[float]  # (G,) total reward, 0 where skipped
    skipped: bool  # unparseable gold: the group is not graded
    correct: list[bool]  # (G,) the grader's verdicts
    lengths: list[int]  # (G,) output tokens, EOS included
    truncated: list[bool]  # (G,) cut at max_new_tokens
    terms: dict[str, list[float | None]]  # each reward term's (G,) values


def rollout_metrics(questions: list[QuestionScores]) -> dict[str, float]:
    """The rollout's metrics from its questions. Rewards, `accuracy` and the reward terms are over the
    graded outputs (groups not skipped for an unparseable gold); lengths and truncation over all outputs."""
    graded = [q for q in questions if not q.skipped]
    rewards = torch.tensor([r for q in graded for r in q.rewards])
    lens = torch.tensor([n for q in questions for n in q.lengths], dtype=torch.float)
    n = len(lens)
    metrics = {
        "reward_mean": float(rewards.mean()) if len(rewards) else 0.0,
        "reward_std": float(rewards.std(correction=0)) if len(rewards) else 0.0,
        "accuracy": sum(c for q in graded for c in q.correct) / len(rewards) if len(rewards) else 0.0,
        "skipped_groups": float(len(questions) - len(graded)),
        "completion_len": float(lens.mean()),
        "completion_len_max": float(lens.max()),
        "truncated_fraction": sum(t for q in questions for t in q.truncated) / n,
    }
    for name in questions[0].terms if questions else []:
        got = [v for q in questions for v in q.terms[name] if v is not None]
        metrics[f"reward/{name}"] = sum(got) / len(got) if got else 0.0
    return metrics
