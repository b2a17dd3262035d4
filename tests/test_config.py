"""The one config system: every shipped config validates; overrides and errors behave."""

from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, apply_overrides, load_config, load_schema, save_resolved

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "config").glob("*.yaml"))
SHIPPED = [p for p in CONFIGS if p.name != "schema.yaml"]


def test_the_three_configs_ship():
    assert {p.stem for p in SHIPPED} >= {"tiny", "smoke", "deepseekmath"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert cfg["name"] == path.stem
    # every config opens with a comment saying what it is for and how it is run (STYLE.md)
    assert path.read_text().lstrip().startswith("#")


def test_schema_describes_every_key():
    def walk(node, where):
        if isinstance(node, dict) and "properties" in node:
            for key, sub in node["properties"].items():
                assert "description" in sub, f"{where}.{key} has no description"
                walk(sub, f"{where}.{key}")

    walk(load_schema(), "config")


def test_overrides_parse_yaml_values():
    cfg = apply_overrides({"rl": {"beta": 0.1}}, ["rl.beta=0.04", "rl.group_size=8", "name=x", "a.b=[1, 2]"])
    assert cfg["rl"]["beta"] == 0.04 and cfg["rl"]["group_size"] == 8 and cfg["a"]["b"] == [1, 2]
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_overrides({}, ["nonsense"])


def test_exponent_without_a_dot_is_a_number(tmp_path):
    """PyYAML's YAML 1.1 reads `1e-4` as a string; a config or --set with it must still validate."""
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(SHIPPED[0].read_text() + "\n")
    cfg = load_config(cfg_file, ["rl.lr=1e-4", "rl.beta=4E-2", "rl.steps=3"])
    assert cfg["rl"]["lr"] == 1e-4 and cfg["rl"]["beta"] == 0.04 and cfg["rl"]["steps"] == 3
    cfg_file.write_text("name: t\nrl: {lr: 2e-5}\n")
    assert load_config(cfg_file)["rl"]["lr"] == 2e-5


def test_bad_config_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: ok\nthreads: zero\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "bad.yaml" in str(e.value) and "threads" in str(e.value)
    with pytest.raises(ConfigError, match="unknown_key|Additional properties"):
        load_config(SHIPPED[0], ["unknown_key=1"])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(SHIPPED[0], ["seed=7"])
    path = save_resolved(cfg, tmp_path)
    assert yaml.safe_load(path.read_text()) == cfg
    assert load_config(path) == cfg


def test_cli_overrides_type_nested_values_and_take_dotted_keys():
    from pipeline.config import cli_overrides

    # what Snakemake hands the workflow for `--config 'rl={beta: 0.02}' seed=3 'set=[...]'`: nested values
    # as strings; the raw arguments re-read as YAML give the types back
    snakemake_cfg = {"rl": {"beta": "0.02", "lr": 1e-6}, "seed": 3, "set": ["rl.group_size=8"]}
    args = ["rl={beta: 0.02}", "seed=3", "set=[rl.group_size=8, sft.optimizer.lr=1e-4]"]
    cfg = cli_overrides(snakemake_cfg, args)
    assert cfg == {"rl": {"beta": 0.02, "lr": 1e-6, "group_size": 8}, "seed": 3,
                   "sft": {"optimizer": {"lr": 1e-4}}}
    assert cli_overrides({"rl": {"beta": 0.1}}, ["set=rl.beta=0.04"]) == {"rl": {"beta": 0.04}}


def test_cli_overrides_refuse_bad_input_in_one_line():
    from pipeline.config import cli_overrides

    for args, msg in ((["novalue"], "expected key=value"), (["rl={beta: [}"], "not YAML"),
                      (["set=[{a: 1}]"], "key.path=value")):
        with pytest.raises(ConfigError, match=msg) as e:
            cli_overrides({}, args)
        assert "\n" not in str(e.value)


def test_a_dry_run_with_overrides_writes_nothing_under_results(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--quiet", "rules",
                          "--configfile", "config/smoke.yaml", "--config", f"results_root={tmp_path}/r",
                          "set=[rl.beta=0.02]"], cwd=root, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resolved_config" in res.stdout + res.stderr  # the config file is a job of the run, not a parse-time write
    assert not (tmp_path / "r").exists()
