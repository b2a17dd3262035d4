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
