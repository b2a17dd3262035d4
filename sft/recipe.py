"""What continued pretraining (sft.pretrain) and SFT (sft.train) share around the one training loop.

- `optim_config(section)`: the loop's optimizer/schedule settings from a config section;
- `load_or_build_model(model_cfg, tokenizer, init)`: a Hugging Face base by path or hub id (paper:
  DeepSeek-Coder-Base-v1.5 7B, §2.3), or a small Llama from scratch (the embedded default);
- `Throughput`: an `on_step_end` callback adding tokens/s and tokens seen to the logged metrics;
- `finish(...)`: run.json beside the model, then the model itself (its folder appearing = done),
  then the checkpoints are removed.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from pipeline.io import atomic_path, write_run_record
from pipeline.models import build_model, configure_for_training, load_model, num_parameters
from pipeline.training import OptimConfig, process_state

log = logging.getLogger(__name__)


def optim_config(section: dict) -> OptimConfig:
    o = section["optimizer"]
    return OptimConfig(lr=float(o["lr"]), weight_decay=float(o["weight_decay"]), betas=tuple(o["betas"]),
                       eps=float(o["eps"]), schedule=o["schedule"], warmup_steps=int(o["warmup_steps"]),
                       min_lr_ratio=float(o["min_lr_ratio"]), grad_clip=float(o["grad_clip"]))


def load_or_build_model(model_cfg: dict, tokenizer, init: str | os.PathLike | None, seed: int = 0):
    """`init` (a save_pretrained folder or hub id) loaded in train mode, or a new small Llama from
    `model_cfg` when `init` is None. Embeddings grow to the tokenizer's size when it is larger."""
    if init:
        model = load_model(init, dtype=model_cfg["dtype"])
        if len(tokenizer) > model.get_input_embeddings().num_embeddings:
            log.info("resizing embeddings %d -> %d for the tokenizer", model.get_input_embeddings().num_embeddings,
                     len(tokenizer))
            model.resize_token_embeddings(len(tokenizer))
    else:
        model = build_model(tokenizer, hidden_size=model_cfg["hidden_size"], num_layers=model_cfg["num_layers"],
                            num_heads=model_cfg["num_heads"], num_kv_heads=model_cfg.get("num_kv_heads"),
                            intermediate_size=model_cfg.get("intermediate_size"),
                            max_position_embeddings=model_cfg["max_position_embeddings"],
                            tie_word_embeddings=model_cfg["tie_word_embeddings"], seed=seed)
    configure_for_training(model, attn_implementation=model_cfg.get("attn_implementation"),
                           gradient_checkpointing=bool(model_cfg.get("gradient_checkpointing")))
    model.train()
    log.info("model: %s, %.2fM parameters", type(model).__name__, num_parameters(model) / 1e6)
    return model


class Throughput:
    """`on_step_end` callback: adds `tokens_per_s` (all processes) to the step's metrics row, and
    `tokens_seen` when every step has the same number of tokens (pretraining)."""

    def __init__(self, tokens_per_step_fn, world_size: int = 1, fixed_tokens_per_step: int | None = None):
        self.fn, self.world, self.fixed = tokens_per_step_fn, world_size, fixed_tokens_per_step
        self.rates: list[float] = []

    def __call__(self, step: int, metrics: dict) -> None:
        tokens = self.fn(metrics) * self.world
        metrics["tokens_per_s"] = tokens / max(metrics["step_s"], 1e-9)
        if self.fixed:
            metrics["tokens_seen"] = self.fixed * step
        self.rates.append(metrics["tokens_per_s"])

    def mean_rate(self) -> float | None:
        rates = self.rates[1:] or self.rates  # the first step pays for warm-up
        return sum(rates) / len(rates) if rates else None


def finish(loop, tokenizer, model_dir: str | os.PathLike, stage: str, cfg: dict, **record) -> Path:
    """run.json beside `model_dir`, then the model (atomically), then drop the checkpoints.

    The weights come from `accelerator.get_state_dict`, which every process calls: under FSDP it gathers
    the full state dict; under DDP or one process it is the model's own.
    """
    model_dir = Path(model_dir)
    run_dir = model_dir.parent
    acc = loop.accelerator
    state = acc.get_state_dict(loop.model)
    model = loop.unwrapped_model()
    if acc.is_main_process:
        write_run_record(run_dir, stage, cfg, parameters=num_parameters(model), **record)
        model.config.use_cache = True  # for generation by eval/RL
        with atomic_path(model_dir) as tmp:
            model.save_pretrained(tmp, state_dict=state)
            tokenizer.save_pretrained(tmp)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    acc.wait_for_everyone()
    log.info("saved %s", model_dir)
    return model_dir


def dist_info() -> tuple[int, int]:
    """(rank, world size) of this process under `accelerate launch` / torchrun; (0, 1) alone. Joins the
    process group first (pipeline.training.process_state), before anything else touches accelerate."""
    state = process_state()
    return state.process_index, state.num_processes
