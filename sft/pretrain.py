"""Continued pretraining on a weighted data mixture (DeepSeekMath §2.3, §3.1) and the corpus-quality
experiment's two arms (§2.2).

    python -m sft.pretrain --config results/tiny/config.yaml --variant mined \\
        --tokenizer results/tiny/tokenizer --out results/tiny/pretrain/mined/model

`--variant` picks the mixture from `pretrain.variants.<variant>.sources` (paper: 56% DeepSeekMath
Corpus, 4% AlgebraStack, 10% arXiv, 20% GitHub code, 10% Common Crawl text; tiny: the mined corpus plus
a share of web text, against unfiltered web text alone for §2.2). The model is `model.init` (a base by
path or hub id; paper: DeepSeek-Coder-Base-v1.5 7B) or, when that is null, a small Llama from scratch;
both arms start from the same initialisation and see the same token budget.

Documents are packed into rows of `seq_len` tokens (sft/packing.py); rows are interleaved by weight
(sft/mixture.py). Steps = ceil(pretrain.tokens / (seq_len x batch_size)). The loop is
`pipeline.training.TrainLoop` (schedule, accumulation, checkpoints, exact resume); loss, lr, tokens/s
and each source's share are logged per step to `metrics.jsonl` beside the model; `run.json` records the
config, parameter count, tokens seen and mean throughput.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from pipeline.config import setup, stage_parser
from pipeline.io import fingerprint
from pipeline.models import load_tokenizer
from pipeline.training import TrainLoop, guard_resume
from sft.mixture import Mixture, SourceSpec, TextSource
from sft.packing import DocumentPacker, collate_rows
from sft.recipe import (
    Throughput,
    dist_info,
    finish,
    load_or_build_model,
    optim_config,
)

log = logging.getLogger(__name__)

VARIANTS = ("mined", "web")


def build_mixture(sources: list[dict], tokenizer, *, seq_len: int, document_masking: bool, seed: int) -> Mixture:
    """One `DocumentPacker` per source, interleaved by the sources' weights."""
    specs = [SourceSpec.from_config(s) for s in sources]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"pretraining sources need distinct names, got {names}")
    streams = {s.name: DocumentPacker(TextSource(s, seed=seed), tokenizer, seq_len, document_masking=document_masking)
               for s in specs}
    return Mixture(streams, {s.name: s.weight for s in specs})


class PretrainBatches:
    """`TrainLoop` data source: micro-batches of `micro_batch_size` packed rows from the mixture.

    Every process draws the same global rows and keeps its slice, so the state is rank-independent.
    """

    def __init__(self, mixture: Mixture, micro_batch_size: int, rank: int = 0, world_size: int = 1):
        self.mixture, self.mbs, self.rank, self.world = mixture, int(micro_batch_size), rank, world_size

    def next_batch(self):
        rows = [self.mixture.next_item()[1] for _ in range(self.mbs * self.world)]
        return collate_rows(rows[self.rank * self.mbs:(self.rank + 1) * self.mbs])

    def state_dict(self) -> dict:
        return self.mixture.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.mixture.load_state_dict(state)


def lm_loss(model, batch):
    """Next-token cross-entropy over every token of the packed rows."""
    out = model(**batch, use_cache=False)
    return out.loss, {"tokens": float(batch["input_ids"].numel())}


def plan_steps(tokens: int, seq_len: int, batch_size: int, micro_batch_size: int, world_size: int) -> tuple[int, int]:
    """(optimizer steps, gradient accumulation) for a token budget."""
    per_pass = micro_batch_size * world_size
    if batch_size % per_pass:
        raise ValueError(f"pretrain.batch_size={batch_size} must be a multiple of micro_batch_size x processes "
                         f"= {per_pass}")
    return max(1, math.ceil(tokens / (seq_len * batch_size))), batch_size // per_pass


def run(cfg: dict, variant: str, tokenizer_dir: str | Path, out: str | Path, init: str | None = None) -> dict:
    pcfg = cfg["pretrain"]
    if variant not in pcfg["variants"]:
        raise ValueError(f"unknown pretraining variant {variant!r}: config has {sorted(pcfg['variants'])}")
    out = Path(out)
    run_dir = out.parent
    rank, world = dist_info()
    tokenizer = load_tokenizer(tokenizer_dir)
    init = init if init is not None else cfg["model"].get("init")
    model = load_or_build_model(cfg["model"], tokenizer, init, seed=cfg["seed"])

    seq_len = int(pcfg["seq_len"])
    steps, accum = plan_steps(int(pcfg["tokens"]), seq_len, int(pcfg["batch_size"]),
                              int(pcfg["micro_batch_size"]), world)
    mixture = build_mixture(pcfg["variants"][variant]["sources"], tokenizer, seq_len=seq_len,
                            document_masking=bool(pcfg["document_masking"]), seed=cfg["seed"])
    data = PretrainBatches(mixture, pcfg["micro_batch_size"], rank, world)
    tokens_per_step = seq_len * int(pcfg["batch_size"])
    log.info("pretraining %s: %d steps x %d tokens = %d tokens (budget %d); sources %s", variant, steps,
             tokens_per_step, steps * tokens_per_step, pcfg["tokens"], mixture.weights)

    guard_resume(run_dir, fingerprint(cfg["model"], cfg["pretrain"], variant, init, cfg["seed"], world))
    speed = Throughput(lambda m: m["tokens"] * accum, world, fixed_tokens_per_step=tokens_per_step)

    def log_shares(step: int, metrics: dict) -> None:
        metrics.update({f"share/{k}": round(v, 4) for k, v in mixture.shares().items()})

    loop = TrainLoop(model, lm_loss, data, out_dir=run_dir, total_steps=steps, optim=optim_config(pcfg),
                     grad_accum=accum, save_every=int(pcfg["save_every"]),
                     keep_checkpoints=int(pcfg["keep_checkpoints"]), log_every=int(pcfg["log_every"]),
                     seed=cfg["seed"], on_step_end=[speed, log_shares], desc=f"pretrain[{variant}]",
                     mixed_precision=pcfg["mixed_precision"])
    last = loop.run()
    summary = {"variant": variant, "init": init, "steps": steps, "grad_accum": accum, "processes": world,
               "tokens_seen": steps * tokens_per_step, "final_loss": last.get("loss"),
               "mean_tokens_per_s": speed.mean_rate(), "mixture_shares": mixture.shares(),
               "skipped_records": {k: s.source.skipped for k, s in mixture.streams.items()}}
    finish(loop, tokenizer, out, "sft.pretrain", cfg, **summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    p = stage_parser(__doc__.split("\n\n")[0])
    p.add_argument("--variant", required=True, choices=VARIANTS, help="which mixture: mined corpus or web text")
    p.add_argument("--out", required=True, help="model folder; metrics.jsonl, run.json, checkpoints/ go beside it")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (sft.tokenizer's output)")
    p.add_argument("--init", default=None, help="base model path or hub id (default: config model.init)")
    args = p.parse_args(argv)
    cfg = setup(args, ("pretrain",))
    run(cfg, args.variant, args.tokenizer, args.out, args.init)


if __name__ == "__main__":
    main()
