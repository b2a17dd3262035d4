# Helpers shared by every rule file. Rules call stages as `python -m <module> --config CONFIG ...`.
import shlex
import sys
from pathlib import Path

from pipeline.config import results_dir

RESULTS = results_dir(config)
# The config file this run was started with, passed to every stage (overrides are applied by Snakemake
# into `config`; we write the resolved config once and hand that file to the stages).
CONFIG_FILE = RESULTS / "config.yaml"
PY = f"{shlex.quote(sys.executable)} -m"


def stage_threads(default=1):
    """Threads a training/generation rule asks for; torch uses exactly this many."""
    return max(1, int(config.get("threads", default)))


rule resolved_config:
    output:
        CONFIG_FILE,
    log:
        RESULTS / "logs/resolved_config.log",
    message:
        "Writing the resolved config to {output}"
    run:
        from pipeline.config import save_resolved, validate as _validate

        save_resolved(_validate(dict(config), source="snakemake config"), Path(output[0]).parent)
