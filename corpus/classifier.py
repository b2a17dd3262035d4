"""The fastText math classifier of each mining round (paper §2.1).

Positives are the seed (OpenWebMath in the paper, 500K pages) plus the pages discovered under math
URL paths in earlier rounds; negatives are random pages of the candidate pool (paper: 500K random
Common Crawl pages), from round 2 on drawn among the previous round's reliable negatives (see
corpus.rounds.reliable_negatives: never a kept page, a positive or a page of a math domain).
Hyperparameters come from config (paper: dim 256, lr 0.1, word n-grams 3, minCount 3, epoch 3). Every
round's classifier is checked on held-out pages before it is used (`train_checked`): one that learned
nothing stops the round with the reason, or with `health.on_fail: auto` is retrained with more updates
(the paper's settings are tuned for 1M training pages, not a user's few hundred). Training data order is shuffled with the round's seed and fastText
runs with `thread` threads in a fresh process: with 1 thread the model, hence every score, is
bit-identical for a seed. A page's score is P(math) from the softmax over the two labels.

CLI (two steps of every round):
    python -m corpus.classifier --config C train --round R --seed-docs S --pool P... --output M --stats J
        [--prev-state ... --prev-positives ... --prev-negatives ... --prev-model ...]
    python -m corpus.classifier --config C score --round R --model M --pool P --output O --stats J
        [--prev-state ... --prev-scores ... --prev-stats ...]
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import fasttext
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from corpus import rounds
from corpus.cli import parser, setup
from corpus.filters import StepStats
from corpus.shards import read_table
from corpus.text import classifier_line
from pipeline.config import defaults_from_schema, settings_from
from pipeline.io import atomic_path, write_json

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent

MATH = "__label__math"
OTHER = "__label__other"


@dataclass(frozen=True)
@defaults_from_schema("corpus.classifier")
class FastTextSettings:
    """fastText's knobs; field names are the keys of the config's `corpus.classifier` (defaults and
    meanings in its schema); `seed` is the experiment's."""

    dim: int
    lr: float
    word_ngrams: int
    min_count: int
    epoch: int
    bucket: int
    thread: int
    max_tokens: int
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: dict, seed: int) -> FastTextSettings:
        """From `corpus.classifier`; other keys ignored."""
        return settings_from(cls, {k: v for k, v in cfg.items() if k != "seed"}, seed=seed)


@dataclass(frozen=True)
@defaults_from_schema("corpus.classifier.health")
class HealthSettings:
    """The held-out check of every round's classifier (`corpus.classifier.health`; defaults in its schema)."""

    holdout: float
    min_auc: float
    min_spread: float
    on_fail: str
    auto_tries: int

    @classmethod
    def from_config(cls, cfg: dict) -> HealthSettings:
        return settings_from(cls, cfg)


class UnhealthyClassifierError(RuntimeError):
    """A round's classifier separates nothing on held-out pages (raised instead of keeping everything)."""


def write_training_file(path: str | Path, positives: Iterable[str], negatives: Iterable[str], seed: int) -> dict:
    """fastText input (`__label__x tokens...` per line), shuffled deterministically; returns counts."""
    lines = [f"{MATH} {line}" for line in positives if line]
    n_pos = len(lines)
    lines += [f"{OTHER} {line}" for line in negatives if line]
    n_neg = len(lines) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"cannot train the math classifier with {n_pos} positives and {n_neg} negatives")
    random.Random(seed).shuffle(lines)
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"positives": n_pos, "negatives": n_neg}


def _fit(train_file: str, model_file: str, settings_json: str) -> None:
    """Train fastText with the config's knobs and save the model (run by `_fit_in_fresh_process`)."""
    st = FastTextSettings(**json.loads(settings_json))
    model = fasttext.train_supervised(
        input=train_file, dim=st.dim, lr=st.lr, wordNgrams=st.word_ngrams, minCount=st.min_count, epoch=st.epoch,
        bucket=st.bucket, thread=st.thread, seed=st.seed, loss="softmax", verbose=0,
    )
    model.save_model(model_file)


def _fit_in_fresh_process(train_file: Path, model_file: Path, settings: FastTextSettings) -> None:
    """fasttext-numpy2-wheel 0.9.2 carries state from one training to the next inside a process (a
    repeated training differs by ~1e-4 and now and then stops with "Encountered NaN"), while a fresh
    process reproduces a training exactly: so every training runs in a new interpreter."""
    code = "import sys; from corpus.classifier import _fit; _fit(*sys.argv[1:])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code, str(train_file), str(model_file), json.dumps(asdict(settings))],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"fastText training on {train_file} failed:\n{proc.stderr[-3000:]}")


class MathClassifier:
    """A trained fastText model scoring P(math) for page texts."""

    def __init__(self, model: fasttext.FastText._FastText, max_tokens: int):
        self.model = model
        self.max_tokens = max_tokens

    @classmethod
    def train(cls, positives: Sequence[str], negatives: Sequence[str], settings: FastTextSettings,
              workdir: str | Path) -> tuple[MathClassifier, dict]:
        """Train on page texts; `workdir` holds the temporary fastText input file."""
        train_file = Path(workdir) / "fasttext_train.txt"
        counts = write_training_file(
            train_file,
            (classifier_line(t, settings.max_tokens) for t in positives),
            (classifier_line(t, settings.max_tokens) for t in negatives),
            settings.seed,
        )
        model_file = Path(workdir) / "fasttext_model.bin"
        _fit_in_fresh_process(train_file, model_file, settings)
        train_file.unlink()
        model = fasttext.load_model(str(model_file))
        model_file.unlink()
        return cls(model, settings.max_tokens), {**counts, "settings": asdict(settings)}

    @classmethod
    def load(cls, path: str | Path, max_tokens: int) -> MathClassifier:
        try:
            return cls(fasttext.load_model(str(path)), max_tokens)
        except ValueError as e:
            raise ValueError(f"{path}: not a fastText model: {e}") from e

    def save(self, path: str | Path) -> None:
        self.model.save_model(str(path))

    def score(self, texts: Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """P(math) for each text (float64, in [0, 1])."""
        out = np.empty(len(texts), dtype=np.float64)
        for start in range(0, len(texts), batch_size):
            lines = [classifier_line(t, self.max_tokens) for t in texts[start : start + batch_size]]
            labels, probs = self.model.predict(lines, k=2)
            for i, (ls, ps) in enumerate(zip(labels, probs)):
                p = dict(zip(ls, ps))
                out[start + i] = min(1.0, max(0.0, float(p.get(MATH, 1.0 - p.get(OTHER, 1.0)))))
        return out


def roc_auc(pos_scores: Sequence[float], neg_scores: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties counting half (Mann-Whitney U / n+ n-)."""
    pos, neg = np.asarray(pos_scores, np.float64), np.sort(np.asarray(neg_scores, np.float64))
    if not len(pos) or not len(neg):
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")
    tied = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * tied).sum() / (len(pos) * len(neg)))


def health_report(pos_scores: np.ndarray, neg_scores: np.ndarray) -> dict:
    """AUC (ranking) and spread (mean P(math) of held-out positives minus negatives: what a 0.5
    threshold needs; ~0 when every score sits at 0.5, as with too few updates for the settings)."""
    both = np.concatenate([pos_scores, neg_scores])
    return {"auc": round(roc_auc(pos_scores, neg_scores), 4),
            "spread": round(float(pos_scores.mean() - neg_scores.mean()), 4),
            "positives_mean": round(float(pos_scores.mean()), 4), "negatives_mean": round(float(neg_scores.mean()), 4),
            "score_min": round(float(both.min()), 6), "score_max": round(float(both.max()), 6),
            "held_out_positives": len(pos_scores), "held_out_negatives": len(neg_scores)}


def auto_settings(settings: FastTextSettings, attempt: int) -> FastTextSettings:
    """`health.on_fail: auto`, try `attempt` (1, 2, ...) after the configured settings failed.

    fastText's learning rate decays linearly to zero over epoch x (training tokens) updates and the
    output layer starts at zero, so a few hundred pages with the paper's lr 0.1 and 3 epochs (tuned for
    1M pages) leave every P(math) within ~1e-4 of 0.5. Each try multiplies the updates: lr doubled from
    at least 0.25 (0.5, 1.0 at most) and epochs at least 20 x 2^(attempt-1) (20, 40, 80).
    """
    return replace(settings, lr=min(1.0, max(settings.lr, 0.25) * 2 ** attempt),
                   epoch=max(settings.epoch, 20 * 2 ** (attempt - 1)))


def _split(texts: Sequence[str], fraction: float, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(train, held out): `fraction` of the texts (at least one, if there are two or more) held out."""
    order = rng.permutation(len(texts))
    k = max(1, round(fraction * len(texts))) if len(texts) >= 2 else 0
    return [texts[i] for i in order[k:]], [texts[i] for i in order[:k]]


def train_checked(positives: Sequence[str], negatives: Sequence[str], settings: FastTextSettings,
                  health: HealthSettings, workdir: str | Path, round_: int) -> tuple[MathClassifier, dict]:
    """Train a round's classifier and check it on held-out pages before the round uses it.

    `health.holdout` of the positives and of the negatives are held out; a model trained on the rest
    must rank them (AUC >= min_auc) and separate them (spread >= min_spread). If it does, the round's
    model is trained on all pages with the same settings (so a healthy configuration gives exactly the
    model it gave without the check). If not: `stop` raises UnhealthyClassifierError naming the round,
    the example counts and the likely cause; `auto` retries with `auto_settings` (more updates) up to
    `auto_tries` times and keeps the first healthy settings. Nothing is ever kept by a classifier that
    learned nothing.
    """
    rng = np.random.default_rng(settings.seed)
    pos_tr, pos_ho = _split(positives, health.holdout, rng)
    neg_tr, neg_ho = _split(negatives, health.holdout, rng)
    if not pos_ho or not neg_ho:
        raise UnhealthyClassifierError(
            f"round {round_}: cannot check the math classifier with {len(positives)} positives and "
            f"{len(negatives)} negatives (at least 2 of each are needed to hold one out)")
    tries = [settings] + ([auto_settings(settings, k) for k in range(1, health.auto_tries + 1)]
                          if health.on_fail == "auto" else [])
    checks = []
    for attempt, st in enumerate(tries):
        clf, _ = MathClassifier.train(pos_tr, neg_tr, st, workdir)
        report = {"attempt": attempt, "lr": st.lr, "epoch": st.epoch,
                  **health_report(clf.score(pos_ho), clf.score(neg_ho))}
        checks.append(report)
        log.info("round %d: classifier check %s", round_, report)
        if report["auc"] >= health.min_auc and report["spread"] >= health.min_spread:
            clf, info = MathClassifier.train(positives, negatives, st, workdir)
            return clf, {**info, "health": {"passed": True, "adapted": attempt > 0, "checks": checks}}
    last = checks[-1]
    cause = ("every score sits near 0.5: too few updates for these settings (fastText's lr decays to 0 over "
             f"epoch x tokens; {len(pos_tr) + len(neg_tr)} training pages x {st.epoch} epochs at lr {st.lr}); "
             "raise corpus.classifier.epoch / lr, add seed pages, or set corpus.classifier.health.on_fail: auto"
             if last["spread"] < health.min_spread and last["auc"] >= health.min_auc else
             "the held-out positives and negatives are not told apart: the negatives may be mostly math (a "
             "math-rich pool, or discovered positives from non-math domains) or the seed too small")
    raise UnhealthyClassifierError(
        f"round {round_}: the math classifier learned nothing usable: held-out AUC {last['auc']:.3f} "
        f"(min {health.min_auc}), mean P(math) {last['positives_mean']:.4f} on {len(pos_ho)} held-out positives vs "
        f"{last['negatives_mean']:.4f} on {len(neg_ho)} negatives (spread {last['spread']:.4f}, min "
        f"{health.min_spread}); trained on {len(pos_tr)} positives and {len(neg_tr)} negatives, "
        f"{len(checks)} setting(s) tried. Likely cause: {cause}")


def sample_training_pages(pool: Sequence[str | Path], discovered_ids: pa.Array, exclude_urls: pa.Array,
                          n_negatives: int, seed: int, negative_ids: pa.Array | None = None
                          ) -> tuple[list[str], list[str]]:
    """(texts of discovered positives, texts of random negative pages) from the pool shards.

    Negatives are drawn uniformly among the pool pages that are neither discovered positives nor
    seed URLs (round 1: the paper's random pages), restricted to `negative_ids` when given (later
    rounds: the previous round's reliable negatives, see corpus.rounds.reliable_negatives).
    One shard at a time: negatives are spread over shards by a multivariate hypergeometric draw on
    the shards' candidate counts, so memory is one shard whatever the pool size.
    """
    rng = np.random.default_rng(seed)
    candidates = []
    positives: list[str] = []
    for path in tqdm(pool, desc="training pages", unit="shard", disable=len(pool) < 20):
        table = read_table(path, ["id", "url", "text"])
        is_pos = pc.is_in(table.column("id"), value_set=discovered_ids)
        positives += table.filter(is_pos).column("text").to_pylist()
        allowed = pc.invert(pc.or_(is_pos, pc.is_in(table.column("url"), value_set=exclude_urls)))
        if negative_ids is not None:
            allowed = pc.and_(allowed, pc.is_in(table.column("id"), value_set=negative_ids))
        candidates.append(np.flatnonzero(allowed.to_numpy(zero_copy_only=False)))
    sizes = np.array([len(c) for c in candidates], dtype=np.int64)
    per_shard = rng.multivariate_hypergeometric(sizes, min(n_negatives, int(sizes.sum())))
    negatives: list[str] = []
    for path, cand, k in zip(pool, candidates, per_shard):
        if k:
            take = np.sort(rng.choice(cand, size=int(k), replace=False))
            negatives += read_table(path, ["text"]).take(pa.array(take, pa.int64())).column("text").to_pylist()
    return positives, negatives


# ---------------------------------------------------------------- CLI


def _ids(path: str | None) -> pa.Array:
    """The `id` column of a round file (discovered positives, negatives), or no ids in round 1."""
    if not path:
        return pa.array([], pa.string())
    return read_table(path, ["id"]).column("id").combine_chunks()


def _train_main(args, cfg: dict) -> None:
    ccfg = cfg["corpus"]["classifier"]
    prev = rounds.load_state(args.prev_state) if args.prev_state else None
    if prev is not None and prev["converged"]:
        rounds.carry_over(args.prev_model, args.output)
        write_json(args.stats, {"step": "train", "round": args.round, "carried_over_from": prev["round"]})
        log.info("round %d: converged at round %d, classifier carried over", args.round, prev["round"])
        return
    settings = FastTextSettings.from_config(ccfg, seed=rounds.round_seed(cfg["seed"], args.round))
    seed_table = read_table(args.seed_docs, ["url", "text"])
    seed_texts = seed_table.column("text").to_pylist()[: ccfg["positives"]]
    discovered_ids = _ids(args.prev_positives)
    exclude_urls = pa.array(sorted({u for u in seed_table.column("url").to_pylist() if u}), pa.string())
    room = max(0, ccfg["positives"] - len(seed_texts))
    n_positives = len(seed_texts) + min(room, len(discovered_ids))
    negative_ids = _ids(args.prev_negatives) if args.prev_negatives else None
    ratio = ccfg["negative_ratio"]
    if negative_ids is not None and ccfg.get("reliable_negative_ratio") is not None:
        ratio = ccfg["reliable_negative_ratio"]  # screened negatives of round 2+ (schema: reliable_negative_ratio)
    n_negatives = min(ccfg["negatives"], max(1, round(ratio * n_positives)))
    discovered, negatives = sample_training_pages(args.pool, discovered_ids, exclude_urls, n_negatives, settings.seed,
                                                  negative_ids)
    discovered = discovered[:room]
    if not negatives:
        raise UnhealthyClassifierError(
            f"round {args.round}: cannot train the math classifier with {len(seed_texts) + len(discovered)} positives "
            f"and 0 negatives: every pool page is a seed page, a discovered positive, "
            + ("or was kept by (or lies in a math domain of) an earlier round: the pool is nearly all math or the "
               f"previous round kept nearly everything (see round {args.round - 1}'s train.json health)"
               if negative_ids is not None else "or the pool is empty"))
    log.info("round %d: training on %d seed + %d discovered positives and %d negatives", args.round,
             len(seed_texts), len(discovered), len(negatives))
    health = HealthSettings.from_config(ccfg["health"])
    with atomic_path(args.output) as tmp:
        clf, info = train_checked(seed_texts + discovered, negatives, settings, health, tmp.parent, args.round)
        clf.save(tmp)
    write_json(args.stats, {"step": "train", "round": args.round, "seed_positives": len(seed_texts),
                            "discovered_positives": len(discovered), **info})


def _score_main(args, cfg: dict) -> None:
    ccfg = cfg["corpus"]
    prev = rounds.load_state(args.prev_state) if args.prev_state else None
    if prev is not None and prev["converged"]:
        rounds.carry_over(args.prev_scores, args.output)
        prev_stats = StepStats.load(args.prev_stats)
        origin = prev["carried_over_from"] or prev["round"]
        write_json(args.stats, {**prev_stats, "round": args.round,
                                "extra": {**prev_stats["extra"], "carried_over_from": origin}})
        log.info("round %d: converged at round %d, scores carried over", args.round, prev["round"])
        return
    clf = MathClassifier.load(args.model, ccfg["classifier"]["max_tokens"])
    table = read_table(args.pool, ["id", "url", "domain", "text", "n_tokens"])
    texts = table.column("text").to_pylist()
    batch = 4096
    scores = np.concatenate([np.empty(0)] + [clf.score(texts[i : i + batch]) for i in tqdm(
        range(0, len(texts), batch), desc=f"score round {args.round}", disable=len(texts) < 50_000)])
    out = table.drop_columns(["text"]).append_column("score", pa.array(scores, pa.float64()))
    with atomic_path(args.output) as tmp:
        pq.write_table(out, tmp)
    stats = StepStats("score", round=args.round, shard=args.shard)
    stats.docs_in = stats.docs_out = table.num_rows
    stats.tokens_in = stats.tokens_out = int(pc.sum(table.column("n_tokens")).as_py() or 0)
    stats.extra = {"mean_score": float(scores.mean()) if len(scores) else None}
    stats.save(args.stats)
    log.info("round %d shard %s: scored %d pages", args.round, args.shard, table.num_rows)


def main(argv: list[str] | None = None) -> None:
    p = parser("fastText math classifier of a mining round (paper §2.1): train or score.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train round R's classifier")
    s = sub.add_parser("score", help="score one pool shard with round R's classifier")
    for q in (t, s):
        q.add_argument("--round", type=int, required=True)
        q.add_argument("--prev-state", help="round R-1 state.json (absent in round 1)")
    t.add_argument("--seed-docs", required=True, help="seed Parquet (corpus/seed.parquet)")
    t.add_argument("--pool", nargs="+", required=True, help="pool shards (negatives, discovered positives)")
    t.add_argument("--prev-positives", help="round R-1 positives.parquet (discovered pages)")
    t.add_argument("--prev-negatives", help="round R-1 negatives.parquet (the ids negatives are drawn from)")
    t.add_argument("--prev-model", help="round R-1 classifier (carried over when converged)")
    t.add_argument("--output", required=True, help="classifier .bin")
    t.add_argument("--stats", required=True, help="training stats JSON")
    s.add_argument("--model", required=True)
    s.add_argument("--pool", required=True, help="one pool shard")
    s.add_argument("--shard", type=int, default=None)
    s.add_argument("--prev-scores", help="round R-1 scores of this shard (carried over when converged)")
    s.add_argument("--prev-stats", help="round R-1 stats of this shard (carried over when converged)")
    s.add_argument("--output", required=True, help="scores Parquet (id, url, domain, n_tokens, score)")
    s.add_argument("--stats", required=True, help="stats JSON of this shard")
    args = p.parse_args(argv)
    cfg = setup(args)
    (_train_main if args.command == "train" else _score_main)(args, cfg)


if __name__ == "__main__":
    main()
