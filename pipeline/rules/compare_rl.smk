# The unified paradigm compared (DeepSeekMath §5.2.1, Figure 5): `snakemake compare_rl` trains every method
# of rl.compare.methods from the same SFT checkpoint (same questions, same outputs per step), evaluates each
# policy every rl.compare.eval_every steps on the eval benchmarks, and writes compare_rl/figure5.png and
# compare_rl/compare.md (accuracy curves with standard errors; peak memory and seconds per step, PPO vs
# GRPO). Not part of `rule all`. Snapshots and checkpoints lie beside each run's model (not declared).
COMPARE = RESOLVED["rl"]["compare"]
COMPARE_DIR = RESULTS / "compare_rl"


wildcard_constraints:
    method=f"{'|'.join(COMPARE['methods'])}",


rule compare_rl_train:
    input:
        model=RESULTS / "sft/mined/model",
        prompts=RL_PROMPT_FILES,
        config=CONFIG_FILE,
    output:
        model=directory(COMPARE_DIR / "{method}/run/model"),
    params:
        rl=RL,
        generation=config.get("generation", {}),
        seed=config.get("seed", 0),
        out=subpath(output.model, parent=True),
    log:
        RESULTS / "logs/compare_rl/{method}.log",
    benchmark:
        RESULTS / "benchmarks/compare_rl/{method}.tsv"
    threads: stage_threads()
    resources:
        mem_mb=RL["resources"]["mem_mb"],
        runtime=RL["resources"]["runtime"],
    message:
        "compare_rl: {wildcards.method}, {params.rl[compare][steps]} steps from {input.model}"
    conda:
        CONDA_ENV
    shell:
        "python -m rl.compare train --config {input.config} --method {wildcards.method} --init {input.model}"
        " --out {params.out} --threads {threads} > {log} 2>&1"


rule compare_rl_eval:
    input:
        model=rules.compare_rl_train.output.model,
        config=CONFIG_FILE,
    output:
        COMPARE_DIR / "{method}/eval.json",
    params:
        compare=COMPARE,
        eval=RESOLVED["eval"],
        root=COMPARE_DIR,
    log:
        RESULTS / "logs/compare_rl/{method}_eval.log",
    benchmark:
        RESULTS / "benchmarks/compare_rl/{method}_eval.tsv"
    threads: stage_threads()
    message:
        "compare_rl: evaluating the {wildcards.method} snapshots"
    conda:
        CONDA_ENV
    shell:
        "python -m rl.compare evaluate --config {input.config} --method {wildcards.method} --root {params.root}"
        " --threads {threads} > {log} 2>&1"


rule compare_rl_eval_init:
    input:
        model=RESULTS / "sft/mined/model",
        config=CONFIG_FILE,
    output:
        COMPARE_DIR / "init/eval.json",
    params:
        compare=COMPARE,
        eval=RESOLVED["eval"],
        root=COMPARE_DIR,
    log:
        RESULTS / "logs/compare_rl/init_eval.log",
    benchmark:
        RESULTS / "benchmarks/compare_rl/init_eval.tsv"
    threads: stage_threads()
    message:
        "compare_rl: evaluating the SFT model (step 0)"
    conda:
        CONDA_ENV
    shell:
        "python -m rl.compare evaluate --config {input.config} --method init --init {input.model}"
        " --root {params.root} --threads {threads} > {log} 2>&1"


rule compare_rl:
    input:
        evals=expand(COMPARE_DIR / "{method}/eval.json", method=COMPARE["methods"]),
        init=COMPARE_DIR / "init/eval.json",
        config=CONFIG_FILE,
    output:
        figure=COMPARE_DIR / "figure5.png",
        table=COMPARE_DIR / "compare.md",
        json=COMPARE_DIR / "compare.json",
    params:
        root=COMPARE_DIR,
    log:
        RESULTS / "logs/compare_rl/report.log",
    message:
        "compare_rl: Figure 5 and the memory/speed table"
    conda:
        CONDA_ENV
    shell:
        "python -m rl.compare report --config {input.config} --root {params.root} > {log} 2>&1"
