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
# every stage reads, results/<name>/config.yaml. A rule writes it, so a dry run (or --lint, --list-rules)
# writes nothing. Its `params` hold the whole text: a changed key reruns this rule (params rerun-trigger),
# and every stage takes the file as an `ancient` input, so that rerun alone triggers no stage; the stages
# whose own `params` carry the changed key rerun, and they wait for the new file (it is their input).
try:
    RESOLVED = expand_placeholders(validate_config(dict(config), source="snakemake config"), FOLDERS)
except ConfigError as e:
    sys.exit(f"mathpipe: {e}")
_RESOLVED_TEXT = yaml.safe_dump(RESOLVED, sort_keys=False)
_CONFIG_PATH = RESULTS / "config.yaml"
CONFIG_FILE = ancient(str(_CONFIG_PATH))


localrules:
    resolved_config,


rule resolved_config:
    output:
        _CONFIG_PATH,
    params:
        text=_RESOLVED_TEXT,
    message:
        "Writing the resolved config {output}"
    run:
        write_text(output[0], params.text)


def launcher(gpus):
    """`python -m` for one process; `accelerate launch` (one process per GPU: DDP, or FSDP through the
    accelerate config) for more. Training rules pass it as `params.launch`."""
    gpus = int(gpus)
    return f"accelerate launch --num_processes {gpus} -m" if gpus > 1 else "python -m"


def stage_threads(default=1):
    """Threads a training/generation rule asks for; torch uses exactly this many."""
    return max(1, int(config.get("threads", default)))
