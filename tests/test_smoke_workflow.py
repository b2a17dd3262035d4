"""The workflow end to end: dry runs of every shipped config, and the whole smoke DAG for real.

The smoke run is the one end-to-end test: world -> corpus -> pretrain -> SFT -> GRPO -> eval -> report,
through Snakemake, on config/smoke.yaml (a few minutes on 2 cores).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _snakemake(workdir, config, *args, timeout=900):
    cmd = SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                       "--configfile", str(ROOT / "config" / config), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("config", ["tiny.yaml", "smoke.yaml", "deepseekmath.yaml"])
def test_dry_run_every_config(tmp_path, config):
    res = _snakemake(tmp_path, config, "-n")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for stage in ("corpus", "pretrain", "sft_train", "grpo", "evaluate", "report"):
        assert stage in res.stdout, f"{config}: rule {stage} missing from the DAG"


@pytest.mark.slow
def test_smoke_workflow_end_to_end(tmp_path):
    res = _snakemake(tmp_path, "smoke.yaml")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    out = tmp_path / "results" / "smoke"
    assert (out / "report.md").stat().st_size > 0 and (out / "report.html").exists()
    for stage in ("pretrain/mined/model", "sft/mined/model", "rl/model"):
        assert (out / stage / "config.json").exists(), f"{stage} is not a save_pretrained folder"
    metrics = json.loads(next((out / "eval" / "rl").glob("*/metrics.json")).read_text())
    assert 0.0 <= metrics["greedy"] <= 1.0 and metrics["pass@k"] and metrics["maj@k"]
    assert list((out / "corpus" / "final").glob("*.parquet"))
    # Snakemake considers everything done: a second run has nothing to do.
    again = _snakemake(tmp_path, "smoke.yaml", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
