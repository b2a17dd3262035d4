"""The data sources of the unified view (§5.2.1): rollouts from the current policy (GRPO, Online RFT,
PPO: §4.1.2, Algorithm 1) or from the frozen SFT model (RFT, DPO's pairs).

`RolloutSource` is the stateful data source the one training loop (pipeline.training.TrainLoop) pulls
micro-batches from. Each rollout batch:

1. takes the next `prompts_per_step` questions (a shuffled order walked by a cursor; a new permutation
   from the source's own RNG each epoch);
2. samples G outputs per question through the one generation interface (HF on CPU, vLLM on GPU), with
   the config's temperature / top-p / max new tokens, from the model the generator holds: the current
   policy (online), or the frozen SFT model (`offline`: each question's outputs are drawn once);
3. scores them (rl/rewards.py), computes group-relative advantages (rl/advantages.py), and counts the
   groups with no signal (all rewards equal) and those skipped for an unparseable gold (`accuracy` is the
   share of the graded outputs, those of groups not skipped, that are correct);
4. computes log pi_ref under no_grad, and log pi_old only when it differs from the policy being updated
   (mu > 1; with mu = 1, pi_old is the policy itself and the ratio is exactly 1, so no extra forward);
5. splits the rows into `micro_batches` micro-batches of whole groups (rl/logprobs.py computes each
   question's prompt once per group), and queues them `mu` times: mu optimizer steps per rollout batch (the paper: mu = 1).

Data parallelism (N processes under `accelerate launch`): every process walks the same question order and
takes the questions at positions rank, rank + N, ... of each step's global batch. A question's G outputs
are sampled with a seed of its own, (run seed, rollout number, question, which occurrence of it in the
step's batch), so they are the same whichever process samples them and however many there are. Offline,
a question's seed is the one of its first occurrence at rollout 0, whenever it is first met: the outputs
an online method samples from the same model at its first step. The loss weights divide by the valid outputs of the whole global batch and the rollout metrics
are computed over the whole global batch (the processes exchange per-question scores), so N processes
give the step one process gives, up to float summation order (tests/test_distributed_rl.py).

`sample()` (steps 1-2 and the rewards) is shared by every source; `rollout()` is GRPO's and RFT's rest,
rl/ppo.py (GAE from a value model) and rl/dpo.py (preference pairs) override it.
The source's state (prompt order, cursor, epoch, RNG, queued micro-batches, offline samples) is
checkpointed with the loop, so a killed run resumes with the same prompts and the same samples.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from accelerate.utils import gather_object

from grading.benchmarks import HubSpec, load_benchmark
from pipeline.generation import Completion, derive_seed
from rl.advantages import outcome_advantages, process_advantages
from rl.logprobs import PackedRows, pack_rows, token_logprobs
from rl.rewards import STEP_REWARDS, RewardFunction
from rl.rollout_metrics import QuestionScores, rollout_metrics

log = logging.getLogger(__name__)


# --- prompts ----------------------------------------------------------------------------------------


@dataclass
class RLPrompt:
    problem_id: str
    question: str
    answer: str
    prompt: str = ""  # the question as the policy sees it (grading.prompts.build_prompt)


@dataclass
class PromptSet:
    prompts: list[RLPrompt]
    skipped: dict[str, int] = field(default_factory=dict)  # source -> records skipped (logged with reasons)


def load_prompts(sources: Sequence[dict], *, limit: int | None = None) -> PromptSet:
    """Read RL questions with evaluation's benchmark loader (grading.benchmarks.load_benchmark), so any
    format eval reads works here: the world's problem records, GSM8K/MATH files, a hub dataset, a field map.

    Each source is a dict: `data` (a local JSONL/Parquet file) or `hub` (+ `hub_configs`, `split`), and
    optionally `schema` (default auto), `fields`, `name`. A record without a usable question or gold
    answer is skipped by the loader, logged with its file and line, and counted here per source.
    """
    prompts: list[RLPrompt] = []
    skipped: dict[str, int] = {}
    for i, src in enumerate(sources):
        unknown = set(src) - {"name", "data", "hub", "hub_configs", "split", "schema", "fields"}
        if unknown or ("data" in src) == ("hub" in src):
            raise ValueError(f"RL prompt source #{i} {src}: give exactly one of `data` or `hub` "
                             f"(unknown keys: {sorted(unknown)})")
        if "data" in src and not Path(src["data"]).exists():
            raise FileNotFoundError(f"RL prompt file {src['data']} does not exist")
        name = src.get("name") or Path(str(src.get("data") or src.get("hub"))).stem
        hub = (HubSpec(src["hub"], tuple(src.get("hub_configs") or [None]), src.get("split", "train"),
                       src.get("schema", "auto")) if "hub" in src else None)
        bench = load_benchmark(name, data=src.get("data"), hub=hub, schema=src.get("schema", "auto"),
                               fields=src.get("fields"))
        for reason in bench.skipped:
            log.warning("RL prompts: skipped %s", reason)
        skipped[bench.source] = len(bench.skipped)
        prompts += [RLPrompt(p.problem_id, p.question, p.answer) for p in bench.problems]
        if limit and len(prompts) >= limit:
            return PromptSet(prompts[:limit], skipped)
    if not prompts:
        raise ValueError(f"no RL prompts in {list(sources)}")
    return PromptSet(prompts, skipped)


# --- the micro-batch the loss sees ------------------------------------------------------------------


@dataclass
class RolloutBatch:
    rows: PackedRows | None  # never None now: a DPO micro-batch without pairs holds one zero-weighted pair
    advantages: torch.Tensor | None  # (N,) outcome or (N, T) process / GAE advantages; None for DPO
    output_weights: torch.Tensor  # (N,) (DPO: (K,) per pair) sum over the rollout's micro-batches = micro_batches
    rewards: torch.Tensor  # (N,) total reward per output (RFT's filter; 0 where skipped)
    ref_logp: torch.Tensor | None  # (N, T)
    old_logp: torch.Tensor | None  # (N, T); None: pi_old = pi (mu = 1)
    metrics: dict[str, float]
    old_values: torch.Tensor | None = None  # PPO: (N, T) V_old from the rollout
    returns: torch.Tensor | None = None  # PPO: (N, T) GAE returns, the value targets
    n_pairs: int = 0  # DPO: rows [0, K) preferred, [K, 2K) rejected

    _TENSORS = ("advantages", "output_weights", "rewards", "ref_logp", "old_logp", "old_values", "returns")

    def state(self) -> dict:
        r = self.rows
        return {"rows": None if r is None else [r.prompt_ids, r.prompt_mask, r.group, r.completion_ids,
                                                r.completion_mask],
                **{k: getattr(self, k) for k in self._TENSORS}, "n_pairs": self.n_pairs,
                "metrics": dict(self.metrics)}

    @classmethod
    def from_state(cls, s: dict) -> RolloutBatch:
        return cls(PackedRows(*s["rows"]) if s["rows"] is not None else None, metrics=dict(s["metrics"]), n_pairs=int(s.get("n_pairs", 0)),
                   **{k: s.get(k) for k in cls._TENSORS})


@dataclass
class Sampled:
    """One rollout's questions, outputs and scores, before any method-specific advantage (what every data
    source of the unified view starts from)."""

    idx: list[int]  # prompt indices, P (this process's questions)
    flat: list[Completion]  # P x G outputs, prompt-major
    completion_ids: list[list[int]]  # each output's tokens (EOS appended where the model stopped by it)
    total: torch.Tensor  # (P, G) total reward, 0 where skipped
    skipped: torch.Tensor  # (P,) bool: unparseable gold, group left out
    correct: list[bool]  # (P x G) the grader's verdicts
    rows: PackedRows
    metrics: dict[str, float]

    @property
    def valid(self) -> torch.Tensor:
        """(N,) bool: outputs whose group counts."""
        return (~self.skipped).repeat_interleave(self.total.shape[1])


# --- the source -------------------------------------------------------------------------------------


@dataclass
class RolloutSettings:
    prompts_per_step: int = 16
    group_size: int = 64  # G
    micro_batches: int = 1  # the loop's grad_accum
    updates_per_batch: int = 1  # mu
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    stop: list[str] = field(default_factory=list)
    fmt: str = "cot"
    supervision: str = "outcome"  # outcome | process
    step_reward: str = "arithmetic"
    adv_eps: float = 1e-4
    length_buckets: int = 1  # rl/logprobs.py: forward rows of similar output length together
    share_prompts: bool | None = None  # rl/logprobs.py; False under gradient checkpointing (no KV cache)
    offline: bool = False  # the generator samples a frozen model: each question's outputs are drawn once
    seed: int = 0
    rank: int = 0  # data-parallel rank: each rank takes its share of every step's questions
    world_size: int = 1


class RolloutSource:
    """Stateful data source of GRPO / RFT micro-batches (see the module docstring). With `offline` (RFT,
    and DPO's pairs) the generator samples from the frozen SFT model and each question's outputs are
    sampled once, on first use, and reused whenever the question comes round again: the same data as
    sampling the whole set up front, drawn with the same questions and seeds as the online methods."""

    min_group = 2  # group-relative advantages need two outputs per question

    def __init__(self, prompts: list[RLPrompt], policy, reference, generator, tokenizer,
                 reward_fn: RewardFunction, settings: RolloutSettings):
        s = settings
        if s.group_size < self.min_group:
            raise ValueError(f"group_size (G) must be >= {self.min_group} for {type(self).__name__}, got {s.group_size}")
        if s.supervision not in ("outcome", "process"):
            raise ValueError(f"supervision must be 'outcome' or 'process', got {s.supervision!r}")
        if s.supervision == "process" and s.step_reward not in STEP_REWARDS:
            raise ValueError(f"unknown step reward {s.step_reward!r}: registered are {sorted(STEP_REWARDS)}")
        if s.prompts_per_step % s.world_size:
            raise ValueError(f"prompts_per_step={s.prompts_per_step} must be divisible by the {s.world_size} processes")
        n_rows = s.prompts_per_step // s.world_size * s.group_size
        if s.micro_batches < 1 or s.micro_batches > n_rows:
            raise ValueError(f"micro_batches must be in 1..{n_rows} (rows per rollout), got {s.micro_batches}")
        self.prompts, self.policy, self.reference = prompts, policy, reference
        self.generator, self.tokenizer, self.reward_fn, self.s = generator, tokenizer, reward_fn, s
        self.eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
        self._prompt_ids = [tokenizer(p.prompt, add_special_tokens=False)["input_ids"] for p in prompts]
        self.rng = torch.Generator().manual_seed(s.seed)
        self.order = self._permutation()
        self.cursor, self.epoch, self.rollouts = 0, 0, 0
        self.queue: list[RolloutBatch] = []
        self.skipped_groups_total = 0
        self.cache: dict[int, list[Completion]] = {}  # offline: each question's outputs, sampled once

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"order": self.order, "cursor": self.cursor, "epoch": self.epoch, "rollouts": self.rollouts,
                "rng": self.rng.get_state(), "queue": [b.state() for b in self.queue],
                "skipped_groups_total": self.skipped_groups_total,
                "cache": {i: [(c.text, c.token_ids, c.finish_reason) for c in cs] for i, cs in self.cache.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.cursor = list(state["order"]), int(state["cursor"])
        self.epoch, self.rollouts = int(state["epoch"]), int(state["rollouts"])
        self.rng.set_state(state["rng"])
        self.queue = [RolloutBatch.from_state(b) for b in state["queue"]]
        self.skipped_groups_total = int(state["skipped_groups_total"])
        self.cache = {int(i): [Completion(t, list(ids), [], f) for t, ids, f in cs]
                      for i, cs in state.get("cache", {}).items()}

    # -- the data-source interface -----------------------------------------------------------------
    def next_batch(self) -> RolloutBatch:
        if not self.queue:
            self.queue = self.rollout()
        return self.queue.pop(0)

    def _permutation(self) -> list[int]:
        return torch.randperm(len(self.prompts), generator=self.rng).tolist()

    def _next_prompts(self) -> tuple[list[int], list[int], list[int]]:
        """This rank's share of the next prompts_per_step questions: their positions in the step's global
        batch, their prompt indices, and which occurrence of the question each is in that batch (a step
        that wraps round the prompt set can hold a question twice); reshuffles at each epoch boundary.
        Every rank walks the same order (same RNG), so together they cover each step's questions once."""
        picked, seen, occurrence = [], {}, []
        while len(picked) < self.s.prompts_per_step:
            if self.cursor >= len(self.order):
                self.order, self.cursor, self.epoch = self._permutation(), 0, self.epoch + 1
            i = self.order[self.cursor]
            picked.append(i)
            occurrence.append(seen.get(i, 0))
            seen[i] = occurrence[-1] + 1
            self.cursor += 1
        pos = list(range(self.s.rank, len(picked), self.s.world_size))
        return pos, [picked[k] for k in pos], [occurrence[k] for k in pos]

    def question_seed(self, index: int, occurrence: int) -> int:
        """The sampling seed of prompt `index` (its `occurrence`-th appearance in this rollout's global
        batch): the same on every rank. Offline, a question's outputs are drawn once: the seed of its first
        occurrence at rollout 0, whenever it is first met."""
        if self.s.offline:
            return derive_seed(self.s.seed, 0, index, 0)
        return derive_seed(self.s.seed, self.rollouts, index, occurrence)

    def all_ranks(self, obj) -> list:
        """`obj` from every data-parallel process, in rank order (a collective: every rank must call it)."""
        return [obj] if self.s.world_size == 1 else gather_object([obj])

    # -- one rollout batch -------------------------------------------------------------------------
    def _generate(self, idx: list[int], seeds: list[int]) -> list[list[Completion]]:
        """G outputs per question; offline, the ones sampled before are reused."""
        s = self.s
        todo = list(dict.fromkeys(i for i in idx if i not in self.cache)) if s.offline else idx
        if s.offline:
            seeds = [seeds[idx.index(i)] for i in todo]
        outs = self.generator.generate([self.prompts[i].prompt for i in todo], n=s.group_size,
                                       temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens,
                                       stop=s.stop, seed=seeds) if todo else []
        if not s.offline:
            return outs
        self.cache.update(zip(todo, outs))
        return [self.cache[i] for i in idx]

    def sample(self) -> Sampled:
        """The next questions, G outputs each, their rewards and the rollout's metrics (over the global batch)."""
        s, G = self.s, self.s.group_size
        pos, idx, occurrence = self._next_prompts()
        t0 = time.perf_counter()
        outs = self._generate(idx, [self.question_seed(i, o) for i, o in zip(idx, occurrence)])
        gen_s = time.perf_counter() - t0
        flat: list[Completion] = [c for row in outs for c in row]  # prompt-major, (P*G)

        t1 = time.perf_counter()
        golds = [self.prompts[i].answer for i in idx for _ in range(G)]
        scores = self.reward_fn([c.text for c in flat], golds, [c.finish_reason for c in flat], fmt=s.fmt)
        score_s = time.perf_counter() - t1

        # Groups with an unparseable gold are skipped (weight 0) and counted; their rewards read as 0.
        total = torch.tensor([0.0 if r is None else r for r in scores.total]).view(len(idx), G)  # (P, G)
        skipped = torch.tensor([any(scores.total[i * G + j] is None for j in range(G)) for i in range(len(idx))])
        completion_ids = [self._with_eos(c) for c in flat]
        rows = pack_rows([self._prompt_ids[i] for i in idx], [g for g in range(len(idx)) for _ in range(G)],
                         completion_ids, self.pad)
        # Per question, what the metrics read; gathered from every rank and put back in global-batch
        # order, so every rank computes the metrics one process would, from the same numbers.
        mine = [QuestionScores(k, total[q].tolist(), bool(skipped[q]), scores.correct[q * G:(q + 1) * G],
                               [len(ids) for ids in completion_ids[q * G:(q + 1) * G]],
                               [c.finish_reason == "length" for c in flat[q * G:(q + 1) * G]],
                               {name: vals[q * G:(q + 1) * G] for name, vals in scores.terms.items()})
                for q, k in enumerate(pos)]
        ranks = self.all_ranks((mine, self.reward_fn.grader.timeouts))
        metrics = rollout_metrics(sorted((q for part, _ in ranks for q in part), key=lambda q: q.position))
        metrics.update({"grader_timeouts_total": float(sum(t for _, t in ranks)), "gen_s": gen_s,
                        "score_s": score_s, "ref_s": 0.0, "epoch": float(self.epoch)})
        self.skipped_groups_total += int(metrics["skipped_groups"])
        self.rollouts += 1
        return Sampled(idx, flat, completion_ids, total, skipped, list(scores.correct), rows, metrics)

    def loss_weights(self, valid: torch.Tensor) -> torch.Tensor:
        """Each output's weight in the loss: 1/(valid outputs of the global batch), times micro_batches
        because the loop divides each micro-batch's loss by grad_accum, times world_size because the
        processes' gradients are averaged; the step's loss is then the mean over the global batch's outputs
        (a collective under data parallelism: every rank must call it)."""
        n_valid = sum(self.all_ranks(int(valid.sum())))
        return valid.float() * (self.s.micro_batches * self.s.world_size / max(1, n_valid))

    def chunks(self, n: int) -> list[torch.Tensor]:
        """Row indices of each micro-batch, in prompt-major order: a micro-batch holds whole groups (each
        prompt computed once)."""
        return list(torch.tensor_split(torch.arange(n), self.s.micro_batches))

    def repeat(self, batches: list[RolloutBatch]) -> list[RolloutBatch]:
        """mu updates per rollout: the same micro-batches again; timings only count once."""
        repeats = []
        for _ in range(self.s.updates_per_batch - 1):
            repeats += [replace(b, metrics={**b.metrics, "gen_s": 0.0, "score_s": 0.0, "ref_s": 0.0})
                        for b in batches]
        return batches + repeats

    def rollout(self) -> list[RolloutBatch]:
        s = self.s
        smp = self.sample()
        total, skipped, metrics = smp.total, smp.skipped, smp.metrics
        if s.supervision == "outcome":
            adv_groups = outcome_advantages(total, eps=s.adv_eps)
            advantages: torch.Tensor = adv_groups.advantages.reshape(-1)  # (N,)
            zero_std = adv_groups.zero_std & ~skipped
        else:
            advantages, zero_std, steps = self._process_advantages(smp.flat, smp.completion_ids, total, skipped)
            # The process reward's own signal: the share of equation steps whose arithmetic is right.
            right, n = map(sum, zip(*self.all_ranks(steps)))
            metrics["reward/process_steps"] = right / n if n else 0.0
        metrics["zero_std_fraction"] = float(zero_std.float().mean())
        weights = self.loss_weights(smp.valid)

        batches = []
        ref_s = 0.0
        for c in self.chunks(len(smp.flat)):
            sub = smp.rows.select(c)  # only these rows' prompts, trimmed to the columns they use
            t = sub.completion_ids.shape[1]
            t2 = time.perf_counter()
            ref_logp = self._logprobs(self.reference, sub) if self.reference is not None else None
            old_logp = self._logprobs(self.policy, sub) if s.updates_per_batch > 1 else None
            ref_s += time.perf_counter() - t2
            adv_c = advantages[c] if advantages.ndim == 1 else advantages[c][:, :t]
            batches.append(RolloutBatch(rows=sub, advantages=adv_c, output_weights=weights[c],
                                        rewards=total.reshape(-1)[c],
                                        ref_logp=ref_logp, old_logp=old_logp, metrics=metrics))
        metrics["ref_s"] = ref_s  # shared by every micro-batch's metrics dict
        return self.repeat(batches)

    def _with_eos(self, c: Completion) -> list[int]:
        """The output's tokens, ending with EOS when the model stopped by emitting it: stopping is an
        action of the policy and gets its share of the advantage (the HF backend leaves EOS out of
        token_ids; vLLM keeps it)."""
        ids = list(c.token_ids)
        if c.finish_reason != "stop" or (ids and ids[-1] == self.eos):
            return ids
        if self.s.stop and any(x in self.tokenizer.decode(ids, skip_special_tokens=True) for x in self.s.stop):
            return ids  # stopped by a stop string, not by EOS
        return ids + [self.eos]

    def _logprobs(self, model, rows: PackedRows) -> torch.Tensor:
        """log pi(o_t) under `model` (the reference, or pi_old when mu > 1), without gradients."""
        was_training = model.training
        model.eval()
        with torch.no_grad():
            lp, _ = token_logprobs(model, rows, max_buckets=self.s.length_buckets, share_prompts=self.s.share_prompts)
        model.train(was_training)
        return lp

    def _process_advantages(self, flat, completion_ids, total, skipped):
        s, G = self.s, self.s.group_size
        step_fn = STEP_REWARDS[s.step_reward]
        T = max(1, max(len(x) for x in completion_ids))
        adv = torch.zeros(len(flat), T)
        zero = torch.zeros(total.shape[0], dtype=torch.bool)
        right = steps_n = 0  # the equation steps (every step but the last, which carries the outcome)
        for g in range(total.shape[0]):
            if skipped[g]:
                continue
            rewards, ends, lens = [], [], []
            for j in range(G):
                i = g * G + j
                steps = step_fn(flat[i].text, float(total[g, j]))
                right += sum(steps.rewards[:-1])
                steps_n += max(0, len(steps.rewards) - 1)
                tok_ends = self._token_ends(completion_ids[i], steps.ends)
                rewards.append(steps.rewards)
                ends.append(tok_ends)
                lens.append(len(completion_ids[i]))
            per_out, zero[g] = process_advantages(rewards, ends, lens, eps=s.adv_eps)
            for j, a in enumerate(per_out):
                adv[g * G + j, : len(a)] = a
        return adv, zero, (right, steps_n)

    def _token_ends(self, ids: list[int], char_ends: list[int]) -> list[int]:
        """Map character offsets in the decoded output to the index of the token that completes them;
        the last step ends at the last token (EOS included, so stopping shares the final reward)."""
        if not ids:
            return []
        out = []
        for k, e in enumerate(char_ends):
            if k == len(char_ends) - 1:
                out.append(len(ids) - 1)
                continue
            lo, hi = 0, len(ids) - 1
            while lo < hi:  # smallest token index whose decoded prefix reaches offset e
                mid = (lo + hi) // 2
                if len(self.tokenizer.decode(ids[: mid + 1], skip_special_tokens=True)) >= e:
                    hi = mid
                else:
                    lo = mid + 1
            out.append(lo)
        return out

