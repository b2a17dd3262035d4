"""compare_rl's per-method configs and its report (Figure 5 + the memory/speed table) from hand-written
evaluation results."""

import json
import math

import pytest

from pipeline.config import ConfigError, validate
from rl.compare import eval_steps, method_config, report, std_err


def _cfg(**compare):
    return validate({"name": "x", "rl": {"supervision": "process", "compare": {"steps": 5, "eval_every": 2, **compare}},
                     "eval": {"benchmarks": {"a": {"data": "a.jsonl"}, "b": {"data": "b.jsonl"}}}})


def test_method_configs_share_questions_and_budget():
    cfg = _cfg(overrides={"dpo": {"lr": 1e-5}})
    assert eval_steps(cfg["rl"]["compare"]) == [2, 4, 5]
    runs = {m: method_config(cfg, m)["rl"] for m in ("grpo", "ppo", "dpo", "rft", "online_rft")}
    for m, rl in runs.items():
        assert rl["algorithm"] == m and rl["steps"] == 5 and rl["snapshot_every"] == 2
        assert (rl["prompts"], rl["prompts_per_step"], rl["group_size"]) == (
            runs["grpo"]["prompts"], runs["grpo"]["prompts_per_step"], runs["grpo"]["group_size"])
    assert runs["grpo"]["supervision"] == "process" and runs["ppo"]["supervision"] == "outcome"
    assert runs["dpo"]["lr"] == 1e-5 and runs["grpo"]["lr"] == 1e-6
    with pytest.raises(ConfigError, match="group_size"):
        method_config(_cfg(overrides={"dpo": {"group_size": 1}}), "dpo")


def test_report_from_hand_written_results(tmp_path):
    cfg = _cfg(methods=["grpo", "ppo"], eval={"n": 4})

    def write(method, steps):
        (tmp_path / method).mkdir(parents=True, exist_ok=True)
        (tmp_path / method / "eval.json").write_text(json.dumps({"method": method, "steps": steps}))

    write("init", {"0": {"a": {"greedy": 0.5, "maj": 0.25, "n": 4, "problems": 100},
                         "b": {"greedy": 0.1, "maj": 0.1, "n": 4, "problems": 100}}})
    for method, acc, rss, step_s in (("grpo", 0.6, 800.0, 4.0), ("ppo", 0.5, 1600.0, 6.0)):
        write(method, {str(s): {"a": {"greedy": acc, "maj": acc, "n": 4, "problems": 100},
                                "b": {"greedy": 0.2, "maj": 0.2, "n": 4, "problems": 100}} for s in (2, 4, 5)})
        (tmp_path / method / "run").mkdir()
        (tmp_path / method / "run" / "run.json").write_text(json.dumps(
            {"summary": {"peak_rss_mb": rss, "step_s_mean": step_s, "train_s_mean": step_s / 2, "data_s_mean": step_s / 2}}))
    data = report(cfg, tmp_path)
    assert std_err(0.5, 100) == pytest.approx(0.05)
    first = data["grpo"]["curve"]["a"][0]
    assert first[:5] == (0, 0.5, pytest.approx(0.05), 0.25, pytest.approx(math.sqrt(0.25 * 0.75 / 100)))
    assert [p[0] for p in data["ppo"]["curve"]["b"]] == [0, 2, 4, 5]
    md = (tmp_path / "compare.md").read_text()
    assert "| grpo | 50.0+-5.0 / 25.0+-4.3 | 60.0+-4.9 / 60.0+-4.9 |" in md
    assert "2.00x the peak memory, 1.50x the seconds per step (1.50x the training time" in md
    assert (tmp_path / "figure5.png").stat().st_size > 1000
