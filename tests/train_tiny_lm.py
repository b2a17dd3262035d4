"""A tiny LM trained with pipeline.training.TrainLoop; used by tests/test_training.py as a subprocess.

    python tests/train_tiny_lm.py OUT_DIR STEPS [KILL_AT_STEP]
KILL_AT_STEP sends SIGKILL to this very process right after that optimizer step (before its checkpoint).
"""

import os
import signal
import sys

import torch

from pipeline.config import set_threads
from pipeline.models import build_model, save, train_tokenizer
from pipeline.training import OptimConfig, TrainLoop

TEXTS = [f"{a} + {b} = {a + b}." for a in range(20) for b in range(20)]


class ShuffledText:
    """A data source whose position (permutation + cursor + RNG) is checkpointed."""

    def __init__(self, tok, batch_size=8, seed=0):
        self.tok, self.bs = tok, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(TEXTS), generator=self.gen).tolist()
        self.cursor = 0

    def next_batch(self):
        if self.cursor + self.bs > len(self.order):
            self.order, self.cursor = torch.randperm(len(TEXTS), generator=self.gen).tolist(), 0
        texts = [TEXTS[i] for i in self.order[self.cursor:self.cursor + self.bs]]
        self.cursor += self.bs
        enc = self.tok(texts, return_tensors="pt", padding=True)
        return enc

    def state_dict(self):
        return {"order": self.order, "cursor": self.cursor, "gen": self.gen.get_state()}

    def load_state_dict(self, s):
        self.order, self.cursor = s["order"], s["cursor"]
        self.gen.set_state(s["gen"])


def lm_loss(model, enc):
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    out = model(**enc, labels=labels)
    return out.loss, {"tokens": float(enc["attention_mask"].sum())}


def main():
    out, steps = sys.argv[1], int(sys.argv[2])
    kill_at = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    set_threads(1)
    tok = train_tokenizer(TEXTS, vocab_size=64)
    tok.padding_side = "right"
    model = build_model(tok, hidden_size=32, num_layers=2, num_heads=2, seed=0)
    # Dropout-free model, but enable a stochastic op through the RNG anyway: noise on the loss
    # makes the test sensitive to RNG state being restored.
    def loss_fn(m, b):
        loss, met = lm_loss(m, b)
        return loss * (1 + 0.01 * torch.rand(())), met

    def killer(step, _metrics):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    loop = TrainLoop(model, loss_fn, ShuffledText(tok), out_dir=out, total_steps=steps,
                     optim=OptimConfig(lr=3e-3, schedule="cosine", warmup_steps=2), grad_accum=2,
                     save_every=1, seed=0, on_step_end=[killer])
    loop.run()
    save(loop.unwrapped_model(), tok, os.path.join(out, "model"))


if __name__ == "__main__":
    main()
