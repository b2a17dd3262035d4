"""`python -m rl.compare`: the paper's Figure 5 on this engine — every method of the unified view trained
from the same SFT checkpoint, evaluated along the way (rule `compare_rl`, pipeline/rules/compare_rl.smk).

    python -m rl.compare train    --config C --method grpo --init SFT_MODEL --out ROOT/grpo/run
    python -m rl.compare evaluate --config C --method grpo --root ROOT          # or --method init --init SFT_MODEL
    python -m rl.compare report   --config C --root ROOT

`train`: the config's rl section, with `rl.compare.overrides[method]` on top, `algorithm` = the method,
`steps` = compare.steps and a policy snapshot every compare.eval_every steps — so every method sees the same
questions in the same order and samples the same number of outputs per step (prompts_per_step x G).
`evaluate`: each snapshot (and, for `init`, the SFT model as step 0) on every benchmark of the eval section
with compare.eval's settings (greedy and Maj@n), through the evaluation stage (eval.run); writes
ROOT/<method>/eval.json. `report`: ROOT/figure5.png (accuracy against step per method and split, greedy and
Maj@n, with binomial standard errors sqrt(p(1-p)/problems)), ROOT/compare.md (the same numbers as tables,
plus peak memory (RSS) and seconds per step of every method, PPO against GRPO at equal G and batch) and
ROOT/compare.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
from pathlib import Path

from eval.run import main as eval_main
from pipeline.config import load_config, set_threads, setup_logging, validate
from pipeline.io import write_json
from rl.train import run as train_run

log = logging.getLogger("rl.compare")


def method_config(cfg: dict, method: str) -> dict:
    """The resolved config of one method's run (validated with the rl schema)."""
    cmp = cfg["rl"]["compare"]
    rl = {k: v for k, v in cfg["rl"].items() if k != "compare"}
    rl.update(copy.deepcopy(cmp["overrides"].get(method, {})))
    rl.update({"algorithm": method, "steps": cmp["steps"], "snapshot_every": cmp["eval_every"]})
    if method != "grpo":
        rl["supervision"] = "outcome"  # process supervision is GRPO's
    return validate({**cfg, "rl": rl}, source=f"rl.compare ({method})")


def eval_steps(cmp: dict) -> list[int]:
    steps = list(range(cmp["eval_every"], cmp["steps"] + 1, cmp["eval_every"]))
    return steps if steps and steps[-1] == cmp["steps"] else [*steps, cmp["steps"]]


def evaluate(config: str, cfg: dict, method: str, root: Path, init: str | None, threads: int) -> dict:
    cmp = cfg["rl"]["compare"]
    ev = cmp["eval"]
    if method == "init":
        models = {0: Path(init)}
    else:
        run = root / method / "run"
        models = {s: run / "snapshots" / f"step-{s:08d}" for s in eval_steps(cmp)}
        models[cmp["steps"]] = run / "model"  # the final model (= the last snapshot)
    out: dict = {}
    for step, model in sorted(models.items()):
        out[step] = {}
        for bench in cfg["eval"]["benchmarks"]:
            argv = ["--config", config, "--checkpoint", "rl", "--model", str(model), "--benchmark", bench,
                    "--out", str(root / method / "eval" / f"step-{step:08d}" / bench), "--n", str(ev["n"]),
                    "--k", str(ev["n"]), "--temperature", str(ev["temperature"]),
                    "--max-new-tokens", str(ev["max_new_tokens"]), "--threads", str(threads)]
            if ev["limit"]:
                argv += ["--limit", str(ev["limit"])]
            m = eval_main(argv)
            out[step][bench] = {"greedy": m["greedy"], "maj": m["maj@k"][str(ev["n"])], "n": ev["n"],
                                "problems": m["data"]["num_problems"]}
    write_json(root / method / "eval.json", {"method": method, "steps": out})
    return out


def std_err(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def collect(cfg: dict, root: Path) -> dict:
    """method -> {"curve": {bench: [(step, greedy, se, maj, se)]}, "run": summary} with the SFT model as step 0."""
    init = json.loads((root / "init" / "eval.json").read_text())["steps"]["0"]
    out = {}
    for method in cfg["rl"]["compare"]["methods"]:
        ev = json.loads((root / method / "eval.json").read_text())["steps"]
        curve: dict = {}
        for step, benches in sorted([("0", init), *ev.items()], key=lambda x: int(x[0])):
            for bench, m in benches.items():
                n = int(m["problems"] or 0)
                curve.setdefault(bench, []).append((int(step), m["greedy"], std_err(m["greedy"], n), m["maj"],
                                                    std_err(m["maj"], n), n))
        run = json.loads((root / method / "run" / "run.json").read_text()).get("summary", {})
        out[method] = {"curve": curve, "run": run}
    return out


def write_figure(data: dict, n: int, path: Path) -> None:
    import matplotlib  # optional and heavy: only the report step draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = sorted({b for d in data.values() for b in d["curve"]})
    fig, axes = plt.subplots(2, len(benches), figsize=(5 * len(benches), 7), squeeze=False)
    for col, bench in enumerate(benches):
        for row, (label, k) in enumerate((("greedy", 1), (f"Maj@{n}", 3))):
            ax = axes[row][col]
            for method, d in data.items():
                pts = d["curve"].get(bench, [])
                ax.errorbar([p[0] for p in pts], [100 * p[k] for p in pts], yerr=[100 * p[k + 1] for p in pts],
                            marker="o", capsize=3, label=method)
            ax.set_xticks(sorted({p[0] for d in data.values() for p in d["curve"].get(bench, [])}))
            ax.set_title(f"{bench}: {label}")
            ax.set_xlabel("training step")
            ax.set_ylabel("accuracy (%)")
            ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.suptitle("Figure 5 (DeepSeekMath §5.2.1): the methods of the unified view from one SFT model")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(data: dict, cfg: dict, path: Path) -> None:
    rc, cmp = cfg["rl"], cfg["rl"]["compare"]
    ev = cmp["eval"]
    lines = ["# RL methods compared (Figure 5)\n",
             f"Every method from the same SFT model, {cmp['steps']} steps of {rc['prompts_per_step']} questions x "
             f"G {rc['group_size']} (the same questions in the same order), evaluated every {cmp['eval_every']} "
             f"steps on {ev['limit'] or 'all'} problems per split: greedy and Maj@{ev['n']} (T {ev['temperature']}). "
             "Accuracy in %, +- one binomial standard error.\n"]
    benches = sorted({b for d in data.values() for b in d["curve"]})
    for bench in benches:
        steps = sorted({p[0] for d in data.values() for p in d["curve"].get(bench, [])})
        lines += [f"\n## {bench}\n", "| method | " + " | ".join(f"step {s}" for s in steps) + " |",
                  "|---|" + "---|" * len(steps)]
        for method, d in data.items():
            by = {p[0]: p for p in d["curve"].get(bench, [])}
            cells = [f"{100 * by[s][1]:.1f}+-{100 * by[s][2]:.1f} / {100 * by[s][3]:.1f}+-{100 * by[s][4]:.1f}"
                     if s in by else "-" for s in steps]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append(f"\n(cells: greedy / Maj@{ev['n']})")
    lines += ["\n## Memory and speed (same G, batch and machine)\n",
              "| method | peak RSS (MB) | trained / frozen parameters | s/step | training s/step (without sampling) "
              "| sampling + scoring s/step |", "|---|---|---|---|---|---|"]
    for method, d in data.items():
        r = d["run"]
        params = f"{r.get('trained_parameters', 0) / 1e6:.2f}M / {r.get('frozen_parameters', 0) / 1e6:.2f}M"
        lines.append(f"| {method} | {r.get('peak_rss_mb', float('nan')):.0f} | {params} | "
                     f"{r.get('step_s_mean', float('nan')):.2f} | {r.get('train_s_mean', float('nan')):.2f} | "
                     f"{r.get('data_s_mean', float('nan')):.2f} |")
    if "ppo" in data and "grpo" in data:
        p, g = data["ppo"]["run"], data["grpo"]["run"]
        if g.get("peak_rss_mb") and g.get("step_s_mean"):
            lines.append(f"\nPPO ({rc['ppo']['value_model']} value model) against GRPO: "
                         f"{p.get('peak_rss_mb', 0) / g['peak_rss_mb']:.2f}x the peak memory, "
                         f"{p.get('step_s_mean', 0) / g['step_s_mean']:.2f}x the seconds per step "
                         f"({p.get('train_s_mean', 0) / max(g.get('train_s_mean', 0), 1e-9):.2f}x the training time "
                         "without sampling). Peak RSS includes the interpreter, torch and generation buffers; with a "
                         "small model the difference in weights and optimizer state is what the parameter column shows. "
                         "Step times are from runs that may have shared the CPU with other jobs.")
    path.write_text("\n".join(lines) + "\n")


def report(cfg: dict, root: Path) -> dict:
    data = collect(cfg, root)
    n = cfg["rl"]["compare"]["eval"]["n"]
    write_figure(data, n, root / "figure5.png")
    write_markdown(data, cfg, root / "compare.md")
    write_json(root / "compare.json", data)
    return data


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["train", "evaluate", "report"])
    p.add_argument("--config", required=True)
    p.add_argument("--method", help="grpo, ppo, dpo, rft, online_rft (evaluate: also init, the SFT model)")
    p.add_argument("--init", help="the SFT model (train; evaluate --method init)")
    p.add_argument("--out", help="train: the run folder")
    p.add_argument("--root", help="evaluate/report: the comparison's folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    set_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    if args.command == "train":
        train_run(method_config(cfg, args.method), args.init, args.out)
    elif args.command == "evaluate":
        evaluate(args.config, cfg, args.method, Path(args.root), args.init, args.threads)
    else:
        report(cfg, Path(args.root))


if __name__ == "__main__":
    main()
