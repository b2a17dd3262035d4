"""`python -m pipeline.report`: one page with every stage's numbers, ours beside the paper's.

    python -m pipeline.report --config results/tiny/config.yaml --out results/tiny/report.md \
        --eval sft:world_gsm8k=results/tiny/eval/sft/world_gsm8k/metrics.json ... \
        --curves rl=results/tiny/rl/metrics.jsonl ... \
        --funnel results/tiny/corpus/funnel.json --funnel-table results/tiny/corpus/funnel.md

Writes report.md, report.html (the same page) and PNG plots (pipeline/report_plots.py) in report/ beside
them. It reads exactly the files named on its command line (the `report` rule lists them; docs/CONTRACTS.md
says what each holds) and nothing else; a named file that does not exist yet gets a "not run" line:

0. the numbers that matter, each with a verdict against the paper (among them the base models' held-out
   math-text loss, eval/<checkpoint>/heldout_loss.json, --heldout), and time per stage
   (pipeline/report_headline.py);
1. the corpus funnel per round (corpus/funnel.json, paper §2.1), with kept pages/tokens per round;
2. pretraining, SFT and RL curves (metrics.jsonl beside each model);
3. a table of every checkpoint on every benchmark (eval/<checkpoint>/<benchmark>/metrics.json), each
   row with its sample count, temperature and prompt, and the paper's numbers in rows of their own;
4. Pass@K and Maj@K versus K for SFT vs RL, as in the paper's Figure 7 (§4.3: RL raises Maj@K but
   hardly Pass@K);
5. corpus quality (§2.2): the models trained on the mined corpus vs on unfiltered web text;
6. the MATH-style breakdown by subject and level;
7. GRPO, PPO, RFT, Online RFT and DPO compared (Figure 5), when `snakemake compare_rl` has run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import markdown

from pipeline.config import load_config, setup_logging
from pipeline.io import atomic_path, read_jsonl, write_text
from pipeline.report_headline import _kmax, read_stage_times, section_headline
from pipeline.report_plots import plot_corpus_quality, plot_figure7, plot_funnel, plot_training

log = logging.getLogger("pipeline.report")

# Checkpoint order of the tables and what each one is.
CHECKPOINTS = {
    "pretrain": "continued pretraining on the mined corpus",
    "pretrain_web": "the same pretraining on unfiltered web text (§2.2)",
    "sft": "SFT (CoT / PoT / tool) from the mined-corpus model",
    "sft_web": "the same SFT from the web-text model (§2.2)",
    "rl": "GRPO from the SFT model",
}
# Training runs whose metrics.jsonl the curves come from (--curves RUN=PATH): run id -> label.
TRAINING_RUNS = {
    "pretrain": "pretrain (mined)",
    "pretrain_web": "pretrain (web)",
    "sft": "sft (mined)",
    "sft_web": "sft (web)",
    "rl": "rl",
}

# The paper's numbers (DeepSeekMath, Shao et al. 2024, arXiv 2402.03300), top-1 accuracy in %.
# They are for 7B / 1.3B models on the real GSM8K and MATH test sets, not for our models or benchmarks.
PAPER = {
    # checkpoint -> (paper model, setting, {benchmark: %})
    "pretrain": ("DeepSeekMath-Base 7B", "few-shot CoT, Table 2", {"gsm8k": 64.2, "math": 36.2}),
    "sft": ("DeepSeekMath-Instruct 7B", "top-1 CoT, Table 5", {"gsm8k": 82.9, "math": 46.8}),
    "rl": ("DeepSeekMath-RL 7B", "top-1 CoT, Table 5", {"gsm8k": 88.2, "math": 51.7}),
}
PAPER_CORPUS = {
    # §2.2 Table 1: a 1.3B model trained for 150B tokens on each corpus, few-shot CoT
    "mined": ("DeepSeekMath Corpus", {"gsm8k": 23.8, "math": 13.6}),
    "web": ("OpenWebMath", {"gsm8k": 11.5, "math": 8.9}),
}


@dataclass
class ReportData:
    name: str
    config_path: str
    eval: dict[tuple[str, str], dict] = field(default_factory=dict)  # (checkpoint, benchmark) -> metrics
    expected: list[tuple[str, str]] = field(default_factory=list)  # what the config asks to evaluate
    paper_bench: dict[str, str] = field(default_factory=dict)  # our benchmark -> paper benchmark
    curves: dict[str, list[dict]] = field(default_factory=dict)  # training run label -> metrics rows
    curve_files: dict[str, str] = field(default_factory=dict)  # training run label -> its metrics.jsonl
    funnel: dict | None = None
    funnel_table: str | None = None  # the corpus stage's own markdown rendering of its funnel
    funnel_path: str | None = None
    funnel_error: str | None = None
    corpus_score: dict | None = None  # world.corpus_score: the corpus against the world's labels
    stage_times: dict[str, dict] = field(default_factory=dict)  # stage -> jobs, wall s, CPU s, peak RSS
    compare_rl: str | None = None  # the compare_rl folder (Figure 5), when `snakemake compare_rl` has run
    heldout: dict[str, dict] = field(default_factory=dict)  # base checkpoint -> eval.heldout_loss output
    heldout_files: dict[str, str] = field(default_factory=dict)  # base checkpoint -> its heldout_loss.json


# ---------------------------------------------------------------------------------------------------
# Reading


def parse_named(items: list[str], flag: str) -> dict[str, str]:
    """`NAME=PATH` arguments -> {NAME: PATH}; a malformed one is an error naming it."""
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"{flag} {item!r}: expected NAME=PATH")
        out[name] = path
    return out


def collect(cfg: dict, config_path: str, evals: dict[str, str], curves: dict[str, str],
            funnel: str | None = None, funnel_table: str | None = None, corpus_score: str | None = None,
            stage_times: str | None = None, heldout: dict[str, str] | None = None) -> ReportData:
    """Read the files the rule names: evals {"checkpoint:benchmark": metrics.json}, curves {run id:
    metrics.jsonl}, the corpus funnel (JSON + its markdown table), heldout {base checkpoint: heldout_loss.json}.
    A named file that is missing is "not run"."""
    benchmarks = (cfg.get("eval") or {}).get("benchmarks") or {}
    data = ReportData(name=cfg["name"], config_path=config_path)
    for name, spec in benchmarks.items():
        paper = (spec or {}).get("paper") or (name if name in ("gsm8k", "math") else None)
        if paper:
            data.paper_bench[name] = paper

    for key, path in evals.items():
        checkpoint, sep, benchmark = key.partition(":")
        if not sep:
            raise SystemExit(f"--eval {key}={path}: expected CHECKPOINT:BENCHMARK=PATH")
        data.expected.append((checkpoint, benchmark))
        if Path(path).exists():
            try:
                data.eval[(checkpoint, benchmark)] = json.loads(Path(path).read_text())
            except (OSError, ValueError) as e:
                raise ValueError(f"{path}: unreadable metrics file: {e}") from e

    for run, path in curves.items():
        label = TRAINING_RUNS.get(run, run)
        data.curve_files[label] = path
        if Path(path).exists():
            data.curves[label] = [r for r in read_jsonl(path, strict=False) if "step" in r]

    data.funnel_path = funnel
    if funnel and Path(funnel).exists():
        try:
            data.funnel = json.loads(Path(funnel).read_text())
        except ValueError as e:
            data.funnel_error = f"{funnel}: not valid JSON ({e})"
    if funnel_table and Path(funnel_table).exists():
        data.funnel_table = Path(funnel_table).read_text().strip()
    if corpus_score and Path(corpus_score).exists():
        data.corpus_score = json.loads(Path(corpus_score).read_text())
    if stage_times:
        data.stage_times = read_stage_times(Path(stage_times))
    for checkpoint, path in (heldout or {}).items():
        data.heldout_files[checkpoint] = path
        if Path(path).exists():
            try:
                data.heldout[checkpoint] = json.loads(Path(path).read_text())
            except ValueError as e:
                raise ValueError(f"{path}: unreadable held-out loss file: {e}") from e
    return data


def _ordered_checkpoints(names) -> list[str]:
    known = [c for c in CHECKPOINTS if c in names]
    return known + sorted(set(names) - set(known))


def _pct(x: float | None, se: float | None = None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f} ± {100 * se:.1f}" if se else f"{100 * x:.1f}"


# ---------------------------------------------------------------------------------------------------
# Markdown


def _eval_row(ckpt: str, bench: str, m: dict) -> str:
    se = m.get("stderr") or {}
    kmax = _kmax(m, "maj@k")
    maj = _pct(m["maj@k"][kmax], (se.get("maj@k") or {}).get(kmax)) + f" (K={kmax})" if kmax else "-"
    pas = _pct(m["pass@k"][kmax], (se.get("pass@k") or {}).get(kmax)) + f" (K={kmax})" if kmax else "-"
    p1 = _pct((m.get("pass@k") or {}).get("1"), (se.get("pass@k") or {}).get("1"))
    prompt = f"{m.get('prompt_layout', '?')}, {m.get('few_shot', 0)}-shot, {m.get('format', '?')}"
    return (f"| {ckpt} | {bench} | {_pct(m.get('greedy'), se.get('greedy'))} | {p1} | {maj} | {pas} | "
            f"{m.get('n', 0)} | {m.get('temperature', '-') if m.get('n') else '-'} | {prompt} | "
            f"{m.get('num_problems', '?')} |")


def section_funnel(data: ReportData, plots: dict[str, str]) -> list[str]:
    out = ["## 1. Corpus funnel per round (§2.1)", ""]
    if data.funnel_error:
        return out + [f"_Corpus funnel unreadable: {data.funnel_error}._", ""]
    if data.funnel is None:
        where = f"`{data.funnel_path}` does not exist" if data.funnel_path else "not part of this workflow"
        return out + [f"_Corpus stage not run: {where}._", ""]
    out.append(data.funnel_table or "_The corpus stage wrote no funnel table._")
    final = data.funnel.get("final")
    if final:
        out.append(f"Final corpus: {final['docs']:,} pages, {final['tokens']:,} tokens (words); "
                   f"converged at round {data.funnel.get('converged_at') or '-'}. "
                   "(Paper: 35.5M pages, 120B tokens after 4 rounds; round 4 kept ~98% of round 3.)")
    if "funnel" in plots:
        out += ["", f"![corpus per round]({plots['funnel']})"]
    return out + [""]


def section_training(data: ReportData, plots: dict[str, str]) -> list[str]:
    out = ["## 2. Training curves", ""]
    if not data.curves:
        return out + ["_No training run has written a metrics.jsonl yet (pretraining, SFT and RL not run)._", ""]
    out += ["| run | steps logged | last step | first loss | last loss | RL reward first → last | RL accuracy first → last |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for run in data.curve_files:
        rows = data.curves.get(run)
        if not rows:
            out.append(f"| {run} | not run | | | | | |")
            continue
        losses = [r["loss"] for r in rows if r.get("loss") is not None]
        rew = [r["reward_mean"] for r in rows if r.get("reward_mean") is not None]
        acc = [r["accuracy"] for r in rows if r.get("accuracy") is not None]

        def span(v, fmt="{:.3f}"):
            return f"{fmt.format(v[0])} → {fmt.format(v[-1])}" if v else "-"

        out.append(f"| {run} | {len(rows)} | {rows[-1]['step']} | {losses[0]:.4f} | {losses[-1]:.4f} | "
                   f"{span(rew)} | {span(acc)} |" if losses else
                   f"| {run} | {len(rows)} | {rows[-1]['step']} | - | - | {span(rew)} | {span(acc)} |")
    out.append("\nFrom " + ", ".join(f"`{p}`" for p in data.curve_files.values()) + ".")
    if "training" in plots:
        out += ["", f"![training curves]({plots['training']})"]
    return out + [""]


def section_table(data: ReportData, benchmarks: list[str]) -> list[str]:
    out = ["## 3. Every checkpoint on every benchmark", "",
           "Accuracy in % (± standard error over problems). Greedy = one temperature-0 completion; Pass@K "
           "(unbiased estimator) and Maj@K (majority vote over answer classes, averaged over K-subsets) "
           "from n samples at temperature T.", "",
           "| checkpoint | benchmark | greedy | Pass@1 | Maj@K | Pass@K | n | T | prompt | problems |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    ckpts = _ordered_checkpoints({c for c, _ in data.eval} | {c for c, _ in data.expected})
    for ckpt in ckpts:
        for bench in benchmarks:
            m = data.eval.get((ckpt, bench))
            if m is not None:
                out.append(_eval_row(ckpt, bench, m))
            elif (ckpt, bench) in data.expected:
                out.append(f"| {ckpt} | {bench} | not run | | | | | | | |")
    paper_rows = []
    for ckpt in ckpts:
        if ckpt not in PAPER:
            continue
        model, setting, nums = PAPER[ckpt]
        for bench in benchmarks:
            pb = data.paper_bench.get(bench)
            if pb in nums:
                paper_rows.append(f"| **paper**: {model} ({setting}) | {pb.upper()} (real) | {nums[pb]:.1f} | | | | | | | |")
    if paper_rows:
        out += ["| *the paper's numbers (7B models on the real benchmarks), for scale* | | | | | | | | | |"] + paper_rows
    out += ["", "Reproduce a row: `python -m eval --config " + data.config_path +
            " --checkpoint <checkpoint> --model <model dir> --benchmark <benchmark> --out <dir>`; the exact "
            "settings are in each evaluation's `metrics.json`.", ""]
    return out


def section_figure7(data: ReportData, benchmarks: list[str], plots: dict[str, str]) -> list[str]:
    out = ["## 4. Pass@K and Maj@K vs K: SFT vs RL (paper Figure 7)", ""]
    if "figure7" not in plots:
        return out + ["_Not run: needs sampled evaluations (n > 0) of both the sft and rl checkpoints._", ""]
    out += [f"![Figure 7]({plots['figure7']})", "",
            "The paper (§4.3, Figure 7, temperature 0.7): RL raises Maj@K but hardly Pass@K, i.e. it makes the "
            "output distribution more robust rather than adding capability. Ours:", "",
            "| benchmark | K | SFT Maj@K | RL Maj@K | Δ Maj@K | SFT Pass@K | RL Pass@K | Δ Pass@K |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for bench in benchmarks:
        s, r = data.eval.get(("sft", bench)), data.eval.get(("rl", bench))
        if not (s and r and s.get("maj@k") and r.get("maj@k")):
            continue
        for k in sorted(set(s["maj@k"]) & set(r["maj@k"]), key=int):
            dm = r["maj@k"][k] - s["maj@k"][k]
            dp = r["pass@k"][k] - s["pass@k"][k]
            out.append(f"| {bench} | {k} | {_pct(s['maj@k'][k])} | {_pct(r['maj@k'][k])} | {100 * dm:+.1f} | "
                       f"{_pct(s['pass@k'][k])} | {_pct(r['pass@k'][k])} | {100 * dp:+.1f} |")
    return out + [""]


def section_corpus_quality(data: ReportData, benchmarks: list[str], plots: dict[str, str]) -> list[str]:
    out = ["## 5. Corpus quality: mined corpus vs unfiltered web text (§2.2)", ""]
    rows = []
    for a, w in (("pretrain", "pretrain_web"), ("sft", "sft_web")):
        for bench in benchmarks:
            ma, mw = data.eval.get((a, bench)), data.eval.get((w, bench))
            if ma and mw:
                rows.append(f"| {a} vs {w} | {bench} | {_pct(ma['greedy'])} | {_pct(mw['greedy'])} | "
                            f"{100 * ((ma['greedy'] or 0) - (mw['greedy'] or 0)):+.1f} |")
    if not rows:
        return out + ["_Not run: needs the mined and the web-text checkpoints evaluated on the same benchmark "
                      "(stages.corpus_quality)._", ""]
    out += ["| models | benchmark | mined (greedy %) | web (greedy %) | Δ |", "|---|---|---:|---:|---:|"] + rows
    paper = [f"| **paper**: 1.3B, 150B tokens, few-shot CoT | {pb.upper()} (real) | "
             f"{PAPER_CORPUS['mined'][1][pb]:.1f} ({PAPER_CORPUS['mined'][0]}) | "
             f"{PAPER_CORPUS['web'][1][pb]:.1f} ({PAPER_CORPUS['web'][0]}) | "
             f"{PAPER_CORPUS['mined'][1][pb] - PAPER_CORPUS['web'][1][pb]:+.1f} |"
             for pb in sorted({data.paper_bench[b] for b in benchmarks if b in data.paper_bench})]
    if paper:
        out += ["| *the paper's Table 1 (its web-side corpus is OpenWebMath, not unfiltered web text)* | | | | |"] + paper
    if "corpus_quality" in plots:
        out += ["", f"![corpus quality]({plots['corpus_quality']})"]
    return out + [""]


def section_breakdown(data: ReportData, benchmarks: list[str]) -> list[str]:
    out = ["## 6. Breakdown by subject and level (greedy %)", ""]
    any_rows = False
    for bench in benchmarks:
        ckpts = [c for c in _ordered_checkpoints({c for c, b in data.eval if b == bench})
                 if (data.eval[(c, bench)].get("breakdown") or {})]
        if not ckpts:
            continue
        for key in ("subject", "level"):
            groups = sorted({g for c in ckpts for g in (data.eval[(c, bench)]["breakdown"].get(key) or {})},
                            key=lambda g: (len(g), g) if key == "level" else g)
            if not groups:
                continue
            any_rows = True
            out += [f"**{bench}, by {key}**", "", "| " + key + " | problems | " + " | ".join(ckpts) + " |",
                    "|---|---:|" + "---:|" * len(ckpts)]
            for g in groups:
                cells = []
                for c in ckpts:
                    b = data.eval[(c, bench)]["breakdown"].get(key, {}).get(g)
                    cells.append(_pct(b["greedy"]) if b else "-")
                n = next(data.eval[(c, bench)]["breakdown"][key][g]["num_problems"] for c in ckpts
                         if g in data.eval[(c, bench)]["breakdown"].get(key, {}))
                out.append(f"| {g} | {n} | " + " | ".join(cells) + " |")
            out.append("")
    if not any_rows:
        out += ["_No benchmark with subjects or levels has been evaluated._", ""]
    return out


def section_compare_rl(data: ReportData, out_dir: Path) -> list[str]:
    """The unified paradigm compared (§5.2.1, Figure 5): rl.compare's own table and figure, when run."""
    out = ["## 7. GRPO, PPO, RFT, Online RFT and DPO from the same SFT model (paper Figure 5)", ""]
    folder = Path(data.compare_rl) if data.compare_rl else None
    table = folder / "compare.md" if folder else None
    if not table or not table.exists():
        return out + ["_Not run: `snakemake compare_rl` (not part of `make run`) trains and evaluates every "
                      "method, then rerun the report._", ""]
    out.append(table.read_text().strip())
    figure = folder / "figure5.png"
    if figure.exists():
        out += ["", f"![Figure 5]({Path(os.path.relpath(figure, out_dir)).as_posix()})"]
    return out + [""]


def render_markdown(data: ReportData, plots: dict[str, str], out_dir: Path | None = None) -> str:
    benchmarks = sorted({b for _, b in data.eval} | {b for _, b in data.expected})
    head = [f"# mathpipe report: `{data.name}`", "",
            f"The DeepSeekMath recipe (Shao et al., 2024, arXiv 2402.03300) as run by config `{data.config_path}`. "
            f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
            "Rows marked **paper** are the paper's published numbers for its 7B/1.3B models on the real "
            "GSM8K/MATH test sets, printed for scale beside ours; every other number is ours.", ""]
    body = (section_headline(data, benchmarks) + section_funnel(data, plots) + section_training(data, plots) + section_table(data, benchmarks)
            + section_figure7(data, benchmarks, plots) + section_corpus_quality(data, benchmarks, plots)
            + section_breakdown(data, benchmarks) + section_compare_rl(data, out_dir or Path(".")))
    return "\n".join(head + body).rstrip() + "\n"


def render_html(markdown_text: str, title: str) -> str:
    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])
    # Cells never wrap (a wrapped number is misread); a table wider than the page scrolls on its own.
    body = body.replace("<table>", '<div class="wide"><table>').replace("</table>", "</table></div>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;line-height:1.45}"
             "table{border-collapse:collapse;margin:1em 0;font-size:.9em}"
             "th,td{border:1px solid #ccc;padding:.25em .6em;white-space:nowrap}th{background:#f3f3f3}"
             ".wide{overflow-x:auto}"
             "img{max-width:100%}code{background:#f6f6f6;padding:0 .2em}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style>"
            f"</head><body>\n{body}\n</body></html>\n")


# ---------------------------------------------------------------------------------------------------


def write_report(data: ReportData, out: Path, plot_dir: Path | None = None) -> dict[str, Path]:
    """Plot and render what `collect` read; write report.md, report.html and report/*.png (the plots
    folder atomically)."""
    benchmarks = sorted({b for _, b in data.eval} | {b for _, b in data.expected})
    plot_dir = plot_dir or out.parent / out.stem
    with atomic_path(plot_dir) as tmp:
        tmp.mkdir(parents=True)
        made = {
            "funnel": data.funnel is not None and plot_funnel(data.funnel, tmp / "funnel.png"),
            "training": plot_training(data.curves, tmp / "training.png"),
            "figure7": plot_figure7(data, benchmarks, tmp / "figure7.png"),
            "corpus_quality": plot_corpus_quality(data, benchmarks, tmp / "corpus_quality.png"),
        }
        rel = Path(os.path.relpath(plot_dir, out.parent)).as_posix()  # the page links its plots relatively
        plots = {name: f"{rel}/{name}.png" for name, ok in made.items() if ok}
    md = render_markdown(data, plots, out.parent)
    write_text(out, md)
    html = out.with_suffix(".html")
    write_text(html, render_html(md, f"mathpipe report: {data.name}"))
    log.info("report: %s, %s, %d plots in %s (%d evaluations, %d training runs, funnel %s)", out, html,
             len(plots), plot_dir, len(data.eval), len(data.curves), "yes" if data.funnel else "no")
    return {"md": out, "html": html, "plots": plot_dir}


def main(argv: list[str] | None = None) -> dict[str, Path]:
    p = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="experiment config (e.g. results/tiny/config.yaml)")
    p.add_argument("--out", required=True, help="report.md path; report.html goes beside it")
    p.add_argument("--plots", help="folder for the PNG plots [beside --out, named after it: report/]")
    p.add_argument("--eval", nargs="*", default=[], metavar="CHECKPOINT:BENCHMARK=PATH",
                   help="metrics.json of each evaluation the report shows")
    p.add_argument("--curves", nargs="*", default=[], metavar="RUN=PATH",
                   help=f"metrics.jsonl of each training run ({', '.join(TRAINING_RUNS)} or any name)")
    p.add_argument("--funnel", help="the corpus stage's funnel.json")
    p.add_argument("--funnel-table", help="the corpus stage's funnel.md")
    p.add_argument("--corpus-score", help="world.corpus_score's JSON (the embedded default only)")
    p.add_argument("--stage-times", help="the workflow's folder of Snakemake benchmark files (*.tsv per job)")
    p.add_argument("--heldout", nargs="*", default=[], metavar="CHECKPOINT=PATH",
                   help="heldout_loss.json of each base model (pretrain, pretrain_web): held-out math-text loss")
    p.add_argument("--compare-rl", help="compare_rl's folder (figure5.png, compare.md), shown when present")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(args.config)
    out = Path(args.out)
    if out.suffix != ".md":
        raise SystemExit(f"--out must name a .md file, got {out}")
    data = collect(cfg, args.config, parse_named(args.eval, "--eval"), parse_named(args.curves, "--curves"),
                   args.funnel, args.funnel_table, args.corpus_score, args.stage_times,
                   parse_named(args.heldout, "--heldout"))
    data.compare_rl = args.compare_rl
    return write_report(data, out, Path(args.plots) if args.plots else None)


if __name__ == "__main__":
    main()
