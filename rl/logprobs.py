"""Per-token log-probabilities of sampled outputs: one batched forward over all rows of a rollout.

Row layout (built by `pack_rows`): the prompt left-padded to the longest prompt, then the output
right-padded to the longest output, so every output token sits in the same last T columns:

    [pad pad q q q q | o o o o pad]      input_ids (N, P + T), attention_mask (N, P + T)

Positions come from the attention mask (as in generation), so a left-padded row sees the same
positions it was sampled with, and `logits_to_keep=T + 1` makes the model compute the vocabulary
projection for the last T + 1 positions only (the prompt's logits are never needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class PackedRows:
    input_ids: torch.Tensor  # (N, P + T)
    attention_mask: torch.Tensor  # (N, P + T)
    position_ids: torch.Tensor  # (N, P + T)
    completion_ids: torch.Tensor  # (N, T)
    completion_mask: torch.Tensor  # (N, T) float: 1.0 on output tokens

    def select(self, idx: torch.Tensor | slice) -> PackedRows:
        """Rows `idx`, trimmed to the columns those rows use (less padding per micro-batch)."""
        am, cm = self.attention_mask[idx], self.completion_mask[idx]
        t_used = int(cm.sum(-1).max()) if cm.numel() else 0
        t = self.completion_ids.shape[1]
        p_cols = am[:, : am.shape[1] - t]
        p_used = int(p_cols.sum(-1).max()) if p_cols.numel() else 0
        start = am.shape[1] - t - p_used
        stop = am.shape[1] - t + max(t_used, 1)
        return PackedRows(self.input_ids[idx][:, start:stop], am[:, start:stop], self.position_ids[idx][:, start:stop],
                          self.completion_ids[idx][:, : max(t_used, 1)], cm[:, : max(t_used, 1)])


def pack_rows(prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], pad_id: int) -> PackedRows:
    """Left-pad prompts and right-pad outputs into one (N, P + T) batch (see the module docstring)."""
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    n = len(prompt_ids)
    p = max((len(x) for x in prompt_ids), default=0)
    t = max(1, max((len(x) for x in completion_ids), default=0))
    ids = torch.full((n, p + t), pad_id, dtype=torch.long)
    mask = torch.zeros((n, p + t), dtype=torch.long)
    for i, (q, o) in enumerate(zip(prompt_ids, completion_ids)):
        ids[i, p - len(q): p] = torch.tensor(q, dtype=torch.long)
        mask[i, p - len(q): p] = 1
        if o:
            ids[i, p: p + len(o)] = torch.tensor(o, dtype=torch.long)
            mask[i, p: p + len(o)] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return PackedRows(ids, mask, pos, ids[:, p:].clone(), mask[:, p:].float())


def token_logprobs(model, rows: PackedRows, *, with_entropy: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, T) log pi(o_t | q, o_<t) of every output token (0 on padding), and optionally the policy's
    per-token entropy (N, T), detached. Differentiable unless called under no_grad."""
    t = rows.completion_ids.shape[1]
    out = model(input_ids=rows.input_ids, attention_mask=rows.attention_mask, position_ids=rows.position_ids,
                use_cache=False, logits_to_keep=t + 1)
    logits = out.logits[:, :-1, :].float()  # (N, T, V): position P-1+t predicts output token t
    logz = torch.logsumexp(logits, dim=-1)  # (N, T)
    lp = logits.gather(-1, rows.completion_ids.unsqueeze(-1)).squeeze(-1) - logz  # (N, T)
    lp = lp * rows.completion_mask
    ent = None
    if with_entropy:
        with torch.no_grad():
            logp_all = logits - logz.unsqueeze(-1)
            ent = -(logp_all.exp() * logp_all).sum(-1) * rows.completion_mask  # (N, T)
    return lp, ent
