# The corpus stage (paper §2.1): Common Crawl -> DeepSeekMath Corpus, as one job per shard where the
# work is per page and one job per round where it is global. `snakemake corpus` builds it.
#
#   shard-i.warc.gz -> extract (text + MinHash signatures) -> dedup (global: URL, then near-dup fanned out
#     over LSH band groups and merged)
#     -> pool (per shard: dedup decisions + decontamination) = the candidate pool, and web_text
#   round r = 1..max_rounds: train (fastText on seed + discovered positives vs random pool pages)
#     -> score (per shard) -> select (keep, overlap with round r-1, domains/paths, next positives)
#   final (the last round's kept set) + funnel (from every step's stats files)
#
# Rounds are a `{round}` wildcard over a fixed range (no checkpoint): once a round's overlap with the
# previous one reaches corpus.rounds.convergence_overlap, its state.json says `converged`, and every
# later round's train/score/select job sees that flag and hard-links the converged round's files instead
# of recomputing (corpus/rounds.py). So the DAG is static and the last round always holds the result.


include: "corpus_helpers.smk"

# Downloads run in the Snakemake process, not as cluster jobs: compute nodes often have no internet, and a
# download is network-bound (config/profiles/slurm). Hub datasets read by training/eval jobs are not
# covered: on a cluster without internet on its nodes, fill the Hugging Face cache first (README "Slurm").


localrules:
    corpus_cc_listing,
    corpus_cc_download,
    corpus_seed,
    corpus_benchmarks,


rule corpus_cc_listing:
    input:
        config=CONFIG_FILE,
    output:
        listing=CORPUS / f"download/{CORPUS_CFG['commoncrawl']['kind']}.paths.gz",
    params:
        commoncrawl=CORPUS_CFG["commoncrawl"],
    log:
        RESULTS / "logs/corpus/cc_listing.log",
    benchmark:
        RESULTS / "benchmarks/corpus_cc_listing.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    message:
        "Downloading the Common Crawl {params.commoncrawl[crawl]} {params.commoncrawl[kind]} listing"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.sources --config {input.config} cc-listing --output {output.listing} > {log} 2>&1"


rule corpus_cc_download:
    input:
        config=CONFIG_FILE,
        listing=rules.corpus_cc_listing.output.listing,
    output:
        warc=temp(CORPUS / f"download/shard-{{shard}}.{CORPUS_CFG['commoncrawl']['kind']}.gz"),
    params:
        commoncrawl=CORPUS_CFG["commoncrawl"],
    log:
        RESULTS / "logs/corpus/cc_download_{shard}.log",
    benchmark:
        RESULTS / "benchmarks/corpus_cc_download_{shard}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=60,
    message:
        "Downloading Common Crawl file {wildcards.shard} of {params.commoncrawl[crawl]}"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.sources --config {input.config} cc-file --listing {input.listing}"
        " --index {wildcards.shard} --output {output.warc} > {log} 2>&1"


rule corpus_seed:
    input:
        unpack(corpus_seed_inputs),
        config=CONFIG_FILE,
    output:
        seed=CORPUS / "seed.parquet",
        report=CORPUS / "seed.json",
    params:
        seed=CORPUS_CFG["seed"],
        args=corpus_seed_args,
    log:
        RESULTS / "logs/corpus/seed.log",
    benchmark:
        RESULTS / "benchmarks/corpus_seed.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    message:
        "Materialising the positive seed (OpenWebMath stand-in) into {output.seed}"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.sources --config {input.config} seed {params.args} --output {output.seed}"
        " --report {output.report} > {log} 2>&1"


rule corpus_benchmarks:
    input:
        benchmarks=corpus_benchmark_inputs,
        config=CONFIG_FILE,
    output:
        texts=CORPUS / "benchmarks.jsonl",
        report=CORPUS / "benchmarks.json",
    params:
        benchmarks=CORPUS_CFG["benchmarks"],
        args=corpus_benchmark_args,
    log:
        RESULTS / "logs/corpus/benchmarks.log",
    benchmark:
        RESULTS / "benchmarks/corpus_benchmarks.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    message:
        "Collecting the benchmark texts to decontaminate against into {output.texts}"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.sources --config {input.config} benchmarks {params.args} --output {output.texts}"
        " --report {output.report} > {log} 2>&1"


rule corpus_extract:
    input:
        warc=corpus_warc,
        config=CONFIG_FILE,
    output:
        docs=CORPUS / "extract/shard-{shard}.parquet",
        signatures=CORPUS / "extract/shard-{shard}.minhash.npy",
        stats=CORPUS / "extract/shard-{shard}.stats.json",
    params:
        # Every corpus.extract key (max_record_bytes, time_limit_s, memory_limit_mb, guard_*): a change reruns it.
        extract=CORPUS_CFG["extract"],
        dedup=CORPUS_CFG["dedup"],
        seed=config.get("seed", 0),
    log:
        RESULTS / "logs/corpus/extract_{shard}.log",
    benchmark:
        RESULTS / "benchmarks/corpus_extract_{shard}.tsv"
    threads: 1
    resources:
        # The step's own process (it holds the shard's texts: 450 MB peak on 1,419 real pages) + the bound
        # on the guarded extractor's child process (corpus/extract_guard.py).
        mem_mb=4000 + CORPUS_CFG["extract"]["memory_limit_mb"],
        runtime=120,
    message:
        "Extracting text (LaTeX kept) and MinHash signatures from shard {wildcards.shard}"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.extract --config {input.config} --input {input.warc} --shard {wildcards.shard}"
        " --output {output.docs} --signatures {output.signatures} --stats {output.stats} > {log} 2>&1"


# Dedup as a fan-out (corpus/dedup_shards.py): url (1 job) -> bands (corpus.dedup.band_groups jobs, each a
# range of the LSH bands) -> corpus_dedup (merge: 1 job), giving exactly the decisions of the single job
# `python -m corpus.dedup`. Memory per job grows with the crawl's documents: corpus_dedup_mem_mb.
rule corpus_dedup_url:
    input:
        docs=corpus_per_shard("extract/shard-{shard}.parquet"),
        signatures=corpus_per_shard("extract/shard-{shard}.minhash.npy"),
        config=CONFIG_FILE,
    output:
        url=CORPUS / "dedup/url.parquet",
        active=CORPUS / "dedup/active.npy",
        stats=CORPUS / "dedup/url.stats.json",
    params:
        dedup=CORPUS_CFG["dedup"],
    log:
        RESULTS / "logs/corpus/dedup_url.log",
    benchmark:
        RESULTS / "benchmarks/corpus_dedup_url.tsv"
    threads: 1
    resources:
        mem_mb=corpus_dedup_mem_mb("url"),
        runtime=120,
    message:
        "Exact URL dedup over all shards, and the pages that take part in near-dedup"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.dedup_shards --config {input.config} url --shards {input.docs}"
        " --signatures {input.signatures} --output {output.url} --active {output.active} --stats {output.stats}"
        " > {log} 2>&1"


rule corpus_dedup_bands:
    input:
        signatures=corpus_per_shard("extract/shard-{shard}.minhash.npy"),
        active=rules.corpus_dedup_url.output.active,
        config=CONFIG_FILE,
    output:
        edges=CORPUS / "dedup/bands/group-{band_group}.npy",
        stats=CORPUS / "dedup/bands/group-{band_group}.stats.json",
    params:
        dedup=CORPUS_CFG["dedup"],
    log:
        RESULTS / "logs/corpus/dedup_bands_{band_group}.log",
    benchmark:
        RESULTS / "benchmarks/corpus_dedup_bands_{band_group}.tsv"
    threads: 1
    resources:
        mem_mb=corpus_dedup_mem_mb("bands"),
        runtime=240,
    message:
        "MinHash LSH candidates of band group {wildcards.band_group}, verified by Jaccard estimate"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.dedup_shards --config {input.config} bands --group {wildcards.band_group}"
        " --signatures {input.signatures} --active {input.active} --output {output.edges} --stats {output.stats}"
        " > {log} 2>&1"


rule corpus_dedup:
    input:
        docs=corpus_per_shard("extract/shard-{shard}.parquet"),
        url=rules.corpus_dedup_url.output.url,
        edges=corpus_dedup_group_files("edges"),
        config=CONFIG_FILE,
    output:
        removed=CORPUS / "dedup/removed.parquet",
        stats=CORPUS / "dedup/stats.json",
    params:
        dedup=CORPUS_CFG["dedup"],
    log:
        RESULTS / "logs/corpus/dedup.log",
    benchmark:
        RESULTS / "benchmarks/corpus_dedup.tsv"
    threads: 1
    resources:
        mem_mb=corpus_dedup_mem_mb("merge"),
        runtime=120,
    message:
        "Merging the near-duplicate clusters of all band groups into the dedup decisions"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.dedup_shards --config {input.config} merge --shards {input.docs} --url {input.url}"
        " --edges {input.edges} --output {output.removed} --stats {output.stats} > {log} 2>&1"


rule corpus_pool:
    input:
        docs=CORPUS / "extract/shard-{shard}.parquet",
        removed=rules.corpus_dedup.output.removed,
        benchmarks=rules.corpus_benchmarks.output.texts,
        config=CONFIG_FILE,
    output:
        pool=CORPUS / "pool/shard-{shard}.parquet",
        report=CORPUS / "pool/shard-{shard}.decontam.jsonl",
        dedup_stats=CORPUS / "pool/shard-{shard}.dedup.stats.json",
        stats=CORPUS / "pool/shard-{shard}.stats.json",
    params:
        decontamination=CORPUS_CFG["decontamination"],
    log:
        RESULTS / "logs/corpus/pool_{shard}.log",
    benchmark:
        RESULTS / "benchmarks/corpus_pool_{shard}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    message:
        "Applying dedup and decontaminating shard {wildcards.shard} into the candidate pool"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.pool --config {input.config} --shard {wildcards.shard} --input {input.docs}"
        " --removed {input.removed} --benchmarks {input.benchmarks} --output {output.pool}"
        " --report {output.report} --dedup-stats {output.dedup_stats} --stats {output.stats} > {log} 2>&1"


rule corpus_train:
    input:
        unpack(corpus_train_prev),
        seed=rules.corpus_seed.output.seed,
        pool=corpus_per_shard("pool/shard-{shard}.parquet"),
        config=CONFIG_FILE,
    output:
        model=CORPUS / "round{round}/classifier.bin",
        stats=CORPUS / "round{round}/train.json",
    params:
        classifier=CORPUS_CFG["classifier"],
        seed=config.get("seed", 0),
        prev=corpus_flags(corpus_train_prev),
    log:
        RESULTS / "logs/corpus/train_round{round}.log",
    benchmark:
        RESULTS / "benchmarks/corpus_train_round{round}.tsv"
    threads: CORPUS_CFG["classifier"]["thread"]
    resources:
        mem_mb=16000,
        runtime=240,
    message:
        "Training round {wildcards.round}'s fastText math classifier"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.classifier --config {input.config} train --round {wildcards.round} {params.prev}"
        " --seed-docs {input.seed} --pool {input.pool} --output {output.model} --stats {output.stats} > {log} 2>&1"


rule corpus_score:
    input:
        unpack(corpus_score_prev),
        model=CORPUS / "round{round}/classifier.bin",
        pool=CORPUS / "pool/shard-{shard}.parquet",
        config=CONFIG_FILE,
    output:
        scores=CORPUS / "round{round}/scores/shard-{shard}.parquet",
        stats=CORPUS / "round{round}/scores/shard-{shard}.stats.json",
    params:
        prev=corpus_flags(corpus_score_prev),
    log:
        RESULTS / "logs/corpus/score_round{round}_{shard}.log",
    benchmark:
        RESULTS / "benchmarks/corpus_score_round{round}_{shard}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    message:
        "Scoring shard {wildcards.shard} with round {wildcards.round}'s classifier"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.classifier --config {input.config} score --round {wildcards.round} {params.prev}"
        " --shard {wildcards.shard} --model {input.model} --pool {input.pool} --output {output.scores}"
        " --stats {output.stats} > {log} 2>&1"


rule corpus_select:
    input:
        unpack(corpus_select_prev),
        scores=corpus_round_scores,
        config=CONFIG_FILE,
    output:
        kept=CORPUS / "round{round}/kept.parquet",
        positives=CORPUS / "round{round}/positives.parquet",
        negatives=CORPUS / "round{round}/negatives.parquet",
        domains=CORPUS / "round{round}/domains.json",
        state=CORPUS / "round{round}/state.json",
        stats=CORPUS / "round{round}/select.stats.json",
    params:
        select=CORPUS_CFG["select"],
        negatives_max_domain_kept=CORPUS_CFG["classifier"].get("negatives_max_domain_kept"),
        negatives_quantile=CORPUS_CFG["classifier"]["negatives_quantile"],
        health=CORPUS_CFG["classifier"].get("health"),
        domains=CORPUS_CFG["domains"],
        rounds=CORPUS_CFG["rounds"],
        prev=corpus_flags(corpus_select_prev),
    log:
        RESULTS / "logs/corpus/select_round{round}.log",
    benchmark:
        RESULTS / "benchmarks/corpus_select_round{round}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    message:
        "Round {wildcards.round}: keeping top pages, discovering math domains and paths, testing convergence"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.rounds --config {input.config} --round {wildcards.round} {params.prev}"
        " --scores {input.scores} --kept {output.kept} --positives {output.positives} --negatives {output.negatives}"
        " --domains {output.domains} --state {output.state} --stats {output.stats} > {log} 2>&1"


rule corpus_final:
    input:
        kept=CORPUS / f"round{CORPUS_LAST_ROUND}/kept.parquet",
        pool=corpus_per_shard("pool/shard-{shard}.parquet"),
        config=CONFIG_FILE,
    output:
        final=directory(FOLDERS["corpus_final"]),
    params:
        output=CORPUS_CFG["output"],
        last_round=CORPUS_LAST_ROUND,
    log:
        RESULTS / "logs/corpus/final.log",
    benchmark:
        RESULTS / "benchmarks/corpus_final.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    message:
        "Writing the mined corpus (round {params.last_round}'s kept set) to {output.final}"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.export --config {input.config} final --kept {input.kept} --pool {input.pool}"
        " --output {output.final} > {log} 2>&1"


rule corpus_web_text:
    input:
        pool=corpus_per_shard("pool/shard-{shard}.parquet"),
        config=CONFIG_FILE,
    output:
        web_text=directory(FOLDERS["corpus_web_text"]),
    params:
        output=CORPUS_CFG["output"],
    log:
        RESULTS / "logs/corpus/web_text.log",
    benchmark:
        RESULTS / "benchmarks/corpus_web_text.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    message:
        "Writing the unfiltered web text (deduplicated, decontaminated) to {output.web_text}"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.export --config {input.config} web_text --pool {input.pool} --output {output.web_text} > {log} 2>&1"


rule corpus_funnel:
    input:
        stats=corpus_funnel_stats(),
        states=expand(str(CORPUS / "round{round}/state.json"), round=CORPUS_ROUNDS),
        decontam=corpus_per_shard("pool/shard-{shard}.decontam.jsonl"),
        config=CONFIG_FILE,
    output:
        json=CORPUS / "funnel.json",
        markdown=CORPUS / "funnel.md",
    log:
        RESULTS / "logs/corpus/funnel.log",
    benchmark:
        RESULTS / "benchmarks/corpus_funnel.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    message:
        "Building the corpus funnel table from the stats files"
    conda:
        CONDA_ENV
    shell:
        "python -m corpus.funnel --config {input.config} --stats {input.stats} --states {input.states}"
        " --decontam {input.decontam} --json {output.json} --markdown {output.markdown} > {log} 2>&1"


rule corpus:
    input:
        final=rules.corpus_final.output.final,
        web_text=rules.corpus_web_text.output.web_text,
        funnel=rules.corpus_funnel.output.json,
    message:
        "The mined math corpus, the unfiltered web text and the funnel are ready"
