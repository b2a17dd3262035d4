# Supervised fine-tuning on CoT / PoT / tool-integrated data (DeepSeekMath §3.1).
#   snakemake sft      sft/mined/model (and sft/web/model when stages.corpus_quality is on)
# Each SFT job starts from its variant's pretrained model; the data (sft.data, the world's sft split by
# default) is decontaminated against the eval sets inside the job. Beside each model folder:
# metrics.jsonl, run.json (data stats, packing, throughput), and while training checkpoints/.
# (pretrain.smk, included before this file, defines SFT_CFG, MODEL_CFG, launcher and local_data.)


include: "sft_helpers.smk"


rule sft_train:
    input:
        unpack(sft_inputs),
    output:
        model=sft_model_dir(),
    params:
        sft=SFT_CFG,
        model=MODEL_CFG,
        seed=config.get("seed", 0),
        launch=launcher(SFT_PROCESSES),
        threads=stage_threads(),
    log:
        RESULTS / "logs/sft/{variant}.log",
    benchmark:
        RESULTS / "benchmarks/sft/{variant}.tsv"
    threads: stage_threads() * SFT_PROCESSES
    resources:
        gpu=SFT_GPUS,
        mem_mb=SFT_CFG["resources"]["mem_mb"],
        runtime=SFT_CFG["resources"]["runtime"],
    message:
        "SFT of the {wildcards.variant} model: {params.sft[steps]} steps on {params.sft[formats]} into {output.model}"
    conda:
        CONDA_ENV
    shell:
        "{params.launch} sft.train --config {input.config} --init {input.init} --out {output.model}"
        " --threads {params.threads} > {log} 2>&1"


rule sft:
    input:
        expand(RESULTS / "sft/{variant}/model", variant=PRETRAIN_VARIANTS),
    message:
        "SFT models ready: {input}"
