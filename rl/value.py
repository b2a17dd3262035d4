"""PPO's value model (DeepSeekMath §4.1.1): a scalar head that predicts, at every output position, the
return still to come, trained alongside the policy.

`rl.ppo.value_model` chooses where the head sits:

- `separate` (the paper's PPO): a copy of the SFT model's network with its own scalar head; the paper
  initializes the value model from the reward model, which this recipe does not have (its reward is the
  rule-based grader), so the copy starts from the SFT checkpoint. Twice the parameters, optimizer state
  and forward passes of the policy — the memory and compute burden GRPO was designed to remove.
- `shared`: the head reads the policy's own last hidden state (one forward gives log-probs and values);
  the value loss then also moves the policy's network.

`ActorCritic` holds both as one module, so the one training loop's optimizer, gradient clipping and
checkpoints cover the policy, the value network and the head together; `policy` is what is sampled from
and saved as the RL model. `param_groups` gives the value network and head their own learning rate
(`rl.ppo.value_lr`): the head starts at zero and must learn the returns' scale, which at the policy's lr
(1e-6 in the paper, 5e-5 on tiny) takes far longer than the run.

The log-probs and values are the module's `forward`, so the training loss calls the model the loop holds:
under data parallelism that is the DDP wrapper, whose forward is what makes the backward all-reduce the
gradients (a method called on the unwrapped module trains every process on its own gradient). The separate
critic's vocabulary projection (`lm_head`) is frozen when it is not tied to the input embeddings: the critic
never reads log-probs, so it would get no gradient, and DDP (without `find_unused_parameters`) fails on a
trainable parameter that never gets one.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from rl.logprobs import PackedRows, rows_forward


class ActorCritic(nn.Module):
    def __init__(self, policy: nn.Module, value_model: str = "separate"):
        super().__init__()
        if value_model not in ("separate", "shared"):
            raise ValueError(f"rl.ppo.value_model must be 'separate' or 'shared', got {value_model!r}")
        self.policy = policy
        self.critic = copy.deepcopy(policy) if value_model == "separate" else None
        if self.critic is not None:
            head, emb = self.critic.get_output_embeddings(), self.critic.get_input_embeddings()
            if head is not None and head.weight is not emb.weight:
                head.requires_grad_(False)  # unused by the value loss (see the module docstring)
        hidden = policy.config.hidden_size
        # Zero-initialized: every value starts at 0, so the first advantages are the discounted rewards.
        self.value_head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.value_head.to(next(policy.parameters()).device)

    def param_groups(self, lr: float, value_lr: float | None = None) -> list[dict]:
        """The loop's parameter groups (pipeline.training.adamw_groups): the policy at `lr`; the value
        network (separate) and the head at `value_lr` (None: `lr`). Shared, the trunk is the policy's and
        follows `lr`; only the head is the value model's own."""
        value = [*(self.critic.parameters() if self.critic is not None else []), *self.value_head.parameters()]
        return [{"name": "policy", "params": list(self.policy.parameters()), "lr": lr},
                {"name": "value", "params": value, "lr": lr if value_lr is None else value_lr}]

    @property
    def shared(self) -> bool:
        return self.critic is None

    def forward(self, rows: PackedRows, *, with_entropy: bool = False, max_buckets: int = 1,
                share_prompts: bool | None = None, logprobs: bool = True):
        """(logp, entropy, values) of every output token: the policy's log-probs (unless logprobs=False)
        and the value head's V(q, o_<t), from one forward (shared) or two (separate). Inside, the policy
        and the critic are plain modules: share_prompts=None shares each prompt's computation across its
        group (rl/logprobs.py) whether or not this module is wrapped for data parallelism."""
        opts = dict(max_buckets=max_buckets, share_prompts=share_prompts)
        if self.shared:
            return rows_forward(self.policy, rows, with_entropy=with_entropy, value_head=self.value_head,
                                logits=True, **opts)
        lp = ent = None
        if logprobs:
            lp, ent, _ = rows_forward(self.policy, rows, with_entropy=with_entropy, **opts)
        _, _, values = rows_forward(self.critic, rows, value_head=self.value_head, logits=False, **opts)
        return lp, ent, values

    @torch.no_grad()
    def rollout_forward(self, rows: PackedRows, max_buckets: int = 1, share_prompts: bool | None = None):
        """log pi_old and V_old under no_grad in eval mode (the rollout's numbers)."""
        was = self.training
        self.eval()
        try:
            lp, _, values = self(rows, max_buckets=max_buckets, share_prompts=share_prompts)
        finally:
            self.train(was)
        return lp, values
