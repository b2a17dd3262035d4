# Reinforcement learning (DeepSeekMath §4): GRPO from the SFT checkpoint on the RL questions, against
# rule-based rewards from the shared grader. `snakemake rl` builds results/<name>/rl/model.
# Beside the model, rl/metrics.jsonl (one row per step) and rl/run.json; rl/checkpoints/ lets a killed
# job resume where it stopped (deliberately not declared, so Snakemake keeps it when the job fails).
# The rl section with schema defaults filled in; every key goes into `params`, so a changed key reruns
# exactly this rule (params rerun-trigger).
RL = RESOLVED["rl"]
RL_RUN = {k: v for k, v in RL.items() if k != "compare"}  # compare_rl.smk reads `compare`; it never reruns grpo
# Local question files are inputs (hub datasets are read by the job itself).
RL_PROMPT_FILES = [s["data"] for s in RL["prompts"] if "data" in s]
RL_GPUS = int(RL["resources"]["gpus"])
RL_PROCESSES = stage_processes(RL["resources"])  # one per GPU, or CPU processes (common.smk)


rule grpo:
    input:
        model=RESULTS / "sft/mined/model",
        prompts=RL_PROMPT_FILES,
        config=CONFIG_FILE,
    output:
        model=directory(RESULTS / "rl/model"),
    params:
        rl=RL_RUN,
        generation=config.get("generation", {}),
        launch=launcher(RL_PROCESSES),
        threads=stage_threads(),
        seed=config.get("seed", 0),
        out=RESULTS / "rl",
    log:
        RESULTS / "logs/rl/grpo.log",
    benchmark:
        RESULTS / "benchmarks/rl/grpo.tsv"
    threads: stage_threads() * RL_PROCESSES
    resources:
        gpu=RL_GPUS,
        mem_mb=RL["resources"]["mem_mb"],
        runtime=RL["resources"]["runtime"],
    message:
        "GRPO: {params.rl[steps]} steps of {params.rl[prompts_per_step]} questions x G={params.rl[group_size]} from {input.model}"
    conda:
        CONDA_ENV
    shell:
        "{params.launch} rl.train --config {input.config} --init {input.model} --out {params.out}"
        " --threads {params.threads} > {log} 2>&1"


rule rl:
    input:
        rules.grpo.output.model,
    message:
        "The RL checkpoint is ready: {input}"
