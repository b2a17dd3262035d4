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
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

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

        # Rollout-wide statistics over the valid outputs' tokens.
        def flat(k):
            return torch.cat([x[k][x[1].completion_mask.bool() & valid[x[0]][:, None]] for x in parts])

        a_all, r_all, v_all = flat(5), flat(6), flat(4)
        mean, std = (a_all.mean(), a_all.std(correction=0)) if a_all.numel() > 1 else (0.0, 1.0)
        var_r = float(r_all.var(correction=0)) if r_all.numel() > 1 else 0.0
        explained = 1.0 - float((r_all - v_all).var(correction=0)) / var_r if var_r > 0 else 0.0
        kl = [per_output_mean(x[3] - x[2], x[1].completion_mask) for x in parts if x[2] is not None]
        metrics = smp.metrics
        metrics.update({"explained_variance": explained, "value_mean": float(v_all.mean()) if v_all.numel() else 0.0,
                        "return_mean": float(r_all.mean()) if r_all.numel() else 0.0, "ref_s": ref_s,
                        "zero_std_fraction": 0.0})
        if kl:
            metrics["kl"] = float(torch.cat(kl)[valid].mean()) if bool(valid.any()) else 0.0

        batches = []
        for c, sub, _ref, old_logp, old_values, adv, ret in parts:
            if p.whiten_advantages:
                adv = (adv - mean) / (std + 1e-8) * sub.completion_mask
            batches.append(RolloutBatch(rows=sub, advantages=adv, output_weights=weights[c],
                                        rewards=outcome[c], ref_logp=None,
                                        old_logp=old_logp if s.updates_per_batch > 1 else None,
                                        metrics=metrics, old_values=old_values, returns=ret))
        return self.repeat(batches)


def make_ppo_loss_fn(clip_eps: float, value_clip: float, vf_coef: float, length_buckets: int = 1,
                     share_prompts: bool | None = None):
    """Clipped surrogate + vf_coef x clipped value loss of one micro-batch (one forward of the actor-critic)."""
    coef = PPOCoefficient(clip_eps=clip_eps)

    def loss_fn(model, batch: RolloutBatch):
        ac = getattr(model, "module", model)  # the ActorCritic (forward_rows is not its forward)
        mask = batch.rows.completion_mask
        logp, entropy, values = ac.forward_rows(batch.rows, with_entropy=True, max_buckets=length_buckets,
                                                share_prompts=share_prompts)
        pb = PolicyBatch(logp=logp, mask=mask, advantages=batch.advantages, old_logp=batch.old_logp,
                         rewards=batch.rewards, output_weights=batch.output_weights)
        p_loss, metrics = policy_loss(coef, pb)
        v_loss, v_metrics = value_loss(values, batch.old_values, batch.returns, mask, value_clip,
                                       batch.output_weights)
        loss = p_loss + vf_coef * v_loss
        metrics.update(v_metrics)
        metrics["policy_loss"] = float(p_loss.detach())
        metrics["entropy"] = float(entropy.sum() / mask.sum().clamp(min=1.0))
        return loss, {**batch.metrics, **metrics}

    return loss_fn

