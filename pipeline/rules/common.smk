# Helpers shared by every rule file. Rules call stages as `python -m <module> --config {input.config} ...`.
import os
import shlex
import sys
from pathlib import Path

import yaml
from snakemake.settings.types import DeploymentMethod

from pipeline.config import (
    ConfigError,
    cli_overrides,
    expand_placeholders,
    results_dir,
    validate as validate_config,
)
from pipeline.io import write_text
from pipeline.progress import start as start_progress

# Command-line overrides (README "Overrides"): `--config key=value` values re-read as typed YAML (Snakemake
# types nested values as strings), dotted keys through `--config 'set=[rl.beta=0.02, ...]'`. Applied in
# place, before anything reads the config. A bad override stops here with one line naming it.
try:
    _OVERRIDDEN = cli_overrides(dict(config), workflow.config_settings.config_args)
except ConfigError as e:
    sys.exit(f"mathpipe: {e}")
config.clear()
config.update(_OVERRIDDEN)

RESULTS = results_dir(config)
# The folders stages hand to each other, under results/<name>/. Configs name them as placeholders
# (`rl.prompts: [{data: "{world_problems}/rl.jsonl"}]`) and they are expanded here, in the resolved config
# every job reads: a stage never derives another stage's path. `{results}` (results/<name>) stays valid
# for users' own configs. Renaming one of these folders is a change in pipeline/rules/ only.
FOLDERS = {
    "results": RESULTS,
    "world_web": RESULTS / "world/web",
    "world_problems": RESULTS / "world/problems",
    "corpus": RESULTS / "corpus",
    "corpus_final": RESULTS / "corpus/final",
    "corpus_web_text": RESULTS / "corpus/web_text",
    "tokenizer": RESULTS / "tokenizer",
    "pretrain": RESULTS / "pretrain",
    "sft": RESULTS / "sft",
    "rl": RESULTS / "rl",
    "eval": RESULTS / "eval",
    "report": RESULTS / "report",
    "logs": RESULTS / "logs",
    "benchmarks": RESULTS / "benchmarks",
}
# Jobs find the project's modules and `python`: the checkout goes on PYTHONPATH (so a `--use-conda`
# environment, which holds third-party packages only, runs this code), and without --use-conda the
# interpreter running Snakemake comes first on PATH (so `.venv/bin/snakemake` works without activating
# the venv). Every rule names the conda environment; without --use-conda Snakemake ignores it.
_ENV = f"export PYTHONPATH={shlex.quote(str(workflow.basedir))}:$PYTHONPATH; "
if DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method:
    _ENV += f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH; "
shell.prefix(f"{_ENV}set -euo pipefail; ")
CONDA_ENV = "../envs/mathpipe.yaml"

# The resolved config (command-line overrides and schema defaults applied, placeholders expanded) that
# every stage reads, results/<name>/config.yaml. Stages take it as an `ancient` input: a changed key reruns
# just the stages whose `params` carry that key (params rerun-trigger), not the whole DAG. A dry run writes
# nothing: a missing file is the output of the local rule below (so `-n` on a fresh checkout shows that
# job), and a file whose content differs from this run's resolved config is rewritten here, at parse time,
# only when this is not a dry run (`-n` is known at parse time through the output settings).
try:
    RESOLVED = expand_placeholders(validate_config(dict(config), source="snakemake config"), FOLDERS)
except ConfigError as e:
    sys.exit(f"mathpipe: {e}")
_RESOLVED_TEXT = yaml.safe_dump(RESOLVED, sort_keys=False)
_CONFIG_PATH = RESULTS / "config.yaml"
if (not workflow.output_settings.dryrun and _CONFIG_PATH.exists()
        and _CONFIG_PATH.read_text() != _RESOLVED_TEXT):
    write_text(_CONFIG_PATH, _RESOLVED_TEXT)
CONFIG_FILE = ancient(str(_CONFIG_PATH))


include: "resolved_config.smk"


def stage_processes(resources):
    """How many processes a training job launches, read from its `<stage>.resources`. One per GPU when
    `gpus` > 0, else `processes` CPU processes (DDP over gloo; the embedded default runs GRPO on both cores
    this way)."""
    gpus = int(resources.get("gpus", 0))
    return gpus if gpus > 0 else int(resources.get("processes", 1))


def launcher(processes, accelerate_config=None):
    """`python -m` for one process; for more, `accelerate launch` with `processes` processes (one per GPU, or
    CPU processes over gloo) under an accelerate config file: `accelerate_config`, else
    `model.accelerate_config` (config/accelerate/ddp.yaml or fsdp.yaml; a relative path is from the repository
    root). Without `--config_file` accelerate starts only one process on a machine without GPUs (and would
    pick up a user's ~/.cache default config), so it is always given. Training rules pass the result as
    `params.launch`."""
    processes = int(processes)
    if processes <= 1:
        return "python -m"
    path = Path(accelerate_config or RESOLVED["model"]["accelerate_config"])
    path = path if path.is_absolute() else Path(workflow.basedir) / path
    if not path.is_file():
        raise FileNotFoundError(f"accelerate config {path} (model.accelerate_config) not found")
    # A free port picked when the job starts: accelerate's fixed default (29500) would make two launches
    # running side by side on one machine (the two pretraining arms, say) join each other's group.
    port = "$(python -c 'import socket; s = socket.socket(); s.bind((\"\", 0)); print(s.getsockname()[1])')"
    return (f"accelerate launch --config_file {shlex.quote(str(path))} --num_processes {processes}"
            f" --main_process_port {port} -m")


def stage_threads(default=1):
    """Threads a training/generation rule asks for; torch uses exactly this many."""
    return max(1, int(config.get("threads", default)))
