"""The report's plots (matplotlib, PNG): corpus funnel, training curves, Figure 7 (Pass@K / Maj@K vs K),
corpus quality. Each returns False, drawing nothing, when its data is missing (pipeline/report.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.report import ReportData

log = logging.getLogger("pipeline.report")


def _pyplot():
    # Imported on first plot only: matplotlib costs ~1 s and the Agg backend must be chosen before pyplot.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_funnel(funnel: dict, path: Path) -> bool:
    """Kept pages and tokens per corpus round (paper §2.1: the corpus grows round by round)."""
    rounds = funnel.get("rounds") or []
    if not rounds:
        return False
    plt = _pyplot()
    xs = [int(r["round"]) for r in rounds]
    fig, ax1 = plt.subplots(figsize=(6, 3.6))
    ax1.bar([x - 0.2 for x in xs], [r["kept_docs"] for r in rounds], width=0.4, color="tab:blue", label="kept pages")
    ax1.set_xlabel("round")
    ax1.set_ylabel("kept pages", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.bar([x + 0.2 for x in xs], [r["kept_tokens"] for r in rounds], width=0.4, color="tab:orange",
            label="kept tokens")
    ax2.set_ylabel("kept tokens (words)", color="tab:orange")
    # Under each round: the share of its pages that the previous round had kept (the convergence signal).
    labels = [f"{x}" if r.get("overlap_with_previous") is None else f"{x}\n{100 * r['overlap_with_previous']:.0f}% kept before"
              for x, r in zip(xs, rounds)]
    ax1.set_xticks(xs)
    ax1.set_xticklabels(labels, fontsize=8)
    ax1.set_title("Mined corpus per round")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what exists so far)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def plot_training(curves: dict[str, list[dict]], path: Path) -> bool:
    """Loss vs step for pretraining and SFT (mined vs web); for RL, accuracy and the total reward on one
    axis and each reward term (e.g. the process reward) beside them, smoothed over 10 steps with the raw
    points faint behind, so that curves that coincide (an outcome-only reward equals accuracy) stay visible."""
    if not curves:
        return False
    plt = _pyplot()
    panels = [("pretraining loss", ["pretrain (mined)", "pretrain (web)"], "loss"),
              ("SFT loss", ["sft (mined)", "sft (web)"], "loss"),
              ("RL: reward and accuracy per step", ["rl"], None)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, (title, runs, key) in zip(axes, panels):
        drawn = False
        for run in runs:
            rows = curves.get(run) or []
            if key is None:
                terms = sorted({k for r in rows for k in r if k.startswith("reward/")})
                series = [("accuracy", "accuracy", "tab:green", "-", 2.2), ("reward_mean", "reward (total)", "tab:red",
                                                                            "--", 1.6)]
                series += [(t, t.replace("reward/", "reward: "), c, ":", 1.4)
                           for t, c in zip(terms, ["tab:purple", "tab:brown", "tab:gray", "tab:olive"])]
                for k, label, color, style, width in series:
                    pts = [(r["step"], r[k]) for r in rows if r.get(k) is not None]
                    if not pts:
                        continue
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, color=color, alpha=0.18, linewidth=0.8)
                    ax.plot(xs, _smooth(list(ys), 10), style, color=color, linewidth=width, label=label)
                    drawn = True
            else:
                pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), label=run.split(" ", 1)[-1].strip("()") if len(runs) > 1 else run)
                    drawn = True
        ax.set_title(title)
        ax.set_xlabel("step")
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="gray")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_figure7(data: ReportData, benchmarks: list[str], path: Path) -> bool:
    """Pass@K and Maj@K vs K, SFT vs RL, one panel per benchmark (the paper's Figure 7)."""
    panels = [b for b in benchmarks if any((c, b) in data.eval and data.eval[(c, b)].get("maj@k")
                                           for c in ("sft", "rl"))]
    if not panels:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    colors = {"sft": "tab:blue", "rl": "tab:red"}
    for ax, bench in zip(axes[0], panels):
        for ckpt in ("sft", "rl"):
            m = data.eval.get((ckpt, bench))
            if not m or not m.get("maj@k"):
                continue
            ks = sorted(int(k) for k in m["maj@k"])
            ax.plot(ks, [100 * m["maj@k"][str(k)] for k in ks], "-o", color=colors[ckpt], label=f"{ckpt.upper()} Maj@K")
            ax.plot(ks, [100 * m["pass@k"][str(k)] for k in ks], "--s", color=colors[ckpt], label=f"{ckpt.upper()} Pass@K")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("K: number of candidates")
        ax.set_ylabel("accuracy (%)")
        m = data.eval.get(("rl", bench)) or data.eval.get(("sft", bench))
        ax.set_title(f"{bench} (n={m['n']}, T={m['temperature']})")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_corpus_quality(data: ReportData, benchmarks: list[str], path: Path) -> bool:
    """Greedy accuracy of the mined-corpus vs the web-text models (§2.2), per benchmark."""
    pairs = [("pretrain", "pretrain_web"), ("sft", "sft_web")]
    rows = [(b, a, w) for b in benchmarks for a, w in pairs if (a, b) in data.eval and (w, b) in data.eval]
    if not rows:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(rows)), 3.6))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [100 * (data.eval[(a, b)]["greedy"] or 0) for b, a, _ in rows], 0.4,
           label="mined corpus", color="tab:green")
    ax.bar([x + 0.2 for x in xs], [100 * (data.eval[(w, b)]["greedy"] or 0) for b, _, w in rows], 0.4,
           label="unfiltered web text", color="tab:gray")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{a}\n{b}" for b, a, _ in rows], fontsize=8)
    ax.set_ylabel("greedy accuracy (%)")
    ax.set_title("Corpus quality: mined vs web (§2.2)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
