"""A faster attention for one-token decoding steps on CPU, registered with transformers' AttentionInterface.

During sampling every step has one query per row against the row's whole KV cache. torch's CPU SDPA
kernel is slow at that shape: measured on one thread (112 rows x 4 heads x head dim 32, 100 / 160 cached
positions, boolean padding mask) 4.0 / 5.7 ms per call against 1.2 / 3.2 ms for two matmuls and a
softmax, the same numbers to 5e-7. For longer queries (prefill, training forwards) SDPA wins, forward
and backward (30 vs 39 ms forward at 70 queries), so every other call goes to transformers' SDPA function.

`decoding(model)` switches a model that uses "sdpa" to this function for the duration of a generation
loop (pipeline/generation.py) and back afterwards; other implementations (eager, flash) are left alone.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "sdpa_cpu_decode"


def decode_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs):
    """(B, H, 1, D) queries on CPU, no dropout: softmax(q k^T * scale + mask) v; anything else: SDPA."""
    if (query.shape[2] != 1 or query.device.type != "cpu" or (dropout and module.training)
            or kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scale  # (B, H, 1, L)
    if attention_mask is not None:
        mask = attention_mask[:, :, :, : key.shape[2]]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None  # (B, 1, H, D)


def register() -> None:
    """Make NAME a valid `attn_implementation` (SDPA's boolean masks)."""
    AttentionInterface.register(NAME, decode_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)


@contextlib.contextmanager
def decoding(model):
    """Use `decode_attention` inside the block when `model` runs SDPA on CPU."""
    impl = getattr(model.config, "_attn_implementation", None)
    device = next(model.parameters()).device
    if impl != "sdpa" or device.type != "cpu" or not hasattr(model, "set_attn_implementation"):
        yield
        return
    register()
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(impl)
