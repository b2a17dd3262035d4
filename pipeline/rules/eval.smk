# Evaluation (DeepSeekMath §3.2, §4.3, Figure 7): every stage's checkpoint on every benchmark, then the
# one-page report. `snakemake eval` runs the evaluations, `snakemake report` (and `rule all`) the report.
import re

from eval.run import config_settings

# Checkpoint name (the {checkpoint} wildcard, docs/CONTRACTS.md) -> model folder, a directory() output of
# the training rules.
EVAL_MODEL_DIRS = {
    "pretrain": "pretrain/mined/model",
    "sft": "sft/mined/model",
    "rl": "rl/model",
    "pretrain_web": "pretrain/web/model",
    "sft_web": "sft/web/model",
}
EVAL_CFG = config.get("eval", {})
EVAL_BENCHMARKS = EVAL_CFG.get("benchmarks", {})


def eval_checkpoints():
    """Checkpoints to evaluate; the web-text ones only with the corpus-quality experiment (§2.2)."""
    names = EVAL_CFG.get("checkpoints", list(EVAL_MODEL_DIRS))
    if not config.get("stages", {}).get("corpus_quality", True):
        names = [c for c in names if not c.endswith("_web")]
    return names


def evaluate_inputs(wildcards):
    """The model folder (a directory() output of a training rule), the benchmark's local file where it
    has one (e.g. the world's test split; none for a hub dataset), the few-shot exemplar file where the
    settings name one, and the config."""
    inputs = {"model": RESULTS / EVAL_MODEL_DIRS[wildcards.checkpoint], "config": CONFIG_FILE}
    data = EVAL_BENCHMARKS[wildcards.benchmark].get("data")
    if data:
        inputs["data"] = data.replace("{results}", str(RESULTS))
    shots = config_settings(config, wildcards.checkpoint)
    if shots["few_shot"] and shots["few_shot_file"]:
        inputs["exemplars"] = shots["few_shot_file"]
    return inputs


def eval_params(wildcards):
    """Everything that decides this evaluation's numbers; a change reruns it (params rerun-trigger)."""
    return {
        "settings": config_settings(config, wildcards.checkpoint),
        "benchmark": EVAL_BENCHMARKS[wildcards.benchmark],
        "generation": config.get("generation", {}),
    }


def report_inputs(wildcards):
    """What the report reads that a rule declares: every evaluation, and the corpus funnel where the
    corpus stage is part of this workflow (asking for it also makes `rule all` build it)."""
    inputs = {"metrics": eval_metrics_files(), "config": CONFIG_FILE}
    if rules.has("corpus_funnel"):
        inputs["funnel"] = rules.corpus_funnel.output.json
    return inputs


def eval_metrics_files():
    # (a dict: `checkpoint` opening a line is read as the Snakemake keyword)
    grid = {"checkpoint": eval_checkpoints(), "benchmark": list(EVAL_BENCHMARKS)}
    return expand(RESULTS / "eval/{checkpoint}/{benchmark}/metrics.json", **grid)


# One evaluation's folder, with its wildcards constrained inline (`checkpoint` is a Snakemake keyword, so it
# cannot be named in a wildcard_constraints block).
EVAL_DIR = "eval/{{checkpoint,{}}}/{{benchmark,{}}}".format(
    "|".join(EVAL_MODEL_DIRS), "|".join(re.escape(b) for b in EVAL_BENCHMARKS) or "(?!)"
)


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        samples=RESULTS / EVAL_DIR / "samples.jsonl",
        metrics=RESULTS / EVAL_DIR / "metrics.json",
    params:
        run=eval_params,
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
    shell:
        "{PY} eval --config {input.config} --checkpoint {wildcards.checkpoint} --model {input.model}"
        " --benchmark {wildcards.benchmark} --out {params.out} --threads {threads} > {log} 2>&1"


rule eval:
    input:
        eval_metrics_files(),
    message:
        "Evaluated every checkpoint on every benchmark"


rule report:
    input:
        unpack(report_inputs),
    output:
        md=RESULTS / "report.md",
        html=RESULTS / "report.html",
        plots=directory(RESULTS / "report"),
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
    shell:
        "{PY} eval.report --config {input.config} --out {output.md} > {log} 2>&1"
