# The embedded default's world (../shared/DESIGN.md): a generated problem family (sft / rl / test splits)
# and a generated web (WARC shards + ground-truth labels + a math seed) for the corpus stage (paper §2.1).
# `snakemake world` builds both. The web reads the test splits so that only its contaminated pages quote them.

# The world section with schema defaults filled in, and the seed the world uses; both go into `params`
# so that changing a world key reruns exactly these rules.
WORLD = RESOLVED["world"]
WORLD_SEED = config.get("seed", 0) if WORLD.get("seed") is None else WORLD["seed"]
WORLD_WEB = FOLDERS["world_web"]
WORLD_PROBLEMS = FOLDERS["world_problems"]


rule world_problems:
    input:
        config=CONFIG_FILE,
    output:
        sft=WORLD_PROBLEMS / "sft.jsonl",
        rl=WORLD_PROBLEMS / "rl.jsonl",
        test_gsm8k=WORLD_PROBLEMS / "test_gsm8k.jsonl",
        test_math=WORLD_PROBLEMS / "test_math.jsonl",
    params:
        problems=WORLD["problems"],
        seed=WORLD_SEED,
        out=WORLD_PROBLEMS,
    log:
        RESULTS / "logs/world_problems.log",
    benchmark:
        RESULTS / "benchmarks/world_problems.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    message:
        "Generating the problem family (sft/rl/test, CoT + PoT + tool solutions, verified by execution) in {params.out}"
    conda:
        CONDA_ENV
    shell:
        "python -m world.problems --config {input.config} --out-dir {params.out} > {log} 2>&1"


rule world_web:
    input:
        config=CONFIG_FILE,
        test_gsm8k=rules.world_problems.output.test_gsm8k,
        test_math=rules.world_problems.output.test_math,
    output:
        shards=expand(WORLD_WEB / "shard-{i:04d}.warc.gz", i=range(WORLD["web"]["shards"])),
        labels=WORLD_WEB / "labels.jsonl",
        seed=WORLD_WEB / "seed.jsonl",
    params:
        web=WORLD["web"],
        problems={k: WORLD["problems"][k] for k in ("max_steps", "max_number", "templates", "clean_ngram", "clean_min_exact")},
        seed=WORLD_SEED,
        out=WORLD_WEB,
    log:
        RESULTS / "logs/world_web.log",
    benchmark:
        RESULTS / "benchmarks/world_web.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    message:
        "Generating the web: {params.web[pages]} pages in {params.web[shards]} WARC shards, labels and seed in {params.out}"
    conda:
        CONDA_ENV
    shell:
        "python -m world.web --config {input.config} --test-gsm8k {input.test_gsm8k} --test-math {input.test_math}"
        " --out-dir {params.out} > {log} 2>&1"


rule world:
    input:
        rules.world_problems.output,
        rules.world_web.output,
    message:
        "The generated world is ready: problem splits and web"


rule world_corpus_score:
    input:
        labels=WORLD_WEB / "labels.jsonl",
        final=FOLDERS["corpus_final"],
        web_text=FOLDERS["corpus_web_text"],
        funnel=FOLDERS["corpus"] / "funnel.json",
    output:
        score=FOLDERS["corpus"] / "world_score.json",
    log:
        RESULTS / "logs/world_corpus_score.log",
    benchmark:
        RESULTS / "benchmarks/world_corpus_score.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    message:
        "Scoring the mined corpus against the world's labels (precision, recall, near-dups, contamination)"
    conda:
        CONDA_ENV
    shell:
        "python -m world.corpus_score --labels {input.labels} --final {input.final} --web-text {input.web_text}"
        " --funnel {input.funnel} --out {output.score} > {log} 2>&1"
