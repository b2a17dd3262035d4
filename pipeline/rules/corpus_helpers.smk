# Constants and input functions for corpus.smk. They live apart from the rules because Snakemake's
# linter asks for rules and functions in separate files.
import glob
import shlex

from corpus.dedup import MinHashSettings
from corpus.dedup_shards import band_ranges

CORPUS_CFG = RESOLVED["corpus"]
CORPUS = FOLDERS["corpus"]
CORPUS_ROUNDS = list(range(1, CORPUS_CFG["rounds"]["max_rounds"] + 1))
CORPUS_LAST_ROUND = CORPUS_ROUNDS[-1]


wildcard_constraints:
    shard=r"\d{4}",
    band_group=r"\d{2}",
    round=r"\d+",


def corpus_input_files():
    """source=files: the sorted union of the configured paths/globs (one shard each)."""
    files = sorted({f for pattern in CORPUS_CFG["files"] for f in glob.glob(pattern)})
    if CORPUS_CFG["source"] == "files" and not files:
        raise ValueError(f"corpus.files {CORPUS_CFG['files']} matches no file")
    return files


def corpus_shards():
    """Shard ids ("0000", ...) of the configured source."""
    source = CORPUS_CFG["source"]
    if source == "world":
        n = RESOLVED["world"]["web"]["shards"]
    elif source == "files":
        n = len(corpus_input_files())
    else:
        n = CORPUS_CFG["commoncrawl"]["num_files"]
    return [f"{i:04d}" for i in range(n)]


def corpus_warc(wildcards):
    """The WARC/WET file of a shard: the world's, a configured file, or a downloaded Common Crawl file."""
    source = CORPUS_CFG["source"]
    if source == "world":
        return FOLDERS["world_web"] / f"shard-{wildcards.shard}.warc.gz"
    if source == "files":
        return corpus_input_files()[int(wildcards.shard)]
    return CORPUS / f"download/shard-{wildcards.shard}.{CORPUS_CFG['commoncrawl']['kind']}.gz"


def corpus_seed_inputs(wildcards):
    """The world's seed when no seed is configured, a local seed file, or nothing (a hub dataset)."""
    seed = CORPUS_CFG["seed"]
    if seed["data"]:
        return {"seed": seed["data"]}
    if seed["hub"]:
        return {}
    return {"world_seed": FOLDERS["world_web"] / "seed.jsonl"}


def corpus_seed_args(wildcards, input):
    return f"--world-seed {shlex.quote(str(input.world_seed))}" if "world_seed" in input.keys() else ""


def corpus_benchmark_inputs(wildcards):
    """Local benchmark files (configured ones, or the world's test splits); hub datasets have none."""
    if not CORPUS_CFG["benchmarks"]:
        return [FOLDERS["world_problems"] / "test_gsm8k.jsonl", FOLDERS["world_problems"] / "test_math.jsonl"]
    return [b["data"] for b in CORPUS_CFG["benchmarks"] if b.get("data")]


def corpus_benchmark_args(wildcards):
    return "" if CORPUS_CFG["benchmarks"] else f"--world-dir {shlex.quote(str(FOLDERS['world_problems']))}"


def corpus_per_shard(pattern):
    return expand(str(CORPUS / pattern), shard=corpus_shards())


def corpus_prev_round(wildcards, **files):
    """Round r-1's files (name -> path pattern under round{r-1}/) as inputs; none in round 1."""
    prev = int(wildcards.round) - 1
    if prev < 1:
        return {}
    return {name: str(CORPUS / f"round{prev}" / pattern).format(**wildcards) for name, pattern in files.items()}


def corpus_train_prev(wildcards):
    return corpus_prev_round(wildcards, prev_state="state.json", prev_positives="positives.parquet",
                             prev_negatives="negatives.parquet", prev_model="classifier.bin")


def corpus_score_prev(wildcards):
    return corpus_prev_round(wildcards, prev_state="state.json", prev_scores="scores/shard-{shard}.parquet",
                             prev_stats="scores/shard-{shard}.stats.json")


def corpus_select_prev(wildcards):
    return corpus_prev_round(wildcards, prev_state="state.json", prev_kept="kept.parquet",
                             prev_positives="positives.parquet", prev_negatives="negatives.parquet",
                             prev_domains="domains.json", prev_stats="select.stats.json")


def corpus_flags(prev_inputs):
    """A params function turning a round's previous-round inputs into CLI flags (--prev-state PATH ...)."""

    def flags(wildcards):
        return " ".join(f"--{k.replace('_', '-')} {shlex.quote(v)}" for k, v in prev_inputs(wildcards).items())

    return flags


def corpus_round_scores(wildcards):
    return expand(str(CORPUS / "round{round}/scores/shard-{shard}.parquet"), round=wildcards.round,
                  shard=corpus_shards())


def corpus_funnel_stats():
    """Every step's stats file, in pipeline order (the funnel's rows)."""
    return (corpus_per_shard("extract/shard-{shard}.stats.json")
            + corpus_per_shard("pool/shard-{shard}.dedup.stats.json")
            + corpus_per_shard("pool/shard-{shard}.stats.json")
            + [str(CORPUS / f"round{r}/select.stats.json") for r in CORPUS_ROUNDS])


def corpus_dedup_groups():
    """Band group ids ("00", ...): corpus.dedup.band_groups ranges of the LSH bands (checked here, at DAG time)."""
    dcfg = CORPUS_CFG["dedup"]
    bands, _ = MinHashSettings.from_config(dcfg, seed=0).lsh_params()
    return [f"{g:02d}" for g in range(len(band_ranges(bands, dcfg["band_groups"])))]


def corpus_dedup_group_files(kind):
    suffix = {"edges": "npy", "stats": "stats.json"}[kind]
    return expand(str(CORPUS / f"dedup/bands/group-{{band_group}}.{suffix}"), band_group=corpus_dedup_groups())


# Memory of each dedup job: a base (interpreter + libraries ~170 MB, the bands job's verification chunk
# ~70 MB) plus bytes per document, measured by benchmarks/bench_dedup.py (peak RSS at 100k and 400k
# synthetic documents, 8 shards, 128 permutations, 16x8 bands, 30% near-duplicates; slopes url 544,
# bands 226, merge 354 B/doc, rounded up here). Documents per shard: at most ~40k (a Common Crawl WARC
# file holds ~37k pages), so 100 files -> url 2.8 GB, each bands job 1.4 GB, merge 2.0 GB.
CORPUS_DEDUP_BYTES_PER_DOC = {"url": 600, "bands": 250, "merge": 400}
CORPUS_DEDUP_BASE_MB = 400
CORPUS_DOCS_PER_SHARD = 40_000


def corpus_dedup_mem_mb(job):
    def mem_mb(wildcards):
        docs = len(corpus_shards()) * CORPUS_DOCS_PER_SHARD
        return CORPUS_DEDUP_BASE_MB + docs * CORPUS_DEDUP_BYTES_PER_DOC[job] // 1_000_000

    return mem_mb
