"""The workflow end to end: dry runs of every shipped config, and the whole smoke DAG for real.

The smoke run is the one end-to-end test: world -> corpus -> pretrain -> SFT -> GRPO -> eval -> report,
through Snakemake, on config/smoke.yaml (a few minutes on 2 cores).
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests import hand_metrics

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


def test_tiny_runs_grpo_on_two_cpu_processes_and_the_rest_on_one(tmp_path, monkeypatch):
    """config/tiny.yaml's rl.resources.processes: 2 -> GRPO is one job asking for both cores that launches 2
    processes of 1 torch thread on a port of their own; pretraining keeps `python -m` and one core."""
    res = _snakemake(tmp_path, "tiny.yaml", "-n", "-p", "grpo")
    assert res.returncode == 0, res.stderr[-3000:]
    grpo = next(line for line in res.stdout.splitlines() if "-m rl.train" in line)
    assert "--num_processes 2 --main_process_port $(python -c" in grpo and grpo.endswith(
        "--threads 1 > results/tiny/logs/rl/grpo.log 2>&1"), grpo
    pretrain = next(line for line in res.stdout.splitlines() if "-m sft.pretrain" in line)
    assert pretrain.startswith("Shell command: python -m sft.pretrain"), pretrain
    # the job's threads (what Snakemake reserves of --cores, and Slurm's cpus per task): 2 for grpo
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    monkeypatch.chdir(ROOT)  # the schema's relative $refs resolve from the working directory
    with SnakemakeApi(OutputSettings(dryrun=True)) as api:
        wf = api.workflow(resource_settings=ResourceSettings(cores=2),
                          config_settings=ConfigSettings(configfiles=[ROOT / "config/tiny.yaml"]),
                          snakefile=ROOT / "Snakefile", workdir=tmp_path)._workflow
        assert wf.get_rule("grpo").resources["_cores"] == 2
        assert wf.get_rule("pretrain_model").resources["_cores"] == 1


CHECKPOINT_RUNS = {"pretrain": "pretrain/mined", "pretrain_web": "pretrain/web", "sft": "sft/mined",
                   "sft_web": "sft/web", "rl": "rl"}
BENCHMARKS = ("world_gsm8k", "world_math")


def _jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / "model.safetensors"))


def check_smoke_outputs(out: Path) -> None:
    """What config/smoke.yaml promises, read from the files each stage declares (results/smoke)."""
    import pyarrow.parquet as pq

    # world: the four problem splits at their configured sizes
    for split, n in (("sft", 300), ("rl", 100), ("test_gsm8k", 50), ("test_math", 50)):
        assert len(_jsonl(out / "world/problems" / f"{split}.jsonl")) == n, split

    # corpus funnel: every step's documents in = kept + dropped (summed over reasons); the final corpus
    # holds exactly the documents the funnel says it does
    funnel = json.loads((out / "corpus/funnel.json").read_text())
    assert funnel["steps"]
    for step in funnel["steps"]:
        assert step["docs_in"] == step["docs_out"] + sum(step["dropped"].values()), step
        assert step["docs_out"] <= step["docs_in"] and step["tokens_out"] <= step["tokens_in"], step
    final_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (out / "corpus/final").glob("*.parquet"))
    assert final_rows == funnel["final"]["docs"] > 0

    # training runs: save_pretrained folders and one finite metrics row per optimizer step
    # (pretrain: 20480 tokens / (128 tokens x 8 rows) = 20 steps; SFT 12; RL 2)
    for run, steps in (("pretrain/mined", 20), ("pretrain/web", 20), ("sft/mined", 12), ("sft/web", 12), ("rl", 2)):
        assert (out / run / "model" / "config.json").exists(), f"{run}/model is not a save_pretrained folder"
        rows = _jsonl(out / run / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(1, steps + 1)), run
        assert all(math.isfinite(r["loss"]) for r in rows), run
    pre = _jsonl(out / "pretrain/mined/metrics.jsonl")
    assert pre[-1]["loss"] < pre[0]["loss"], "20 pretraining steps from a random init did not lower the loss"
    # RL starts from the mined SFT model; with a learning signal (some group with reward variance) Adam's
    # first step moves every parameter with a gradient by ~lr (1e-5 in smoke.yaml). Without one the converse
    # cannot be asserted: Adam divides the KL term's float-noise gradient (~1e-10) by its own size, so the
    # weights may still move by up to ~lr/2 (seen: 7e-8 in one run, over 1e-6 in another).
    sft_w, rl_w = _weights(out / "sft/mined/model"), _weights(out / "rl/model")
    signal = any(r["zero_std_fraction"] < 1.0 for r in _jsonl(out / "rl/metrics.jsonl"))
    moved = max(float((sft_w[k] - rl_w[k]).abs().max()) for k in sft_w) > 1e-6
    assert moved or not signal, "RL had a learning signal but its weights did not move"

    # eval: every checkpoint x benchmark evaluated the right model on the first 16 problems, and its
    # metrics agree with the samples recomputed by hand (pretrain* and sft_web: greedy only, n=0)
    report = (out / "report.md").read_text()
    for ckpt, run in CHECKPOINT_RUNS.items():
        for bench in BENCHMARKS:
            folder = out / "eval" / ckpt / bench
            metrics = json.loads((folder / "metrics.json").read_text())
            rows = _jsonl(folder / "samples.jsonl")
            n = 0 if ckpt.startswith("pretrain") or ckpt == "sft_web" else 4
            ks = [] if n == 0 else [1, 2, 4]
            # the model path as the rule passed it (relative to the workflow's directory, or absolute)
            assert Path(out.parents[1], metrics["model"]).resolve() == (out / run / "model").resolve(), (ckpt, bench)
            want = hand_metrics.metrics(rows, ks)
            assert metrics["num_problems"] == want["num_problems"] == 16, (ckpt, bench)
            assert metrics["n"] == want["n"] == n and len(rows) == 16 * (1 + n), (ckpt, bench)
            assert metrics["greedy"] == pytest.approx(want["greedy"]), (ckpt, bench)
            for k in ks:
                assert metrics["pass@k"][str(k)] == pytest.approx(want["pass@k"][k]), (ckpt, bench, k)
                assert metrics["maj@k"][str(k)] == pytest.approx(want["maj@k"][k]), (ckpt, bench, k)
            # the report names every checkpoint x benchmark, with a number, not "not run"
            line = next((x for x in report.splitlines() if x.startswith(f"| {ckpt} | {bench} |")), None)
            assert line is not None and "not run" not in line, (ckpt, bench, line)
            assert line.split("|")[3].strip().startswith(f"{100 * metrics['greedy']:.1f}"), (ckpt, bench, line)
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_smoke_workflow_end_to_end(tmp_path):
    res = _snakemake(tmp_path, "smoke.yaml")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    check_smoke_outputs(tmp_path / "results" / "smoke")
    # Snakemake considers everything done: a second run has nothing to do.
    again = _snakemake(tmp_path, "smoke.yaml", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
