"""The corpus stage on real web pages (issue #18): precision and recall of the mined corpus, overall and
on the math sites outside the seed, per classifier setting.

Pages: benchmarks/build_corpus_real.py (real math Q&A of three StackExchange sites, seeded from
mathoverflow.net only, among real non-math pages). Two pools:
- `doc`: 80 math pages per site among 6,000 real non-math pages (crawled samples + Debian documentation,
  139 hosts): 4,591 pages after extraction and dedup, 5.2% math,
- `rich`: all 871 math pages among the ~70 crawled non-math pages of the shared samples (937 pages, 93% math).
The pool steps (extract, dedup, decontamination: the same settings for both) run once per data set
(<out>/runs/pools/<pool>); each setting's rounds start from it.
Settings: `tiny` (config/tiny.yaml's classifier: dim 32, lr 0.5, epoch 20, ...) and `paper`
(config/deepseekmath.yaml's corpus section: dim 256, lr 0.1, epoch 3, health auto, token budgets
scaled to the pool), each run through every step's CLI in this process (corpus.smk's order).

    python -m benchmarks.bench_corpus_real --out results/bench_corpus_real [--pools doc rich] [--settings tiny paper]
        [--set corpus.select.threshold=0.8 ...] [--tag _name]

Writes <out>/corpus_real<tag>.json. The stage never reads labels.jsonl; only this measurement does.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from benchmarks.build_corpus_real import SHARED, build
from corpus import classifier, dedup, export, extract, funnel, pool, rounds, sources
from corpus.shards import link_or_copy

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks.corpus_real")


POOL_DIRS = ("extract", "dedup", "pool")
POOL_FILES = ("seed.parquet", "seed.json", "benchmarks.jsonl", "benchmarks.json")


def build_pool(c: list[str], cor: Path, warcs: list[Path], world_seed: Path | None = None,
               world_problems: Path | None = None) -> None:
    """corpus.smk's steps before the rounds: seed, benchmarks, extract, dedup, pool (decontaminated)."""
    shards = [f"{i:04d}" for i in range(len(warcs))]
    sources.main(c + ["seed", *(["--world-seed", str(world_seed)] if world_seed else []),
                      "--output", str(cor / "seed.parquet"), "--report", str(cor / "seed.json")])
    sources.main(c + ["benchmarks", *(["--world-dir", str(world_problems)] if world_problems else []),
                      "--output", str(cor / "benchmarks.jsonl"), "--report", str(cor / "benchmarks.json")])
    for s, warc in zip(shards, warcs):
        extract.main(c + ["--input", str(warc), "--shard", s, "--output", str(cor / f"extract/shard-{s}.parquet"),
                          "--signatures", str(cor / f"extract/shard-{s}.minhash.npy"),
                          "--stats", str(cor / f"extract/shard-{s}.stats.json")])
    dedup.main(c + ["--shards", *[str(cor / f"extract/shard-{s}.parquet") for s in shards],
                    "--signatures", *[str(cor / f"extract/shard-{s}.minhash.npy") for s in shards],
                    "--output", str(cor / "dedup/removed.parquet"), "--stats", str(cor / "dedup/stats.json")])
    for s in shards:
        pool.main(c + ["--shard", s, "--input", str(cor / f"extract/shard-{s}.parquet"),
                       "--removed", str(cor / "dedup/removed.parquet"), "--benchmarks", str(cor / "benchmarks.jsonl"),
                       "--output", str(cor / f"pool/shard-{s}.parquet"),
                       "--report", str(cor / f"pool/shard-{s}.decontam.jsonl"),
                       "--dedup-stats", str(cor / f"pool/shard-{s}.dedup.stats.json"),
                       "--stats", str(cor / f"pool/shard-{s}.stats.json")])
    (cor / "pool.done").write_text("seed, benchmarks, extract, dedup, pool\n")


def link_pool(src: Path, cor: Path) -> None:
    """A run's pool steps' files hard-linked from another run on the same WARCs and pool settings."""
    for name in POOL_FILES:
        (cor / name).parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(src / name, cor / name)
    for d in POOL_DIRS:
        for f in sorted((src / d).iterdir()):
            (cor / d).mkdir(parents=True, exist_ok=True)
            link_or_copy(f, cor / d / f.name)


def run_corpus(config: Path, res: Path, warcs: list[Path], max_rounds: int, world_seed: Path | None = None,
               world_problems: Path | None = None, pool_from: Path | None = None) -> None:
    """The corpus.smk DAG step by step (shard ids 0000.., rounds 1..max_rounds) on the given WARC shards;
    the seed and benchmarks come from the config, or from a generated world's files when given. With
    `pool_from` (a run's corpus/ folder whose pool steps finished: pool.done), the pool steps' files are
    linked from there (the settings compared differ only from the rounds on) and built there first if absent."""
    c = ["--config", str(config), "--log-level", "WARNING"]
    cor = res / "corpus"
    shards = [f"{i:04d}" for i in range(len(warcs))]
    if pool_from is None:
        build_pool(c, cor, warcs, world_seed, world_problems)
    else:
        if not (pool_from / "pool.done").exists():
            build_pool(c, pool_from, warcs, world_seed, world_problems)
        link_pool(pool_from, cor)
    pools = [str(cor / f"pool/shard-{s}.parquet") for s in shards]
    for r in range(1, max_rounds + 1):
        rd, pd = cor / f"round{r}", cor / f"round{r - 1}"
        prev = [] if r == 1 else ["--prev-state", str(pd / "state.json")]
        classifier.main(c + ["train", "--round", str(r), *prev, "--seed-docs", str(cor / "seed.parquet"),
                             "--pool", *pools, "--output", str(rd / "classifier.bin"), "--stats", str(rd / "train.json"),
                             *([] if r == 1 else ["--prev-positives", str(pd / "positives.parquet"),
                                                  "--prev-negatives", str(pd / "negatives.parquet"),
                                                  "--prev-model", str(pd / "classifier.bin")])])
        for s in shards:
            classifier.main(c + ["score", "--round", str(r), *prev, "--shard", s, "--model", str(rd / "classifier.bin"),
                                 "--pool", str(cor / f"pool/shard-{s}.parquet"),
                                 "--output", str(rd / f"scores/shard-{s}.parquet"),
                                 "--stats", str(rd / f"scores/shard-{s}.stats.json"),
                                 *([] if r == 1 else ["--prev-scores", str(pd / f"scores/shard-{s}.parquet"),
                                                      "--prev-stats", str(pd / f"scores/shard-{s}.stats.json")])])
        rounds.main(c + ["--round", str(r), *prev, "--scores", *[str(rd / f"scores/shard-{s}.parquet") for s in shards],
                         "--kept", str(rd / "kept.parquet"), "--positives", str(rd / "positives.parquet"),
                         "--negatives", str(rd / "negatives.parquet"), "--domains", str(rd / "domains.json"),
                         "--state", str(rd / "state.json"), "--stats", str(rd / "select.stats.json"),
                         *([] if r == 1 else ["--prev-kept", str(pd / "kept.parquet"),
                                              "--prev-positives", str(pd / "positives.parquet"),
                                              "--prev-negatives", str(pd / "negatives.parquet"),
                                              "--prev-domains", str(pd / "domains.json"),
                                              "--prev-stats", str(pd / "select.stats.json")])])
    export.main(c + ["final", "--kept", str(cor / f"round{max_rounds}/kept.parquet"), "--pool", *pools,
                     "--output", str(cor / "final")])
    export.main(c + ["web_text", "--pool", *pools, "--output", str(cor / "web_text")])
    stats = ([str(cor / f"extract/shard-{s}.stats.json") for s in shards]
             + [str(cor / f"pool/shard-{s}.dedup.stats.json") for s in shards]
             + [str(cor / f"pool/shard-{s}.stats.json") for s in shards]
             + [str(cor / f"round{r}/select.stats.json") for r in range(1, max_rounds + 1)])
    funnel.main(c + ["--stats", *stats, "--states", *[str(cor / f"round{r}/state.json") for r in range(1, max_rounds + 1)],
                     "--decontam", *[str(cor / f"pool/shard-{s}.decontam.jsonl") for s in shards],
                     "--json", str(cor / "funnel.json"), "--markdown", str(cor / "funnel.md")])


def _urls(folder: Path) -> list[str]:
    parts = sorted(folder.glob("part-*.parquet"))
    return [unquote(u) for u in pa.concat_tables([pq.read_table(p, columns=["url"]) for p in parts]).column("url").to_pylist()]


def measure(data: Path, res: Path, max_rounds: int) -> dict:
    """Precision / recall of corpus/final against labels.jsonl, over the math pages that reached the pool."""
    # keyed by the unquoted URL: the WARC/extract steps percent-encode what the builder wrote raw (spaces)
    labels = {unquote(rec["url"]): rec for rec in map(json.loads, (data / "labels.jsonl").read_text().splitlines())}
    seed_site = json.loads((data / "manifest.json").read_text())["seed_site"]
    cor = res / "corpus"
    final, web = set(_urls(cor / "final")), set(_urls(cor / "web_text"))
    math_in_pool = {u for u in web if labels[u]["is_math"]}
    unseeded = {u for u in math_in_pool if labels[u]["site"] != seed_site}
    tp = len(final & math_in_pool)
    per_site = Counter(labels[u]["site"] for u in math_in_pool)
    per_site_kept = Counter(labels[u]["site"] for u in final & math_in_pool)
    fp_sites = Counter(labels[u]["site"] for u in final - math_in_pool)
    pool_ids = pa.concat_tables([pq.read_table(p, columns=["id", "url"]) for p in sorted(cor.glob("pool/shard-*.parquet"))])
    url_of = dict(zip(pool_ids.column("id").to_pylist(), map(unquote, pool_ids.column("url").to_pylist())))
    per_round = []
    for r in range(1, max_rounds + 1):
        state = json.loads((cor / f"round{r}/state.json").read_text())
        train = json.loads((cor / f"round{r}/train.json").read_text())
        neg = [url_of[i] for i in pq.read_table(cor / f"round{r}/negatives.parquet").column("id").to_pylist()]
        checks = train.get("health", {}).get("checks", [])
        per_round.append({
            "round": r, "kept": state["kept_docs"], "overlap": state["overlap_with_previous"],
            "converged": state["converged"], "math_domains": state["math_domains"],
            "new_positives": state["new_positives"], "dropped": state.get("dropped"),
            "health": [{k: c[k] for k in ("attempt", "lr", "epoch", "auc", "spread")} for c in checks],
            # reliable-negative candidates of round r+1: how many are math pages of sites outside the seed
            "next_negatives": len(neg), "next_negatives_unseeded_math": sum(1 for u in neg if u in unseeded),
        })
    return {
        "pool_pages": len(web), "math_in_pool": len(math_in_pool), "final_pages": len(final),
        "precision": round(tp / len(final), 4) if final else None,
        "recall": round(tp / len(math_in_pool), 4) if math_in_pool else None,
        "recall_unseeded_sites": round(len(final & unseeded) / len(unseeded), 4) if unseeded else None,
        "recall_per_site": {s: round(per_site_kept[s] / n, 4) for s, n in sorted(per_site.items())},
        "false_positives_by_site": dict(fp_sites.most_common(10)),
        "converged_at": next((p["round"] for p in per_round if p["converged"]), None),
        "rounds": per_round,
    }


def corpus_config(settings: str, data: Path, res_root: Path, name: str, max_rounds: int = 4) -> dict:
    """The run's config: `tiny` = tiny.yaml's classifier settings, `paper` = deepseekmath.yaml's corpus
    section (its token budgets scaled to the pool: 40B/120B of ~ 4e13 Common Crawl tokens is ~1/1000 and
    ~3/1000; here round 1 and the final budget are 1.5x and 2x the math pages' words, a stand-in for the
    paper's rounds growing the corpus)."""
    tiny = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())["corpus"]
    paper = yaml.safe_load((ROOT / "config/deepseekmath.yaml").read_text())["corpus"]
    base = {"source": "files", "seed": {"data": str(data / "seed.jsonl")},
            "benchmarks": [{"name": "gsm8k", "data": str(SHARED / "decont/gsm8k_test_megamath.jsonl"),
                            "fields": ["question", "cot"]}],
            "rounds": {"max_rounds": max_rounds, "convergence_overlap": 0.98}, "output": {"part_docs": 100000}}
    if settings == "tiny":
        corpus = {**base, "classifier": tiny["classifier"], "select": tiny["select"], "domains": tiny["domains"]}
    else:
        corpus = {**base, **{k: paper[k] for k in ("extract", "dedup", "decontamination", "domains")},
                  "select": dict(paper["select"]),
                  # 2M hash buckets x dim 256 is a 2 GB model, sized for 1M training pages: 100K here
                  "classifier": {**paper["classifier"], "bucket": 100_000}}
        math_words = _math_words(data)
        corpus["select"].update(token_budget=int(1.5 * math_words), final_token_budget=int(2 * math_words))
    return {"name": name, "results_root": str(res_root), "seed": 0, "corpus": corpus}


def _math_words(data: Path) -> int:
    """Words of the pool's math pages, estimated from the seed pages' mean length."""
    seed = [json.loads(line)["text"] for line in (data / "seed.jsonl").read_text().splitlines()]
    manifest = json.loads((data / "manifest.json").read_text())
    return int(sum(len(t.split()) for t in seed) / max(1, len(seed)) * manifest["math"])


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """`a.b.c=value` overrides (value parsed as YAML) on a config dict, in place; returns it."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        *parents, leaf = key.split(".")
        node = cfg
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = yaml.safe_load(value)
    return cfg


def run_one(data: Path, out: Path, settings: str, max_rounds: int = 4, overrides: list[str] = (),
            tag: str = "") -> dict:
    name = f"{data.name}_{settings}{tag}"
    cfg = apply_overrides(corpus_config(settings, data, out, name, max_rounds), list(overrides))
    out.mkdir(parents=True, exist_ok=True)
    config = out / f"{name}.yaml"
    config.write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    try:  # tiny and paper share the pool steps' settings (schema defaults = the paper's extract, dedup, decontam.)
        run_corpus(config, out / name, sorted(data.glob("shard-*.warc.gz")), max_rounds,
                   pool_from=out / "pools" / data.name / "corpus")
    except classifier.UnhealthyClassifierError as e:  # the stage stopped as designed: a result, not a crash
        log.warning("%s: stopped: %s", name, e)
        return {"stopped": str(e), "seconds": round(time.perf_counter() - t0, 1)}
    m = measure(data, out / name, max_rounds)
    m["seconds"] = round(time.perf_counter() - t0, 1)
    log.info("%s: %s", name, {k: m[k] for k in ("precision", "recall", "recall_unseeded_sites", "converged_at")})
    return m


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "results/bench_corpus_real")
    p.add_argument("--pools", nargs="+", default=["doc", "rich"], choices=["doc", "rich"])
    p.add_argument("--settings", nargs="+", default=["tiny", "paper"], choices=["tiny", "paper"])
    p.add_argument("--nonmath", type=int, default=6000, help="non-math pages of the doc pool")
    p.add_argument("--math-per-site", type=int, default=80, help="math pages per site in the doc pool")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override of every run, e.g. corpus.classifier.negatives_max_domain_kept=0.02")
    p.add_argument("--tag", default="", help="suffix of the run names and of corpus_real<tag>.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = {}
    for pool_name in args.pools:
        data = args.out / "data" / pool_name
        if not (data / "manifest.json").exists():
            if pool_name == "doc":
                build(data, args.nonmath, shards=2, math_per_site=args.math_per_site)
            else:
                build(data, 0, shards=1)
        results[pool_name] = {"manifest": json.loads((data / "manifest.json").read_text())}
        for st in args.settings:
            results[pool_name][st] = run_one(data, args.out / "runs", st, overrides=args.overrides, tag=args.tag)
    results["overrides"] = args.overrides
    (args.out / f"corpus_real{args.tag}.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
