"""A tiny SFT'd policy for the RL method tests (test_rl_ppo/dpo/rft): a 2-layer Llama trained here through
sft/ (the stage's examples, batcher and loss) on one-digit additions with a CoT, so that sampled groups
hold both correct and incorrect outputs. Also the subprocess runner that kills an RL run mid-way."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grading.prompts import build_prompt
from pipeline.config import set_threads
from pipeline.models import build_model, save, train_tokenizer
from pipeline.training import OptimConfig, TrainLoop
from sft.data import DataStats, SFTExample, tokenize_all
from sft.packing import SFTBatches
from sft.train import choose_packing, sft_loss

ROOT = Path(__file__).resolve().parents[1]


def additions(n: int, seed: int) -> list[dict]:
    r = random.Random(seed)
    out = []
    for i in range(n):
        a, b = r.randint(0, 9), r.randint(0, 9)
        out.append({"problem_id": f"sum-{seed}-{i}", "question": f"Add {a} and {b}.", "answer": str(a + b),
                    "cot": f"{a} + {b} = {a + b}.\nThe answer is \\boxed{{{a + b}}}."})
    return out


@pytest.fixture(scope="module")
def rl_tiny(tmp_path_factory):
    set_threads(1)
    d = tmp_path_factory.mktemp("rl_tiny")
    train = additions(600, 0)
    tok = train_tokenizer([r["question"] + " " + r["cot"] for r in train] + [build_prompt("x", "cot", None)],
                          vocab_size=256)
    model = build_model(tok, hidden_size=48, num_layers=2, num_heads=2, max_position_embeddings=128, seed=0)
    examples = tokenize_all(tok, [SFTExample(r["problem_id"], "add", "cot", r["question"], r["cot"]) for r in train],
                            max_len=128, stats=DataStats())
    batches = SFTBatches(examples, max_len=128, micro_batch_size=8, pad_id=tok.pad_token_id,
                         packing=choose_packing("auto", model), seed=0)
    TrainLoop(model, sft_loss, batches, out_dir=d / "sft", total_steps=250,
              optim=OptimConfig(lr=3e-3, schedule="cosine", warmup_steps=10), seed=0).run()
    save(model, tok, d / "model")
    (d / "rl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in additions(24, 1)))
    return d


def rl_config(tmp_path: Path, d: Path, **rl) -> Path:
    cfg = {"name": "rltest", "results_root": str(tmp_path / "results"), "seed": 0,
           "rl": {"prompts": [{"data": str(d / "rl.jsonl"), "schema": "problem"}], "steps": 3, "prompts_per_step": 4,
                  "group_size": 4, "max_new_tokens": 48, "lr": 1e-3, "save_every": 1, **rl}}
    path = tmp_path / f"c-{rl.get('algorithm', 'grpo')}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


_KILLABLE = """
import os, signal, sys
from pipeline.config import load_config, set_threads, setup_logging
from rl.train import run
setup_logging("WARNING"); set_threads(1)
kill_at = int(sys.argv[4])
def killer(step, metrics):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
run(load_config(sys.argv[1]), sys.argv[2], sys.argv[3], on_step_end=[killer])
"""


def run_rl(cfg: Path, init: Path, out: Path, kill_at: int = -1) -> subprocess.CompletedProcess:
    """rl.train.run in a subprocess; with kill_at it SIGKILLs itself after that step."""
    return subprocess.run([sys.executable, "-c", _KILLABLE, str(cfg), str(init), str(out), str(kill_at)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def metrics_rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
