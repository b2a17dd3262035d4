"""Supervised fine-tuning on CoT, PoT and tool-integrated data (DeepSeekMath §3.1).

    python -m sft.train --config results/tiny/config.yaml --init results/tiny/pretrain/mined/model \\
        --out results/tiny/sft/mined/model

Starts from a pretrained checkpoint (`--init`, a save_pretrained folder or hub id; its tokenizer comes
with it), builds the examples of `sft.data` in `sft.formats` (sft/data.py: checked, decontaminated
against the eval sets, loss on response tokens only), packs them into rows of `sft.max_len` tokens
without cross-attention between examples (or pads, see sft/packing.py) and trains `sft.steps` steps
with `pipeline.training.TrainLoop` (paper: 500 steps, batch 256, constant lr 5e-5, 4K context).
The loss of a micro-batch is the mean over its response tokens. Writes the model in save_pretrained
format, with metrics.jsonl and run.json (data stats, packing, throughput) beside it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import setup, stage_parser
from pipeline.io import fingerprint
from pipeline.models import load_tokenizer
from pipeline.training import TrainLoop, guard_resume
from sft.data import prepare
from sft.packing import IGNORE, SFTBatches, supports_packed_attention
from sft.recipe import (
    Throughput,
    dist_info,
    finish,
    load_or_build_model,
    optim_config,
)

log = logging.getLogger(__name__)


def sft_loss(model, batch):
    """Mean next-token cross-entropy over the response tokens of the micro-batch (labels != IGNORE)."""
    out = model(**batch, use_cache=False)
    return out.loss, {"tokens": float((batch["labels"] != IGNORE).sum()),
                      "row_tokens": float(batch["input_ids"].numel())}


def choose_packing(mode: str, model) -> bool:
    if mode == "packed":
        return True
    if mode == "padded":
        return False
    return supports_packed_attention(model)


def run(cfg: dict, init: str | Path, out: str | Path) -> dict:
    scfg = cfg["sft"]
    out = Path(out)
    run_dir = out.parent
    rank, world = dist_info()
    tokenizer = load_tokenizer(init)
    model = load_or_build_model(cfg["model"], tokenizer, init)
    examples, stats = prepare(cfg, tokenizer)
    packing = choose_packing(scfg["packing"], model)
    data = SFTBatches(examples, max_len=scfg["max_len"], micro_batch_size=scfg["micro_batch_size"],
                      pad_id=tokenizer.pad_token_id, packing=packing, seed=cfg["seed"], rank=rank, world_size=world)
    per_pass = scfg["micro_batch_size"] * world
    if scfg["batch_size"] % per_pass:
        raise ValueError(f"sft.batch_size={scfg['batch_size']} must be a multiple of micro_batch_size x "
                         f"processes = {per_pass}")
    accum = scfg["batch_size"] // per_pass
    n_tokens = sum(len(e) for e in examples)
    n_loss = sum(sum(1 for x in e.labels if x != IGNORE) for e in examples)
    epochs = scfg["steps"] * scfg["batch_size"] / data.rows_per_epoch()
    log.info("SFT: %d examples, %d tokens (%d with loss), %s into %d rows/epoch; %d steps = %.2f epochs",
             len(examples), n_tokens, n_loss, "packed" if packing else "padded", data.rows_per_epoch(),
             scfg["steps"], epochs)

    guard_resume(run_dir, fingerprint(str(init), cfg["sft"], cfg["seed"], world, packing))
    speed = Throughput(lambda m: m["row_tokens"] * accum, world)
    loop = TrainLoop(model, sft_loss, data, out_dir=run_dir, total_steps=scfg["steps"], optim=optim_config(scfg),
                     grad_accum=accum, save_every=scfg["save_every"], keep_checkpoints=scfg["keep_checkpoints"],
                     log_every=scfg["log_every"], seed=cfg["seed"], on_step_end=[speed],
                     desc="sft", mixed_precision=scfg["mixed_precision"])
    last = loop.run()
    summary = {"init": str(init), "steps": scfg["steps"], "grad_accum": accum, "processes": world, "packing": packing,
               "examples": len(examples), "example_tokens": n_tokens, "loss_tokens": n_loss,
               "epochs": round(epochs, 3), "final_loss": last.get("loss"),
               "mean_tokens_per_s": speed.mean_rate(), "data": stats.as_dict()}
    finish(loop, tokenizer, out, "sft.train", cfg, **summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    p = stage_parser(__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True, help="pretrained model folder or hub id (tokenizer included)")
    p.add_argument("--out", required=True, help="model folder; metrics.jsonl, run.json, checkpoints/ go beside it")
    args = p.parse_args(argv)
    run(setup(args, ("sft",)), args.init, args.out)


if __name__ == "__main__":
    main()
