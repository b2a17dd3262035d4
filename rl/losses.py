"""Per-token policy objectives in the paper's unified view (DeepSeekMath §5.2.1, Table 10).

Every method the paper compares has the same gradient

    grad J = E_{(q, o) ~ D} [ 1/|o| sum_t GC(q, o, t) * grad log pi(o_t | q, o_<t) ]

and differs only in its data source D, its reward and its gradient coefficient GC. Here a method is a
`Coefficient`: an objective whose derivative with respect to log pi(o_t) is that method's GC.
`policy_loss` averages the objective over each output's tokens and over outputs (the paper's
1/G sum_i 1/|o_i| sum_t) and negates it; the data source (rl/rollouts.py) is a separate object fed to the
one training loop (pipeline.training.TrainLoop).

| method (`rl.algorithm`) | data source                       | GC(q, o, t)                                         |
|--------------------------|-----------------------------------|-----------------------------------------------------|
| rft                      | sampled once from the SFT model   | 1 if o is correct else 0                            |
| online_rft               | sampled from pi at each step      | 1 if o is correct else 0                            |
| dpo                      | pairs (o+, o-) sampled from SFT   | +-beta sigmoid(beta m(o-) - beta m(o+)) / |o|     |
| ppo                      | sampled from pi_old, value model  | GAE advantage A_t (KL to pi_ref inside the reward)  |
| grpo (outcome / process) | sampled from pi_old, G per q      | A_{i,t} + beta (pi_ref/pi - 1)                      |

(m(o) = sum_t log pi(o_t)/pi_ref(o_t) / |o|, the length-normalized log-ratio of eq. 14.) SFT's row
(GC = 1 on the SFT data) is the cross-entropy of sft/train.py, run by the same loop; it needs no class here.

GRPO's objective (§4.1.2, eq. 3), per token:

    min(rho * A, clip(rho, 1 - eps, 1 + eps) * A) - beta * D_KL,   rho = pi / pi_old,
    D_KL = pi_ref/pi - log(pi_ref/pi) - 1         (the unbiased, always-positive k3 estimator, eq. 4)

At rho = 1 (mu = 1: one update per rollout, so pi_old is the policy itself, detached) its derivative with
respect to log pi is exactly A + beta (pi_ref/pi - 1), the table's GC; tests/test_rl_losses.py checks it.
PPO (eq. 1) is the same clipped surrogate with beta = 0 here (its KL penalty is part of the per-token reward,
eq. 2, rl/advantages.py) and per-token GAE advantages, plus the clipped value loss `value_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.training import Weighted


@dataclass
class PolicyBatch:
    """Per-token tensors of N outputs padded to T tokens (what every coefficient reads)."""

    logp: torch.Tensor  # (N, T) log pi(o_t) under the current policy, with grad
    mask: torch.Tensor  # (N, T) 1.0 on output tokens, 0.0 on padding
    advantages: torch.Tensor | None = None  # (N,) outcome or (N, T) per-token (process, GAE) advantages
    old_logp: torch.Tensor | None = None  # (N, T) log pi_old; None: pi_old = pi (mu = 1, rho = 1)
    ref_logp: torch.Tensor | None = None  # (N, T) log pi_ref; None: no KL term
    rewards: torch.Tensor | None = None  # (N,) scalar reward per output (RFT's filter)
    output_weights: torch.Tensor | None = None  # (N,) (DPO: (K,) per pair) weight in the mean; None: 1/N
    n_pairs: int = 0  # DPO: rows [0, K) are the preferred outputs, rows [K, 2K) the rejected ones


def per_output_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, T) -> (N,): the mean over each output's own tokens (an empty output gives 0)."""
    return (x * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref): pi_ref/pi - log(pi_ref/pi) - 1 (>= 0)."""
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1.0


class Coefficient:
    """A method of the unified view. Most methods give a per-token objective (`token_objective`), which
    `objective` averages over each output's tokens; DPO's objective is per pair and overrides `objective`."""

    name = "base"

    def token_objective(self, batch: PolicyBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise TypeError(f"{type(self).__name__} must implement token_objective() or objective()")

    def objective(self, batch: PolicyBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(N,) objective per output (what `output_weights` weighs) and metrics."""
        obj, metrics = self.token_objective(batch)
        return per_output_mean(obj, batch.mask), metrics


class RFTCoefficient(Coefficient):
    """RFT / Online RFT (GC = 1 if correct else 0): SFT on the outputs whose reward reaches `threshold`.
    The two differ only in the data source (which model sampled the outputs), not here."""

    name = "rft"

    def __init__(self, threshold: float = 1.0):
        self.threshold = threshold

    def token_objective(self, batch):
        if batch.rewards is None:
            raise ValueError("RFT needs per-output rewards in PolicyBatch.rewards")
        keep = (batch.rewards >= self.threshold).to(batch.logp.dtype)  # (N,)
        return batch.logp * keep[:, None], {"kept_fraction": Weighted(keep.mean(), keep.numel())}


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
            raise ValueError(f"{self.name.upper()} needs advantages in PolicyBatch.advantages")
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
            tokens = mask.sum()
            metrics["clip_fraction"] = Weighted((active.float() * mask).sum() / tokens.clamp(min=1.0), tokens)
        if batch.ref_logp is not None and self.beta > 0:
            kl = k3_kl(logp, batch.ref_logp)  # (N, T)
            obj = obj - self.beta * kl
            metrics["kl"] = Weighted(per_output_mean(kl.detach(), mask).mean(), mask.shape[0])
        return obj, metrics


class PPOCoefficient(GRPOCoefficient):
    """PPO's policy objective (eq. 1): the clipped surrogate with per-token GAE advantages. The KL to pi_ref
    is not a loss term: it is a per-token penalty in the reward (eq. 2), so beta here is 0."""

    name = "ppo"

    def __init__(self, clip_eps: float = 0.2):
        super().__init__(clip_eps=clip_eps, beta=0.0)


class DPOCoefficient(Coefficient):
    """DPO (eq. 14) with the paper's length-normalized log-ratios m(o) = 1/|o| sum_t log pi(o_t)/pi_ref(o_t):

        J = log sigmoid(beta m(o+) - beta m(o-))   per pair,

    so GC = beta sigmoid(beta m(o-) - beta m(o+)) on o+'s tokens and minus that on o-'s (each over |o|).
    Rows [0, K) of the batch are the preferred outputs and rows [K, 2K) their rejected partners."""

    name = "dpo"

    def __init__(self, beta: float = 0.1):
        if beta <= 0:
            raise ValueError(f"DPO beta must be > 0, got {beta}")
        self.beta = beta

    def objective(self, batch):
        k = batch.n_pairs
        if batch.ref_logp is None or k < 1 or batch.logp.shape[0] != 2 * k:
            raise ValueError(f"DPO needs ref_logp and 2 x n_pairs rows (n_pairs={k}, rows={batch.logp.shape[0]})")
        m = per_output_mean(batch.logp - batch.ref_logp, batch.mask)  # (2K,)
        margin = self.beta * (m[:k] - m[k:])  # (K,)
        obj = F.logsigmoid(margin)
        with torch.no_grad():
            # the implicit rewards beta m(o) of the preferred and rejected outputs (TRL's rewards/chosen and
            # rewards/rejected): both falling while the margin stays ~0 is the drift of a too-large lr.
            # With pair weights, each metric is the mean over the micro-batch's weighted pairs times their
            # total weight (the micro-batch's share of the global batch, as in the loss), so the loop's
            # sum over micro-batches and mean over processes is the mean over the global batch's pairs,
            # and a zero-weighted pair (rl/dpo.py: a micro-batch without pairs) counts for nothing.
            w = batch.output_weights

            def avg(x):
                if w is None:
                    return x.mean()
                real = w > 0
                return x[real].mean() * w.sum() if bool(real.any()) else x.new_zeros(())

            kl = per_output_mean(k3_kl(batch.logp, batch.ref_logp), batch.mask)  # (2K,)
            metrics = {"dpo_margin": avg(margin), "dpo_accuracy": avg((margin > 0).float()),
                       "dpo_chosen": self.beta * avg(m[:k]), "dpo_rejected": self.beta * avg(m[k:]),
                       "kl": avg((kl[:k] + kl[k:]) / 2)}
        return obj, metrics


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float, output_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped value loss, per token 1/2 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2),
    averaged over each output's tokens, then over outputs (as the policy loss, with the same weights).
    Returns the loss and `value_clip_fraction` (tokens where the clipped term is the larger one)."""
    v_clip = old_values + torch.clamp(values - old_values, -clip, clip)
    a, b = (values - returns) ** 2, (v_clip - returns) ** 2
    per_tok = 0.5 * torch.maximum(a, b)
    per_out = per_output_mean(per_tok, mask)
    loss = per_out.mean() if output_weights is None else (per_out * output_weights).sum()
    with torch.no_grad():
        frac = Weighted(((b > a).float() * mask).sum() / mask.sum().clamp(min=1.0), mask.sum())
    return loss, {"value_loss": float(loss.detach()), "value_clip_fraction": frac}


def policy_loss(coef: Coefficient, batch: PolicyBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """-(1/N) sum_i objective_i (per output, or per pair for DPO), or with `output_weights` a weighted sum."""
    if batch.logp.shape != batch.mask.shape:
        raise ValueError(f"logp {tuple(batch.logp.shape)} and mask {tuple(batch.mask.shape)} differ")
    per_output, metrics = coef.objective(batch)
    if batch.output_weights is None:
        loss = -per_output.mean()
    else:
        loss = -(per_output * batch.output_weights).sum()
    return loss, {k: v if isinstance(v, Weighted) else float(v) for k, v in metrics.items()}


# rl.algorithm -> coefficient; rft and online_rft share one (they differ in the data source only).
COEFFICIENTS = {"rft": RFTCoefficient, "online_rft": RFTCoefficient, "grpo": GRPOCoefficient,
                "ppo": PPOCoefficient, "dpo": DPOCoefficient}


def build_coefficient(name: str, **kwargs) -> Coefficient:
    """A coefficient by name (config `rl.algorithm`)."""
    if name not in COEFFICIENTS:
        raise ValueError(f"unknown algorithm {name!r}: expected one of {', '.join(COEFFICIENTS)}")
    return COEFFICIENTS[name](**kwargs)
