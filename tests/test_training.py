"""The one training loop: lr schedules, and exact resume after SIGKILL (same final weights)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.training import OptimConfig, lr_lambda

SCRIPT = Path(__file__).with_name("train_tiny_lm.py")
ROOT = Path(__file__).resolve().parents[1]


def test_lr_schedules():
    cfg = OptimConfig(schedule="cosine", warmup_steps=2, min_lr_ratio=0.1)
    assert lr_lambda(0, 10, cfg) == pytest.approx(0.5)
    assert lr_lambda(1, 10, cfg) == pytest.approx(1.0)
    assert lr_lambda(2, 10, cfg) == pytest.approx(1.0)
    assert lr_lambda(10, 10, cfg) == pytest.approx(0.1)
    assert lr_lambda(5, 10, OptimConfig(schedule="constant")) == 1.0
    assert lr_lambda(10, 10, OptimConfig(schedule="linear", min_lr_ratio=0.0)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_lambda(3, 10, OptimConfig(schedule="bogus"))


def _run(out, steps, kill_at=None):
    cmd = [sys.executable, str(SCRIPT), str(out), str(steps)] + ([str(kill_at)] if kill_at else [])
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model" / "model.safetensors"))


def test_sigkill_resume_gives_identical_weights(tmp_path):
    ref = _run(tmp_path / "ref", 6)
    assert ref.returncode == 0, ref.stderr[-2000:]

    killed = _run(tmp_path / "resumed", 6, kill_at=4)
    assert killed.returncode == -9, "the run should have been SIGKILLed"
    assert not (tmp_path / "resumed" / "model").exists(), "a killed run must not leave a final model"
    ckpts = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert ckpts[-1] == "step-00000003", ckpts

    again = _run(tmp_path / "resumed", 6)
    assert again.returncode == 0, again.stderr[-2000:]
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"weights differ after resume: {k}"
    # metrics of the resumed run: one row per step, no duplicates from the killed attempt
    steps = [int(line.split('"step": ')[1].split(",")[0])
             for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
