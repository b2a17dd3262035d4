"""The evaluation run settings a config asks for, without importing torch or a model library.

The Snakemake rules put `config_settings(...)` in the `evaluate` rule's params at parse time (changing it
reruns exactly the affected evaluations). Importing eval.run there pulled torch and transformers into
every Snakemake start: about 5 s of CPU per start, and twice per job under the Slurm executor
(docs/scale.md). This module needs only the schema.
"""

from __future__ import annotations

from pipeline.config import schema_defaults

# The run settings and their defaults, read from the schema (config/schema/eval.schema.yaml), the one place
# they are written; the config's `eval:` section and then the command line override them.
SETTINGS = ("n", "k", "temperature", "top_p", "format", "max_new_tokens", "few_shot", "few_shot_file", "prompt",
            "limit", "seed", "chunk_size", "grader_workers", "grader_timeout", "code_timeout", "maj_subsets",
            "max_tool_calls")
DEFAULTS = {"seed": 0, **{k: v for k, v in schema_defaults("eval").items() if k in SETTINGS}}


def parse_k(value) -> list[int]:
    """K for Pass@K / Maj@K from "1,4,8" or a list: sorted, without repeats."""
    if isinstance(value, str):
        try:
            value = [int(x) for x in value.split(",") if x.strip()]
        except ValueError as e:
            raise ValueError(f"--k must be comma-separated integers, got {value!r}") from e
    return sorted({int(x) for x in value})


def config_settings(cfg: dict | None, checkpoint: str | None = None) -> dict:
    """The run settings a config asks for: defaults < eval section < eval.per_checkpoint[checkpoint]."""
    ecfg = dict((cfg or {}).get("eval") or {})
    values = dict(DEFAULTS)
    if cfg is not None and "seed" in cfg:
        values["seed"] = cfg["seed"]  # the experiment's seed unless eval.seed says otherwise
    values.update({k: v for k, v in ecfg.items() if k in DEFAULTS})
    if checkpoint:
        values.update((ecfg.get("per_checkpoint") or {}).get(checkpoint) or {})
    values["k"] = parse_k(values["k"])
    return values
