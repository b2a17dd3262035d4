"""GRPO end to end on a tiny model trained here (until the SFT checkpoint exists): rollouts, the
policy forward, one training run, and exact resume of a killed run (same prompt cursor, RNG, reference)."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from grading.prompts import build_prompt
from pipeline.config import set_threads
from pipeline.generation import build_generator
from pipeline.models import build_model, load_model, load_tokenizer, save, train_tokenizer
from pipeline.training import OptimConfig, TrainLoop
from rl.logprobs import token_logprobs
from rl.rewards import RewardFunction
from rl.rollouts import RolloutSettings, RolloutSource, load_prompts

ROOT = Path(__file__).resolve().parents[1]


def _problems(n, seed):
    r = random.Random(seed)
    out = []
    for i in range(n):
        a, b = r.randint(0, 30), r.randint(0, 30)
        out.append({"problem_id": f"add-{seed}-{i}", "family": "add", "question": f"What is {a} + {b}?", "answer": str(a + b),
                    "cot": f"We add {a} and {b}: {a} + {b} = {a + b}.\nThe answer is \\boxed{{{a + b}}}."})
    return out


class _SFTRows:
    """Prompt + CoT rows with the loss on the response only (a minimal SFT data source for the fixture)."""

    def __init__(self, tok, recs):
        self.tok, self.cursor = tok, 0
        self.rows = [(tok(build_prompt(r["question"], "cot", tok), add_special_tokens=False)["input_ids"],
                      tok(r["cot"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]) for r in recs]

    def next_batch(self, bs=16):
        rows = [self.rows[(self.cursor + i) % len(self.rows)] for i in range(bs)]
        self.cursor += bs
        L = max(len(p) + len(c) for p, c in rows)
        ids = torch.full((bs, L), self.tok.pad_token_id)
        labels = torch.full((bs, L), -100)
        mask = torch.zeros((bs, L), dtype=torch.long)
        for i, (p, c) in enumerate(rows):
            ids[i, : len(p) + len(c)] = torch.tensor(p + c)
            mask[i, : len(p) + len(c)] = 1
            labels[i, len(p): len(p) + len(c)] = torch.tensor(c)
        return ids, mask, labels

    def state_dict(self):
        return {"cursor": self.cursor}

    def load_state_dict(self, s):
        self.cursor = s["cursor"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-layer model that has learned the answer format (and some additions) in ~3 s."""
    set_threads(1)
    d = tmp_path_factory.mktemp("tiny")
    train = _problems(1000, 0)
    tok = train_tokenizer([r["question"] + " " + r["cot"] for r in train] + [build_prompt("x", "cot", None)],
                          vocab_size=300)
    model = build_model(tok, hidden_size=48, num_layers=2, num_heads=2, max_position_embeddings=256, seed=0)

    def lm_loss(m, b):
        ids, mask, labels = b
        return m(input_ids=ids, attention_mask=mask, labels=labels).loss, {}

    TrainLoop(model, lm_loss, _SFTRows(tok, train), out_dir=d / "sft", total_steps=150,
              optim=OptimConfig(lr=3e-3, schedule="cosine", warmup_steps=10), seed=0).run()
    save(model, tok, d / "model")
    rl = _problems(40, 1)
    rl.append({"problem_id": "bad-gold", "question": "What is 1 + 1?", "answer": "\\frac{"})
    (d / "rl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rl)
                                + json.dumps({"problem_id": "no-answer", "question": "What?"}) + "\n")
    return d


def _source(d, **kw):
    tok, model = load_tokenizer(d / "model"), load_model(d / "model")
    ps = load_prompts([{"data": str(d / "rl.jsonl"), "schema": "problem"}])
    for p in ps.prompts:
        p.prompt = build_prompt(p.question, "cot", tok)
    settings = RolloutSettings(**{"prompts_per_step": 4, "group_size": 4, "max_new_tokens": 32, **kw})
    ref = load_model(d / "model")
    return RolloutSource(ps.prompts, model, ref, build_generator("hf", model, tok), tok,
                         RewardFunction({"correctness": 1.0}), settings), ps


def test_prompts_skip_and_count_bad_records(tiny):
    ps = load_prompts([{"data": str(tiny / "rl.jsonl"), "schema": "problem"}])
    assert len(ps.prompts) == 41 and ps.skipped == {str(tiny / "rl.jsonl"): 1}
    assert load_prompts([{"data": str(tiny / "rl.jsonl"), "schema": "problem"}], limit=5).prompts[4].answer == (
        ps.prompts[4].answer)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_prompts([{"data": str(tiny / "nope.jsonl")}])
    with pytest.raises(ValueError, match="exactly one of"):
        load_prompts([{"data": str(tiny / "rl.jsonl"), "hub": "openai/gsm8k"}])


def test_rollout_batch_matches_generation(tiny):
    src, _ = _source(tiny, micro_batches=2)
    first = src.next_batch()
    second = src.next_batch()
    assert len(src.queue) == 0 and src.cursor == 4
    assert first.rows.num_rows + second.rows.num_rows == 16
    # whole groups per micro-batch: each of the 4 questions' prompts appears in exactly one micro-batch
    assert first.rows.prompt_ids.shape[0] == 2 and second.rows.prompt_ids.shape[0] == 2
    # the weights make the step's loss the mean over all 16 outputs after the loop's / grad_accum
    assert float(first.output_weights.sum() + second.output_weights.sum()) == pytest.approx(2.0)
    for b in (first, second):
        # a micro-batch pads to its own longest output only
        assert b.rows.completion_mask.sum(-1).max() == b.rows.completion_ids.shape[1]
        # the reference forward (no grad) equals the policy before any update: k3 KL would be 0
        lp, ent = token_logprobs(src.policy, b.rows, with_entropy=True)
        assert torch.allclose(lp, b.ref_logp, atol=1e-5)
        assert (ent >= 0).all()
    m = first.metrics
    for key in ("reward_mean", "reward_std", "accuracy", "zero_std_fraction", "completion_len",
                "truncated_fraction", "gen_s", "reward/correctness"):
        assert key in m
    assert 0.0 <= m["zero_std_fraction"] <= 1.0


def test_logprobs_of_forward_equal_generation_and_eos_is_an_action(tiny):
    src, _ = _source(tiny)
    tok = src.tokenizer
    outs = src.generator.generate([src.prompts[0].prompt], n=4, temperature=1.0, max_new_tokens=32, seed=3)
    from rl.logprobs import pack_rows

    comps = outs[0]
    ids = [src._with_eos(c) for c in comps]
    rows = pack_rows([src._prompt_ids[0]], [0, 0, 0, 0], ids, src.pad)
    with torch.no_grad():
        lp, _ = token_logprobs(src.policy, rows)
        flat, _ = token_logprobs(src.policy, rows, share_prompts=False)  # the DDP/FSDP path
        bucketed, _ = token_logprobs(src.policy, rows, max_buckets=4)
    assert torch.allclose(lp, flat, atol=1e-5) and torch.allclose(lp, bucketed, atol=1e-5)
    for i, c in enumerate(comps):
        k = len(c.logprobs)
        assert torch.allclose(lp[i, :k], torch.tensor(c.logprobs), atol=1e-4)
        if c.finish_reason == "stop":
            assert ids[i][-1] == tok.eos_token_id and rows.completion_mask[i, k] == 1


def test_length_buckets_split_an_outlier_and_give_the_same_logprobs(tiny):
    from rl.logprobs import length_buckets, pack_rows

    src, _ = _source(tiny)
    g = torch.Generator().manual_seed(0)
    outs = [torch.randint(5, 200, (n,), generator=g).tolist() for n in (4, 5, 5, 6, 4, 5, 6, 60)]
    rows = pack_rows([src._prompt_ids[0], src._prompt_ids[1]], [0, 0, 0, 0, 1, 1, 1, 1], outs, src.pad)
    parts = length_buckets(rows, max_buckets=4)
    assert len(parts) > 1 and sorted(torch.cat(parts).tolist()) == list(range(8))
    assert 7 in parts[-1].tolist() and len(parts[-1]) < 8  # the 60-token outlier pads only its own part
    with torch.no_grad():
        one, e1 = token_logprobs(src.policy, rows, with_entropy=True)
        many, e2 = token_logprobs(src.policy, rows, with_entropy=True, max_buckets=4)
    assert torch.allclose(one, many, atol=1e-5) and torch.allclose(e1, e2, atol=1e-5)
    many, _ = token_logprobs(src.policy, rows, max_buckets=4)
    many.sum().backward()  # the scatter keeps the graph
    assert all(p.grad is not None for p in src.policy.parameters() if p.requires_grad)


def test_mu_updates_reuse_the_rollout_with_old_logprobs(tiny):
    src, _ = _source(tiny, updates_per_batch=2)
    a, b = src.next_batch(), src.next_batch()
    assert a.old_logp is not None and torch.equal(a.rows.completion_ids, b.rows.completion_ids)
    assert b.metrics["gen_s"] == 0.0 and src.rollouts == 1


def test_process_supervision_and_online_rft_use_the_same_batches(tiny):
    from pipeline.generation import Completion
    from rl.grpo import make_loss_fn
    from rl.losses import GRPOCoefficient, RFTCoefficient

    src, _ = _source(tiny, supervision="process")
    b = src.next_batch()
    assert b.advantages.shape == b.rows.completion_ids.shape  # (N, T): per-token process advantages
    assert torch.all(b.advantages[b.rows.completion_mask == 0] == 0)
    for coef in (GRPOCoefficient(beta=0.04), RFTCoefficient()):
        loss, metrics = make_loss_fn(coef)(src.policy, b)
        loss.backward()
        assert torch.isfinite(loss) and metrics["entropy"] >= 0

    # One group of two outputs: right arithmetic + right answer vs a wrong step + wrong answer.
    texts = ["We add 2 and 6. 2 + 6 = 8.\nThe answer is \\boxed{8}.",
             "We add 2 and 6. 2 + 6 = 9.\nThe answer is \\boxed{9}."]
    ids = [src.tokenizer(t, add_special_tokens=False)["input_ids"] + [src.eos] for t in texts]
    flat = [Completion(t, i[:-1], [0.0] * (len(i) - 1), "stop") for t, i in zip(texts, ids)]
    src.s.group_size = 2
    adv, zero = src._process_advantages(flat, ids, torch.tensor([[1.0, 0.0]]), torch.tensor([False]))
    assert not zero[0]
    # step rewards of the group {1, 1, 0, 0}: +1 for the right step and answer, -1 for the wrong ones; every
    # token before the equation's end sums both steps of its output, the EOS only the outcome step
    n0, n1 = len(ids[0]), len(ids[1])
    assert adv[0, 0] == pytest.approx(2.0, abs=1e-3) and adv[1, 0] == pytest.approx(-2.0, abs=1e-3)
    assert adv[0, n0 - 1] == pytest.approx(1.0, abs=1e-3) and adv[1, n1 - 1] == pytest.approx(-1.0, abs=1e-3)


def _config(tmp_path, d, **rl):
    cfg = {"name": "rltest", "results_root": str(tmp_path / "results"), "seed": 0,
           "rl": {"prompts": [{"data": str(d / "rl.jsonl"), "schema": "problem"}], "steps": 4, "prompts_per_step": 4, "group_size": 4,
                  "max_new_tokens": 24, "lr": 1e-3, "save_every": 1, "ref_reset_every": 2,
                  "rewards": {"correctness": 1.0, "format": 0.1}, **rl}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


_KILLABLE = """
import os, signal, sys
from pipeline.config import load_config, set_threads, setup_logging
from rl.grpo import run
setup_logging("WARNING"); set_threads(1)
kill_at = int(sys.argv[4])
def killer(step, metrics):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
run(load_config(sys.argv[1]), sys.argv[2], sys.argv[3], on_step_end=[killer])
"""


def _run(cfg, init, out, kill_at=-1):
    return subprocess.run([sys.executable, "-c", _KILLABLE, str(cfg), str(init), str(out), str(kill_at)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model" / "model.safetensors"))


def _rows(out):
    return [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def test_killed_run_resumes_exactly(tiny, tmp_path):
    cfg = _config(tmp_path, tiny)
    ref = _run(cfg, tiny / "model", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = _run(cfg, tiny / "model", tmp_path / "res", kill_at=3)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (tmp_path / "res" / "model").exists()
    again = _run(cfg, tiny / "model", tmp_path / "res")
    assert again.returncode == 0, again.stderr[-3000:]

    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "res")
    for k in a:
        assert torch.equal(a[k], b[k]), f"weights differ after resume: {k}"
    ra, rb = _rows(tmp_path / "ref"), _rows(tmp_path / "res")
    assert [r["step"] for r in rb] == [1, 2, 3, 4]
    # same prompts and samples (cursor + RNG) and same reference (KL after the step-2 reset) at steps 3-4
    for x, y in zip(ra, rb):
        for key in ("reward_mean", "accuracy", "completion_len", "kl", "zero_std_fraction"):
            assert x[key] == pytest.approx(y[key], abs=1e-6), (x["step"], key)
    run = json.loads((tmp_path / "res" / "run.json").read_text())
    assert run["summary"]["reference_resets"] >= 1 and run["summary"]["prompts_skipped"] == {str(tiny / "rl.jsonl"): 1}
    assert not (tmp_path / "res" / "checkpoints").exists()


def test_changed_settings_do_not_resume_old_checkpoints(tmp_path):
    from pipeline.config import validate
    from rl.grpo import _check_resume, _fingerprint

    cfg = validate({"name": "x", "rl": {"beta": 0.04}})
    out = tmp_path / "o"
    _check_resume(out, _fingerprint(cfg, "init"))
    (out / "checkpoints" / "step-00000002").mkdir()
    _check_resume(out, _fingerprint({**cfg, "rl": {**cfg["rl"], "steps": 999}}, "init"))  # more steps: resume
    assert (out / "checkpoints" / "step-00000002").exists()
    _check_resume(out, _fingerprint({**cfg, "rl": {**cfg["rl"], "beta": 0.0}}, "init"))  # other settings
    assert not (out / "checkpoints" / "step-00000002").exists()
