# Helpers shared by every rule file. Rules call stages as `{PY} <module> --config {input.config} ...`.
import shlex
import sys
from pathlib import Path

import yaml

from pipeline.config import results_dir, validate as validate_config
from pipeline.io import write_text

RESULTS = results_dir(config)
PY = f"{shlex.quote(sys.executable)} -m"

# The resolved config (command-line overrides and schema defaults applied) that every stage reads. It is
# rewritten only when its content changes, and rules take it as an `ancient` input: a changed key reruns
# just the stages whose `params` carry that key (Snakemake's params rerun-trigger), not the whole DAG.
RESOLVED = validate_config(dict(config), source="snakemake config")  # schema defaults filled in
_RESOLVED_TEXT = yaml.safe_dump(RESOLVED, sort_keys=False)
_CONFIG_PATH = RESULTS / "config.yaml"
if not _CONFIG_PATH.exists() or _CONFIG_PATH.read_text() != _RESOLVED_TEXT:
    write_text(_CONFIG_PATH, _RESOLVED_TEXT)
CONFIG_FILE = ancient(str(_CONFIG_PATH))


def stage_threads(default=1):
    """Threads a training/generation rule asks for; torch uses exactly this many."""
    return max(1, int(config.get("threads", default)))
