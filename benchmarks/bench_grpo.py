"""GRPO speed and learning against TRL's GRPOTrainer, on the same model, prompts, G and max tokens.

    python -m benchmarks.run --only grpo          # or: make bench
    BENCH_GRPO_STEPS=20 python -m benchmarks.run --only grpo
    BENCH_GRPO_MODEL=path/to/sft/model BENCH_GRPO_PROMPTS=path/to/rl.jsonl python -m benchmarks.run --only grpo

Both trainers run in this process, one after the other, on one CPU thread, from the same checkpoint,
with the same questions (the same prompt strings, built by grading.prompts), the same reward (rl.rewards:
the shared grader's correctness), 16 questions x G 8 per step, at most 128 new tokens, the same lr,
AdamW betas, grad clipping, temperature 1 and no lr schedule. TRL's options are set explicitly where its
defaults differ from the paper (DeepSeekMath §4): beta 0.04 (TRL: 0), loss_type "grpo" (per-output
token mean, TRL: "dapo"), scale_rewards "group", one update per generation (num_iterations 1), float32 and
no gradient checkpointing (TRL defaults to bf16 and checkpointing; ours runs neither); with the
KL term on, TRL loads the model from a folder to build its reference.

The model: BENCH_GRPO_MODEL + BENCH_GRPO_PROMPTS (a save_pretrained folder and a problem JSONL) when set, else
the embedded default's SFT checkpoint (results/tiny/sft/mined/model, RL questions from
results/tiny/world/problems/rl.jsonl) when those exist, else a ~1M-parameter Llama trained here for a
minute on two-number additions (the same for both trainers either way). Reported: seconds per step
(mean, median, and without the first step), the reward curve of each (mean reward of the rollouts at
every step), and the zero-std-group fraction. Our run also reports its time split (generation /
scoring / reference forward / policy forward+backward). When the workflow has evaluated the SFT and
RL checkpoints of the embedded default, their greedy / Maj@K / Pass@K are copied in side by side.
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import time
from pathlib import Path

log = logging.getLogger("benchmarks.grpo")

ROOT = Path(__file__).resolve().parents[1]
TINY_SFT = ROOT / "results/tiny/sft/mined/model"
TINY_RL = ROOT / "results/tiny/world/problems/rl.jsonl"

PROMPTS_PER_STEP, G, MAX_NEW_TOKENS = 16, 8, 128


def _settings() -> dict:
    """The tiny config's rl section (lr, beta, clip, temperature) with the benchmark's fixed shape."""
    from pipeline.config import load_config

    rl = load_config(ROOT / "config/tiny.yaml")["rl"]
    return {"steps": int(os.environ.get("BENCH_GRPO_STEPS", 15)), "lr": rl["lr"], "beta": rl["beta"],
            "clip_eps": rl["clip_eps"], "temperature": rl["temperature"], "top_p": rl["top_p"],
            "grad_clip": rl["grad_clip"], "prompts_per_step": PROMPTS_PER_STEP, "group_size": G,
            "max_new_tokens": MAX_NEW_TOKENS}


# --- the model and questions -----------------------------------------------------------------------


def _addition_problems(n: int, seed: int) -> list[dict]:
    r = random.Random(seed)
    out = []
    for i in range(n):
        a, b = r.randint(0, 40), r.randint(0, 40)
        out.append({"problem_id": f"add-{seed}-{i}", "family": "add", "question": f"What is {a} + {b}?", "answer": str(a + b),
                    "cot": f"We add {a} and {b}. {a} + {b} = {a + b}.\nThe answer is \\boxed{{{a + b}}}."})
    return out


def _fallback_model(work: Path) -> tuple[Path, Path]:
    """A ~1M-parameter Llama that partly knows additions of numbers up to 40 (reward variance to learn from),
    SFT'd through sft/ as the workflow's SFT stage trains: chat-template examples with the loss on the
    response (sft.data), packed rows (sft.packing.SFTBatches) and the stage's loss (sft.train.sft_loss)."""
    from grading.prompts import build_prompt
    from pipeline.models import build_model, num_parameters, save, train_tokenizer
    from pipeline.training import OptimConfig, TrainLoop
    from sft.data import DataStats, SFTExample, tokenize_all
    from sft.packing import SFTBatches
    from sft.train import choose_packing, sft_loss

    train = _addition_problems(4000, 0)
    tok = train_tokenizer([r["question"] + " " + r["cot"] for r in train] + [build_prompt("x", "cot", None)],
                          vocab_size=512)
    model = build_model(tok, hidden_size=128, num_layers=4, num_heads=4, max_position_embeddings=512, seed=0)
    log.info("fallback model: %.2fM parameters, SFT on additions", num_parameters(model) / 1e6)
    examples = tokenize_all(tok, [SFTExample(r["problem_id"], "add", "cot", r["question"], r["cot"]) for r in train],
                            max_len=512, stats=DataStats())
    # 512-token rows hold ~5 examples (87 tokens each): 6 rows per step ~ the 32 examples per step it was tuned with
    batches = SFTBatches(examples, max_len=512, micro_batch_size=6, pad_id=tok.pad_token_id,
                         packing=choose_packing("auto", model), seed=0)
    TrainLoop(model, sft_loss, batches, out_dir=work / "sft", total_steps=400,
              optim=OptimConfig(lr=3e-3, schedule="cosine", warmup_steps=10), seed=0, desc="bench sft").run()
    save(model, tok, work / "model")
    rl = work / "rl.jsonl"
    rl.write_text("".join(json.dumps(r) + "\n" for r in _addition_problems(400, 1)))
    return work / "model", rl


def _model_and_prompts(work: Path) -> tuple[Path, Path, str]:
    model, prompts = os.environ.get("BENCH_GRPO_MODEL"), os.environ.get("BENCH_GRPO_PROMPTS")
    if model or prompts:
        if not (model and prompts and (Path(model) / "config.json").exists() and Path(prompts).exists()):
            raise FileNotFoundError(f"BENCH_GRPO_MODEL={model!r} must be a model folder and "
                                    f"BENCH_GRPO_PROMPTS={prompts!r} a problem file; both must exist")
        return Path(model), Path(prompts), f"{model} + {prompts}"
    if (TINY_SFT / "config.json").exists() and TINY_RL.exists():
        return TINY_SFT, TINY_RL, "results/tiny SFT checkpoint + world RL questions"
    model, rl = _fallback_model(work)
    return model, rl, "fallback: ~1M-param Llama SFT'd here on additions up to 40"


# --- the two trainers ------------------------------------------------------------------------------


def _run_ours(model: Path, prompts: Path, out: Path, s: dict) -> dict:
    from pipeline.config import validate
    from pipeline.io import read_jsonl
    from rl.grpo import run

    cfg = validate({"name": "bench_grpo", "results_root": str(out), "seed": 0, "threads": 1,
                    "generation": {"backend": "hf", "batch_size": PROMPTS_PER_STEP * G},
                    "rl": {"prompts": [{"data": str(prompts), "schema": "problem"}], "steps": s["steps"], "prompts_per_step": s["prompts_per_step"],
                           "group_size": s["group_size"], "max_new_tokens": s["max_new_tokens"], "lr": s["lr"],
                           "beta": s["beta"], "clip_eps": s["clip_eps"], "temperature": s["temperature"],
                           "top_p": s["top_p"], "grad_clip": s["grad_clip"], "save_every": 0,
                           "rewards": {"correctness": 1.0}}})
    cpu = _CpuClock()
    t0 = time.perf_counter()
    run(cfg, str(model), out / "ours", on_step_end=[lambda step, m: cpu.tick()])
    wall = time.perf_counter() - t0
    rows = list(read_jsonl(out / "ours" / "metrics.jsonl"))
    split = {k: statistics.mean(r[k] for r in rows) for k in ("gen_s", "score_s", "ref_s")}
    split["train_s"] = statistics.mean(r["step_s"] - r["data_s"] for r in rows)
    return {"step_s": [r["step_s"] for r in rows], "cpu_step_s": cpu.steps(), "reward": [r["reward_mean"] for r in rows],
            "zero_std_fraction": [r["zero_std_fraction"] for r in rows],
            "completion_len": [r["completion_len"] for r in rows], "time_split_s": split, "wall_s": wall}


def _run_trl(model: Path, prompts: Path, out: Path, s: dict) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from grading.prompts import build_prompt
    from pipeline.models import load_tokenizer
    from rl.rewards import RewardFunction
    from rl.rollouts import load_prompts

    tok = load_tokenizer(model)
    recs = load_prompts([{"data": str(prompts), "schema": "problem"}]).prompts
    data = Dataset.from_list([{"prompt": build_prompt(r.question, "cot", tok), "answer": r.answer} for r in recs])
    reward = RewardFunction({"correctness": 1.0})
    stops = {tok.eos_token_id, tok.pad_token_id}

    def correctness(prompts, completions, completion_ids, answer, **_):
        finish = ["stop" if ids and ids[-1] in stops else "length" for ids in completion_ids]
        return reward(completions, answer, finish).total

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], 0.0

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.t0)
            cpu.tick()

    cpu = _CpuClock()
    timer = StepTimer()
    args = GRPOConfig(
        output_dir=str(out / "trl"), max_steps=s["steps"], learning_rate=s["lr"], lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8,
        max_grad_norm=s["grad_clip"], beta=s["beta"], epsilon=s["clip_eps"], loss_type="grpo",
        scale_rewards="group", num_iterations=1, num_generations=s["group_size"],
        per_device_train_batch_size=s["prompts_per_step"] * s["group_size"], gradient_accumulation_steps=1,
        max_completion_length=s["max_new_tokens"], temperature=s["temperature"], top_p=s["top_p"],
        gradient_checkpointing=False, bf16=False, fp16=False,  # TRL defaults: checkpointing on, bf16 on
        use_cpu=True, seed=0, logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True,
        dataloader_num_workers=0)
    t0 = time.perf_counter()
    trainer = GRPOTrainer(model=str(model), reward_funcs=correctness, args=args, train_dataset=data,
                          processing_class=tok, callbacks=[timer])
    trainer.train()
    wall = time.perf_counter() - t0
    logs = [h for h in trainer.state.log_history if "reward" in h]
    return {"step_s": timer.times, "cpu_step_s": cpu.steps(), "reward": [h["reward"] for h in logs],
            "zero_std_fraction": [h["frac_reward_zero_std"] for h in logs],
            "completion_len": [h["completions/mean_length"] for h in logs], "wall_s": wall}


class _CpuClock:
    """CPU seconds of this process between consecutive step ends (steps 2..N): on a shared machine this
    is far steadier than wall time, and both trainers run on one thread."""

    def __init__(self):
        self.marks: list[float] = []

    def tick(self) -> None:
        self.marks.append(time.process_time())

    def steps(self) -> list[float]:
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


def _summary(r: dict) -> dict:
    t, rw = r["step_s"], r["reward"]
    half = len(rw) // 2
    return {"s_per_step_mean": statistics.mean(t), "s_per_step_median": statistics.median(t),
            "cpu_s_per_step_mean": statistics.mean(r["cpu_step_s"]) if r["cpu_step_s"] else None,
            "s_per_step_mean_after_first": statistics.mean(t[1:]) if len(t) > 1 else t[0],
            "reward_mean": statistics.mean(rw), "reward_first_half": statistics.mean(rw[:half] or rw),
            "reward_second_half": statistics.mean(rw[half:]),
            "zero_std_fraction_mean": statistics.mean(r["zero_std_fraction"])}


def _lift(results: Path = ROOT / "results/tiny") -> dict | None:
    """SFT vs RL on the embedded default's test splits, from the workflow's own evaluations
    (results/tiny/eval/{sft,rl}/<benchmark>/metrics.json), when `snakemake` has produced them."""
    out = {}
    for bench_dir in sorted((results / "eval" / "sft").glob("*")):
        rl_metrics = results / "eval" / "rl" / bench_dir.name / "metrics.json"
        if not (bench_dir / "metrics.json").exists() or not rl_metrics.exists():
            continue
        sft, rl = (json.loads(f.read_text()) for f in (bench_dir / "metrics.json", rl_metrics))
        k = max(sft["maj@k"], key=int) if sft.get("maj@k") else None
        out[bench_dir.name] = {
            "greedy": {"sft": sft["greedy"], "rl": rl["greedy"]},
            f"maj@{k}": {"sft": sft["maj@k"][k], "rl": rl["maj@k"][k]} if k else None,
            f"pass@{k}": {"sft": sft["pass@k"][k], "rl": rl["pass@k"][k]} if k else None,
        }
    return out or None


def main(out_dir: Path) -> dict:
    from pipeline.config import set_threads

    set_threads(1)
    out = Path(out_dir) / "grpo_work"
    out.mkdir(parents=True, exist_ok=True)
    s = _settings()
    model, prompts, source = _model_and_prompts(out)
    log.info("GRPO benchmark on %s: %d steps of %d questions x G %d, max %d new tokens", source, s["steps"],
             PROMPTS_PER_STEP, G, MAX_NEW_TOKENS)
    load = os.getloadavg()[0]
    ours = _run_ours(model, prompts, out, s)
    trl = _run_trl(model, prompts, out, s)
    so, st = _summary(ours), _summary(trl)
    ratio = so["s_per_step_mean"] / st["s_per_step_mean"]
    cpu_ratio = (so["cpu_s_per_step_mean"] / st["cpu_s_per_step_mean"]
                 if so["cpu_s_per_step_mean"] and st["cpu_s_per_step_mean"] else None)
    result = {
        "model": source, "settings": s, "threads": 1, "loadavg_1min": [load, os.getloadavg()[0]],
        "ours": {**so, **ours}, "trl": {**st, **trl},
        "speed_ratio_ours_over_trl": ratio,
        "cpu_ratio_ours_over_trl": cpu_ratio,
        "speed_ok": ratio <= 0.5,
        "reward_diff_mean": so["reward_mean"] - st["reward_mean"],
        "reward_diff_second_half": so["reward_second_half"] - st["reward_second_half"],
        "sft_vs_rl": _lift(),
    }
    _plot(ours, trl, Path(out_dir) / "grpo_reward_curve.png")
    log.info("ours %.2f s/step vs TRL %.2f s/step (ratio %.2f, CPU-time ratio %s); mean reward ours %.3f vs "
             "TRL %.3f", so["s_per_step_mean"], st["s_per_step_mean"], ratio,
             f"{cpu_ratio:.2f}" if cpu_ratio else "n/a", so["reward_mean"], st["reward_mean"])
    return result


def _plot(ours: dict, trl: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.io import atomic_path

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, r in (("ours (rl.grpo)", ours), ("TRL GRPOTrainer", trl)):
        steps = range(1, len(r["reward"]) + 1)
        ax[0].plot(steps, r["reward"], marker="o", ms=3, label=name)
        ax[1].plot(range(1, len(r["step_s"]) + 1), r["step_s"], marker="o", ms=3, label=name)
    ax[0].set(xlabel="step", ylabel="mean reward of the rollouts", title="reward")
    ax[1].set(xlabel="step", ylabel="seconds", title="seconds per step (1 thread)")
    ax[0].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
