"""DPO (DeepSeekMath §5.2.1, eq. 14) on the shared engine: pairs of a correct and an incorrect output of the
frozen SFT model to the same question, judged by the shared grader; one run end to end."""

import math
import re

import pytest
import torch

from grading.prompts import build_prompt
from pipeline.generation import build_generator
from pipeline.models import load_model, load_tokenizer
from rl.dpo import PairSource
from rl.logprobs import token_logprobs
from rl.losses import DPOCoefficient, PolicyBatch, policy_loss
from rl.rewards import RewardFunction
from rl.rollouts import RolloutSettings, RolloutSource, load_prompts
from tests import rl_tiny as tiny
from tests.rl_tiny import metrics_rows, rl_config, run_rl

rl_tiny = tiny.rl_tiny  # the module-scoped fixture: a tiny SFT'd policy


def _answer(tok, rows, i):
    """Our own reading of output i's final answer: its last \\boxed{}, else its last number."""
    text = tok.decode(rows.completion_ids[i][rows.completion_mask[i].bool()], skip_special_tokens=True)
    found = re.findall(r"\\boxed\{([^{}]*)\}", text) or re.findall(r"-?\d+", text)
    return found[-1].strip() if found else None


def test_pairs_by_hand():
    src = PairSource.__new__(PairSource)  # only `pairs` is exercised: no model needed
    src.pairs_per_question = 2
    correct = [True, False, False, True,   # question 0: right 0, 3; wrong 1, 2 -> (0, 1), (3, 2)
               True, True, True, True,     # question 1: no wrong output -> no pair
               False, True, False, False,  # question 2: right 9; wrong 8, 10, 11 -> (9, 8)
               False, True, True, False]   # question 3: skipped (unparseable gold)
    assert src.pairs(correct, torch.tensor([False, False, False, True]), 4) == [(0, 1), (3, 2), (9, 8)]
    src.pairs_per_question = 1
    assert src.pairs(correct, torch.tensor([False, False, False, False]), 4) == [(0, 1), (9, 8), (13, 12)]


def test_implicit_rewards_by_hand():
    """dpo_chosen / dpo_rejected are beta m(o+) and beta m(o-), m the length-normalized log-ratio (eq. 14).
    o+ (2 tokens): log-ratios ln 2 and 0 -> m+ = ln2/2; o- (1 token): ln 3 -> m- = ln 3. beta 0.5:
    chosen ln2/4, rejected ln3/2, margin their difference."""
    logp = torch.log(torch.tensor([[0.5, 0.4], [0.3, 0.9]]))
    ref = torch.log(torch.tensor([[0.25, 0.4], [0.1, 0.3]]))
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    _, m = policy_loss(DPOCoefficient(beta=0.5), PolicyBatch(logp=logp, mask=mask, ref_logp=ref, n_pairs=1))
    assert m["dpo_chosen"] == pytest.approx(math.log(2) / 4) and m["dpo_rejected"] == pytest.approx(math.log(3) / 2)
    assert m["dpo_margin"] == pytest.approx(math.log(2) / 4 - math.log(3) / 2)


def test_pair_batches_are_graded_sft_samples(rl_tiny):
    tok = load_tokenizer(rl_tiny / "model")
    sft = load_model(rl_tiny / "model")
    ps = load_prompts([{"data": str(rl_tiny / "rl.jsonl"), "schema": "problem"}])
    for p in ps.prompts:
        p.prompt = build_prompt(p.question, "cot", tok)
    settings = RolloutSettings(prompts_per_step=8, group_size=4, max_new_tokens=48, offline=True, micro_batches=2)
    with pytest.raises(ValueError, match="offline sampling and a reference"):
        PairSource(ps.prompts, sft, None, build_generator("hf", sft, tok), tok, RewardFunction({"correctness": 1.0}),
                   settings)
    src = PairSource(ps.prompts, load_model(rl_tiny / "model"), sft, build_generator("hf", sft, tok), tok,
                     RewardFunction({"correctness": 1.0}), settings)
    questions = {p.prompt: p for p in ps.prompts}
    batches = [src.next_batch(), src.next_batch()]
    n_pairs = sum(b.n_pairs for b in batches if b.output_weights.any())
    assert n_pairs == batches[0].metrics["pairs"] > 0, "the fixture should give mixed groups"
    for b in batches:
        k = b.n_pairs
        if not b.output_weights.any():  # no pair in this micro-batch: one output with itself, weight 0
            assert k == 1 and torch.equal(b.rows.completion_ids[0], b.rows.completion_ids[1])
            continue
        assert b.rows.num_rows == 2 * k and float(b.output_weights.sum()) == pytest.approx(2 * k / n_pairs)
        with torch.no_grad():  # pi_ref is the SFT model
            assert torch.allclose(b.ref_logp, token_logprobs(sft, b.rows)[0], atol=1e-5)
        for i in range(k):
            # both outputs answer the same question; our own reading says the first is right, the second wrong
            g_plus, g_minus = int(b.rows.group[i]), int(b.rows.group[k + i])
            assert g_plus == g_minus
            prompt = tok.decode(b.rows.prompt_ids[g_plus][b.rows.prompt_mask[g_plus].bool()])
            a, c = (int(x) for x in re.fullmatch(r"Add (\d) and (\d)\.", questions[prompt].question).groups())

            assert _answer(tok, b.rows, i) == str(a + c) and _answer(tok, b.rows, k + i) != str(a + c)
    # the outputs were sampled by the SFT model: the same questions and seed through a plain source agree
    plain = RolloutSource(ps.prompts, None, None, build_generator("hf", load_model(rl_tiny / "model"), tok), tok,
                          RewardFunction({"correctness": 1.0}), RolloutSettings(prompts_per_step=8, group_size=4,
                                                                                  max_new_tokens=48))
    assert plain.sample().metrics["accuracy"] == batches[0].metrics["accuracy"]


def test_dpo_run(rl_tiny, tmp_path):
    cfg = rl_config(tmp_path, rl_tiny, algorithm="dpo", steps=2, prompts_per_step=8, dpo={"beta": 0.1})
    res = run_rl(cfg, rl_tiny / "model", tmp_path / "dpo")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = metrics_rows(tmp_path / "dpo")
    assert [r["step"] for r in rows] == [1, 2]
    # step 1: pi = pi_ref, every margin is 0, the loss is log 2
    assert rows[0]["loss"] == pytest.approx(0.6931, abs=1e-3) and rows[0]["dpo_margin"] == pytest.approx(0.0, abs=1e-6)
    assert rows[1]["pairs"] >= 0 and "pairless_fraction" in rows[1]
