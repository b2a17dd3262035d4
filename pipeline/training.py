"""The one training loop, shared by pretraining, SFT and RL (DESIGN.md "Architecture").

A stage supplies two things and the loop does the rest:

- `data`: a stateful source of micro-batches — `next_batch() -> Any` plus `state_dict()` /
  `load_state_dict()` (its position: a cursor, an epoch, an RNG). For SFT it walks a fixed dataset; for RL
  it samples rollouts from the current policy (the paper's unified view, §5.2.1: an algorithm is a data
  source, a reward and a gradient coefficient over the same loss).
- `loss_fn(model, batch) -> (loss, metrics)`: the mean loss of one micro-batch and scalars to log. A
  scalar is averaged over the step's micro-batches and processes; a `Weighted` one (a per-token mean with
  its token count) is averaged weighted, so it equals what one process would compute over the whole batch.

The loop owns the optimizer (AdamW), the lr schedule (constant / cosine / linear, with warm-up), gradient
accumulation and clipping, JSONL metrics + tqdm, and checkpoints. A checkpoint holds weights, optimizer,
scheduler, every RNG, the data position and any extra registered state (e.g. RL's reference model); it is
written with `accelerate`'s `save_state` into a temporary folder and renamed into place, so a run killed at
any instant (SIGKILL included) resumes from its last complete checkpoint and ends with the same weights as
an uninterrupted run.

Several processes (DDP, or FSDP through config/accelerate/fsdp.yaml) come from launching the same code with
`accelerate launch --config_file config/accelerate/<ddp|fsdp>.yaml --num_processes N` (pipeline/rules/common.smk
`launcher()`); the loop goes through `Accelerator` for backward, gradient sync, clipping and state. Each
process takes its own slice of every global micro-batch, so N processes with accumulation A/N give the
same steps as one process with accumulation A (tests/test_distributed.py); the logged metrics are means
over all processes. On a machine without a GPU the processes join over gloo (`process_state`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType, gather_object, set_seed
from tqdm.auto import tqdm

from pipeline.io import append_jsonl, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

RESUME_KEY = "resume_key.json"


def process_state() -> PartialState:
    """This process's place in the launch (rank, world size), joining the process group on first use.

    Call it before anything else creates accelerate's state. Without a GPU, accelerate joins a
    multi-process launch only when asked for the CPU (`cpu=True`, backend gloo); a bare `PartialState()`
    there leaves every process training alone on its own slice of the data, silently."""
    return PartialState(cpu=not torch.cuda.is_available())


def _check_joined(state: PartialState) -> None:
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and state.num_processes != launched:
        raise RuntimeError(
            f"launched as {launched} processes (WORLD_SIZE) but accelerate's state has {state.num_processes}: "
            "something created PartialState() before pipeline.training.process_state() on a machine without "
            "a GPU, so the processes never joined one group; create the state with process_state() first")


def guard_resume(run_dir: str | os.PathLike, key: str) -> bool:
    """Keep `run_dir/checkpoints` (and its metrics.jsonl) only if they were written under settings `key`
    (`pipeline.io.fingerprint` of whatever decides the run); record `key` for the next start. Returns
    whether a resume is allowed. Under data parallelism the main process decides and the others wait.
    Pretraining, SFT and RL all start through here."""
    state = process_state()
    _check_joined(state)
    run_dir = Path(run_dir)
    ckpts = run_dir / "checkpoints"
    stamp = run_dir / RESUME_KEY
    old = json.loads(stamp.read_text()).get("key") if stamp.exists() else None
    resume = ckpts.exists() and any(ckpts.iterdir()) and old == key
    state.wait_for_everyone()  # every process has decided before the main one changes anything
    if state.is_main_process:
        if ckpts.exists() and not resume:
            log.warning("%s: checkpoints were written under other settings (or none recorded); starting afresh",
                        run_dir)
            shutil.rmtree(ckpts)
        if not resume:
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
        write_json(stamp, {"key": key})
    state.wait_for_everyone()
    return bool(resume)


class Weighted(float):
    """A metric value the loop averages weighted by `weight` over micro-batches and processes (e.g. a
    per-token mean with its number of tokens); a plain value is averaged per micro-batch."""

    weight: float

    def __new__(cls, value, weight) -> Weighted:
        obj = super().__new__(cls, float(value))
        obj.weight = float(weight)
        return obj


class DataSource(Protocol):
    def next_batch(self) -> Any: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    schedule: str = "cosine"  # "constant" | "cosine" | "linear"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine/linear decay to lr * min_lr_ratio
    grad_clip: float = 1.0  # 0 disables clipping


def lr_lambda(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Multiplier on the base lr at `step` (0-based): linear warm-up, then the chosen decay."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    if cfg.schedule == "cosine":
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "linear":
        return 1.0 - (1 - cfg.min_lr_ratio) * progress
    raise ValueError(f"unknown lr schedule {cfg.schedule!r}: expected constant, cosine or linear")


def adamw_groups(model, optim: OptimConfig, groups: list[dict] | None = None) -> list[dict]:
    """AdamW's parameter groups: each of `groups` (default one group of every trainable parameter) split
    into matrices (weight decay) and vectors (none), with the group's own `lr` (default `optim.lr`) and
    `name`. Every trainable parameter of `model` must be in exactly one group."""
    groups = groups if groups is not None else [{"params": list(model.parameters())}]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    seen: set[int] = set()
    out = []
    for g in groups:
        params = [p for p in g["params"] if p.requires_grad]
        if any(id(p) in seen or id(p) not in trainable for p in params):
            raise ValueError(f"parameter group {g.get('name')!r} repeats a parameter or has one that is not "
                             "a trainable parameter of the model")
        seen.update(id(p) for p in params)
        extra = {"lr": float(g.get("lr", optim.lr)), "name": g.get("name", "")}
        out += [{"params": [p for p in params if p.ndim >= 2], "weight_decay": optim.weight_decay, **extra},
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, **extra}]
    if seen != trainable:
        raise ValueError(f"{len(trainable - seen)} trainable parameters are in no parameter group")
    return out


class _Counter:
    """The step counter as registered checkpoint state."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


class TrainLoop:
    """Run `total_steps` optimizer steps of `grad_accum` micro-batches each; checkpoint and resume.

    `extra_state` maps names to objects with state_dict/load_state_dict saved in every checkpoint.
    `on_step_end(step, metrics)` callbacks run after each optimizer step (e.g. RL's reference reset).
    `param_groups` (default: every trainable parameter at `optim.lr`) splits the model's trainable
    parameters into named groups with their own base lr, e.g. [{"name": "policy", "params": ...},
    {"name": "value", "params": ..., "lr": 1e-4}] (PPO's value model); every group follows the one schedule
    (its own lr times `lr_lambda`), and each named group's lr is logged as `lr/<name>`.
    """

    def __init__(self, model, loss_fn: Callable, data: DataSource, *, out_dir: str | os.PathLike,
                 total_steps: int, optim: OptimConfig, grad_accum: int = 1, save_every: int = 0,
                 keep_checkpoints: int = 2, log_every: int = 1, seed: int = 0,
                 extra_state: dict[str, Any] | None = None, param_groups: list[dict] | None = None,
                 on_step_end: list[Callable[[int, dict], None]] | None = None,
                 desc: str = "train", mixed_precision: str = "no"):

        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self.total_steps, self.grad_accum = int(total_steps), max(1, int(grad_accum))
        self.save_every, self.keep, self.log_every = int(save_every), int(keep_checkpoints), max(1, log_every)
        self.loss_fn, self.data, self.desc = loss_fn, data, desc
        self.on_step_end = list(on_step_end or [])
        self.optim_cfg = optim

        set_seed(seed)
        # step_scheduler_with_optimizer=False: one schedule step per optimizer step. accelerate's default
        # steps a prepared scheduler once per process (it assumes each process's data loader is 1/N as
        # long), which under N processes ran the warm-up and decay N times too fast.
        self.accelerator = Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available(),
                                       step_scheduler_with_optimizer=False)
        _check_joined(self.accelerator.state)
        if (os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"
                and self.accelerator.distributed_type != DistributedType.FSDP):
            # accelerate shards only on accelerators; on CPU (gloo) the same launch is plain DDP.
            log.warning("FSDP requested by the accelerate config, but accelerate runs FSDP only on GPUs: "
                        "training as %s over %d processes", self.accelerator.distributed_type.name,
                        self.accelerator.num_processes)
        optimizer = torch.optim.AdamW(adamw_groups(model, optim, param_groups), lr=optim.lr,
                                      betas=tuple(optim.betas), eps=optim.eps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_lambda(s, self.total_steps, optim))
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.counter = _Counter()
        self.accelerator.register_for_checkpointing(self.counter, data)
        self.extra_names = sorted(extra_state or {})
        for name in self.extra_names:
            self.accelerator.register_for_checkpointing((extra_state or {})[name])
        self._resume()

    # -- checkpoints -----------------------------------------------------------------------------
    def _checkpoints(self) -> list[Path]:
        if not self.ckpt_dir.is_dir():
            return []
        found = [p for p in self.ckpt_dir.iterdir() if re.fullmatch(r"step-\d{8}", p.name) and p.is_dir()]
        return sorted(found)

    def _resume(self) -> None:
        ckpts = self._checkpoints()
        if not ckpts:
            if self.metrics_path.exists() and self.accelerator.is_main_process:
                self.metrics_path.unlink()  # metrics of a run that never checkpointed are stale
            return
        last = ckpts[-1]
        self.accelerator.load_state(str(last))
        log.info("resumed from %s (step %d)", last, self.counter.step)
        if self.accelerator.is_main_process and self.metrics_path.exists():
            # Drop metrics logged after the checkpoint: they are re-logged as the steps rerun.
            rows = [r for r in read_jsonl(self.metrics_path, strict=False) if r.get("step", 0) <= self.counter.step]

            write_jsonl(self.metrics_path, rows)

    def save_checkpoint(self) -> Path:
        """Write checkpoints/step-<8-digit step> atomically; keep the newest `keep_checkpoints`."""
        final = self.ckpt_dir / f"step-{self.counter.step:08d}"
        tmp = self.ckpt_dir / f".tmp-step-{self.counter.step:08d}"
        if self.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)  # before any process writes its own files (RNG state, FSDP shards) into it
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp), safe_serialization=False)
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in self._checkpoints()[: -self.keep] if self.keep > 0 else []:
                shutil.rmtree(old, ignore_errors=True)
        return final

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> dict:

        acc = self.accelerator
        last: dict = {}
        bar = tqdm(total=self.total_steps, initial=self.counter.step, desc=self.desc,
                   disable=not acc.is_main_process, dynamic_ncols=True)
        self.model.train()
        while self.counter.step < self.total_steps:
            t0 = time.perf_counter()
            sums: dict[str, float] = {}
            weighted: dict[str, tuple[float, float]] = {}  # Weighted metrics: (sum of value x weight, of weight)
            t_data = 0.0
            for micro in range(self.grad_accum):
                td = time.perf_counter()
                batch = self.data.next_batch()
                t_data += time.perf_counter() - td
                sync = micro == self.grad_accum - 1
                ctx = acc.no_sync(self.model) if not sync and acc.num_processes > 1 else contextlib.nullcontext()
                with ctx:
                    loss, metrics = self.loss_fn(self.model, batch)
                    acc.backward(loss / self.grad_accum)
                for k, v in {"loss": float(loss.detach()), **metrics}.items():
                    if isinstance(v, Weighted):
                        total, w = weighted.get(k, (0.0, 0.0))
                        weighted[k] = (total + float(v) * v.weight, w + v.weight)
                    else:
                        sums[k] = sums.get(k, 0.0) + float(v) / self.grad_accum
            sums = self._mean_over_processes(sums, weighted)
            if self.optim_cfg.grad_clip > 0:
                gnorm = acc.clip_grad_norm_(self.model.parameters(), self.optim_cfg.grad_clip)
                sums["grad_norm"] = float(gnorm)  # of the synchronised (global) gradient
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.counter.step += 1
            step = self.counter.step
            last = {"step": step, **sums, "lr": self.scheduler.get_last_lr()[0],
                    **{f"lr/{g['name']}": g["lr"] for g in self.optimizer.param_groups if g.get("name")},
                    "step_s": time.perf_counter() - t0, "data_s": t_data}
            for cb in self.on_step_end:
                cb(step, last)
            if acc.is_main_process and (step % self.log_every == 0 or step == self.total_steps):
                append_jsonl(self.metrics_path, last)
            bar.update(1)
            bar.set_postfix(loss=f"{last['loss']:.4f}")
            if self.save_every and (step % self.save_every == 0) and step < self.total_steps:
                self.save_checkpoint()
        bar.close()
        return last

    def _mean_over_processes(self, sums: dict[str, float],
                             weighted: dict[str, tuple[float, float]]) -> dict[str, float]:
        """Each plain metric averaged over the processes that reported it (a micro-batch mean per process, so
        the global batch's mean when the micro-batches weigh alike); each weighted one is its total over
        all processes divided by its total weight. Pickled dicts, not one tensor: a stage may report
        different keys on different ranks (e.g. RL metrics of groups it did not get)."""
        rows = [(sums, weighted)] if self.accelerator.num_processes == 1 else gather_object([(sums, weighted)])
        out = {}
        for k in dict.fromkeys(k for r, _ in rows for k in r):
            got = [r[k] for r, _ in rows if k in r]
            out[k] = sum(got) / len(got)
        for k in dict.fromkeys(k for _, w in rows for k in w):
            total, weight = (sum(w[k][i] for _, w in rows if k in w) for i in (0, 1))
            out[k] = total / weight if weight else 0.0
        return out

    def unwrapped_model(self):
        return self.accelerator.unwrap_model(self.model)
