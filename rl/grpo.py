"""`python -m rl.grpo`: Group Relative Policy Optimization from an SFT checkpoint (DeepSeekMath §4).

    python -m rl.grpo --config config/tiny.yaml --init results/tiny/sft/mined/model --out results/tiny/rl

Reads the config's `rl:` (and `generation:`) section, builds the policy and the frozen reference model
from `--init`, and runs the one training loop (pipeline.training.TrainLoop) with

- the data source rl.rollouts.RolloutSource: G sampled outputs per question from the current policy,
  rule-based rewards from the shared grader (rl.rewards), group-relative advantages (rl.advantages);
- the loss rl.losses.policy_loss with the GRPO gradient coefficient: clipped ratio x advantage minus
  beta x k3 KL to the reference, averaged over each output's tokens, then over outputs (§4.1.2, eq. 3);
- iterative RL (§4.1.4): every `rl.ref_reset_every` steps the reference model becomes the current policy.

Writes OUT/model (save_pretrained model + tokenizer), OUT/metrics.jsonl (one row per step: reward
mean/std, each reward term, accuracy, zero-std-group fraction, KL, clip fraction, entropy, completion
length, truncation rate, generation / scoring / reference / training time) and OUT/run.json.
Checkpoints go to OUT/checkpoints; a killed run resumes from the last one (same prompt cursor, RNG and
reference model), and a run started with different settings starts afresh.
"""

from __future__ import annotations

import copy
import logging
import shutil
import time
from pathlib import Path

from accelerate import PartialState

from grading.prompts import build_prompt, stop_strings, use_chat
from pipeline.config import setup, stage_parser
from pipeline.generation import build_generator
from pipeline.io import fingerprint, read_jsonl, write_run_record
from pipeline.models import load_model, load_tokenizer, save
from pipeline.training import OptimConfig, TrainLoop, guard_resume
from rl.logprobs import token_logprobs
from rl.losses import Coefficient, PolicyBatch, build_coefficient, policy_loss
from rl.rewards import RewardFunction
from rl.rollouts import RLPrompt, RolloutBatch, RolloutSettings, RolloutSource, load_prompts

log = logging.getLogger("rl.grpo")


def make_loss_fn(coef: Coefficient, length_buckets: int = 1):
    """The loss of one rollout micro-batch: the policy's forward over all its rows (rl/logprobs.py)."""

    def loss_fn(model, batch: RolloutBatch):
        rows = batch.rows
        logp, entropy = token_logprobs(model, rows, with_entropy=True, max_buckets=length_buckets)  # (N, T)
        pb = PolicyBatch(logp=logp, mask=rows.completion_mask, advantages=batch.advantages,
                         old_logp=batch.old_logp, ref_logp=batch.ref_logp, rewards=batch.rewards,
                         output_weights=batch.output_weights)
        loss, metrics = policy_loss(coef, pb)
        tokens = rows.completion_mask.sum().clamp(min=1.0)
        metrics["entropy"] = float(entropy.sum() / tokens)
        return loss, {**batch.metrics, **metrics}

    return loss_fn


class ReferenceReset:
    """Iterative RL (§4.1.4): every `every` steps the reference model is replaced by the current policy."""

    def __init__(self, reference, policy_fn, every: int):
        self.reference, self.policy_fn, self.every = reference, policy_fn, int(every)
        self.resets = 0

    def __call__(self, step: int, metrics: dict) -> None:
        if self.reference is None or self.every <= 0 or step % self.every:
            return
        self.reference.load_state_dict(self.policy_fn().state_dict())
        self.resets += 1
        log.info("step %d: reference model reset to the current policy (iterative RL)", step)


def build_prompts(prompt_set, tokenizer, fmt: str, few_shot: int, layout: str) -> list[RLPrompt]:
    """Fill each question's prompt with the one prompt builder eval and SFT use."""
    chat = use_chat(layout, tokenizer)
    for p in prompt_set.prompts:
        p.prompt = build_prompt(p.question, fmt, tokenizer, few_shot, chat=chat)
    return prompt_set.prompts


def resume_key(cfg: dict, init: str) -> str:
    """What decides a GRPO run's trajectory (not its length: a longer run resumes a shorter one)."""
    rl = {k: v for k, v in cfg["rl"].items() if k not in ("steps", "save_every")}
    return fingerprint(str(init), cfg.get("seed"), rl, cfg.get("generation", {}))


def run(cfg: dict, init: str, out: str | Path, on_step_end: list | None = None) -> dict:
    """Train from `init` into `out` (see the module docstring); `on_step_end` adds loop callbacks."""
    rc, gc = cfg["rl"], dict(cfg.get("generation") or {})
    out = Path(out)
    t_start = time.perf_counter()
    state = PartialState()  # rank and world size under `accelerate launch` (DDP); one process otherwise
    guard_resume(out, resume_key(cfg, init))
    device = state.device
    tokenizer = load_tokenizer(init)
    policy = load_model(init, dtype=(cfg.get("model") or {}).get("dtype", "float32"), device=device)
    policy.train()
    reference = None
    if rc["algorithm"] == "grpo" and rc["beta"] > 0:  # the KL term's pi_ref (RFT has none)
        reference = copy.deepcopy(policy).eval()
        reference.requires_grad_(False)

    prompt_set = load_prompts(rc["prompts"], limit=rc.get("max_prompts"))
    prompts = build_prompts(prompt_set, tokenizer, rc["format"], rc["few_shot"], rc["prompt_layout"])
    log.info("%d RL prompts (records skipped per source: %s)", len(prompts), prompt_set.skipped)

    chat = use_chat(rc["prompt_layout"], tokenizer)
    backend = gc.pop("backend", "hf")
    generator = build_generator(backend, init if backend == "vllm" else policy, tokenizer, **gc)
    settings = RolloutSettings(
        prompts_per_step=rc["prompts_per_step"], group_size=rc["group_size"], micro_batches=rc["micro_batches"],
        updates_per_batch=rc["updates_per_batch"], temperature=rc["temperature"], top_p=rc["top_p"],
        max_new_tokens=rc["max_new_tokens"], stop=stop_strings(rc["format"], tokenizer, chat=chat), fmt=rc["format"],
        supervision=rc["supervision"], step_reward=rc["step_reward"], adv_eps=rc["adv_eps"],
        length_buckets=rc["length_buckets"],
        seed=int(cfg.get("seed", 0)), rank=state.process_index, world_size=state.num_processes)
    rewards = RewardFunction(rc["rewards"], workers=rc["grader_workers"], timeout=rc["grader_timeout"])
    source = RolloutSource(prompts, policy, reference, generator, tokenizer, rewards, settings)

    coef = build_coefficient(rc["algorithm"], **({"clip_eps": rc["clip_eps"], "beta": rc["beta"]}
                                                 if rc["algorithm"] == "grpo" else {}))
    holder: dict = {}
    reset = ReferenceReset(reference, lambda: holder["loop"].unwrapped_model(), rc["ref_reset_every"])
    callbacks = [reset, _StepLog(), *(on_step_end or [])]
    if backend == "vllm":
        callbacks.append(lambda step, m: generator.update_weights(holder["loop"].unwrapped_model()))
    optim = OptimConfig(lr=rc["lr"], weight_decay=rc["weight_decay"], schedule=rc["lr_schedule"],
                        warmup_steps=rc["warmup_steps"], grad_clip=rc["grad_clip"])
    loop = TrainLoop(policy, make_loss_fn(coef, rc["length_buckets"]), source, out_dir=out, total_steps=rc["steps"], optim=optim,
                     grad_accum=rc["micro_batches"], save_every=rc["save_every"], keep_checkpoints=1,
                     seed=int(cfg.get("seed", 0)), extra_state={"reference": reference} if reference is not None else {},
                     on_step_end=callbacks, desc="grpo", mixed_precision=rc["mixed_precision"])
    holder["loop"] = loop
    # The loop may have wrapped or moved the model: sample from exactly the weights being trained.
    source.policy = loop.unwrapped_model()
    generator.update_weights(source.policy)  # after a resume, the restored weights
    last = loop.run()
    state.wait_for_everyone()
    if not state.is_main_process:
        return {}

    save(loop.unwrapped_model(), tokenizer, out / "model")
    summary = summarize(out / "metrics.jsonl")
    summary.update({"prompts": len(prompts), "prompts_skipped": prompt_set.skipped,
                    "skipped_groups_total": source.skipped_groups_total, "reference_resets": reset.resets,
                    "wall_s": round(time.perf_counter() - t_start, 2), "last_step": last})
    rewards.grader.close()
    write_run_record(out, "rl.grpo", cfg, init=str(init), summary=summary)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the model is final; nothing left to resume
    log.info("GRPO done: reward %.3f -> %.3f, accuracy %.3f -> %.3f, zero-std groups %.2f, %.1f s/step",
             summary["reward_first"], summary["reward_last"], summary["accuracy_first"], summary["accuracy_last"],
             summary["zero_std_fraction_mean"], summary["step_s_mean"])
    return summary


class _StepLog:
    """One log line per step with the numbers that say whether RL is learning."""

    def __call__(self, step: int, m: dict) -> None:
        log.info("step %d: reward %.3f (std %.3f) acc %.3f zero-std %.2f kl %.4f len %.0f trunc %.2f "
                 "gen %.1fs train %.1fs step %.1fs", step, m.get("reward_mean", 0), m.get("reward_std", 0),
                 m.get("accuracy", 0), m.get("zero_std_fraction", 0), m.get("kl", 0), m.get("completion_len", 0),
                 m.get("truncated_fraction", 0), m.get("gen_s", 0), m.get("step_s", 0) - m.get("data_s", 0),
                 m.get("step_s", 0))


def summarize(metrics_path: Path, window: int = 5) -> dict:
    """First/last-window means of the per-step metrics (what run.json and the report quote)."""
    rows = list(read_jsonl(metrics_path, strict=False)) if metrics_path.exists() else []
    if not rows:
        return {"steps": 0}

    def mean(key, part):
        vals = [r[key] for r in part if key in r]
        return sum(vals) / len(vals) if vals else 0.0

    w = max(1, min(window, len(rows) // 2 or 1))
    first, last = rows[:w], rows[-w:]
    out = {"steps": len(rows), "window": w}
    for key in ("reward_mean", "accuracy", "kl", "completion_len"):
        name = key.replace("_mean", "")
        out[f"{name}_first"], out[f"{name}_last"] = mean(key, first), mean(key, last)
    for key in ("zero_std_fraction", "truncated_fraction", "entropy", "clip_fraction", "step_s", "gen_s",
                "data_s"):
        out[f"{key}_mean"] = mean(key, rows)
    out["train_s_mean"] = out["step_s_mean"] - out["data_s_mean"]
    return out


def main(argv: list[str] | None = None) -> dict:
    p = stage_parser(__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True, help="policy to start from: save_pretrained folder (the SFT model)")
    p.add_argument("--out", required=True, help="output folder: model/, metrics.jsonl, run.json, checkpoints/")
    args = p.parse_args(argv)
    cfg = setup(args, ("rl",))
    return run(cfg, args.init, args.out)


if __name__ == "__main__":
    main()
