# Evaluation (DeepSeekMath §3.2, §4.3, Figure 7): every stage's checkpoint on every benchmark, then the
# one-page report. `snakemake eval` runs the evaluations, `snakemake report` (and `rule all`) the report.


include: "eval_helpers.smk"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        samples=EVAL_DIR / "samples.jsonl",
        metrics=EVAL_DIR / "metrics.json",
    params:
        run=eval_params,
        data=eval_data_args,
        out=subpath(output.metrics, parent=True),
    log:
        RESULTS / "logs/eval/{checkpoint}/{benchmark}.log",
    benchmark:
        RESULTS / "benchmarks/eval/{checkpoint}/{benchmark}.tsv"
    threads: stage_threads()
    resources:
        gpu=EVAL_CFG.get("resources", {}).get("gpus", 0),
        mem_mb=EVAL_CFG.get("resources", {}).get("mem_mb", 4000),
        runtime=EVAL_CFG.get("resources", {}).get("runtime", 60),
    message:
        "Evaluating the {wildcards.checkpoint} checkpoint on {wildcards.benchmark}"
    conda:
        CONDA_ENV
    shell:
        "python -m eval --config {input.config} --checkpoint {wildcards.checkpoint} --model {input.model}"
        " --benchmark {wildcards.benchmark} {params.data} --out {params.out} --threads {threads} > {log} 2>&1"


rule heldout_loss:
    input:
        unpack(heldout_inputs),
    output:
        json=HELDOUT_FILE,
    params:
        heldout=EVAL_CFG["heldout"],
    log:
        RESULTS / "logs/eval/{checkpoint}/heldout_loss.log",
    benchmark:
        RESULTS / "benchmarks/eval/{checkpoint}/heldout_loss.tsv"
    threads: 1
    resources:
        gpu=EVAL_CFG.get("resources", {}).get("gpus", 0),
        mem_mb=EVAL_CFG.get("resources", {}).get("mem_mb", 4000),
        runtime=EVAL_CFG.get("resources", {}).get("runtime", 60),
    message:
        "Held-out math-text loss of the {wildcards.checkpoint} base model on {input.data}"
    conda:
        CONDA_ENV
    shell:
        "python -m eval.heldout_loss --config {input.config} --model {input.model} --tokenizer {input.tokenizer}"
        " --data {input.data} --out {output.json} --threads {threads} > {log} 2>&1"


rule eval:
    input:
        eval_metrics_files(),
        heldout_files(),
    message:
        "Evaluated every checkpoint on every benchmark"


rule report:
    input:
        unpack(report_inputs),
    output:
        md=RESULTS / "report.md",
        html=RESULTS / "report.html",
        plots=directory(FOLDERS["report"]),
    params:
        files=report_args,
    log:
        RESULTS / "logs/report.log",
    benchmark:
        RESULTS / "benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    message:
        "Writing the report {output.md} (funnel, curves, checkpoint x benchmark table, Figure 7)"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline.report --config {input.config} --out {output.md} --plots {output.plots} {params.files}"
        " > {log} 2>&1"
