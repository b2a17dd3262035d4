"""PPO (DeepSeekMath §4.1.1, eq. 1-2) on the same rollouts, rewards and training loop as GRPO.

Per rollout (`PPORolloutSource.rollout`): the questions and G outputs per question come from
`RolloutSource.sample` (the same sampler, reward registry and grader as GRPO); then, per micro-batch and
under no_grad, log pi_old and V_old from the actor-critic (rl/value.py) and log pi_ref from the frozen
reference; the per-token reward of eq. 2 (outcome at the last token, minus beta log(pi_old/pi_ref) at every
token), GAE with gamma and lambda (rl/advantages.py), and — as PPO implementations usually do, a config
choice here — advantages whitened over the rollout's tokens.

The loss (`make_ppo_loss_fn`): the clipped surrogate with the per-token advantages (rl.losses.PPOCoefficient)
plus `vf_coef` x the clipped value loss (rl.losses.value_loss), both averaged over each output's tokens and
then over outputs. Logged beside GRPO's metrics: `value_loss`, `value_clip_fraction`, `explained_variance`
(1 - Var(R - V_old) / Var(R) over the rollout's tokens), `value_mean`, `return_mean`, `kl` (k1 per token).

Data parallelism: the loss calls the model the loop holds (the DDP wrapper of the ActorCritic, whose forward
gives log-probs and values), so the backward all-reduces the gradients. The whitening statistics,
`explained_variance`, `value_mean`, `return_mean` and `kl` are over the valid outputs of the whole global
batch: each process sums its own tokens (float64) and the sums are exchanged (`RolloutSource.all_ranks`),
so N processes whiten and log as one process does (tests/test_distributed_rl.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from pipeline.training import Weighted
from rl.advantages import gae, ppo_token_rewards
from rl.losses import PolicyBatch, PPOCoefficient, per_output_mean, policy_loss, value_loss
from rl.rollouts import RolloutBatch, RolloutSource


@dataclass
class PPOSettings:
    gamma: float = 1.0
    lam: float = 0.95
    kl_coef: float = 0.04  # beta of eq. 2 (rl.beta)
    value_clip: float = 0.2
    vf_coef: float = 0.5
    whiten_advantages: bool = True


class PPORolloutSource(RolloutSource):
    """Rollouts with GAE advantages from a value model; `policy` is the rl.value.ActorCritic."""

    min_group = 1  # no group baseline: the value model is the baseline

    def __init__(self, *args, ppo: PPOSettings, **kw):
        super().__init__(*args, **kw)
        self.ppo = ppo

    def rollout(self) -> list[RolloutBatch]:
        s, p = self.s, self.ppo
        smp = self.sample()
        weights = self.loss_weights(smp.valid)
        outcome = smp.total.reshape(-1)
        valid = smp.valid
        parts = []
        t0 = time.perf_counter()
        for c in self.chunks(len(smp.flat)):
            sub = smp.rows.select(c)
            mask = sub.completion_mask
            ref_logp = self._logprobs(self.reference, sub) if self.reference is not None else None
            old_logp, old_values = self.policy.rollout_forward(sub, max_buckets=s.length_buckets,
                                                               share_prompts=s.share_prompts)
            rewards = ppo_token_rewards(outcome[c], old_logp, ref_logp, mask, p.kl_coef)
            adv, ret = gae(rewards, old_values, mask, p.gamma, p.lam)
            parts.append((c, sub, ref_logp, old_logp, old_values, adv, ret))
        ref_s = time.perf_counter() - t0

        # Rollout-wide statistics over the valid outputs' tokens of the global batch (every rank's sums).
        g = self.global_sums(parts, valid)
        n = g["tokens"]
        mean = g["adv"] / n if n > 1 else 0.0
        std = max(g["adv2"] / n - mean ** 2, 0.0) ** 0.5 if n > 1 else 1.0
        var_r = g["ret2"] / n - (g["ret"] / n) ** 2 if n > 1 else 0.0
        var_err = g["err2"] / n - (g["err"] / n) ** 2 if n > 1 else 0.0
        metrics = smp.metrics
        metrics.update({"explained_variance": 1.0 - var_err / var_r if var_r > 0 else 0.0,
                        "value_mean": g["val"] / n if n else 0.0, "return_mean": g["ret"] / n if n else 0.0,
                        "ref_s": ref_s, "zero_std_fraction": 0.0})
        if self.reference is not None:
            metrics["kl"] = g["kl"] / g["outputs"] if g["outputs"] else 0.0

        batches = []
        for c, sub, _ref, old_logp, old_values, adv, ret in parts:
            if p.whiten_advantages:
                adv = (adv - mean) / (std + 1e-8) * sub.completion_mask
            batches.append(RolloutBatch(rows=sub, advantages=adv, output_weights=weights[c],
                                        rewards=outcome[c], ref_logp=None,
                                        old_logp=old_logp if s.updates_per_batch > 1 else None,
                                        metrics=metrics, old_values=old_values, returns=ret))
        return self.repeat(batches)

    def global_sums(self, parts: list, valid: torch.Tensor) -> dict[str, float]:
        """Sums over the valid outputs' tokens of every rank (a collective): tokens, advantages and their
        squares, returns and their squares, R - V_old and its squares, V_old; valid outputs and their k1 KL
        (each output's mean over its tokens). In float64, so that the variances taken from them as
        E[x^2] - E[x]^2 keep float32's precision."""
        sums = dict.fromkeys(("tokens", "adv", "adv2", "ret", "ret2", "err", "err2", "val", "outputs", "kl"), 0.0)
        for c, sub, ref_logp, old_logp, old_values, adv, ret in parts:
            keep = sub.completion_mask.bool() & valid[c][:, None]
            a, r, v = (x[keep].double() for x in (adv, ret, old_values))
            sums["tokens"] += float(keep.sum())
            sums["outputs"] += float(valid[c].sum())
            for k, x in (("adv", a), ("ret", r), ("err", r - v), ("val", v)):
                sums[k] += float(x.sum())
            for k, x in (("adv2", a), ("ret2", r), ("err2", r - v)):
                sums[k] += float((x * x).sum())
            if ref_logp is not None:
                sums["kl"] += float(per_output_mean(old_logp - ref_logp, sub.completion_mask)[valid[c]].double().sum())
        ranks = self.all_ranks(sums)
        return {k: sum(r[k] for r in ranks) for k in sums}


def make_ppo_loss_fn(clip_eps: float, value_clip: float, vf_coef: float, length_buckets: int = 1,
                     share_prompts: bool | None = None):
    """Clipped surrogate + vf_coef x clipped value loss of one micro-batch (one forward of the actor-critic)."""
    coef = PPOCoefficient(clip_eps=clip_eps)

    def loss_fn(model, batch: RolloutBatch):
        # `model` as the loop holds it: under DDP the wrapper, whose forward syncs the gradients
        mask = batch.rows.completion_mask
        logp, entropy, values = model(batch.rows, with_entropy=True, max_buckets=length_buckets,
                                      share_prompts=share_prompts)
        pb = PolicyBatch(logp=logp, mask=mask, advantages=batch.advantages, old_logp=batch.old_logp,
                         rewards=batch.rewards, output_weights=batch.output_weights)
        p_loss, metrics = policy_loss(coef, pb)
        v_loss, v_metrics = value_loss(values, batch.old_values, batch.returns, mask, value_clip,
                                       batch.output_weights)
        loss = p_loss + vf_coef * v_loss
        metrics.update(v_metrics)
        metrics["policy_loss"] = float(p_loss.detach())
        metrics["entropy"] = Weighted(entropy.sum() / mask.sum().clamp(min=1.0), mask.sum())
        return loss, {**batch.metrics, **metrics}

    return loss_fn

