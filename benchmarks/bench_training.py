"""Training throughput of the embedded default's models (one CPU thread): tokens/s at several model sizes
for pretraining rows, and SFT packed vs padded (DeepSeekMath §2.3/§3.1 recipe at tiny scale).

    python -m benchmarks.run --only training

Every measurement is a full optimizer step (forward, backward, AdamW) through the same `TrainLoop` the
stages use, on synthetic token ids (throughput does not depend on the data). Reported:
- `pretrain[<size>]`: tokens/s on rows of `seq_len` (min over repeats of the step time);
- `sft_packed` / `sft_padded`: all tokens/s and response (loss) tokens/s on examples with the length
  distribution of the world's SFT data, packed into rows of `max_len` vs one example per padded row.
The sft.packing choice (`auto` -> packed when the model isolates packed sequences) rests on these numbers.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

VOCAB = 2048
SIZES = [  # (name, hidden, layers, heads)
    ("h128-l4", 128, 4, 4),
    ("h192-l4", 192, 4, 4),
    ("h256-l4", 256, 4, 4),
    ("h256-l6", 256, 6, 4),
]


class _FixedBatches:
    def __init__(self, make):
        self.make, self.i = make, 0

    def next_batch(self):
        self.i += 1
        return self.make(self.i)

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, s):
        self.i = s["i"]


def _model(hidden, layers, heads):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=1024,
                      tie_word_embeddings=True, use_cache=False)
    return LlamaForCausalLM(cfg)


def _steps_per_s(model, make_batch, steps: int, counts) -> dict:
    """Run `steps` optimizer steps through TrainLoop; per-step time is the median after one warm-up step."""
    from pipeline.training import OptimConfig, TrainLoop

    times: list[float] = []
    tokens: list[tuple[float, float]] = []

    def loss_fn(m, batch):
        out = m(**batch, use_cache=False)
        tokens.append(counts(batch))
        return out.loss, {}

    with tempfile.TemporaryDirectory() as tmp:
        loop = TrainLoop(model, loss_fn, _FixedBatches(make_batch), out_dir=tmp, total_steps=steps,
                         optim=OptimConfig(lr=1e-3, schedule="constant"),
                         on_step_end=[lambda s, m: times.append(m["step_s"])], desc="bench")
        loop.run()
    t = sorted(times[1:])[len(times[1:]) // 2]
    all_tok = sum(a for a, _ in tokens[1:]) / len(tokens[1:])
    loss_tok = sum(b for _, b in tokens[1:]) / len(tokens[1:])
    return {"step_s": round(t, 4), "tokens_per_s": round(all_tok / t), "loss_tokens_per_s": round(loss_tok / t)}


def bench_pretrain(seq_len: int = 256, rows: int = 16, steps: int = 6) -> dict:
    import torch

    out = {}
    for name, hidden, layers, heads in SIZES:
        model = _model(hidden, layers, heads)
        g = torch.Generator().manual_seed(0)

        def make(i, g=g):
            ids = torch.randint(0, VOCAB, (rows, seq_len), generator=g)
            return {"input_ids": ids, "labels": ids}

        r = _steps_per_s(model, make, steps, lambda b: (b["input_ids"].numel(), b["input_ids"].numel()))
        r["parameters_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
        out[name] = r
        log.info("pretrain %s: %s", name, r)
    return out


def bench_sft(max_len: int = 512, rows: int = 16, steps: int = 6, size=SIZES[0]) -> dict:
    """Packed vs padded SFT on examples of 60-200 tokens, ~half of them response (the world's SFT mix)."""
    import torch

    from sft.packing import IGNORE, SFTBatches, TokenizedExample

    g = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(2000):
        n = int(torch.randint(60, 200, (1,), generator=g))
        p = n // 2
        ids = torch.randint(5, VOCAB, (n,), generator=g).tolist()
        examples.append(TokenizedExample(ids, [IGNORE] * p + ids[p:]))
    out = {}
    for packing in (True, False):
        # padded rows hold one example each: as many rows as fit the same tokens per step as packed rows
        mbs = rows if packing else rows * max_len // 130
        data = SFTBatches(examples, max_len=max_len, micro_batch_size=mbs, pad_id=0, packing=packing, seed=0)
        model = _model(*size[1:])
        r = _steps_per_s(model, lambda i, data=data: data.next_batch(), steps,
                         lambda b: (b["input_ids"].numel(), float((b["labels"] != IGNORE).sum())))
        r["rows_per_step"] = mbs
        out["sft_packed" if packing else "sft_padded"] = r
        log.info("sft %s: %s", "packed" if packing else "padded", r)
    return out


def main(out_dir: Path) -> dict:
    from pipeline.config import set_threads

    set_threads(1)
    t0 = time.perf_counter()
    result = {"threads": 1, "vocab": VOCAB, "pretrain_seq_len": 256, "pretrain": bench_pretrain(),
              **bench_sft()}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    return result


if __name__ == "__main__":
    import json

    from pipeline.config import setup_logging

    setup_logging()
    print(json.dumps(main(Path("results/bench")), indent=1))
