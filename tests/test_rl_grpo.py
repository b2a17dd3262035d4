"""GRPO end to end on a tiny model SFT'd here through sft/: rollouts, the
policy forward, one training run, and exact resume of a killed run (same prompt cursor, RNG, reference)."""

import json
import math
import random
import re
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
from sft.data import DataStats, SFTExample, tokenize_all
from sft.packing import SFTBatches
from sft.train import choose_packing, sft_loss
from tests.rl_tiny import run_rl

ROOT = Path(__file__).resolve().parents[1]


def _problems(n, seed):
    r = random.Random(seed)
    out = []
    for i in range(n):
        a, b = r.randint(0, 9), r.randint(0, 9)
        out.append({"problem_id": f"add-{seed}-{i}", "family": "add", "question": f"What is {a} + {b}?", "answer": str(a + b),
                    "cot": f"We add {a} and {b}: {a} + {b} = {a + b}.\nThe answer is \\boxed{{{a + b}}}."})
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-layer model SFT'd here through sft/ (the stage's examples, packed batcher and loss) on one-digit
    additions with CoT, ~20 s on one thread. Measured: it answers ~20% of unseen additions at temperature 1
    (90% after 300 steps), so rollout groups mix right and wrong outputs and advantages are not all zero."""
    set_threads(1)
    d = tmp_path_factory.mktemp("tiny")
    train = _problems(1000, 0)
    tok = train_tokenizer([r["question"] + " " + r["cot"] for r in train] + [build_prompt("x", "cot", None)],
                          vocab_size=300)
    model = build_model(tok, hidden_size=48, num_layers=2, num_heads=2, max_position_embeddings=256, seed=0)
    examples = tokenize_all(tok, [SFTExample(r["problem_id"], "add", "cot", r["question"], r["cot"]) for r in train],
                            max_len=256, stats=DataStats())
    batches = SFTBatches(examples, max_len=256, micro_batch_size=8, pad_id=tok.pad_token_id,
                         packing=choose_packing("auto", model), seed=0)
    TrainLoop(model, sft_loss, batches, out_dir=d / "sft", total_steps=200,
              optim=OptimConfig(lr=1e-2, schedule="cosine", warmup_steps=10), seed=0).run()
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


def _boxed_by_hand(text):
    """The content of the last \\boxed{...} (no nesting in these answers), or None."""
    found = re.findall(r"\\boxed\{([^{}]*)\}", text)
    return found[-1].strip() if found else None


def test_rollout_batch_matches_generation(tiny):
    src, _ = _source(tiny, micro_batches=2)
    picked = [src.prompts[i] for i in src.order[:4]]  # the first step's questions, in rollout order
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

    # Every number of the step recomputed here from the outputs themselves: decode, read the box, compare
    # with a + b of the question (our own arithmetic, not the grader's), group by question.
    tok, eos = src.tokenizer, src.eos
    rewards, right, lengths, cut, zero_std, advantages = [], [], [], [], [], []
    for part, b in enumerate((first, second)):
        for g in range(2):
            q = picked[2 * part + g]
            prompt = tok.decode(b.rows.prompt_ids[g][b.rows.prompt_mask[g].bool()])
            assert prompt == q.prompt
            a, c = (int(x) for x in re.fullmatch(r"What is (\d+) \+ (\d+)\?", q.question).groups())
            rows = (b.rows.group == g).nonzero().flatten().tolist()
            assert len(rows) == 4
            ok = []
            for i in rows:
                ids = b.rows.completion_ids[i][b.rows.completion_mask[i].bool()].tolist()
                lengths.append(len(ids))
                cut.append(ids[-1] != eos)
                assert not cut[-1] or len(ids) == 32  # no EOS: it ran out of the 32-token budget
                ok.append(_boxed_by_hand(tok.decode(ids, skip_special_tokens=True)) == str(a + c))
            valid = q.answer != "\\frac{"  # the bad-gold question: no reward, no weight, no vote
            if not valid:
                assert b.output_weights[rows].eq(0).all() and b.advantages[rows].eq(0).all()
                zero_std.append(False)
                continue
            right += ok
            r = torch.tensor(ok, dtype=torch.float64)
            assert b.rewards[rows].tolist() == r.tolist(), q.question
            rewards += r.tolist()
            zero_std.append(bool((r == r[0]).all()))
            want = torch.zeros(4) if zero_std[-1] else (r - r.mean()) / (r.std(correction=0) + 1e-4)
            advantages.append(torch.allclose(b.advantages[rows].double(), want.double(), atol=1e-5))
    assert all(advantages)
    m = first.metrics
    assert m is second.metrics or m == second.metrics
    assert m["accuracy"] == pytest.approx(sum(right) / len(right))  # over the graded outputs (bad gold: not graded)
    assert m["reward_mean"] == pytest.approx(sum(rewards) / len(rewards))
    assert m["reward/correctness"] == pytest.approx(sum(rewards) / len(rewards))
    assert m["zero_std_fraction"] == pytest.approx(sum(zero_std) / 4)
    assert m["completion_len"] == pytest.approx(sum(lengths) / 16)
    assert m["truncated_fraction"] == pytest.approx(sum(cut) / 16)
    assert m["gen_s"] > 0


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


def test_policy_rows_is_the_policy_forward_and_loads_bare_policy_checkpoints(tiny):
    """PolicyRows (what training wraps for DDP) gives token_logprobs of its policy, its state dict is the
    policy's under `policy.`, and a checkpoint of the bare policy (written before the wrapper) loads into it."""
    import copy

    from rl.logprobs import PolicyRows, pack_rows

    src, _ = _source(tiny)
    rows = pack_rows([src._prompt_ids[0], src._prompt_ids[1]], [0, 0, 1, 1], [[5, 6, 7], [8, 9], [10], [11, 12]],
                     src.pad)
    wrapped = PolicyRows(src.policy)
    with torch.no_grad():
        got, _ = wrapped(rows, max_buckets=4)
        want, _ = token_logprobs(src.policy, rows)
    assert torch.allclose(got, want, atol=1e-6)
    bare = src.policy.state_dict()
    assert set(wrapped.state_dict()) == {"policy." + k for k in bare}
    other = PolicyRows(copy.deepcopy(src.policy))
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    other.load_state_dict(bare)  # strict: every key found after the rename
    assert all(torch.equal(a, b) for a, b in zip(other.policy.state_dict().values(), bare.values()))


def test_mu_updates_reuse_the_rollout_with_old_logprobs(tiny):
    src, _ = _source(tiny, updates_per_batch=2)
    a, b = src.next_batch(), src.next_batch()
    assert a.old_logp is not None and torch.equal(a.rows.completion_ids, b.rows.completion_ids)
    assert b.metrics["gen_s"] == 0.0 and src.rollouts == 1


def test_process_supervision_and_online_rft_use_the_same_batches(tiny):
    from pipeline.generation import Completion
    from rl.grpo import make_loss_fn
    from rl.logprobs import PolicyRows
    from rl.losses import GRPOCoefficient, RFTCoefficient

    src, _ = _source(tiny, supervision="process")
    b = src.next_batch()
    assert b.advantages.shape == b.rows.completion_ids.shape  # (N, T): per-token process advantages
    assert torch.all(b.advantages[b.rows.completion_mask == 0] == 0)
    # Before any update (policy = reference = pi_old) the paper's objectives reduce to numbers computed
    # here by hand: GRPO = -sum_i w_i mean_t A_{i,t} (ratio 1, k3 KL 0); online RFT = -sum_i w_i [r_i >= 1]
    # mean_t log pi(o_{i,t}), i.e. SFT on the correct outputs only.
    mask = b.rows.completion_mask.float()
    with torch.no_grad():
        logp, _ = token_logprobs(src.policy, b.rows)
    per_token_mean = {"grpo": (b.advantages * mask).sum(-1) / mask.sum(-1),
                      "rft": (logp * mask).sum(-1) / mask.sum(-1) * (b.rewards >= 1.0).float()}
    assert (b.rewards >= 1.0).any() and (b.rewards < 1.0).any(), "the fixture should give mixed groups"
    for name, coef in (("grpo", GRPOCoefficient(beta=0.04)), ("rft", RFTCoefficient())):
        src.policy.zero_grad()
        loss, metrics = make_loss_fn(coef)(PolicyRows(src.policy), b)
        assert float(loss) == pytest.approx(float(-(b.output_weights * per_token_mean[name]).sum()), abs=1e-5), name
        loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in src.policy.parameters()), name
    assert metrics["kept_fraction"] == pytest.approx(float((b.rewards >= 1.0).float().mean()))

    # One group of two outputs: right arithmetic + right answer vs a wrong step + wrong answer.
    texts = ["We add 2 and 6. 2 + 6 = 8.\nThe answer is \\boxed{8}.",
             "We add 2 and 6. 2 + 6 = 9.\nThe answer is \\boxed{9}."]
    ids = [src.tokenizer(t, add_special_tokens=False)["input_ids"] + [src.eos] for t in texts]
    flat = [Completion(t, i[:-1], [0.0] * (len(i) - 1), "stop") for t, i in zip(texts, ids)]
    src.s.group_size = 2
    adv, zero, steps = src._process_advantages(flat, ids, torch.tensor([[1.0, 0.0]]), torch.tensor([False]))
    assert not zero[0] and steps == (1.0, 2)  # one of the two equation steps is right
    # step rewards of the group {1, 1, 0, 0}: +1 for the right step and answer, -1 for the wrong ones; every
    # token before the equation's end sums both steps of its output, the EOS only the outcome step
    n0, n1 = len(ids[0]), len(ids[1])
    assert adv[0, 0] == pytest.approx(2.0, abs=1e-3) and adv[1, 0] == pytest.approx(-2.0, abs=1e-3)
    assert adv[0, n0 - 1] == pytest.approx(1.0, abs=1e-3) and adv[1, n1 - 1] == pytest.approx(-1.0, abs=1e-3)


def _config(tmp_path, d, **rl):
    cfg = {"name": "rltest", "results_root": str(tmp_path / "results"), "seed": 0,
           "rl": {"prompts": [{"data": str(d / "rl.jsonl"), "schema": "problem"}], "steps": 4, "prompts_per_step": 4, "group_size": 4,
                  "max_new_tokens": 32, "lr": 1e-3, "save_every": 1, "ref_reset_every": 2,
                  "rewards": {"correctness": 1.0, "format": 0.1}, **rl}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(cfg, init, out, kill_at=-1):
    return run_rl(cfg, init, out, kill_at)  # rl.train in a subprocess that SIGKILLs itself (tests/rl_tiny.py)


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
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == [1, 2, 3, 4]  # one metrics row per step
    assert all(math.isfinite(r["loss"]) for r in ra)
    # RL changed the SFT model
    init = _weights(tiny)
    assert any(not torch.equal(init[k], a[k]) for k in a), "4 GRPO steps left the SFT weights unchanged"
    # the reference: the SFT model at step 1 and the step-2 policy at step 3 (ref_reset_every=2), so the KL of
    # each of those steps' first forward is 0; at steps 2 and 4 the policy has moved one step from it
    assert ra[0]["kl"] == pytest.approx(0.0, abs=1e-6) and ra[2]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert ra[1]["kl"] > 1e-6 and ra[3]["kl"] > 1e-6, ra
    # same prompts and samples (cursor + RNG) and same reference (KL after the step-2 reset) at steps 3-4
    for x, y in zip(ra, rb):
        for key in ("reward_mean", "accuracy", "completion_len", "kl", "zero_std_fraction"):
            assert x[key] == pytest.approx(y[key], abs=1e-6), (x["step"], key)
    run = json.loads((tmp_path / "res" / "run.json").read_text())
    assert run["summary"]["reference_resets"] >= 1 and run["summary"]["prompts_skipped"] == {str(tiny / "rl.jsonl"): 1}
    assert not (tmp_path / "res" / "checkpoints").exists()


def test_changed_settings_do_not_resume_old_checkpoints(tmp_path):
    """RL starts through the one resume guard (pipeline.training.guard_resume) under rl.train.resume_key:
    a longer run resumes a shorter one; other settings start afresh."""
    from pipeline.config import validate
    from pipeline.training import guard_resume
    from rl.train import resume_key

    cfg = validate({"name": "x", "rl": {"beta": 0.04}})
    out = tmp_path / "o"
    assert guard_resume(out, resume_key(cfg, "init")) is False
    (out / "checkpoints" / "step-00000002").mkdir(parents=True)
    longer = {**cfg, "rl": {**cfg["rl"], "steps": 999}}
    assert guard_resume(out, resume_key(longer, "init")) is True  # more steps: resume
    assert (out / "checkpoints" / "step-00000002").exists()
    other = {**cfg, "rl": {**cfg["rl"], "beta": 0.0}}
    assert guard_resume(out, resume_key(other, "init")) is False  # other settings
    assert not (out / "checkpoints" / "step-00000002").exists()
