"""Models and tokenizers: build small ones from scratch (the embedded default) or load any Hugging Face
checkpoint by path or hub id (the paper config: DeepSeek-Coder-Base-v1.5 7B, DESIGN.md "Continued
pretraining"). Everything is saved in `save_pretrained` format so transformers and vLLM load it unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)
from transformers.utils import is_flash_attn_2_available

from pipeline.io import atomic_path

log = logging.getLogger(__name__)

BOS, EOS, PAD, USER, ASSISTANT = "<|bos|>", "<|eos|>", "<|pad|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, USER, ASSISTANT]

# The chat template saved in every tokenizer we train. A user turn, then the assistant's response, which
# ends in EOS. `add_generation_prompt` opens the assistant turn. SFT masks everything up to and including
# the assistant header, so the loss falls on the response (and its EOS) only.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}" + USER + "\n{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}" + ASSISTANT + "\n{{ message['content'] }}" + EOS + "\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "\n{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2):
    """Train a byte-level BPE tokenizer in which every digit is its own token.

    Digits as single tokens make numbers easy units for a small model (a number is copied digit by digit,
    never through an arbitrary merge like "37" + "5"); words still merge into whole tokens.
    """
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=[USER, ASSISTANT],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"  # generation pads on the left; training builds its own tensors
    log.info("trained BPE tokenizer: %d tokens", len(fast))
    return fast


def build_model(tokenizer, *, hidden_size: int = 128, num_layers: int = 4, num_heads: int = 4,
                intermediate_size: int | None = None, max_position_embeddings: int = 512,
                num_kv_heads: int | None = None, tie_word_embeddings: bool = True, seed: int = 0):
    """A small Llama-style decoder initialised from `seed` (the embedded default's model)."""
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    log.info("built Llama model: %.2fM parameters", sum(p.numel() for p in model.parameters()) / 1e6)
    return model


def load_tokenizer(path_or_id: str | os.PathLike):
    """Load a tokenizer by local path or hub id; make sure it can pad (left, for generation)."""
    tok = AutoTokenizer.from_pretrained(str(path_or_id))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_model(path_or_id: str | os.PathLike, *, dtype: str = "float32", device: str = "cpu"):
    """Load a causal LM by local path or hub id in `dtype` on `device`, in eval mode."""
    if Path(str(path_or_id)).exists() and not (Path(path_or_id) / "config.json").exists():
        raise FileNotFoundError(f"{path_or_id}: not a save_pretrained model folder (no config.json)")
    model = AutoModelForCausalLM.from_pretrained(str(path_or_id), dtype=getattr(torch, dtype))
    return model.to(device).eval()


def save(model, tokenizer, out_dir: str | os.PathLike) -> Path:
    """Save model + tokenizer in `save_pretrained` format, atomically (a crash leaves no half folder)."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    return out_dir


def num_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_attn_implementation(requested: str | None) -> str | None:
    """The attention kernel to train with. `flash_attention_2` needs the flash-attn package and a CUDA GPU;
    without them this falls back to `sdpa` (PyTorch's fused attention, which picks its own flash kernel on
    GPUs when no mask is needed) and says so in the log. flash-attn is not a dependency: it builds against
    one CUDA + torch pair (docs/scale.md "Attention")."""
    if requested == "flash_attention_2" and not (torch.cuda.is_available() and is_flash_attn_2_available()):
        why = "no CUDA GPU" if not torch.cuda.is_available() else "the flash-attn package is not installed"
        log.warning("attn_implementation flash_attention_2 requested but %s: using sdpa instead", why)
        return "sdpa"
    return requested


def configure_for_training(model, *, attn_implementation: str | None = None, gradient_checkpointing: bool = False):
    """Apply `model.attn_implementation` and `model.gradient_checkpointing` (config/schema/model.schema.yaml)
    to a model about to be trained: pretraining and SFT (sft/recipe.py) and RL (rl/train.py) call it.

    Checkpointing is non-reentrant: it works with DDP's no_sync (gradient accumulation) and with inputs
    that need no gradient, and recomputes each decoder layer's forward in the backward pass."""
    attn = resolve_attn_implementation(attn_implementation)
    if attn:
        model.set_attn_implementation(attn)
    if gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False  # training: no KV cache (and packed masks need none)
    return model
