"""`python -m rl.train`: the unified paradigm on one engine (DeepSeekMath §4, §5.2.1, Table 10).

    python -m rl.train --config results/tiny/config.yaml --init results/tiny/sft/mined/model --out results/tiny/rl

`rl.algorithm` picks a data source and a gradient coefficient (rl/losses.py); everything else — the
prompts, the one generation interface, the reward registry and shared grader (rl/rewards.py), the one
training loop (pipeline.training.TrainLoop), checkpoints and resume, metrics — is common:

| algorithm  | data source (rl/rollouts.py, ppo.py, dpo.py)            | coefficient                        | pi_ref |
|------------|---------------------------------------------------------|------------------------------------|--------|
| grpo       | G outputs per question from the policy                  | group-relative A + k3 KL (eq. 3)   | yes*   |
| online_rft | G outputs per question from the policy                  | 1 if correct                       | no     |
| rft        | G outputs per question from the frozen SFT model, once  | 1 if correct                       | no     |
| dpo        | correct/incorrect pairs of those SFT outputs            | eq. 14                             | SFT    |
| ppo        | G outputs from the policy + a value model (rl/value.py) | clipped GAE surrogate + value loss | yes*   |

(* when rl.beta > 0.) Iterative RL (§4.1.4): every `rl.ref_reset_every` steps pi_ref becomes the current
policy (grpo, ppo). `rl.snapshot_every` saves the policy every N steps to OUT/snapshots/step-<8 digits>
(the comparison's evaluation along the way, rl/compare.py). The policy honours the config's
`model.attn_implementation` and `model.gradient_checkpointing` (then every row is one [prompt | output]
forward: checkpointed layers keep no KV cache to share a prompt across its group).

Writes OUT/model (the policy, save_pretrained + tokenizer), OUT/metrics.jsonl (one row per step) and
OUT/run.json (resolved config; summary with first/last means, seconds per step and peak RSS). Checkpoints
go to OUT/checkpoints; a killed run resumes from the last one, and a run with other settings starts afresh.
"""

from __future__ import annotations

import copy
import logging
import resource
import shutil
import sys
import time
from pathlib import Path

from grading.prompts import build_prompt, stop_strings, use_chat
from pipeline.config import setup, stage_parser
from pipeline.generation import build_generator, resolve_backend
from pipeline.io import fingerprint, read_jsonl, write_run_record
from pipeline.models import configure_for_training, load_model, load_tokenizer, save
from pipeline.training import OptimConfig, TrainLoop, Weighted, guard_resume, process_state
from rl.dpo import PairSource
from rl.logprobs import PolicyRows
from rl.losses import Coefficient, PolicyBatch, build_coefficient, policy_loss
from rl.ppo import PPORolloutSource, PPOSettings, make_ppo_loss_fn
from rl.rewards import RewardFunction
from rl.rollouts import RLPrompt, RolloutBatch, RolloutSettings, RolloutSource, load_prompts
from rl.value import ActorCritic

log = logging.getLogger("rl.train")

OFFLINE = ("rft", "dpo")  # sampled once from the frozen SFT model
WITH_KL_REFERENCE = ("grpo", "ppo")  # a pi_ref for the KL term when beta > 0


def make_loss_fn(coef: Coefficient, length_buckets: int = 1, share_prompts: bool | None = None):
    """The loss of one rollout micro-batch: the policy's forward over all its rows (rl/logprobs.py)."""

    def loss_fn(model, batch: RolloutBatch):
        rows = batch.rows  # never empty: under DDP every process must run the forward (rl/dpo.py)
        # `model` is the PolicyRows (possibly DDP-wrapped): one forward per backward (rl/logprobs.py)
        logp, entropy = model(rows, with_entropy=True, max_buckets=length_buckets, share_prompts=share_prompts)
        pb = PolicyBatch(logp=logp, mask=rows.completion_mask, advantages=batch.advantages,
                         old_logp=batch.old_logp, ref_logp=batch.ref_logp, rewards=batch.rewards,
                         output_weights=batch.output_weights, n_pairs=batch.n_pairs)
        loss, metrics = policy_loss(coef, pb)
        tokens = rows.completion_mask.sum().clamp(min=1.0)
        metrics["entropy"] = Weighted(entropy.sum() / tokens, tokens)
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


class Snapshots:
    """Save the policy every `every` steps to OUT/snapshots/step-<8 digits> (evaluated along the way)."""

    def __init__(self, out: Path, policy_fn, tokenizer, every: int):
        self.dir, self.policy_fn, self.tokenizer, self.every = out / "snapshots", policy_fn, tokenizer, int(every)

    def __call__(self, step: int, metrics: dict) -> None:
        if self.every > 0 and step % self.every == 0:
            save(self.policy_fn(), self.tokenizer, self.dir / f"step-{step:08d}")


def build_prompts(prompt_set, tokenizer, fmt: str, few_shot: int, layout: str) -> list[RLPrompt]:
    """Fill each question's prompt with the one prompt builder eval and SFT use."""
    chat = use_chat(layout, tokenizer)
    for p in prompt_set.prompts:
        p.prompt = build_prompt(p.question, fmt, tokenizer, few_shot, chat=chat)
    return prompt_set.prompts


def resume_key(cfg: dict, init: str) -> str:
    """What decides a run's trajectory (not its length, nor where snapshots go: a longer run resumes a
    shorter one)."""
    rl = {k: v for k, v in cfg["rl"].items() if k not in ("steps", "save_every", "snapshot_every", "compare")}
    return fingerprint(str(init), cfg.get("seed"), rl, cfg.get("generation", {}), cfg.get("model", {}))


def frozen(model):
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    if getattr(ref, "is_activation_checkpointing", False):
        ref.activation_checkpointing_disable()  # no backward through the reference: nothing to recompute
    return ref


def policy_of(model):
    """The language model inside the trained module (the ActorCritic's policy for PPO, PolicyRows' otherwise)."""
    return model.policy if isinstance(model, (ActorCritic, PolicyRows)) else model


def peak_rss_mb() -> float:
    """This process's peak resident memory (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def run(cfg: dict, init: str, out: str | Path, on_step_end: list | None = None) -> dict:
    """Train from `init` into `out` (see the module docstring); `on_step_end` adds loop callbacks."""
    rc, gc = cfg["rl"], dict(cfg.get("generation") or {})
    algo = rc["algorithm"]
    model_cfg = cfg.get("model") or {}
    out = Path(out)
    t_start = time.perf_counter()
    state = process_state()  # rank and world size under `accelerate launch` (DDP); one process otherwise
    guard_resume(out, resume_key(cfg, init))
    device = state.device
    tokenizer = load_tokenizer(init)
    policy = load_model(init, dtype=model_cfg.get("dtype", "float32"), device=device)
    configure_for_training(policy, attn_implementation=model_cfg.get("attn_implementation"),
                           gradient_checkpointing=bool(model_cfg.get("gradient_checkpointing")))
    policy.train()
    checkpointing = bool(model_cfg.get("gradient_checkpointing"))
    share_prompts = False if checkpointing else None
    # pi_ref: the KL term's (grpo, ppo with beta > 0), DPO's reference; RFT samples from the frozen SFT model.
    reference = None
    if (algo in WITH_KL_REFERENCE and rc["beta"] > 0) or algo in OFFLINE:
        reference = frozen(policy)
    trained = ActorCritic(policy, rc["ppo"]["value_model"]) if algo == "ppo" else PolicyRows(policy)

    prompt_set = load_prompts(rc["prompts"], limit=rc.get("max_prompts"))
    prompts = build_prompts(prompt_set, tokenizer, rc["format"], rc["few_shot"], rc["prompt_layout"])
    log.info("%s: %d RL prompts (records skipped per source: %s)", algo, len(prompts), prompt_set.skipped)

    chat = use_chat(rc["prompt_layout"], tokenizer)
    backend = resolve_backend(gc.pop("backend", "auto"))  # auto: vLLM with a GPU and vllm, else HF
    sampler = reference if algo in OFFLINE else policy  # which model the data source samples from
    generator = build_generator(backend, init if backend == "vllm" else sampler, tokenizer, **gc)
    settings = RolloutSettings(
        prompts_per_step=rc["prompts_per_step"], group_size=rc["group_size"], micro_batches=rc["micro_batches"],
        updates_per_batch=rc["updates_per_batch"], temperature=rc["temperature"], top_p=rc["top_p"],
        max_new_tokens=rc["max_new_tokens"], stop=stop_strings(rc["format"], tokenizer, chat=chat), fmt=rc["format"],
        supervision=rc["supervision"], step_reward=rc["step_reward"], adv_eps=rc["adv_eps"],
        length_buckets=rc["length_buckets"], share_prompts=share_prompts, offline=algo in OFFLINE,
        seed=int(cfg.get("seed", 0)), rank=state.process_index, world_size=state.num_processes)
    rewards = RewardFunction(rc["rewards"], workers=rc["grader_workers"], timeout=rc["grader_timeout"])
    args = (prompts, trained if algo == "ppo" else policy, reference, generator, tokenizer, rewards, settings)
    pc = rc["ppo"]
    if algo == "ppo":
        source = PPORolloutSource(*args, ppo=PPOSettings(gamma=pc["gamma"], lam=pc["lam"], kl_coef=rc["beta"],
                                                          value_clip=pc["value_clip"], vf_coef=pc["vf_coef"],
                                                          whiten_advantages=pc["whiten_advantages"]))
        loss_fn = make_ppo_loss_fn(rc["clip_eps"], pc["value_clip"], pc["vf_coef"], rc["length_buckets"],
                                   share_prompts)
    else:
        source = (PairSource(*args, pairs_per_question=rc["dpo"]["pairs_per_question"]) if algo == "dpo"
                  else RolloutSource(*args))
        kwargs = {"grpo": {"clip_eps": rc["clip_eps"], "beta": rc["beta"]}, "dpo": {"beta": rc["dpo"]["beta"]},
                  "rft": {"threshold": rc["rft_threshold"]}, "online_rft": {"threshold": rc["rft_threshold"]}}[algo]
        loss_fn = make_loss_fn(build_coefficient(algo, **kwargs), rc["length_buckets"], share_prompts)

    holder: dict = {}

    def current_policy():
        return policy_of(holder["loop"].unwrapped_model())

    reset = ReferenceReset(reference if algo in WITH_KL_REFERENCE else None, current_policy, rc["ref_reset_every"])
    callbacks = [reset, Snapshots(out, current_policy, tokenizer, rc["snapshot_every"]), _StepLog(),
                 *(on_step_end or [])]
    if backend == "vllm" and algo not in OFFLINE:
        callbacks.append(lambda step, m: generator.update_weights(current_policy()))
    optim = OptimConfig(lr=rc["lr"], weight_decay=rc["weight_decay"], schedule=rc["lr_schedule"],
                        warmup_steps=rc["warmup_steps"], grad_clip=rc["grad_clip"])
    loop = TrainLoop(trained, loss_fn, source, out_dir=out, total_steps=rc["steps"], optim=optim,
                     grad_accum=rc["micro_batches"], save_every=rc["save_every"], keep_checkpoints=1,
                     seed=int(cfg.get("seed", 0)), extra_state={"reference": reference} if reference is not None else {},
                     on_step_end=callbacks, desc=algo, mixed_precision=rc["mixed_precision"],
                     param_groups=trained.param_groups(rc["lr"], pc["value_lr"]) if algo == "ppo" else None)
    holder["loop"] = loop
    # The loop may have wrapped or moved the model: sample from exactly the weights being trained.
    source.policy = loop.unwrapped_model() if algo == "ppo" else current_policy()
    if algo not in OFFLINE:
        generator.update_weights(current_policy())  # after a resume, the restored weights
    last = loop.run()
    state.wait_for_everyone()
    if not state.is_main_process:
        return {}

    save(current_policy(), tokenizer, out / "model")
    summary = summarize(out / "metrics.jsonl")
    summary.update({"algorithm": algo, "prompts": len(prompts), "prompts_skipped": prompt_set.skipped,
                    "skipped_groups_total": source.skipped_groups_total, "reference_resets": reset.resets,
                    "processes": state.num_processes, "peak_rss_mb": round(peak_rss_mb(), 1),
                    # what the optimizer holds (weights, gradients, two AdamW moments each) and what is frozen
                    "trained_parameters": sum(p.numel() for p in trained.parameters() if p.requires_grad),
                    "frozen_parameters": sum(p.numel() for p in reference.parameters()) if reference is not None else 0,
                    "wall_s": round(time.perf_counter() - t_start, 2), "last_step": last})
    rewards.grader.close()
    write_run_record(out, f"rl.{algo}", cfg, init=str(init), summary=summary)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the model is final; nothing left to resume
    log.info("%s done: reward %.3f -> %.3f, accuracy %.3f -> %.3f, %.1f s/step, peak RSS %.0f MB", algo,
             summary["reward_first"], summary["reward_last"], summary["accuracy_first"], summary["accuracy_last"],
             summary["step_s_mean"], summary["peak_rss_mb"])
    return summary


class _StepLog:
    """One log line per step with the numbers that say whether RL is learning."""

    def __call__(self, step: int, m: dict) -> None:
        extra = "".join(f" {k} {m[k]:.3f}" for k in ("value_loss", "explained_variance", "pairs", "kept_fraction")
                        if k in m)
        log.info("step %d: reward %.3f (std %.3f) acc %.3f zero-std %.2f kl %.4f len %.0f trunc %.2f%s "
                 "gen %.1fs train %.1fs step %.1fs", step, m.get("reward_mean", 0), m.get("reward_std", 0),
                 m.get("accuracy", 0), m.get("zero_std_fraction", 0), m.get("kl", 0), m.get("completion_len", 0),
                 m.get("truncated_fraction", 0), extra, m.get("gen_s", 0), m.get("step_s", 0) - m.get("data_s", 0),
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
                "data_s", "value_loss", "explained_variance", "value_clip_fraction", "pairs", "kept_fraction"):
        if any(key in r for r in rows):
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
