"""The corpus funnel (documents and tokens per step per round, dropped by reason), built only from
the stats files the steps wrote (datatrove's README funnel; paper §2.1 reports the mined corpus's
size per round). Writes `corpus/funnel.json` and the markdown table `corpus/funnel.md` for the report.

    python -m corpus.funnel --config C --stats <step stats files in pipeline order> --states round*/state.json
        --decontam pool/shard-*.decontam.jsonl --json corpus/funnel.json --markdown corpus/funnel.md
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from corpus.cli import parser, setup
from corpus.filters import StepStats
from corpus.rounds import load_state
from pipeline.io import read_jsonl, write_json, write_text

log = logging.getLogger(__name__)

COUNTS = ("docs_in", "docs_out", "tokens_in", "tokens_out")


def aggregate(stats_files: list[str | Path]) -> list[dict]:
    """Sum per-shard stats into one row per (step, round), in the order the steps first appear."""
    rows: dict[tuple[str, int], dict] = {}
    for path in stats_files:
        s = StepStats.load(path)
        key = (s["step"], int(s["round"]))
        row = rows.setdefault(key, {"step": s["step"], "round": int(s["round"]), **dict.fromkeys(COUNTS, 0),
                                    "dropped": Counter(), "dropped_tokens": Counter(), "errors": [], "files": 0,
                                    "carried_over_from": None})
        for k in COUNTS:
            row[k] += int(s.get(k) or 0)
        row["dropped"].update(s.get("dropped", {}))
        row["dropped_tokens"].update(s.get("dropped_tokens", {}))
        row["errors"] += s.get("errors", [])
        row["files"] += 1
        row["carried_over_from"] = (s.get("extra") or {}).get("carried_over_from", row["carried_over_from"])
    out = []
    for row in rows.values():
        dropped = sum(row["dropped"].values())
        if row["docs_in"] != row["docs_out"] + dropped:
            raise ValueError(f"funnel: step {row['step']} round {row['round']}: docs_in {row['docs_in']} != "
                             f"docs_out {row['docs_out']} + dropped {dropped} (a stats file is inconsistent)")
        row["dropped"] = dict(sorted(row["dropped"].items()))
        row["dropped_tokens"] = dict(sorted(row["dropped_tokens"].items()))
        out.append(row)
    return out


def decontamination_summary(reports: list[str | Path]) -> dict:
    by_kind: Counter = Counter()
    by_benchmark: Counter = Counter()
    examples = []
    for path in reports:
        for rec in read_jsonl(path):
            by_kind[rec["reason"]] += 1
            by_benchmark[rec.get("benchmark", "?")] += 1
            if len(examples) < 10:
                examples.append({k: rec.get(k) for k in ("url", "reason", "benchmark", "words")})
    return {"removed": sum(by_kind.values()), "by_reason": dict(by_kind), "by_benchmark": dict(by_benchmark),
            "examples": examples}


def build_funnel(stats_files: list[str | Path], state_files: list[str | Path], reports: list[str | Path]) -> dict:
    steps = aggregate(stats_files)
    rounds = [load_state(p) for p in state_files]
    errors = [e for s in steps for e in s["errors"]]
    for s in steps:
        s["errors"] = len(s["errors"])
    last = rounds[-1] if rounds else None
    return {
        "steps": steps,
        "rounds": rounds,
        "converged_at": next((r["converged_at"] for r in rounds if r.get("converged_at")), None),
        "final": {"docs": last["kept_docs"], "tokens": last["kept_tokens"]} if last else None,
        "decontamination": decontamination_summary(reports),
        "malformed": errors,
    }


def _fmt_dropped(d: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in d.items() if v) or "-"


def to_markdown(funnel: dict) -> str:
    lines = ["| step | round | docs in | docs out | tokens in | tokens out | dropped (docs, by reason) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for s in funnel["steps"]:
        note = f" (= round {s['carried_over_from']})" if s.get("carried_over_from") else ""
        lines.append(f"| {s['step']}{note} | {s['round'] or '-'} | {s['docs_in']:,} | {s['docs_out']:,} | "
                     f"{s['tokens_in']:,} | {s['tokens_out']:,} | {_fmt_dropped(s['dropped'])} |")
    lines += ["", "| round | kept docs | kept tokens | overlap with previous | math domains | new positives | converged |",
              "|---:|---:|---:|---:|---:|---:|---|"]
    for r in funnel["rounds"]:
        ov = "-" if r["overlap_with_previous"] is None else f"{r['overlap_with_previous']:.4f}"
        conv = "yes" if r["converged"] else "no"
        if r.get("carried_over_from"):
            conv += f" (carried over from round {r['carried_over_from']})"
        lines.append(f"| {r['round']} | {r['kept_docs']:,} | {r['kept_tokens']:,} | {ov} | {r['math_domains']} | "
                     f"{r['new_positives']} | {conv} |")
    d = funnel["decontamination"]
    lines += ["", f"Decontamination removed {d['removed']} pages: by reason {_fmt_dropped(d['by_reason'])}; "
                  f"by benchmark {_fmt_dropped(d['by_benchmark'])}.",
              f"Malformed inputs skipped: {len(funnel['malformed'])}"
              + "".join(f"\n- {e['reason']}: {e.get('file', e.get('url', '?'))}"
                        f"{' @' + str(e['offset']) if e.get('offset') is not None else ''}: {e.get('message', '')}"
                        for e in funnel["malformed"][:20])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = parser("Build corpus/funnel.json and funnel.md from the corpus steps' stats files.")
    p.add_argument("--stats", nargs="+", required=True, help="stats JSON files, in pipeline order")
    p.add_argument("--states", nargs="+", required=True, help="round state.json files, in round order")
    p.add_argument("--decontam", nargs="*", default=[], help="decontamination reports (JSONL)")
    p.add_argument("--json", required=True)
    p.add_argument("--markdown", required=True)
    args = p.parse_args(argv)
    setup(args)
    funnel = build_funnel(args.stats, args.states, args.decontam)
    write_json(args.json, funnel)
    write_text(args.markdown, to_markdown(funnel))
    log.info("funnel: %s", json.dumps(funnel["final"]))


if __name__ == "__main__":
    main()
