"""DPO's data source (DeepSeekMath §5.2.1, eq. 14): offline preference pairs from the SFT model.

`PairSource` is a `RolloutSource` in offline mode: its generator samples from the frozen SFT model (which
is also DPO's reference pi_ref), each question's G outputs are sampled once, and the shared grader judges
them. Every question with both a correct and an incorrect output gives
min(#correct, #incorrect, `pairs_per_question`) pairs (the i-th correct output with the i-th incorrect
one, in sampling order); a question with none gives nothing and is counted (`pairless_fraction`). A
micro-batch holds whole pairs: rows [0, K) the preferred outputs, rows [K, 2K) their rejected partners,
with log pi_ref computed at rollout time. The loss is rl.losses.DPOCoefficient through the common
`policy_loss`.

Every pair weighs micro_batches x world_size / (pairs of the global batch): the step's loss is the mean
over all processes' pairs, as one process gives it (the loop divides by the accumulation, DDP averages over
processes). A micro-batch without a pair (a rank, or a rollout, with few mixed groups) still runs the
model: one zero-weighted pair of an output with itself. Under DDP every process must run its forward and
backward each micro-batch, or the others wait in the gradient all-reduce for ever; one process gets the
same zero gradient. `pairs` and `pairless_fraction` are counted over the global batch.
"""

from __future__ import annotations

import time

import torch

from rl.rollouts import RolloutBatch, RolloutSource


class PairSource(RolloutSource):
    def __init__(self, *args, pairs_per_question: int = 64, **kw):
        super().__init__(*args, **kw)
        if not self.s.offline or self.reference is None:
            raise ValueError("DPO pairs come from the frozen SFT model: offline sampling and a reference model")
        self.pairs_per_question = int(pairs_per_question)

    def pairs(self, correct: list[bool], skipped: torch.Tensor, group_size: int) -> list[tuple[int, int]]:
        """(preferred row, rejected row) of every pair of a rollout, question by question."""
        out = []
        for g in range(len(skipped)):
            if skipped[g]:
                continue
            rows = range(g * group_size, (g + 1) * group_size)
            right = [i for i in rows if correct[i]]
            wrong = [i for i in rows if not correct[i]]
            out += list(zip(right, wrong))[: self.pairs_per_question]
        return out

    def rollout(self) -> list[RolloutBatch]:
        s = self.s
        smp = self.sample()
        pairs = self.pairs(smp.correct, smp.skipped, s.group_size)
        mine = (len(pairs), len({i // s.group_size for i, _ in pairs}), int((~smp.skipped).sum()))
        n_pairs, with_pair, asked = (sum(x) for x in zip(*self.all_ranks(mine)))  # over the global batch
        metrics = smp.metrics
        metrics.update({"pairs": float(n_pairs), "pairless_fraction": 1.0 - with_pair / asked if asked else 0.0,
                        "zero_std_fraction": 0.0})
        # each pair's weight: 1/(pairs of the global batch), times micro_batches (the loop divides by
        # grad_accum) and world_size (DDP averages the processes' gradients)
        weight = s.micro_batches * s.world_size / n_pairs if n_pairs else 0.0
        total = smp.total.reshape(-1)
        batches = []
        t0 = time.perf_counter()
        for c in torch.tensor_split(torch.arange(len(pairs)), s.micro_batches):
            chosen = [pairs[i][0] for i in c.tolist()]
            rejected = [pairs[i][1] for i in c.tolist()]
            k = len(chosen)
            # no pair here: output 0 paired with itself at weight 0, so the model still runs (module docstring)
            idx = torch.tensor(chosen + rejected) if k else torch.tensor([0, 0])
            weights = torch.full((k,), weight) if k else torch.zeros(1)
            sub = smp.rows.select(idx)
            batches.append(RolloutBatch(rows=sub, advantages=None, output_weights=weights, rewards=total[idx],
                                        ref_logp=self._logprobs(self.reference, sub), old_logp=None,
                                        metrics=metrics, n_pairs=len(weights)))
        metrics["ref_s"] = time.perf_counter() - t0
        return self.repeat(batches)
