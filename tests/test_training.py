"""The one training loop: lr schedules, per-group learning rates, and exact resume after SIGKILL (same final
weights)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.training import OptimConfig, TrainLoop, Weighted, adamw_groups, lr_lambda

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


class _Constant:
    """A data source with nothing to say: the loss below needs no batch."""

    def next_batch(self):
        return None

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_param_groups_step_by_their_own_lr_and_the_schedule(tmp_path):
    # loss = sum(a) - sum(b): a constant gradient (+1 on a, -1 on b). With a constant gradient AdamW's
    # bias-corrected moments are m = g and v = g^2 at every step, so (weight decay 0, eps 1e-12) each step
    # moves every weight by exactly lr_t * sign(g): a down, b up. Schedule: 2 warm-up steps, then linear
    # decay over the remaining 2 to half the lr: multipliers 1/2, 2/2, then 1 - 0.5 * 0/2 = 1 and
    # 1 - 0.5 * 1/2 = 3/4. Group "a" has lr 0.1 (the loop's), group "b" its own 0.01.
    model = torch.nn.Module()
    model.a = torch.nn.Parameter(torch.zeros(3))
    model.b = torch.nn.Parameter(torch.zeros(2, 2))  # a matrix: in the weight-decay half of its group
    optim = OptimConfig(lr=0.1, eps=1e-12, schedule="linear", warmup_steps=2, min_lr_ratio=0.5, grad_clip=0.0)
    seen = []
    loop = TrainLoop(model, lambda m, batch: (m.a.sum() - m.b.sum(), {}), _Constant(), out_dir=tmp_path,
                     total_steps=4, optim=optim,
                     param_groups=[{"name": "a", "params": [model.a]}, {"name": "b", "params": [model.b], "lr": 0.01}],
                     on_step_end=[lambda step, m: seen.append((model.a.detach().clone(), model.b.detach().clone(), m))])
    loop.run()
    mult = [0.5, 1.0, 1.0, 0.75]
    a_prev, b_prev = torch.zeros(3), torch.zeros(2, 2)
    for (a, b, _), k in zip(seen, mult):
        assert torch.allclose(a_prev - a, torch.full((3,), 0.1 * k), atol=1e-7)
        assert torch.allclose(b - b_prev, torch.full((2, 2), 0.01 * k), atol=1e-8)
        a_prev, b_prev = a, b
    # the logged lr is the one the next step uses (the scheduler has stepped): 0.1 x the following multiplier
    assert [m["lr/a"] for _, _, m in seen[:3]] == pytest.approx([0.1, 0.1, 0.075])
    assert [m["lr/b"] for _, _, m in seen[:3]] == pytest.approx([0.01, 0.01, 0.0075])


class _Tokens(_Constant):
    """Micro-batches of 1 and 3 tokens, alternately."""

    def __init__(self):
        self.k = 0

    def next_batch(self):
        self.k += 1
        return 1 if self.k % 2 else 3


def test_weighted_metrics_are_means_over_the_step_tokens(tmp_path):
    """Two micro-batches per step: 1 token with a clip fraction of 1, 3 tokens with 0. Over the step's 4
    tokens the fraction is 1/4; a plain metric is the mean of the micro-batch values, 1/2."""
    model = torch.nn.Linear(1, 1)

    def loss_fn(m, tokens):
        frac = 1.0 if tokens == 1 else 0.0
        return m.weight.sum() * 0, {"clip_fraction": Weighted(frac, tokens), "plain": frac}

    seen = []
    TrainLoop(model, loss_fn, _Tokens(), out_dir=tmp_path, total_steps=2, grad_accum=2,
              optim=OptimConfig(lr=0.1, grad_clip=0.0), on_step_end=[lambda step, m: seen.append(m)]).run()
    assert [m["clip_fraction"] for m in seen] == [0.25, 0.25]
    assert [m["plain"] for m in seen] == [0.5, 0.5]
    assert type(seen[0]["clip_fraction"]) is float  # logged as a number (JSON)


def test_param_groups_must_cover_each_trainable_parameter_once():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="in no parameter group"):
        adamw_groups(model, OptimConfig(), [{"params": [model.weight]}])
    with pytest.raises(ValueError, match="repeats a parameter"):
        adamw_groups(model, OptimConfig(), [{"params": [model.weight, model.bias]}, {"params": [model.bias]}])
    groups = adamw_groups(model, OptimConfig(lr=0.5, weight_decay=0.1))  # the default: one group, split
    assert [(len(g["params"]), g["weight_decay"], g["lr"]) for g in groups] == [(1, 0.1, 0.5), (1, 0.0, 0.5)]


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
