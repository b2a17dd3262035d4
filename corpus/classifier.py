"""The fastText math classifier of each mining round (paper §2.1).

Positives are the seed (OpenWebMath in the paper, 500K pages) plus the pages discovered under math
URL paths in earlier rounds; negatives are random pages of the candidate pool (paper: 500K random
Common Crawl pages), from round 2 on drawn among the previous round's reliable negatives (see
corpus.rounds.reliable_negatives). Hyperparameters come from config (paper: dim 256, lr 0.1, word
n-grams 3, minCount 3, epoch 3). Training data order is shuffled with the round's seed and fastText
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
from dataclasses import asdict, dataclass
from pathlib import Path

import fasttext
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from corpus.text import classifier_line

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent

MATH = "__label__math"
OTHER = "__label__other"


@dataclass(frozen=True)
class FastTextSettings:
    dim: int = 256
    lr: float = 0.1
    word_ngrams: int = 3
    min_count: int = 3
    epoch: int = 3
    bucket: int = 2_000_000
    thread: int = 1
    max_tokens: int = 2000
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: dict, seed: int) -> FastTextSettings:
        return cls(dim=cfg["dim"], lr=cfg["lr"], word_ngrams=cfg["word_ngrams"], min_count=cfg["min_count"],
                   epoch=cfg["epoch"], bucket=cfg["bucket"], thread=cfg["thread"], max_tokens=cfg["max_tokens"],
                   seed=seed)


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
    from corpus.shards import read_table

    rng = np.random.default_rng(seed)
    candidates = []
    positives: list[str] = []
    for path in pool:
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
    from corpus.shards import read_table

    if not path:
        return pa.array([], pa.string())
    return read_table(path, ["id"]).column("id").combine_chunks()


def _train_main(args, cfg: dict) -> None:
    from corpus import rounds
    from corpus.shards import read_table
    from pipeline.io import atomic_path, write_json

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
    n_negatives = min(ccfg["negatives"], max(1, round(ccfg["negative_ratio"] * n_positives)))
    negative_ids = _ids(args.prev_negatives) if args.prev_negatives else None
    discovered, negatives = sample_training_pages(args.pool, discovered_ids, exclude_urls, n_negatives, settings.seed,
                                                  negative_ids)
    discovered = discovered[:room]
    log.info("round %d: training on %d seed + %d discovered positives and %d negatives", args.round,
             len(seed_texts), len(discovered), len(negatives))
    with atomic_path(args.output) as tmp:
        clf, info = MathClassifier.train(seed_texts + discovered, negatives, settings, tmp.parent)
        clf.save(tmp)
    write_json(args.stats, {"step": "train", "round": args.round, "seed_positives": len(seed_texts),
                            "discovered_positives": len(discovered), **info})


def _score_main(args, cfg: dict) -> None:
    import pyarrow.parquet as pq

    from corpus import rounds
    from corpus.filters import StepStats
    from corpus.shards import read_table
    from pipeline.io import atomic_path, write_json

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
    from corpus.cli import parser, setup

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
