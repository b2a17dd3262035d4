"""config/profiles/slurm: every set-resources key is a rule of the paper config's DAG, GPUs are asked for
once, partitions/account come from the environment, downloads are local rules. The sbatch lines are built
by the Slurm executor plugin's own code (the `cluster` extra); those tests skip without it."""

import io
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.profiles import ProfileConfigFileParser

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "config" / "profiles" / "slurm" / "config.yaml"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def profile(monkeypatch, **env) -> dict:
    """The profile as Snakemake reads it (yte templating included), as {option: [key=value, ...]}."""
    for k in ("MATHPIPE_SLURM_ACCOUNT", "MATHPIPE_SLURM_CPU_PARTITION", "MATHPIPE_SLURM_GPU_PARTITION"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    stream = io.StringIO(PROFILE.read_text())
    stream.name = str(PROFILE)
    return ProfileConfigFileParser().parse(stream)


def set_resources(parsed: dict) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in parsed["set-resources"]:
        rule, kv = item.split(":", 1)
        key, value = kv.split("=", 1)
        out.setdefault(rule, {})[key] = value
    return out


@pytest.fixture(scope="module")
def dag_rules() -> dict[str, int]:
    """Rule -> job count of the paper config's DAG, built with the Slurm profile (a dry run)."""
    res = subprocess.run([SNAKEMAKE, "-n", "--quiet", "rules", "--configfile", "config/deepseekmath.yaml",
                          "--profile", "config/profiles/slurm", "--executor", "dryrun"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, re.M)
    return {rule: int(n) for rule, n in rows if rule != "total"}


def test_every_set_resources_key_is_a_rule_of_the_dag(monkeypatch, dag_rules):
    rules = set(set_resources(profile(monkeypatch)))
    assert rules, "the profile sets no per-rule resources"
    assert rules <= set(dag_rules), f"set-resources names no rule of the DAG: {sorted(rules - set(dag_rules))}"
    # the rules that ask for GPUs in config/deepseekmath.yaml all get a GPU partition
    assert {"pretrain_model", "sft_train", "grpo", "evaluate"} <= rules


def test_one_gpu_request_form_and_no_runtime_override(monkeypatch):
    parsed = profile(monkeypatch)
    for rule, res in set_resources(parsed).items():
        assert "gpu" not in res.get("slurm_extra", ""), f"{rule}: GPUs asked for in slurm_extra as well"
        assert "runtime" not in res and "mem_mb" not in res, f"{rule}: runtime/memory belong to the config"
        assert res.get("slurm_partition") == "gpu"


def test_partitions_and_account_from_the_environment(monkeypatch):
    parsed = profile(monkeypatch)
    assert "slurm_partition=cpu" in parsed["default-resources"]
    assert not any(r.startswith("slurm_account") for r in parsed["default-resources"])
    parsed = profile(monkeypatch, MATHPIPE_SLURM_ACCOUNT="proj42", MATHPIPE_SLURM_CPU_PARTITION="short",
                     MATHPIPE_SLURM_GPU_PARTITION="a100")
    assert {"slurm_partition=short", "slurm_account=proj42"} <= set(parsed["default-resources"])
    assert {r["slurm_partition"] for r in set_resources(parsed).values()} == {"a100"}


def test_downloads_are_local_rules(monkeypatch):
    monkeypatch.chdir(ROOT)  # the schema's relative $refs resolve from the working directory
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings(dryrun=True)) as api:
        wf = api.workflow(resource_settings=ResourceSettings(),
                          config_settings=ConfigSettings(configfiles=[ROOT / "config" / "deepseekmath.yaml"]),
                          snakefile=ROOT / "Snakefile", workdir=ROOT)._workflow
        local = set(wf._localrules)
    assert {"corpus_cc_listing", "corpus_cc_download", "corpus_seed", "corpus_benchmarks",
            "resolved_config"} <= local
    assert not local & {"pretrain_model", "sft_train", "grpo", "evaluate", "corpus_extract"}


def test_grpo_sbatch_line_asks_for_gpus_once(monkeypatch):
    submit = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")
    res = {"gpu": 8, "mem_mb": 256000, "runtime": 4320, "cpus_per_gpu": 16, "slurm_partition": "gpu"}
    for rule_res in set_resources(profile(monkeypatch))["grpo"].items():
        res[rule_res[0]] = int(rule_res[1]) if rule_res[1].isdigit() else rule_res[1]
    job = SimpleNamespace(resources=SimpleNamespace(get=res.get, **res), threads=8)
    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "grpo", "account": "",
              "partition": " -p gpu", "workdir": "/w"}
    line = submit.get_submit_command(job, params)
    gpu_flags = re.findall(r"--gpus(?:-per-node|-per-task)?[= ]\S+|--gres=\S*gpu\S*", line + " " +
                           _gres(job))
    assert gpu_flags == ["--gpus=8"], line
    assert "--cpus-per-gpu=16" in line and "-t 4320" in line and "--mem 256000" in line


def _gres(job) -> str:
    utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")
    return utils.set_gres_string(job)
