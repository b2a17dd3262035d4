"""The report renders from fake result folders (every section, every plot) and from an empty one."""

import json
import random
from pathlib import Path

import pytest
import yaml

from corpus.funnel import to_markdown
from eval.metrics import metrics_from_samples
from pipeline.io import append_jsonl, write_json, write_text
from pipeline.report import main as report_main

BENCHES = {"world_gsm8k": "gsm8k", "world_math": "math"}
# Per-sample accuracy of each fake checkpoint; RL is more consistent (higher Maj@K), not more capable.
SKILL = {"pretrain": 0.05, "pretrain_web": 0.02, "sft": 0.35, "sft_web": 0.2, "rl": 0.45}


def _config(tmp_path: Path) -> Path:
    cfg = {"name": "fake", "results_root": str(tmp_path / "results"),
           "eval": {"benchmarks": {b: {"data": f"{{results}}/world/problems/test_{p}.jsonl", "paper": p}
                                   for b, p in BENCHES.items()}}}
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


RUN_DIRS = {"pretrain": "pretrain/mined", "pretrain_web": "pretrain/web", "sft": "sft/mined", "sft_web": "sft/web",
            "rl": "rl"}


def _report(tmp_path: Path, out: Path | None = None) -> dict:
    """The report as its rule runs it: every file it reads named on the command line."""
    res = tmp_path / "results" / "fake"
    out = out or res / "report.md"
    evals = [f"{c}:{b}={res / 'eval' / c / b / 'metrics.json'}" for c in SKILL for b in BENCHES]
    curves = [f"{run}={res / folder / 'metrics.jsonl'}" for run, folder in RUN_DIRS.items()]
    return report_main(["--config", str(_config(tmp_path)), "--out", str(out), "--eval", *evals, "--curves", *curves,
                        "--funnel", str(res / "corpus" / "funnel.json"),
                        "--funnel-table", str(res / "corpus" / "funnel.md")])


def _fake_samples(ckpt: str, bench: str, n: int, problems: int = 40) -> list[dict]:
    rng = random.Random(f"{ckpt}/{bench}")
    rows = []
    for i in range(problems):
        subject, level = ["Algebra", "Geometry", "Prealgebra"][i % 3], 1 + i % 5
        meta = {"subject": subject, "level": level} if bench == "world_math" else {}
        p = min(1.0, SKILL[ckpt] * (1.5 if i % 2 else 0.5))
        rows.append({"problem_id": f"{bench}-{i}", "sample_index": -1, "correct": rng.random() < p,
                     "status": "ok", "vote_class": None, **meta})
        for j in range(n):
            ok = rng.random() < p
            # right answers agree (class 0); wrong ones scatter over 3 classes or give no answer
            cls = 0 if ok else rng.choice([1, 2, 3, -1])
            rows.append({"problem_id": f"{bench}-{i}", "sample_index": j, "correct": ok, "vote_class": cls,
                         "status": "ok" if cls >= 0 else "no_answer", **meta})
    return rows


def _fake_results(root: Path) -> None:
    res = root / "results" / "fake"
    for ckpt in SKILL:
        for bench in BENCHES:
            n = 0 if ckpt.startswith("pretrain") else 16
            k = [1, 2, 4, 8, 16] if n else []
            m = metrics_from_samples(_fake_samples(ckpt, bench, n), k)
            m.update({"model": f"results/fake/{ckpt}/model", "benchmark": bench, "temperature": 0.7,
                      "format": "cot", "prompt_layout": "plain" if not n else "chat", "few_shot": 2 if not n else 0})
            write_json(res / "eval" / ckpt / bench / "metrics.json", m)
    for folder, start in (("pretrain/mined", 6.0), ("pretrain/web", 6.3), ("sft/mined", 2.0), ("sft/web", 2.4)):
        for step in range(1, 41):
            append_jsonl(res / folder / "metrics.jsonl", {"step": step, "loss": start * (0.97 ** step), "lr": 1e-3})
    for step in range(1, 21):
        append_jsonl(res / "rl" / "metrics.jsonl", {"step": step, "loss": 0.1, "reward_mean": 0.3 + 0.01 * step,
                                                    "accuracy": 0.35 + 0.01 * step})
    step = {"step": "extract", "round": 0, "docs_in": 1000, "docs_out": 900, "tokens_in": 500_000,
            "tokens_out": 450_000, "dropped": {"empty": 100}, "dropped_tokens": {}, "errors": 0, "files": 2,
            "carried_over_from": None}
    rounds = [{"round": r, "kept_docs": kd, "kept_tokens": kt, "overlap_with_previous": ov, "math_domains": md,
               "new_positives": npos, "converged": conv, "carried_over_from": None}
              for r, kd, kt, ov, md, npos, conv in [(1, 300, 150_000, None, 4, 40, False),
                                                    (2, 380, 190_000, 0.8, 6, 25, False),
                                                    (3, 400, 200_000, 0.97, 6, 3, True)]]
    funnel = {
        "steps": [step], "rounds": rounds, "converged_at": 3, "final": {"docs": 400, "tokens": 200_000},
        "decontamination": {"removed": 7, "by_reason": {"10-gram": 7}, "by_benchmark": {"gsm8k": 7}, "examples": []},
        "malformed": []}
    write_json(res / "corpus" / "funnel.json", funnel)
    write_text(res / "corpus" / "funnel.md", to_markdown(funnel))  # as the corpus_funnel rule writes it


def test_report_renders_every_section_and_plot(tmp_path):
    import matplotlib.image as mpimg

    _fake_results(tmp_path)
    out = tmp_path / "results" / "fake" / "report.md"
    paths = _report(tmp_path, out)
    md = out.read_text()
    for heading in ("Corpus funnel per round", "Training curves", "Every checkpoint on every benchmark",
                    "SFT vs RL (paper Figure 7)", "Corpus quality", "Breakdown by subject and level"):
        assert heading in md
    assert "not run" not in md
    # our rows, and the paper's rows clearly labelled as the paper's
    assert "| rl | world_math |" in md and "| sft_web | world_gsm8k |" in md
    assert "| **paper**: DeepSeekMath-RL 7B (top-1 CoT, Table 5) | MATH (real) | 51.7 |" in md
    assert "**paper**: 1.3B, 150B tokens" in md and "23.8 (DeepSeekMath Corpus)" in md
    assert "| world_math | 16 |" in md  # Figure 7 table row at K=16
    assert "Final corpus: 400 pages" in md
    for name in ("funnel", "training", "figure7", "corpus_quality"):
        png = paths["plots"] / f"{name}.png"
        assert f"(report/{name}.png)" in md
        img = mpimg.imread(png)
        assert img.shape[0] > 200 and img.shape[1] > 400, name
    html = paths["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and 'src="report/figure7.png"' in html


def test_report_of_a_run_that_has_not_happened(tmp_path):
    out = tmp_path / "results" / "fake" / "report.md"
    paths = _report(tmp_path, out)
    md = out.read_text()
    assert "_Corpus stage not run: `" in md and "funnel.json` does not exist._" in md
    assert "pretraining, SFT and RL not run" in md
    assert "| rl | world_math | not run |" in md
    assert "Figure 7)\n\n_Not run" in md
    assert paths["plots"].is_dir() and not list(paths["plots"].iterdir())
    assert paths["html"].exists()


def test_report_rejects_unreadable_metrics(tmp_path):
    bad = tmp_path / "results" / "fake" / "eval" / "rl" / "world_math" / "metrics.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{truncated")
    with pytest.raises(ValueError, match="metrics.json: unreadable metrics file"):
        _report(tmp_path)


def test_funnel_written_by_the_corpus_stage_renders(tmp_path):
    """The funnel section shows the corpus stage's own table (funnel.md), which the report does not
    re-derive: it imports nothing from corpus/."""
    _fake_results(tmp_path)
    _report(tmp_path)
    md = (tmp_path / "results" / "fake" / "report.md").read_text()
    assert "| extract | - | 1,000 | 900 |" in md
    assert json.loads((tmp_path / "results" / "fake" / "corpus" / "funnel.json").read_text())["converged_at"] == 3


def test_report_reads_only_the_files_it_is_given(tmp_path):
    """A result folder the rule does not name is not read: the report holds exactly the named evaluations."""
    _fake_results(tmp_path)
    res = tmp_path / "results" / "fake"
    out = res / "report.md"
    report_main(["--config", str(_config(tmp_path)), "--out", str(out),
                 "--eval", f"sft:world_math={res / 'eval/sft/world_math/metrics.json'}", "--curves"])
    md = out.read_text()
    assert "| sft | world_math |" in md
    assert "| rl | world_math |" not in md and "| sft | world_gsm8k |" not in md
    assert "Corpus stage not run: not part of this workflow" in md
    with pytest.raises(SystemExit, match="expected CHECKPOINT:BENCHMARK=PATH"):
        report_main(["--config", str(_config(tmp_path)), "--out", str(out), "--eval", f"sft={out}"])


def test_headline_differences_and_verdicts_by_hand():
    """Differences in points with the s.e. of the difference, sqrt(0.03^2 + 0.04^2) = 0.05 -> 5.0 points."""
    from pipeline.report_headline import _diff, _verdict

    web = {"greedy": 0.20, "stderr": {"greedy": 0.03}}
    mined = {"greedy": 0.35, "stderr": {"greedy": 0.04}}
    d = _diff(web, mined, "greedy")
    assert round(d[0], 6) == 15.0 and round(d[1], 6) == 5.0
    assert _verdict(d).startswith("agrees")  # +15 > 2 x 5
    assert "disagrees" in _verdict(_diff(mined, web, "greedy"))  # -15: the paper found the mined corpus ahead
    assert _verdict((8.0, 5.0)).startswith("within two standard errors")
    assert _verdict((0.0, 0.0)).startswith("within two standard errors")  # no change at all is not a disagreement
    sft = {"maj@k": {"8": 0.30}, "stderr": {"maj@k": {"8": 0.0}}}
    rl = {"maj@k": {"8": 0.36}, "stderr": {"maj@k": {"8": 0.0}}}
    assert [round(x, 6) for x in _diff(sft, rl, "maj@k", "8")] == [6.0, 0.0]


def test_headline_difference_is_paired_over_the_same_problems():
    """Four problems: SFT right on p1, p2; RL right on p1, p2, p3. Per-problem d = (0, 0, 1, 0): mean 0.25,
    sd (n - 1) = sqrt((3 x 0.25^2 + 0.75^2) / 3) = 0.5, s.e. 0.5 / 2 = 0.25 -> +25.0 ± 25.0 points. Treated
    as independent it would be sqrt(0.2887^2 + 0.2887^2) = 0.408 (each evaluation's own s.e. 0.2887)."""
    from pipeline.report_headline import _diff

    def ev(greedy, maj):
        return {"greedy": sum(greedy) / 4, "maj@k": {"8": sum(maj) / 4},
                "stderr": {"greedy": 0.2887, "maj@k": {"8": 0.25}},
                "per_problem": {"ids": ["p1", "p2", "p3", "p4"], "greedy": greedy, "maj@k": {"8": maj}}}

    sft, rl = ev([1, 1, 0, 0], [1, 0, 0, 0]), ev([1, 1, 1, 0], [1, 0.5, 0.5, 0])
    assert [round(x, 6) for x in _diff(sft, rl, "greedy")] == [25.0, 25.0]
    # Maj@8 d = (0, 0.5, 0.5, 0): mean 0.25, sd = sqrt(4 x 0.25^2 / 3) = 0.2887, s.e. 0.1443
    assert [round(x, 2) for x in _diff(sft, rl, "maj@k", "8")] == [25.0, 14.43]
    # different problems (or an older metrics.json without per-problem values): independent
    other = ev([1, 1, 1, 0], [1, 0.5, 0.5, 0])
    other["per_problem"]["ids"] = ["p1", "p2", "p3", "p5"]
    assert [round(x, 2) for x in _diff(sft, other, "greedy")] == [25.0, 40.83]
    del rl["per_problem"]
    assert [round(x, 2) for x in _diff(sft, rl, "greedy")] == [25.0, 40.83]


def test_headline_names_corpus_score_rl_lift_and_stage_times(tmp_path):
    _fake_results(tmp_path)
    res = tmp_path / "results" / "fake"
    write_json(res / "corpus" / "world_score.json", {
        "precision": 1.0, "recall": 0.98, "near_dup_clusters": 10, "near_dup_clusters_collapsed": 10,
        "contaminated_pages": 5, "contaminated_removed": 4})
    bench = res / "benchmarks"
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    write_text(bench / "rl" / "grpo.tsv", header + "100.0\t0:01:40\t900.5\t0\t0\t0\t0\t0\t95\t95.0\n")
    write_text(bench / "eval" / "rl" / "world_math.tsv", header + "30.0\t0:00:30\t500\t0\t0\t0\t0\t0\t90\t27.0\n")
    write_text(bench / "eval" / "sft" / "world_math.tsv", header + "20.0\t0:00:20\t600\t0\t0\t0\t0\t0\t90\t18.0\n")
    write_text(bench / "corpus_extract_0000.tsv", header + "5.0\t0:00:05\t100\t0\t0\t0\t0\t0\t90\t6.0\n")
    out = res / "report.md"
    args = ["--config", str(_config(tmp_path)), "--out", str(out), "--corpus-score", str(res / "corpus/world_score.json"),
            "--stage-times", str(bench), "--funnel", str(res / "corpus/funnel.json"),
            "--eval", *[f"{c}:{b}={res / 'eval' / c / b / 'metrics.json'}" for c in SKILL for b in BENCHES]]
    report_main(args)
    md = out.read_text()
    head = md.split("## 1.")[0]
    assert "## The numbers that matter" in head
    assert "| corpus: precision / recall of math pages (world labels) | 1.000 / 0.980 |" in head
    assert "4/5 | MinHash not stated" in head and "**contamination leaked**" in head
    assert "| RL, world_math: Maj@16 RL − SFT |" in head and "| RL, world_gsm8k: greedy RL − SFT |" in head
    assert "corpus quality, world_gsm8k, base, few-shot: mined − web greedy" in head
    # stage times summed per stage: eval = two jobs, 50 s wall = 0.8 min, peak RSS 600 MB
    assert "| eval | 2 | 50 | 0.8 | 600 |" in head and "| rl | 1 | 100 | 1.7 | 900 |" in head
    assert "| corpus | 1 | 5 | 0.1 | 100 |" in head


def test_headline_pass_at_k_verdicts():
    """Pass@K against Figure 7 (Maj@K up, Pass@K flat): a fall beyond two s.e. is not "moving less"."""
    from pipeline.report_headline import _pass_verdict

    assert _pass_verdict((-1.0, 1.0), (3.0, 1.0)).startswith("hardly moves")
    assert _pass_verdict((-4.8, 2.3), (-0.4, 1.8)).startswith("**falls**")
    assert _pass_verdict((3.0, 1.0), (6.0, 1.0)).startswith("rises, but less than Maj@K")
    assert _pass_verdict((6.0, 1.0), (3.0, 1.0)).startswith("**rises more than Maj@K")
    assert _pass_verdict(None, (3.0, 1.0)) == "not measured"


def test_headline_process_steps_first_and_last_windows_by_hand():
    """50 RL steps: windows of 10. First ten alternate 0.4 / 0.6 (mean 0.5, sample variance 10 x 0.1^2 / 9
    = 0.0111), last ten alternate 0.6 / 0.8 (mean 0.7, the same variance): difference 0.2, s.e.
    sqrt(2 x 0.0111 / 10) = 0.0471 -> +20.0 ± 4.7 points, more than two s.e.: up. Fewer than 20 steps with the metric (outcome supervision has none): no row."""
    from pipeline.report_headline import _process_steps_row, process_steps_change

    rows = ([{"step": i + 1, "reward/process_steps": 0.4 if i % 2 else 0.6} for i in range(10)]
            + [{"step": i + 11, "reward/process_steps": 0.5} for i in range(30)]
            + [{"step": i + 41, "reward/process_steps": 0.6 if i % 2 else 0.8} for i in range(10)])
    w, first, last, se = process_steps_change(rows)
    assert (w, round(first, 6), round(last, 6), round(se, 4)) == (10, 0.5, 0.7, 0.0471)
    row = _process_steps_row(rows)
    assert "first → last 10 steps | 0.500 → 0.700 (+20.0 ± 4.7 points)" in row and "| up:" in row
    flat = rows[:10] + rows[10:40] + rows[:10]
    assert "within two standard errors" in _process_steps_row(flat)
    assert _process_steps_row([{"step": 1, "accuracy": 0.2}] * 50) is None
    assert process_steps_change(rows[:19]) is None


def test_plots_go_where_the_rule_says(tmp_path):
    """The rule names the plots folder (--plots); the page links it relatively."""
    _fake_results(tmp_path)
    res = tmp_path / "results" / "fake"
    out = res / "report.md"
    paths = report_main(["--config", str(_config(tmp_path)), "--out", str(out), "--plots", str(res / "figures"),
                         "--curves", f"rl={res / 'rl' / 'metrics.jsonl'}"])
    assert paths["plots"] == res / "figures" and (res / "figures" / "training.png").exists()
    assert "(figures/training.png)" in out.read_text() and not (res / "report").exists()


def test_compare_rl_is_shown_when_it_has_run(tmp_path):
    _fake_results(tmp_path)
    res = tmp_path / "results" / "fake"
    out = res / "report.md"
    args = ["--config", str(_config(tmp_path)), "--out", str(out), "--compare-rl", str(res / "compare_rl")]
    report_main(args)
    assert "## 7. GRPO, PPO, RFT" in out.read_text() and "_Not run: `snakemake compare_rl`" in out.read_text()
    write_text(res / "compare_rl" / "compare.md", "| method | greedy |\n|---|---:|\n| grpo | 28.0 |\n")
    (res / "compare_rl" / "figure5.png").write_bytes(b"\x89PNG")
    report_main(args)
    md = out.read_text()
    assert "| grpo | 28.0 |" in md and "![Figure 5](compare_rl/figure5.png)" in md


def test_headline_held_out_loss_row(tmp_path):
    """Both arms' heldout_loss.json (3 documents of 10 tokens): mined 18/30 = 0.600, web 24/30 = 0.800
    nats/token, D = -0.200, SE = 0.1 / sqrt(3) = 0.058 (hand-worked in tests/test_heldout_loss.py); -0.2 is
    below -2 x 0.058, a lower loss for the mined arm: agrees with the paper. A named file not written yet
    is "not run"."""
    res = tmp_path / "results" / "fake"
    mined, web = res / "eval/pretrain/heldout_loss.json", res / "eval/pretrain_web/heldout_loss.json"
    write_json(mined, {"per_document": [[5, 10], [6, 10], [7, 10]]})
    write_json(web, {"per_document": [[8, 10], [8, 10], [8, 10]]})
    out = res / "report.md"
    base = ["--config", str(_config(tmp_path)), "--out", str(out)]
    report_main(base + ["--heldout", f"pretrain={mined}", f"pretrain_web={web}"])
    head = out.read_text().split("## 1.")[0]
    row = next(ln for ln in head.splitlines() if "held-out math-text loss" in ln)
    assert "(3 docs, 30 tokens) | 0.600 vs 0.800 nats/token, difference -0.200 ± 0.058 |" in row
    assert "agrees with the paper" in row and "disagrees" not in row
    report_main(base + ["--heldout", f"pretrain={web}", f"pretrain_web={mined}"])  # the arms swapped
    assert "**disagrees with the paper**" in out.read_text().split("## 1.")[0]
    report_main(base + ["--heldout", f"pretrain={mined}", f"pretrain_web={res / 'missing.json'}"])
    row = next(ln for ln in out.read_text().splitlines() if "held-out math-text loss" in ln)
    assert "not run" in row and "missing.json" in row and "not measured" in row
