"""GRPO advantages: group-relative, no value model (DeepSeekMath §4.1.2).

Outcome supervision (§4.1.2, "Outcome Supervision RL with GRPO"): a group of G outputs of one question
gets rewards r = (r_1, ..., r_G); every token of output i has the advantage

    A_i = (r_i - mean(r)) / (std(r) + eps)

where std is the group's population standard deviation (ddof 0; the paper writes std(r) of the group).
A group whose rewards are all equal (std 0) carries no learning signal: its advantages are exactly 0 and
the group is counted, because the share of such groups is what decides whether RL learns at all.

Process supervision (§4.1.2, "Process Supervision RL with GRPO"): output i has step rewards
r_i^{index(1)}, ..., r_i^{index(K_i)}, where index(j) is the last token of step j. Every step reward is
normalized with the mean and std of *all* step rewards of the group, and a token's advantage is the sum
of the normalized rewards of the steps that end at or after it: A_{i,t} = sum_{index(j) >= t} r~_i^{index(j)}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

DEFAULT_EPS = 1e-4


@dataclass
class GroupAdvantages:
    advantages: torch.Tensor  # (P, G) one advantage per output
    zero_std: torch.Tensor  # (P,) bool: the group's rewards were all equal (no signal)

    @property
    def zero_std_fraction(self) -> float:
        return float(self.zero_std.float().mean()) if self.zero_std.numel() else 0.0


def outcome_advantages(rewards: torch.Tensor, eps: float = DEFAULT_EPS) -> GroupAdvantages:
    """rewards: (P, G), P groups of G outputs -> (r - mean) / (std + eps) per group; zero-std groups -> 0."""
    if rewards.ndim != 2 or rewards.shape[1] < 1:
        raise ValueError(f"rewards must be (groups, G) with G >= 1, got shape {tuple(rewards.shape)}")
    r = rewards.to(torch.float64)
    mean = r.mean(dim=1, keepdim=True)  # (P, 1)
    std = r.std(dim=1, correction=0, keepdim=True)  # (P, 1)
    # "All equal" is decided exactly, not by std < tol: rewards are sums of a few config weights.
    zero = (r == r[:, :1]).all(dim=1)  # (P,)
    adv = (r - mean) / (std + eps)
    adv[zero] = 0.0
    return GroupAdvantages(adv.to(rewards.dtype if rewards.is_floating_point() else torch.float32), zero)


def process_advantages(step_rewards: Sequence[Sequence[float]], step_ends: Sequence[Sequence[int]],
                       lengths: Sequence[int], eps: float = DEFAULT_EPS) -> tuple[list[torch.Tensor], bool]:
    """Per-token advantages of one group under process supervision.

    step_rewards[i][j] is the reward of step j of output i, step_ends[i][j] the index of that step's last
    token (0-based, non-decreasing), lengths[i] the number of tokens of output i. Returns one (lengths[i],)
    tensor per output and whether the group had zero std (then every advantage is 0).
    """
    if not (len(step_rewards) == len(step_ends) == len(lengths)):
        raise ValueError("step_rewards, step_ends and lengths must have one entry per output")
    flat = [float(r) for rs in step_rewards for r in rs]
    out: list[torch.Tensor] = []
    if not flat or all(r == flat[0] for r in flat):
        return [torch.zeros(n) for n in lengths], True
    all_r = torch.tensor(flat, dtype=torch.float64)
    mean, std = all_r.mean(), all_r.std(correction=0)
    for i, (rs, ends, n) in enumerate(zip(step_rewards, step_ends, lengths)):
        if len(rs) != len(ends):
            raise ValueError(f"output {i}: {len(rs)} step rewards but {len(ends)} step ends")
        if any(b < a for a, b in zip(ends, ends[1:])) or any(e < 0 or e >= max(n, 1) for e in ends):
            raise ValueError(f"output {i}: step ends {list(ends)} must not decrease and must lie in [0, {n})")
        adv = torch.zeros(n, dtype=torch.float64)
        for r, end in zip(rs, ends):
            # Step j's normalized reward counts for every token t <= index(j).
            adv[: end + 1] += (float(r) - mean) / (std + eps)
        out.append(adv.float())
    return out, False


# --- PPO (§4.1.1, eq. 1-2): per-token rewards with a KL penalty, and generalized advantage estimation ----


def ppo_token_rewards(outcome: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor | None,
                      mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Eq. 2: r_t = r_phi(q, o_<=t) - beta log(pi(o_t)/pi_ref(o_t)). The outcome reward r_phi of output i
    (`outcome`, (N,)) is paid at its last token; every token pays beta times its log-ratio (k1 estimator,
    with log pi of the policy that sampled it). (N, T), zero on padding."""
    rewards = torch.zeros_like(mask, dtype=torch.float32)
    if ref_logp is not None and kl_coef:
        rewards = rewards - kl_coef * (logp - ref_logp).float()
    lengths = mask.sum(-1).long()  # (N,)
    rows = torch.nonzero(lengths > 0).flatten()
    rewards[rows, lengths[rows] - 1] += outcome[rows].float()
    return rewards * mask


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over each output's tokens (right-padded (N, T)):

        delta_t = r_t + gamma V_{t+1} - V_t   (V after the last token is 0: the episode ends),
        A_t = delta_t + gamma lam A_{t+1},    returns R_t = A_t + V_t.

    Returns (advantages, returns), both zero on padding."""
    if not (rewards.shape == values.shape == mask.shape):
        raise ValueError(f"rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and mask "
                         f"{tuple(mask.shape)} must have one shape")
    n, t = rewards.shape
    r, v, m = rewards.double(), values.double() * mask, mask.double()
    adv = torch.zeros(n, t, dtype=torch.float64)
    running = torch.zeros(n, dtype=torch.float64)
    for k in range(t - 1, -1, -1):
        v_next = v[:, k + 1] if k + 1 < t else torch.zeros(n, dtype=torch.float64)
        delta = r[:, k] + gamma * v_next - v[:, k]
        running = (delta + gamma * lam * running) * m[:, k]  # padding resets: nothing flows past the end
        adv[:, k] = running
    returns = (adv + v) * m
    return adv.to(values.dtype), returns.to(values.dtype)

