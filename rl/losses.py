"""Per-token policy objectives in the paper's unified view (DeepSeekMath §5.2.1).

Every method the paper compares has the same gradient

    grad J = E_{(q, o) ~ D} [ 1/|o| sum_t GC(q, o, t) * grad log pi(o_t | q, o_<t) ]

and differs only in its data source D, its reward and its gradient coefficient GC. Here a method is a
`Coefficient`: a per-token objective whose derivative with respect to log pi(o_t) is that method's GC.
`policy_loss` then averages the objective over each output's tokens and over outputs (the paper's
1/G sum_i 1/|o_i| sum_t) and negates it; the data source (rl/rollouts.py for online sampling, a fixed
dataset for SFT) is a separate object fed to the one training loop.

| method               | data source            | GC(q, o, t)                                      |
|----------------------|------------------------|--------------------------------------------------|
| SFT                  | fixed SFT data         | 1                                                |
| RFT / Online RFT     | sampled from SFT / pi  | 1 if o is correct else 0                         |
| GRPO (outcome/process)| sampled from pi_old   | A_{i,t} + beta (pi_ref/pi - 1)                   |

`SFTCoefficient`, `RFTCoefficient` and `GRPOCoefficient` implement these rows. DPO (GC from the sigmoid
of the reference-relative log-ratio gap over preference pairs) and PPO (GC = GAE advantage from a value
model) fit the same slot with a pair data source or a value head; they are not part of this recipe.

GRPO's objective (§4.1.2, eq. 3), per token:

    min(rho * A, clip(rho, 1 - eps, 1 + eps) * A) - beta * D_KL,   rho = pi / pi_old,
    D_KL = pi_ref/pi - log(pi_ref/pi) - 1         (the unbiased, always-positive k3 estimator, eq. 4)

At rho = 1 (mu = 1: one update per rollout, so pi_old is the policy itself, detached) its derivative with
respect to log pi is exactly A + beta (pi_ref/pi - 1), the table's GC; tests/test_rl_losses.py checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PolicyBatch:
    """Per-token tensors of N outputs padded to T tokens (what every coefficient reads)."""

    logp: torch.Tensor  # (N, T) log pi(o_t) under the current policy, with grad
    mask: torch.Tensor  # (N, T) 1.0 on output tokens, 0.0 on padding
    advantages: torch.Tensor | None = None  # (N,) outcome or (N, T) process advantages
    old_logp: torch.Tensor | None = None  # (N, T) log pi_old; None: pi_old = pi (mu = 1, rho = 1)
    ref_logp: torch.Tensor | None = None  # (N, T) log pi_ref; None: no KL term
    rewards: torch.Tensor | None = None  # (N,) scalar reward per output (RFT's filter)
    output_weights: torch.Tensor | None = None  # (N,) weight of each output in the mean; None: 1/N


def per_output_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, T) -> (N,): the mean over each output's own tokens (an empty output gives 0)."""
    return (x * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref): pi_ref/pi - log(pi_ref/pi) - 1 (>= 0)."""
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1.0


class Coefficient:
    """A method of the unified view: `token_objective(batch) -> ((N, T) objective, metrics)`."""

    name = "base"

    def token_objective(self, batch: PolicyBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise TypeError(f"{type(self).__name__} must implement token_objective()")


class SFTCoefficient(Coefficient):
    """SFT (GC = 1): maximize log pi of the data's tokens."""

    name = "sft"

    def token_objective(self, batch):
        return batch.logp, {}


class RFTCoefficient(Coefficient):
    """RFT / Online RFT (GC = 1 if correct else 0): SFT on the outputs whose reward reaches `threshold`."""

    name = "rft"

    def __init__(self, threshold: float = 1.0):
        self.threshold = threshold

    def token_objective(self, batch):
        if batch.rewards is None:
            raise ValueError("RFT needs per-output rewards in PolicyBatch.rewards")
        keep = (batch.rewards >= self.threshold).to(batch.logp.dtype)  # (N,)
        return batch.logp * keep[:, None], {"kept_fraction": keep.mean()}


class GRPOCoefficient(Coefficient):
    """GRPO (§4.1.2): clipped importance ratio x advantage, minus beta x k3 KL to pi_ref, per token."""

    name = "grpo"

    def __init__(self, clip_eps: float = 0.2, beta: float = 0.04):
        if clip_eps <= 0:
            raise ValueError(f"clip_eps must be > 0, got {clip_eps}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.clip_eps, self.beta = clip_eps, beta

    def token_objective(self, batch):
        if batch.advantages is None:
            raise ValueError("GRPO needs advantages in PolicyBatch.advantages")
        logp, mask = batch.logp, batch.mask
        adv = batch.advantages if batch.advantages.ndim == 2 else batch.advantages[:, None]  # (N, T|1)
        old = logp.detach() if batch.old_logp is None else batch.old_logp
        ratio = torch.exp(logp - old)  # (N, T); exactly 1 when old is logp detached
        clipped = torch.clamp(ratio, 1.0 - self.clip_eps, 1.0 + self.clip_eps)
        obj = torch.minimum(ratio * adv, clipped * adv)
        metrics: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            # The clipped branch is active (no gradient) where the ratio left the trust region in the
            # direction the advantage pushes it.
            active = ((ratio < 1.0 - self.clip_eps) & (adv < 0)) | ((ratio > 1.0 + self.clip_eps) & (adv > 0))
            metrics["clip_fraction"] = (active.float() * mask).sum() / mask.sum().clamp(min=1.0)
        if batch.ref_logp is not None:
            kl = k3_kl(logp, batch.ref_logp)  # (N, T)
            obj = obj - self.beta * kl
            metrics["kl"] = per_output_mean(kl.detach(), mask).mean()
        return obj, metrics


def policy_loss(coef: Coefficient, batch: PolicyBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """-(1/N) sum_i (1/|o_i|) sum_t objective_{i,t}, or with `output_weights` a weighted sum over outputs."""
    if batch.logp.shape != batch.mask.shape:
        raise ValueError(f"logp {tuple(batch.logp.shape)} and mask {tuple(batch.mask.shape)} differ")
    obj, metrics = coef.token_objective(batch)
    per_output = per_output_mean(obj, batch.mask)  # (N,)
    if batch.output_weights is None:
        loss = -per_output.mean()
    else:
        loss = -(per_output * batch.output_weights).sum()
    return loss, {k: float(v) for k, v in metrics.items()}


COEFFICIENTS = {"sft": SFTCoefficient, "rft": RFTCoefficient, "grpo": GRPOCoefficient}


def build_coefficient(name: str, **kwargs) -> Coefficient:
    """A coefficient by name (config `rl.algorithm`)."""
    if name not in COEFFICIENTS:
        raise ValueError(f"unknown algorithm {name!r}: expected one of {', '.join(COEFFICIENTS)}")
    return COEFFICIENTS[name](**kwargs)
