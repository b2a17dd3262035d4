"""The HF generation backend against transformers' `model.generate`, on the same model and prompts.

    python -m benchmarks.run --only generation

The shape of one RL rollout of the embedded default: 16 questions x 8 samples, temperature 1, at most
128 new tokens, one CPU thread. The model is the embedded default's SFT checkpoint
(results/tiny/sft/mined/model, questions from results/tiny/world/problems/rl.jsonl) when it exists, else
a randomly initialised Llama of the same size with made-up questions (outputs then run to the token limit).

Reported per backend: CPU seconds per call (median of `REPEATS`), generated tokens and tokens per CPU
second; `model.generate` runs with `num_return_sequences`, top-k off and the same temperature, so both
sample from the same distribution. Greedy tokens of the two are compared on the same questions
(`greedy_identical`): the speed must not come from computing something else.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path

import torch

from grading.prompts import build_prompt
from pipeline.generation import build_generator
from pipeline.models import build_model, load_model, load_tokenizer, train_tokenizer

log = logging.getLogger("benchmarks.generation")

ROOT = Path(__file__).resolve().parents[1]
TINY_SFT = ROOT / "results/tiny/sft/mined/model"
TINY_RL = ROOT / "results/tiny/world/problems/rl.jsonl"
PROMPTS, N, MAX_NEW_TOKENS, REPEATS = 16, 8, 128, 3


def _model_and_questions():
    if TINY_SFT.exists() and TINY_RL.exists():
        questions = [json.loads(line)["question"] for line in TINY_RL.open()][:PROMPTS]
        return load_model(TINY_SFT), load_tokenizer(TINY_SFT), questions, str(TINY_SFT)
    questions = [f"Tom has {a} apples and buys {b} more. How many apples does he have?" for a, b in
                 zip(range(3, 3 + PROMPTS), range(20, 20 + PROMPTS))]
    tok = train_tokenizer(questions * 20, vocab_size=300)
    return build_model(tok, hidden_size=128, num_layers=4, num_heads=4, seed=0), tok, questions, "random h128-l4"


def _cpu_time(fn) -> tuple[float, object]:
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def main(out_dir: Path) -> dict:
    model, tok, questions, source = _model_and_questions()
    model.eval()
    prompts = [build_prompt(q, "cot", tok) for q in questions]
    ours = build_generator("hf", model, tok, batch_size=PROMPTS * N)

    def run_ours(seed):
        outs = ours.generate(prompts, n=N, temperature=1.0, max_new_tokens=MAX_NEW_TOKENS, seed=seed)
        return sum(len(c.token_ids) for row in outs for c in row)

    def run_hf(seed, n=N, sample=True):
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(seed)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=sample, num_return_sequences=n, max_new_tokens=MAX_NEW_TOKENS,
                                 temperature=1.0 if sample else None, top_k=0 if sample else None, top_p=None,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        return new, int(((new != tok.pad_token_id) & (new != tok.eos_token_id)).sum())

    result: dict = {"model": source, "prompts": PROMPTS, "n": N, "max_new_tokens": MAX_NEW_TOKENS, "threads": 1}
    for name, fn in (("ours", lambda s: run_ours(s)), ("transformers_generate", lambda s: run_hf(s)[1])):
        fn(0)  # warm-up
        runs = [_cpu_time(lambda s=s, fn=fn: fn(s)) for s in range(1, REPEATS + 1)]
        cpu = statistics.median(t for t, _ in runs)
        tokens = statistics.mean(n for _, n in runs)
        result[name] = {"cpu_s": round(cpu, 3), "tokens": round(tokens), "tokens_per_cpu_s": round(tokens / cpu)}
        log.info("%s: %s", name, result[name])
    result["speedup_tokens_per_s"] = round(result["ours"]["tokens_per_cpu_s"]
                                           / result["transformers_generate"]["tokens_per_cpu_s"], 2)

    greedy = ours.generate(prompts, n=1, temperature=0.0, max_new_tokens=MAX_NEW_TOKENS)
    ref, _ = run_hf(0, n=1, sample=False)
    same = 0
    for row, want in zip(greedy, ref.tolist()):
        want = [t for t in want if t not in (tok.pad_token_id,)]
        if tok.eos_token_id in want:
            want = want[: want.index(tok.eos_token_id)]
        same += row[0].token_ids == want
    result["greedy_identical"] = f"{same}/{len(prompts)}"
    return result
