"""`python -m sft.pretrain` end to end: a run SIGKILLed mid-way and restarted ends with exactly the weights
of an uninterrupted run; the model folder is a save_pretrained checkpoint transformers loads unchanged."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Runs sft.pretrain with a callback that SIGKILLs the process right after optimizer step KILL_AT
# (before that step's checkpoint could be written).
KILLER = """
import os, signal, sys
import pipeline.training as T
kill_at = int(sys.argv[1])
orig = T.TrainLoop.__init__
def init(self, *a, **k):
    k["on_step_end"] = list(k.get("on_step_end") or []) + [
        lambda step, m: step == kill_at and os.kill(os.getpid(), signal.SIGKILL)]
    orig(self, *a, **k)
T.TrainLoop.__init__ = init
from sft.pretrain import main
main(sys.argv[2:])
"""


@pytest.fixture(scope="module")
def setup_dir(tmp_path_factory):
    from pipeline.models import train_tokenizer

    d = tmp_path_factory.mktemp("pretrain")
    texts = {"math": [f"Tom has {i} apples. He buys {j} more, so he has {i} + {j} = {i + j} apples."
                      for i in range(12) for j in range(6)],
             "web": [f"The {w} walked to the park on day {i}." for i in range(30) for w in ("dog", "cat")]}
    for name, docs in texts.items():
        (d / name).mkdir()
        for s in range(2):
            pq.write_table(pa.table({"text": docs[s::2]}), d / name / f"part-{s:05d}.parquet")
    tok = train_tokenizer(texts["math"] + texts["web"], vocab_size=300)
    tok.save_pretrained(d / "tokenizer")
    cfg = {"name": "t", "results_root": str(d / "results"), "seed": 0, "threads": 1,
           "model": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 64},
           "pretrain": {"variants": {"mined": {"sources": [
               {"name": "math", "weight": 0.75, "path": str(d / "math")},
               {"name": "web", "weight": 0.25, "path": str(d / "web")}]}},
               "tokens": 32 * 4 * 8, "seq_len": 32, "batch_size": 4, "micro_batch_size": 2,
               "save_every": 2, "optimizer": {"lr": 0.003, "warmup_steps": 2}}}
    (d / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return d


def _args(d: Path, run: str) -> list[str]:
    return ["--config", str(d / "cfg.yaml"), "--variant", "mined", "--tokenizer", str(d / "tokenizer"),
            "--out", str(d / run / "model")]


def _run(args, kill_at=None):
    cmd = [sys.executable, "-c", KILLER, str(kill_at), *args] if kill_at else \
        [sys.executable, "-m", "sft.pretrain", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _reference(d: Path) -> None:
    """The uninterrupted run, in this process (one torch thread, as in the subprocesses)."""
    import torch

    from sft.pretrain import main

    if not (d / "ref" / "model").exists():
        torch.set_num_threads(1)
        main(_args(d, "ref"))


def test_sigkill_resume_gives_identical_weights(setup_dir):
    from safetensors.torch import load_file

    d = setup_dir
    _reference(d)

    killed = _run(_args(d, "resumed"), kill_at=5)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (d / "resumed" / "model").exists(), "a killed run must not leave a model folder"
    assert sorted(p.name for p in (d / "resumed" / "checkpoints").iterdir()) == ["step-00000004"]

    again = _run(_args(d, "resumed"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from" in again.stderr
    a = load_file(str(d / "ref" / "model" / "model.safetensors"))
    b = load_file(str(d / "resumed" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), f"weights differ after resume: {k}"
    rows = [json.loads(x) for x in (d / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows[-1]["tokens_seen"] == 32 * 4 * 8 and rows[-1]["tokens_per_s"] > 0
    assert rows[-1]["share/math"] == pytest.approx(0.75, abs=0.02)
    assert not (d / "resumed" / "checkpoints").exists(), "checkpoints are removed once the model is saved"


def test_output_is_a_standard_checkpoint(setup_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = setup_dir
    _reference(d)
    model = AutoModelForCausalLM.from_pretrained(d / "ref" / "model")
    tok = AutoTokenizer.from_pretrained(d / "ref" / "model")
    assert tok.chat_template and model.config.vocab_size == len(tok)
    run = json.loads((d / "ref" / "run.json").read_text())
    assert run["stage"] == "sft.pretrain" and run["tokens_seen"] == 32 * 4 * 8 and run["steps"] == 8
    assert run["config"]["pretrain"]["seq_len"] == 32


def test_changed_settings_do_not_resume(setup_dir):
    """Checkpoints written under other settings are discarded instead of resumed (pretraining, SFT and
    RL all start through pipeline.training.guard_resume), and so is the old run's metrics log."""
    from pipeline.training import guard_resume

    run_dir = setup_dir / "guard"
    assert guard_resume(run_dir, "key-a") is False  # first start: records its settings
    (run_dir / "checkpoints" / "step-00000002").mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    assert guard_resume(run_dir, "key-a") is True  # restart under the same settings: resume
    assert (run_dir / "checkpoints" / "step-00000002").exists() and (run_dir / "metrics.jsonl").exists()
    assert guard_resume(run_dir, "key-b") is False  # changed settings: start afresh
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()
    (run_dir / "checkpoints").mkdir()
    (run_dir / "resume_key.json").unlink()
    guard_resume(run_dir, "key-b")  # checkpoints of unknown origin are not trusted
    assert not (run_dir / "checkpoints").exists()


def test_continued_pretraining_loads_a_base_and_grows_its_embeddings(setup_dir):
    """`model.init` as a save_pretrained folder (a hub id goes the same way): loaded in train mode; a
    tokenizer with extra tokens resizes the embeddings."""
    from transformers import AutoTokenizer

    from sft.recipe import load_or_build_model

    d = setup_dir
    _reference(d)
    tok = AutoTokenizer.from_pretrained(d / "ref" / "model")
    base_vocab = len(tok)
    tok.add_tokens(["<|extra_a|>", "<|extra_b|>"])
    cfg = {"dtype": "float32", "attn_implementation": "sdpa", "gradient_checkpointing": False}
    model = load_or_build_model(cfg, tok, str(d / "ref" / "model"))
    assert model.training and not model.config.use_cache
    assert model.get_input_embeddings().num_embeddings == base_vocab + 2
