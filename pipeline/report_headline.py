"""The report's first section: the numbers that matter, each with a verdict against the paper, and the
time per stage from Snakemake's benchmark files (pipeline/report.py puts it first)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.report import ReportData


def read_stage_times(folder: Path) -> dict[str, dict]:
    """Snakemake's benchmark files (one TSV per job: wall s, CPU s, peak RSS) summed per stage; the stage
    is the first part of the job's path under `folder` (world_web.tsv, corpus_extract_0001.tsv,
    sft/mined.tsv, eval/rl/world_math.tsv -> world, corpus, sft, eval)."""
    stages: dict[str, dict] = {}
    for path in sorted(folder.rglob("*.tsv")):
        rel = path.relative_to(folder)
        stage = rel.parts[0].split("_")[0] if len(rel.parts) > 1 else rel.stem.split("_")[0]
        lines = path.read_text().strip().splitlines()
        if len(lines) < 2:
            continue
        row = dict(zip(lines[0].split("\t"), lines[-1].split("\t")))
        st = stages.setdefault(stage, {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0, "max_rss_mb": 0.0})
        st["jobs"] += 1
        for key, col in (("wall_s", "s"), ("cpu_s", "cpu_time")):
            try:
                st[key] += float(row.get(col, "nan"))
            except ValueError:
                pass
        try:
            st["max_rss_mb"] = max(st["max_rss_mb"], float(row.get("max_rss", "0")))
        except ValueError:
            pass
    return stages


def _kmax(m: dict, key: str) -> str | None:
    ks = [k for k in (m.get(key) or {})]
    return max(ks, key=int) if ks else None


def _per_problem(m: dict, key: str, k: str | None) -> dict | None:
    pp = m.get("per_problem") or {}
    values = pp.get(key) if k is None else (pp.get(key) or {}).get(k)
    if not pp.get("ids") or values is None or len(values) != len(pp["ids"]):
        return None
    return {pid: v for pid, v in zip(pp["ids"], values) if v is not None}


def _diff(a: dict | None, b: dict | None, key: str, k: str | None = None) -> tuple[float, float] | None:
    """(b - a, standard error of the difference) of a metric of two evaluations, in points.

    When both evaluations carry per-problem values for the same problems (eval/metrics.py `per_problem`),
    the difference is paired: the mean of d_i = b_i - a_i and sd(d) / sqrt(n) (sd with n - 1), which removes
    the problem-to-problem variation the two share (a problem easy for one is mostly easy for the other).
    Otherwise (an older metrics.json, different problems) the two are treated as independent,
    sqrt(se_a^2 + se_b^2): larger when the evaluations are positively correlated, as two checkpoints of
    one model are."""
    if not a or not b:
        return None
    pa, pb = _per_problem(a, key, k), _per_problem(b, key, k)
    if pa and pb and pa.keys() == pb.keys() and len(pa) > 1:
        d = [pb[pid] - pa[pid] for pid in pa]
        return 100 * statistics.fmean(d), 100 * statistics.stdev(d) / len(d) ** 0.5

    def get(m):
        v = m.get(key) if k is None else (m.get(key) or {}).get(k)
        se = (m.get("stderr") or {}).get(key) if k is None else ((m.get("stderr") or {}).get(key) or {}).get(k)
        return v, se

    (va, sa), (vb, sb) = get(a), get(b)
    if va is None or vb is None:
        return None
    return 100 * (vb - va), 100 * ((sa or 0) ** 2 + (sb or 0) ** 2) ** 0.5


def _fmt_diff(d: tuple[float, float] | None) -> str:
    return "-" if d is None else f"{d[0]:+.1f} ± {d[1]:.1f}"


def _verdict(d: tuple[float, float] | None, expect_up: bool = True) -> str:
    """Where a difference stands against a paper that found it positive."""
    if d is None:
        return "not measured"
    diff, se = d
    if abs(diff) <= 2 * (se or 0):
        return "within two standard errors of zero: no measurable difference"
    if (diff > 0) == expect_up:
        return "agrees with the paper (more than two standard errors)"
    return "**disagrees with the paper** (the other way, more than two standard errors)"


def heldout_difference(mined: dict, web: dict) -> dict:
    """The two arms' held-out loss and their paired difference, from eval.heldout_loss's outputs on the same
    documents with the same tokenizer (`per_document`: [nll_sum, tokens] in file order).

    With a_i, b_i the NLL sums (nats) of document i under the mined and the web model, t_i its scored tokens
    (the same in both arms), n documents and T = sum t_i:
      X = sum a_i / T and Y = sum b_i / T (nats/token, each arm's loss over all tokens);
      D = X - Y = sum (a_i - b_i) / T, the mean per-document difference d_i = (a_i - b_i) / t_i weighted by
          the documents' tokens;
      SE(D) = sqrt(sum z_i^2 / (n (n - 1))), z_i = (a_i - b_i - D t_i) / (T / n): the standard error of
          that weighted mean over documents (the ratio estimator's linearization). With documents of equal
          length it is exactly sd(d_i) / sqrt(n) (sd with n - 1), the standard error of the mean
          per-document difference in nats/token.
    Paired, so what the documents share (their difficulty) cancels. A mismatch in document count or
    tokens per document (other data or another tokenizer) raises ValueError."""
    pa, pb = mined["per_document"], web["per_document"]
    if len(pa) != len(pb) or any(int(x[1]) != int(y[1]) for x, y in zip(pa, pb)):
        raise ValueError(f"held-out loss: the arms scored different documents or tokens ({len(pa)} vs {len(pb)} "
                         "documents); both must use the same data, limit and tokenizer")
    n, total = len(pa), sum(int(t) for _, t in pa)
    if n < 2 or total == 0:
        raise ValueError(f"held-out loss: {n} documents, {total} tokens - a standard error needs 2+ documents")
    diff = sum(a - b for (a, _), (b, _) in zip(pa, pb)) / total
    mean_t = total / n
    z2 = sum(((a - b - diff * t) / mean_t) ** 2 for (a, t), (b, _) in zip(pa, pb))
    return {"mined": sum(a for a, _ in pa) / total, "web": sum(b for b, _ in pb) / total, "diff": diff,
            "se": (z2 / (n * (n - 1))) ** 0.5, "documents": n, "tokens": total}


def _heldout_row(data: ReportData) -> str | None:
    """The held-out loss row: mined vs web nats/token, the paired difference and its verdict."""
    files = data.heldout_files
    if not {"pretrain", "pretrain_web"} <= set(files):  # no web arm (stages.corpus_quality off): no difference
        return None
    finding = "corpus quality, held-out math-text loss, mined vs web"
    paper = "its corpus ahead (Table 1; no loss given)"
    missing = [c for c in ("pretrain", "pretrain_web") if c not in data.heldout]
    if missing:
        return f"| {finding} | not run: {', '.join(f'`{files[c]}`' for c in missing)} | {paper} | not measured |"
    h = heldout_difference(data.heldout["pretrain"], data.heldout["pretrain_web"])
    d = (h["diff"], h["se"])
    if abs(h["diff"]) <= 2 * h["se"]:
        verdict = "within two standard errors of zero: no measurable difference"
    elif h["diff"] < 0:
        verdict = "agrees with the paper (mined lower, more than two standard errors)"
    else:
        verdict = "**disagrees with the paper** (web lower, more than two standard errors)"
    return (f"| {finding} ({h['documents']} docs, {h['tokens']:,} tokens) | {h['mined']:.3f} vs "
            f"{h['web']:.3f} nats/token, difference {d[0]:+.3f} ± {d[1]:.3f} | {paper} | {verdict} |")


def _pass_verdict(dp: tuple[float, float] | None, dm: tuple[float, float] | None) -> str:
    """Pass@K after RL against the paper's Figure 7, where it hardly moves while Maj@K rises."""
    if dp is None or dm is None:
        return "not measured"
    if abs(dp[0]) <= 2 * dp[1]:
        return "hardly moves (within two standard errors), as in the paper"
    if dp[0] < 0:
        return "**falls** by more than two standard errors (the paper's hardly moves): RL narrowed what it samples"
    if dp[0] < dm[0]:
        return "rises, but less than Maj@K (the paper: Maj@K gains, Pass@K hardly moves)"
    return "**rises more than Maj@K, unlike the paper**"


def process_steps_change(rows: list[dict], min_steps: int = 20) -> tuple[int, float, float, float] | None:
    """(window, first, last, s.e. of last - first) of `reward/process_steps` (the share of right equation
    steps in the rollouts) over the first and last fifth of the RL steps (at least 10 each); the s.e. treats
    the steps of each window as independent draws. None with fewer than `min_steps` steps."""
    pts = [float(r["reward/process_steps"]) for r in rows if r.get("reward/process_steps") is not None]
    if len(pts) < min_steps:
        return None
    w = max(10, len(pts) // 5)
    a, b = pts[:w], pts[-w:]
    se = (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5
    return w, statistics.fmean(a), statistics.fmean(b), se


def _process_steps_row(rows: list[dict]) -> str | None:
    got = process_steps_change(rows)
    if got is None:
        return None
    w, first, last, se = got
    d = (100 * (last - first), 100 * se)
    if abs(d[0]) <= 2 * d[1]:
        verdict = "within two standard errors: RL did not change how often the policy's arithmetic is right"
    elif d[0] > 0:
        verdict = "up: the policy's arithmetic got better during RL"
    else:
        verdict = "**down**: RL made the policy's arithmetic worse"
    return (f"| RL training: right equation steps in the rollouts (the process reward's rule), first → last {w} "
            f"steps | {first:.3f} → {last:.3f} ({_fmt_diff(d)} points) | not reported (its step rewards come from "
            f"a learned reward model, §4.1.3) | {verdict} |")


def section_headline(data: ReportData, benchmarks: list[str]) -> list[str]:
    """The numbers that matter, each with one sentence on agreement or disagreement with the paper."""
    out = ["## The numbers that matter", ""]
    rows = ["| finding | ours | the paper | verdict |", "|---|---|---|---|"]
    cs = data.corpus_score
    if cs:
        rows.append(f"| corpus: precision / recall of math pages (world labels) | {cs['precision']:.3f} / "
                    f"{cs['recall']:.3f} | no labels (a fastText classifier, 4 rounds) | "
                    f"{'meets' if (cs['precision'] or 0) >= 0.9 and (cs['recall'] or 0) >= 0.9 else 'misses'} "
                    "the 0.9 / 0.9 target |")
        rows.append(f"| corpus: near-dup clusters collapsed, contaminated pages removed | "
                    f"{cs['near_dup_clusters_collapsed']}/{cs['near_dup_clusters']}, "
                    f"{cs['contaminated_removed']}/{cs['contaminated_pages']} | MinHash not stated; all "
                    "benchmark 10-gram matches removed | "
                    f"{'all removed' if cs['contaminated_removed'] == cs['contaminated_pages'] else '**contamination leaked**'} |")
    if data.funnel and data.funnel.get("rounds"):
        conv = data.funnel.get("converged_at")
        rows.append(f"| corpus: rounds to converge | {conv or 'not converged'} | 4 (round 4 kept ~98% of round 3) | "
                    f"{'agrees' if conv and int(conv) <= 4 else 'differs'} |")
    for bench in benchmarks:
        pb = data.paper_bench.get(bench)
        for a, w, stage, paper_gap in (("pretrain", "pretrain_web", "base, few-shot",
                                        {"gsm8k": 12.3, "math": 4.7}.get(pb)),
                                       ("sft", "sft_web", "after the same SFT", None)):
            d = _diff(data.eval.get((w, bench)), data.eval.get((a, bench)), "greedy")
            if d is None:
                continue
            paper = (f"mined ahead by {paper_gap:+.1f} (Table 1, 1.3B)" if paper_gap is not None
                     else "mined ahead (Table 1, base models only)")
            rows.append(f"| corpus quality, {bench}, {stage}: mined − web greedy | {_fmt_diff(d)} | {paper} | "
                        f"{_verdict(d)} |")
    heldout = _heldout_row(data)
    if heldout:
        rows.append(heldout)
    paper_rl = {"gsm8k": "82.9 → 88.2 (+5.3)", "math": "46.8 → 51.7 (+4.9)"}
    for bench in benchmarks:
        sft, rl = data.eval.get(("sft", bench)), data.eval.get(("rl", bench))
        if not (sft and rl):
            continue
        pb = data.paper_bench.get(bench)
        d = _diff(sft, rl, "greedy")
        rows.append(f"| RL, {bench}: greedy RL − SFT | {_fmt_diff(d)} | {paper_rl.get(pb, 'up')} (Table 5) | "
                    f"{_verdict(d)} |")
        kmax = _kmax(sft, "maj@k") if rl.get("maj@k") else None
        if kmax:
            dm, dp = _diff(sft, rl, "maj@k", kmax), _diff(sft, rl, "pass@k", kmax)
            rows.append(f"| RL, {bench}: Maj@{kmax} RL − SFT | {_fmt_diff(dm)} | up (Figure 7) | {_verdict(dm)} |")
            rows.append(f"| RL, {bench}: Pass@{kmax} RL − SFT | {_fmt_diff(dp)} | hardly moves (Figure 7) | "
                        f"{_pass_verdict(dp, dm)} |")
    steps_row = _process_steps_row(data.curves.get("rl") or [])
    if steps_row:
        rows.append(steps_row)
    if len(rows) == 2:
        out.append("_Nothing measured yet._")
    else:
        out += rows + ["", "Differences are in points of accuracy, ± the standard error of the difference over "
                       "problems: paired (the s.e. of the mean per-problem difference) where both evaluations "
                       "list per-problem results for the same problems, else the two treated as independent. "
                       "\"Within two standard errors\" "
                       "means this run cannot tell the difference from noise. The held-out loss difference is "
                       "in nats/token, mined − web, ± the standard error of the token-weighted mean "
                       "per-document difference (paired over documents; pipeline/report_headline.py, "
                       "`heldout_difference`)."]
    if data.stage_times:
        order = ["world", "corpus", "pretrain", "sft", "rl", "eval", "report"]
        stages = sorted(data.stage_times, key=lambda x: (order.index(x) if x in order else len(order), x))
        total_wall = sum(st["wall_s"] for st in data.stage_times.values())
        # Snakemake samples CPU time every few seconds and misses most of a short job's, so it is not shown.
        out += ["", "**Time per stage** (Snakemake's benchmark files; jobs of a stage may run side by side, so "
                "their wall times add up to more than the stage took; peak RSS is sampled):", "",
                "| stage | jobs | wall s (sum) | wall min (sum) | peak RSS MB |", "|---|---:|---:|---:|---:|"]
        for stage in stages:
            st = data.stage_times[stage]
            out.append(f"| {stage} | {st['jobs']} | {st['wall_s']:.0f} | {st['wall_s'] / 60:.1f} | "
                       f"{st['max_rss_mb']:.0f} |")
        out.append(f"| all | {sum(st['jobs'] for st in data.stage_times.values())} | {total_wall:.0f} | "
                   f"{total_wall / 60:.1f} | |")
    return out + [""]
