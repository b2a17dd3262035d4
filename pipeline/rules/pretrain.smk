# Continued pretraining (DeepSeekMath §2.3, §3.1) and the corpus-quality experiment (§2.2).
#   snakemake pretrain         the tokenizer and the pretrained model(s): pretrain/mined (and pretrain/web
#                              when stages.corpus_quality is on)
#   snakemake corpus_quality   the same small model pretrained on the mined corpus and on unfiltered web
#                              text, both through the same SFT and eval: eval/{pretrain,sft}{,_web}/...
# Beside each model folder: metrics.jsonl (loss, lr, tokens/s, source shares per step), run.json, and while
# training checkpoints/ (not declared, so Snakemake keeps it when a job dies and the rerun resumes).


include: "pretrain_helpers.smk"


rule tokenizer:
    input:
        unpack(tokenizer_inputs),
    output:
        tokenizer=directory(FOLDERS["tokenizer"]),
    params:
        tokenizer=TOKENIZER_CFG,
        data=tokenizer_args,
    log:
        RESULTS / "logs/pretrain/tokenizer.log",
    benchmark:
        RESULTS / "benchmarks/pretrain/tokenizer.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    message:
        "Training the BPE tokenizer (digits split, chat template saved) into {output.tokenizer}"
    conda:
        CONDA_ENV
    shell:
        "python -m sft.tokenizer --config {input.config} {params.data} --out {output.tokenizer} > {log} 2>&1"


rule pretrain_model:
    input:
        unpack(pretrain_inputs),
    output:
        model=pretrain_model_dir(),
    params:
        pretrain=PRETRAIN_CFG,
        model=MODEL_CFG,
        seed=config.get("seed", 0),
        launch=launcher(PRETRAIN_PROCESSES),
        threads=stage_threads(),
    log:
        RESULTS / "logs/pretrain/{variant}.log",
    benchmark:
        RESULTS / "benchmarks/pretrain/{variant}.tsv"
    threads: stage_threads() * PRETRAIN_PROCESSES
    resources:
        gpu=PRETRAIN_GPUS,
        mem_mb=PRETRAIN_CFG["resources"]["mem_mb"],
        runtime=PRETRAIN_CFG["resources"]["runtime"],
    message:
        "Pretraining on the {wildcards.variant} mixture: {params.pretrain[tokens]} tokens into {output.model}"
    conda:
        CONDA_ENV
    shell:
        "{params.launch} sft.pretrain --config {input.config} --variant {wildcards.variant}"
        " --tokenizer {input.tokenizer} --out {output.model} --threads {params.threads} > {log} 2>&1"


rule pretrain:
    input:
        expand(RESULTS / "pretrain/{variant}/model", variant=PRETRAIN_VARIANTS),
    message:
        "Pretrained: {input}"


rule corpus_quality:
    input:
        corpus_quality_metrics(),
    message:
        "Corpus-quality experiment (paper §2.2): mined corpus vs unfiltered web text, same model, budget, SFT and eval"
