# Constants and input functions for eval.smk. They live apart from the rules because Snakemake's
# linter asks for rules and functions in separate files.
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
    """What the report reads that other rules declare — every evaluation, and the corpus funnel where the
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
