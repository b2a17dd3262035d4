"""The conda environment used by `snakemake --use-conda` pins exactly what pyproject.toml pins."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_conda_env_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "pipeline" / "envs" / "mathpipe.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert sorted(pip) == sorted(deps)


def test_every_rule_names_the_environment():
    for smk in sorted((ROOT / "pipeline" / "rules").glob("*.smk")):
        text = smk.read_text()
        assert text.count("conda:") >= text.count("shell:"), f"{smk.name}: a rule with shell: has no conda:"
