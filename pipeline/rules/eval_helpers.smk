# Constants and input functions for eval.smk. They live apart from the rules because Snakemake's
# linter asks for rules and functions in separate files.
import re
import shlex

from eval.settings import config_settings  # no torch: parsed by every Snakemake start

# Checkpoint name (the {checkpoint} wildcard, docs/CONTRACTS.md) -> the training run's folder: its model/
# (a directory() output of the training rule) and metrics.jsonl (the curves of the report) lie in it.
TRAINING_RUN_DIRS = {
    "pretrain": FOLDERS["pretrain"] / "mined",
    "sft": FOLDERS["sft"] / "mined",
    "rl": FOLDERS["rl"],
    "pretrain_web": FOLDERS["pretrain"] / "web",
    "sft_web": FOLDERS["sft"] / "web",
}
EVAL_MODEL_DIRS = {name: run / "model" for name, run in TRAINING_RUN_DIRS.items()}
EVAL_CFG = RESOLVED["eval"]
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
    inputs = {"model": EVAL_MODEL_DIRS[wildcards.checkpoint], "config": CONFIG_FILE}
    data = EVAL_BENCHMARKS[wildcards.benchmark].get("data")
    if data:
        inputs["data"] = data
    shots = config_settings(RESOLVED, wildcards.checkpoint)
    if shots["few_shot"] and shots["few_shot_file"]:
        inputs["exemplars"] = shots["few_shot_file"]
    return inputs


def eval_data_args(wildcards, input):
    """The benchmark file and the few-shot exemplar file, handed to the job by path."""
    args = [f"--data {shlex.quote(str(input.data))}"] if "data" in input.keys() else []
    if "exemplars" in input.keys():
        args.append(f"--few-shot-file {shlex.quote(str(input.exemplars))}")
    return " ".join(args)


def eval_params(wildcards):
    """Everything that decides this evaluation's numbers; a change reruns it (params rerun-trigger)."""
    return {
        "settings": config_settings(RESOLVED, wildcards.checkpoint),
        "benchmark": EVAL_BENCHMARKS[wildcards.benchmark],
        "generation": config.get("generation", {}),
    }


def report_inputs(wildcards):
    """What the report reads that other rules declare — every evaluation, and the corpus funnel where the
    corpus stage is part of this workflow (asking for it also makes `rule all` build it)."""
    inputs = {"metrics": eval_metrics_files(), "config": CONFIG_FILE, "heldout": heldout_files()}
    if rules.has("corpus_funnel"):
        inputs["funnel"] = rules.corpus_funnel.output.json
        inputs["funnel_table"] = rules.corpus_funnel.output.markdown
        if RESOLVED["corpus"]["source"] == "world":  # only the generated world has labels to score against
            inputs["corpus_score"] = rules.world_corpus_score.output.score
    return inputs


def report_args(wildcards, input):
    """Every file the report reads, by name: each evaluation's metrics.json, each training run's
    metrics.jsonl (written beside the model, not declared: Snakemake would delete it before a resumed run),
    and the corpus funnel."""
    evals = [f"{c}:{b}={shlex.quote(str(p))}" for (c, b), p in eval_metrics_grid().items()]
    runs = dict.fromkeys(c for c in ["pretrain", "pretrain_web", "sft", "sft_web", "rl"] if c in eval_checkpoints())
    curves = [f"{r}={shlex.quote(str(TRAINING_RUN_DIRS[r] / 'metrics.jsonl'))}" for r in runs]
    args = ["--eval", *evals, "--curves", *curves]
    if heldout_checkpoints():
        args += ["--heldout", *(f"{c}={shlex.quote(str(heldout_path(c)))}" for c in heldout_checkpoints())]
    if "funnel" in input.keys():
        args += ["--funnel", shlex.quote(str(input.funnel)), "--funnel-table", shlex.quote(str(input.funnel_table))]
    if "corpus_score" in input.keys():
        args += ["--corpus-score", shlex.quote(str(input.corpus_score))]
    args += ["--stage-times", shlex.quote(str(FOLDERS["benchmarks"]))]
    # `snakemake compare_rl` (not part of `rule all`, ~30-45 min on 2 cores) leaves Figure 5 there; the
    # report shows it when present.
    args += ["--compare-rl", shlex.quote(str(COMPARE_DIR))]
    return " ".join(args)


def heldout_checkpoints():
    """Base models whose held-out math-text loss is measured (§2.2): pretrain and pretrain_web among the
    evaluated checkpoints, when eval.heldout.data names a file (none: not measured)."""
    if not EVAL_CFG["heldout"].get("data"):
        return []
    return [c for c in eval_checkpoints() if c in HELDOUT_CHECKPOINTS]


def heldout_path(checkpoint):
    return FOLDERS["eval"] / checkpoint / "heldout_loss.json"


def heldout_files():
    return [heldout_path(c) for c in heldout_checkpoints()]


def heldout_inputs(wildcards):
    """The base model, the tokenizer both arms share, the held-out JSONL and the config."""
    return {"model": EVAL_MODEL_DIRS[wildcards.checkpoint], "tokenizer": FOLDERS["tokenizer"],
            "data": EVAL_CFG["heldout"]["data"], "config": CONFIG_FILE}


def eval_metrics_path(checkpoint, benchmark):
    return FOLDERS["eval"] / checkpoint / benchmark / "metrics.json"


def eval_metrics_grid():
    """(checkpoint, benchmark) -> metrics.json of every evaluation this config asks for."""
    return {(c, b): eval_metrics_path(c, b) for c in eval_checkpoints() for b in EVAL_BENCHMARKS}


def eval_metrics_files():
    return list(eval_metrics_grid().values())


# One evaluation's folder, with its wildcards constrained inline (`checkpoint` is a Snakemake keyword, so it
# cannot be named in a wildcard_constraints block).
EVAL_DIR = FOLDERS["eval"] / "{{checkpoint,{}}}/{{benchmark,{}}}".format(
    "|".join(EVAL_MODEL_DIRS), "|".join(re.escape(b) for b in EVAL_BENCHMARKS) or "(?!)"
)
# Where the heldout_loss job writes a base model's held-out loss, eval/<checkpoint>/heldout_loss.json (pretrain and
# pretrain_web only).
HELDOUT_CHECKPOINTS = ["pretrain", "pretrain_web"]
HELDOUT_FILE = FOLDERS["eval"] / "{{checkpoint,{}}}/heldout_loss.json".format("|".join(HELDOUT_CHECKPOINTS))
