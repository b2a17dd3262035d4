"""RFT vs Online RFT (DeepSeekMath §5.2.1): one coefficient, two data sources. RFT's outputs come from the
frozen SFT model and are drawn once per question; Online RFT's come from the current policy at each step."""

import json

import torch

from grading.prompts import build_prompt
from pipeline.generation import build_generator
from pipeline.models import load_model, load_tokenizer
from rl.rewards import RewardFunction
from rl.rollouts import RolloutSettings, RolloutSource, load_prompts
from tests import rl_tiny as tiny
from tests.rl_tiny import metrics_rows, rl_config, run_rl

rl_tiny = tiny.rl_tiny  # the module-scoped fixture: a tiny SFT'd policy


def _source(d, sampler, policy, offline):
    tok = load_tokenizer(d / "model")
    ps = load_prompts([{"data": str(d / "rl.jsonl"), "schema": "problem"}], limit=4)
    for p in ps.prompts:
        p.prompt = build_prompt(p.question, "cot", tok)
    settings = RolloutSettings(prompts_per_step=4, group_size=4, max_new_tokens=48, offline=offline)
    return RolloutSource(ps.prompts, policy, None, build_generator("hf", sampler, tok), tok,
                         RewardFunction({"correctness": 1.0}), settings)


def _outputs(batch):
    r = batch.rows
    return [r.completion_ids[i][r.completion_mask[i].bool()].tolist() for i in range(r.num_rows)]


def test_rft_samples_the_sft_model_once_online_rft_the_current_policy(rl_tiny):
    sft = load_model(rl_tiny / "model")
    policy = load_model(rl_tiny / "model")
    with torch.no_grad():  # the policy has moved far from the SFT model: its samples are different
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.5)
    rft = _source(rl_tiny, sampler=sft, policy=policy, offline=True)
    online = _source(rl_tiny, sampler=policy, policy=policy, offline=False)
    # what the SFT model samples with the same questions and seed (a third, untouched copy)
    witness = _source(rl_tiny, sampler=load_model(rl_tiny / "model"), policy=None, offline=False)
    b_rft, b_online, b_sft = rft.next_batch(), online.next_batch(), witness.next_batch()
    assert _outputs(b_rft) == _outputs(b_sft)  # RFT: sampled by the SFT model
    assert _outputs(b_online) != _outputs(b_sft)  # Online RFT: sampled by the current policy

    # Step 2 walks a new permutation of the same 4 questions with a new seed. RFT reuses each question's
    # outputs (sampled once); Online RFT and the witness draw new ones.
    def by_question(src, batch):
        """question index -> its outputs; one step is one whole epoch here, so row group g is src.order[g]"""
        groups = batch.rows.group.tolist()
        return {src.order[g]: [o for o, gg in zip(_outputs(batch), groups) if gg == g] for g in range(4)}

    first = by_question(rft, b_rft)
    second_rft = rft.next_batch()
    assert rft.epoch == 1 and by_question(rft, second_rft) == first
    second_sft = witness.next_batch()
    assert _outputs(second_sft) != _outputs(second_rft)
    # the cache is part of the source's checkpointed state
    clone = _source(rl_tiny, sampler=policy, policy=policy, offline=True)  # a different sampler on purpose
    clone.load_state_dict(rft.state_dict())
    assert clone.cache.keys() == rft.cache.keys()
    assert [c.token_ids for c in clone.cache[0]] == [c.token_ids for c in rft.cache[0]]


def test_rft_and_online_rft_runs(rl_tiny, tmp_path):
    for algo in ("rft", "online_rft"):
        cfg = rl_config(tmp_path, rl_tiny, algorithm=algo, steps=2, snapshot_every=1)
        res = run_rl(cfg, rl_tiny / "model", tmp_path / algo)
        assert res.returncode == 0, res.stderr[-3000:]
        rows = metrics_rows(tmp_path / algo)
        assert [r["step"] for r in rows] == [1, 2] and all("kept_fraction" in r for r in rows)
        # kept = the correct outputs (correctness is the only reward term here)
        assert all(r["kept_fraction"] == r["accuracy"] for r in rows)
        assert (tmp_path / algo / "snapshots" / "step-00000002" / "config.json").exists()
        summary = json.loads((tmp_path / algo / "run.json").read_text())["summary"]
        assert summary["algorithm"] == algo and summary["peak_rss_mb"] > 0
